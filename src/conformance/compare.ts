/**
 * How a model answer is held against a recorded one: ret, errno, the out fields, vmlck_kb and the
 * kernel log. A WARNING splat compares as `WARNING: at FILE:LINE FUNCTION`; the devices' power
 * management lines of bind_vfio_pci records are not compared.
 */
import type { OracleRecord } from './records.js';

/** What a call answered: the recorded fields that are not the call itself. */
export type Answer = Pick<OracleRecord, 'ret' | 'errno' | 'out' | 'vmlck_kb' | 'vmpin_kb' | 'dmesg'>;

export interface Mismatch {
  scn: string;
  seq: number;
  op: string;
  case: string;
  field: string;
  kernel: string;
  model: string;
}

/** Fields of the environment record that name the kernel build or the CPU, not behaviour. */
const ENV_EXCEPT = new Set(['release', 'version', 'cpu']);
/** Out fields that are wall-clock measurements (the RFC probe's timed maps). */
const TIMING = new Set(['elapsed_ms']);

/** warn_alloc(): "<comm>: <message>, mode:0x…(<gfp flags>), nodemask=…". */
const WARN_ALLOC = /^.*?: (.*), mode:0x[0-9a-f]+\([^)]*\), nodemask=/;

export function normalizeDmesg(lines: string[], op: string): string[] {
  const out: string[] = [];
  let inSplat = false;
  let inAllocReport = false;
  let warning: string | null = null;
  for (const l of lines) {
    // An allocation-failure report: its message line, then a stack dump and the free-memory
    // state (PIDs, addresses and counts that differ from boot to boot) to the end of the call's
    // log or the next splat.
    const alloc = WARN_ALLOC.exec(l);
    if (alloc && !inSplat) {
      out.push(`warn_alloc: ${alloc[1]}`);
      inAllocReport = true;
      continue;
    }
    if (inAllocReport && l !== '------------[ cut here ]------------') continue;
    inAllocReport = false;
    if (l === '------------[ cut here ]------------') {
      inSplat = true;
      warning = null;
      continue;
    }
    if (inSplat) {
      const m = /^WARNING: .*? at (\S+):(\d+) ([A-Za-z0-9_.]+?)(\+0x[0-9a-f]+\/0x[0-9a-f]+)?( .*)?$/.exec(l);
      if (m && warning === null) warning = `WARNING: at ${m[1]}:${m[2]} ${m[3]}`;
      if (/^---\[ end trace [0-9a-f]+ \]---$/.test(l)) {
        out.push(warning ?? 'WARNING: (unparsed)');
        inSplat = false;
      }
      continue;
    }
    if (op === 'bind_vfio_pci' && / Refused to change power state from /.test(l)) continue;
    out.push(l);
  }
  if (inSplat) out.push(warning ?? 'WARNING: (unterminated)');
  return out;
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

/**
 * Kernel lines that arrive asynchronously (runtime PM, stack-depth reports, rate limiting, link
 * state) and land in whichever record is being written; some kits remove them after recording.
 */
const ASYNC_LINE = / Refused to change power state from | used greatest stack depth|callbacks suppressed| NIC Link is (Up|Down)/;

/** Whether a recording had its asynchronous kernel lines removed (the IOMMUFD RFC kit does). */
export function asyncLinesRemoved(rec: OracleRecord): boolean {
  return /-rfc-/.test(rec.kernel);
}

export function compareRecord(rec: OracleRecord, model: Answer): Mismatch[] {
  const ms: Mismatch[] = [];
  const add = (field: string, k: unknown, m: unknown) =>
    ms.push({ scn: rec.scn, seq: rec.seq, op: rec.op, case: rec.case, field, kernel: show(k), model: show(m) });
  if (rec.ret !== model.ret) add('ret', rec.ret, model.ret);
  if ((rec.errno ?? null) !== (model.errno ?? null)) add('errno', rec.errno, model.errno);
  const isEnv = rec.op === 'note' && rec.case === 'environment';
  const keys = new Set([...Object.keys(rec.out ?? {}), ...Object.keys(model.out)]);
  for (const k of keys) {
    if ((isEnv && ENV_EXCEPT.has(k)) || TIMING.has(k)) continue;
    if (show(rec.out?.[k]) !== show(model.out[k])) add(`out.${k}`, rec.out?.[k], model.out[k]);
  }
  if (rec.vmlck_kb !== model.vmlck_kb) add('vmlck_kb', rec.vmlck_kb, model.vmlck_kb);
  if (rec.vmpin_kb !== undefined && rec.vmpin_kb !== model.vmpin_kb) add('vmpin_kb', rec.vmpin_kb, model.vmpin_kb);
  const kd = normalizeDmesg(rec.dmesg ?? [], rec.op);
  const md = normalizeDmesg(asyncLinesRemoved(rec) ? model.dmesg.filter((l) => !ASYNC_LINE.test(l)) : model.dmesg, rec.op);
  const n = Math.max(kd.length, md.length);
  for (let i = 0; i < n; i++) if (kd[i] !== md[i]) add(`dmesg[${i}]`, kd[i], md[i]);
  return ms;
}
