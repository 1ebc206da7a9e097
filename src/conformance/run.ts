/** `tcelab conformance`: replay recordings through the model and count matching records. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { compareRecord, type Mismatch } from './compare.js';
import { type OracleRecord, parseRecords, splitBoots } from './records.js';
import { OracleReplay } from './replay.js';

export interface FileResult {
  file: string;
  records: number;
  matched: number;
  mismatches: Mismatch[];
}

export function replayFile(path: string, onProgress?: (done: number, total: number) => void): FileResult {
  const records = parseRecords(readFileSync(path, 'utf8'), path);
  const res: FileResult = { file: basename(path), records: records.length, matched: 0, mismatches: [] };
  let done = 0;
  // A boot that printed no init records ran the same init (device binding) and program as the
  // boot before it.
  let init: OracleRecord[] = [];
  for (const boot of splitBoots(records)) {
    const own = boot.filter((r) => r.scn === 'init');
    if (own.length) init = own;
    let replay: OracleReplay | null = null;
    let bootError: string | null = null;
    try {
      replay = new OracleReplay(boot, own.length ? [] : init);
    } catch (e) {
      bootError = (e as Error).message;
    }
    for (const r of boot) {
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
