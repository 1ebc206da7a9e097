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
  /** VmPin (the IOMMUFD kits record it). */
  vmpin_kb?: number;
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

export function isEnvironment(r: OracleRecord): boolean {
  return r.op === 'note' && r.case === 'environment';
}

/**
 * Split a file into boots, each replayed on a fresh machine. A boot starts with its init records,
 * or, where a file concatenates one boot per scenario, where the record numbers start again or
 * the kernel command line changes.
 */
export function splitBoots(records: OracleRecord[]): OracleRecord[][] {
  const boots: OracleRecord[][] = [];
  let prev: OracleRecord | null = null;
  for (const r of records) {
    const rebooted = prev !== null && (r.seq < prev.seq || r.kernel_cmdline !== prev.kernel_cmdline);
    if (!prev || (r.scn === 'init' && prev.scn !== 'init') || (rebooted && !(r.scn === 'init' && prev.scn === 'init'))) boots.push([]);
    boots[boots.length - 1]!.push(r);
    prev = r;
  }
  return boots;
}
