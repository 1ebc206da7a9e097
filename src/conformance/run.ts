/** `tcelab conformance`: replay recordings through the model and count matching records. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Machine } from '../machine/machine.js';
import { type Answer, compareRecord, type Mismatch } from './compare.js';
import { iommufdMachineFor, isIommufdProgram } from './environment.js';
import { type OracleRecord, parseRecords, splitBoots } from './records.js';
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

export function replayFile(path: string, o: ReplayOptions = {}): FileResult {
  const all = parseRecords(readFileSync(path, 'utf8'), path);
  const records = o.scenarios ? all.filter((r) => o.scenarios!.has(r.scn) || r.scn === 'init') : all;
  const res: FileResult = { file: basename(path), records: records.length, matched: 0, mismatches: [], skipped: all.length - records.length };
  if (res.skipped) res.skipReason = 'not in --scenarios';
  for (const r of replayRecords(records)) {
    if ('boot' in r) continue;
    if ('skipped' in r) {
      res.records--;
      res.skipped++;
      if (!res.skipReason?.includes(r.skipped)) res.skipReason = res.skipReason ? `${res.skipReason}; ${r.skipped}` : r.skipped;
    } else if (r.mismatches.length) res.mismatches.push(...r.mismatches);
    else res.matched++;
    o.onProgress?.(r.index + 1, records.length);
  }
  return res;
}

/** One record replayed: the model's answer (null when it could not run) and what differs. */
export interface RecordDone {
  index: number;
  record: OracleRecord;
  answer: Answer | null;
  mismatches: Mismatch[];
  /** The machine of the record's boot (null when it could not be built). */
  machine: Machine | null;
}

/** A record that cannot be replayed on any modelled machine, and why. */
export interface RecordSkipped {
  index: number;
  record: OracleRecord;
  skipped: string;
}

interface Replayer {
  readonly machine: Machine;
  run(r: OracleRecord): Answer;
}

/**
 * The records one at a time, each boot on a fresh machine (yielded as `{ boot }` before its first
 * record). A boot that printed no init records ran the same init (device binding) and program as
 * the boot before it. A recording of the IOMMUFD program replays through /dev/iommu; one from a
 * machine tcelab does not model replays only its device-free records.
 */
export function* replayRecords(records: OracleRecord[]): Generator<RecordDone | RecordSkipped | { boot: Machine }> {
  let index = 0;
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
    if (replay) yield { boot: replay.machine };
    for (const r of boot) {
      if (!replayable(r)) {
        yield { index: index++, record: r, skipped: `needs the recorded machine's devices (${r.qemu_machine} is not modelled)` };
        continue;
      }
      const fail = (model: string): Mismatch[] => [{ scn: r.scn, seq: r.seq, op: r.op, case: r.case, field: 'replay', kernel: 'answered', model }];
      let answer: Answer | null = null;
      let ms: Mismatch[];
      if (!replay) ms = fail(`no machine: ${bootError}`);
      else {
        try {
          answer = replay.run(r);
          ms = compareRecord(r, answer);
        } catch (e) {
          ms = fail(`cannot replay: ${(e as Error).message}`);
        }
      }
      yield { index: index++, record: r, answer, mismatches: ms, machine: replay?.machine ?? null };
    }
  }
}

export function formatMismatch(file: string, m: Mismatch): string {
  return `${file} #${m.seq} ${m.scn} ${m.op} "${m.case}": ${m.field}: kernel ${m.kernel} vs model ${m.model}`;
}
