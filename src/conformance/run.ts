/** `tcelab conformance`: replay recordings through the model and count matching records. */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Machine } from '../machine/machine.js';
import { type Answer, compareRecord, type Mismatch } from './compare.js';
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
  for (const r of replayRecords(records)) {
    if ('boot' in r) continue;
    if (r.mismatches.length) res.mismatches.push(...r.mismatches);
    else res.matched++;
    onProgress?.(r.index + 1, records.length);
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

/**
 * The records one at a time, each boot on a fresh machine (yielded as `{ boot }` before its first
 * record). A boot that printed no init records ran the same init (device binding) and program as
 * the boot before it.
 */
export function* replayRecords(records: OracleRecord[]): Generator<RecordDone | { boot: Machine }> {
  let index = 0;
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
    if (replay) yield { boot: replay.machine };
    for (const r of boot) {
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
