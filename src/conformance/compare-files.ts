/**
 * `tcelab conformance --compare KERNEL.jsonl MODEL.jsonl`: holds the records a program printed
 * while running against the model (its J: lines as JSONL) against the real kernel's, with the
 * rules of replay (compareRecord). Records are matched by (seq, scn, op, case). The kit's init
 * writes the bind_vfio_pci records, not the program, so they are not expected from it.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { compareRecord, type Answer, type Mismatch } from './compare.js';
import { parseRecords, RecordError } from './records.js';
import { formatMismatch } from './run.js';

export interface CompareResult {
  matched: number;
  mismatched: number;
  mismatches: Mismatch[];
}

interface RunRecord extends Answer {
  seq: number;
  scn: string;
  op: string;
  case: string;
}

/** The program's own records: JSON lines with at least seq, scn, op, case and ret. */
export function parseRunRecords(text: string, file: string): RunRecord[] {
  const out: RunRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch (e) {
      throw new RecordError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    for (const k of ['seq', 'scn', 'op', 'case', 'ret']) if (!(k in o)) throw new RecordError(`${file}:${i + 1}: record has no "${k}" field`);
    out.push({ out: {}, dmesg: [], errno: null, vmlck_kb: 0, ...o } as unknown as RunRecord);
  });
  return out;
}

const keyOf = (r: { seq: number; scn: string; op: string; case: string }) => JSON.stringify([r.seq, r.scn, r.op, r.case]);

export function compareFiles(kernelPath: string, modelPath: string): CompareResult {
  const expected = parseRecords(readFileSync(kernelPath, 'utf8'), kernelPath).filter((r) => r.op !== 'bind_vfio_pci');
  const produced = new Map<string, RunRecord[]>();
  for (const r of parseRunRecords(readFileSync(modelPath, 'utf8'), modelPath)) produced.set(keyOf(r), [...(produced.get(keyOf(r)) ?? []), r]);
  const mismatches: Mismatch[] = [];
  let matched = 0;
  let missing = 0;
  for (const k of expected) {
    const m = produced.get(keyOf(k))?.shift();
    const ms = m ? compareRecord(k, m) : [{ scn: k.scn, seq: k.seq, op: k.op, case: k.case, field: 'record', kernel: 'recorded', model: '(absent)' }];
    if (ms.length) {
      mismatches.push(...ms);
      missing++;
    } else {
      matched++;
    }
  }
  let extra = 0;
  for (const rest of produced.values()) {
    for (const r of rest) {
      mismatches.push({ scn: r.scn, seq: r.seq, op: r.op, case: r.case, field: 'record', kernel: '(absent)', model: 'produced' });
      extra++;
    }
  }
  return { matched, mismatched: missing + extra, mismatches };
}

/** One line per mismatch, then "N matched, M mismatched". */
export function formatCompare(r: CompareResult, modelPath: string): string {
  const lines = r.mismatches.map((m) => formatMismatch(basename(modelPath), m));
  lines.push(`${r.matched} matched, ${r.mismatched} mismatched`);
  return `${lines.join('\n')}\n`;
}
