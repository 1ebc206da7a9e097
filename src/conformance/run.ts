/** `tcelab conformance`: replay recordings through the model and count matching records. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { compareRecord, type Mismatch } from './compare.js';
import { type OracleRecord, parseRecords, splitBoots } from './records.js';
import { iommufdMachineFor, isIommufdProgram } from './environment.js';
import { OracleReplay } from './replay.js';
import { DEVICE_FREE_SCENARIOS, IommufdReplay } from './replay-iommufd.js';

export interface FileResult {
  file: string;
  records: number;
  matched: number;
  mismatches: Mismatch[];
  /** Records not replayed, and why (a --scenarios filter; devices of a machine tcelab does not model). */
  skipped: number;
  skipReason?: string;
}

export interface ReplayOptions {
  /** Replay only these scenarios (`scn` values); the others are skipped. */
  scenarios?: Set<string>;
  onProgress?: (done: number, total: number) => void;
}

interface Replayer {
  run(r: OracleRecord): ReturnType<OracleReplay['run']>;
}

export function replayFile(path: string, o: ReplayOptions = {}): FileResult {
  const onProgress = o.onProgress;
  const all = parseRecords(readFileSync(path, 'utf8'), path);
  const records = o.scenarios ? all.filter((r) => o.scenarios!.has(r.scn) || r.scn === 'init') : all;
  const res: FileResult = { file: basename(path), records: records.length, matched: 0, mismatches: [], skipped: all.length - records.length };
  if (res.skipped) res.skipReason = 'not in --scenarios';
  let done = 0;
  // A boot that printed no init records ran the same init (device binding) and program as the
  // boot before it.
  let init: OracleRecord[] = [];
  for (const boot of splitBoots(records)) {
    const own = boot.filter((r) => r.scn === 'init');
    if (own.length) init = own;
    let replay: Replayer | null = null;
    let bootError: string | null = null;
    let replayable = (_r: OracleRecord) => true;
    try {
      const env = boot.find((r) => r.op === 'note' && r.case === 'environment');
      if (env && isIommufdProgram(env)) {
        const m = iommufdMachineFor(env);
        replay = new IommufdReplay(m.deviceFree ? [] : boot, m.opts, m.deviceFree);
        if (m.deviceFree) replayable = (r) => DEVICE_FREE_SCENARIOS.has(r.scn) && r.op !== 'bind_vfio_pci';
      } else replay = new OracleReplay(boot, own.length ? [] : init);
    } catch (e) {
      bootError = (e as Error).message;
    }
    for (const r of boot) {
      if (!replayable(r)) {
        res.records--;
        res.skipped++;
        res.skipReason = `needs the recorded machine's devices (${r.qemu_machine} is not modelled)`;
        onProgress?.(++done, records.length);
        continue;
      }
      let ms: Mismatch[];
      if (!replay) {
        ms = [{ scn: r.scn, seq: r.seq, op: r.op, case: r.case, field: 'replay', kernel: 'answered', model: `no machine: ${bootError}` }];
      } else {
        try {
          ms = compareRecord(r, replay.run(r));
        } catch (e) {
          ms = [{ scn: r.scn, seq: r.seq, op: r.op, case: r.case, field: 'replay', kernel: 'answered', model: `cannot replay: ${(e as Error).message}` }];
        }
      }
      if (ms.length) res.mismatches.push(...ms);
      else res.matched++;
      onProgress?.(++done, records.length);
    }
  }
  return res;
}

export function formatMismatch(file: string, m: Mismatch): string {
  return `${file} #${m.seq} ${m.scn} ${m.op} "${m.case}": ${m.field}: kernel ${m.kernel} vs model ${m.model}`;
}
