/** The recording format of the real-kernel oracle kits: one JSON object per call. */

export interface OracleRecord {
  variant?: string;
  qemu_machine: string;
  kernel: string;
  kernel_cmdline: string;
  seq: number;
  scn: string;
  op: string;
  case: string;
  args: Record<string, unknown>;
  ret: number;
  errno: string | null;
  out: Record<string, unknown>;
  vmlck_kb: number;
  dmesg: string[];
}

export class RecordError extends Error {}

export function parseRecords(text: string, file: string): OracleRecord[] {
  const out: OracleRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new RecordError(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
    const o = r as Record<string, unknown>;
    for (const k of ['seq', 'scn', 'op', 'case', 'ret', 'qemu_machine', 'kernel']) {
      if (!(k in o)) throw new RecordError(`${file}:${i + 1}: record has no "${k}" field`);
    }
    out.push({ args: {}, out: {}, dmesg: [], errno: null, vmlck_kb: 0, kernel_cmdline: '', ...o } as unknown as OracleRecord);
  });
  return out;
}

/** Split a file into boots: each boot starts with its own init records on a fresh machine. */
export function splitBoots(records: OracleRecord[]): OracleRecord[][] {
  const boots: OracleRecord[][] = [];
  let prev: OracleRecord | null = null;
  for (const r of records) {
    if (!prev || (r.scn === 'init' && prev.scn !== 'init')) boots.push([]);
    boots[boots.length - 1]!.push(r);
    prev = r;
  }
  return boots;
}
