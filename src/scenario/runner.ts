/** Runs a scenario on a fresh machine, checking expectations after each step and invariants throughout. */
import { errnoName } from '../base/errno.js';
import type { TcelabEvent } from '../base/events.js';
import { Checker, INVARIANTS, type InvariantName, type Violation } from '../check/invariants.js';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../hw/tce.js';
import { dmaMapPage, dmaUnmapPage } from '../kernel/dma-api.js';
import type { Process } from '../kernel/process.js';
import type { Quirks } from '../kernel/quirks.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { Machine } from '../machine/machine.js';
import * as V from '../kernel/include/uapi/linux/vfio.js';
import { iommufdStep } from './iommufd-steps.js';
import type { PseriesPe } from '../kernel/pseries/pe.js';
import { kernelDriverName } from '../machine/pseries-boot.js';
import type { SysResult } from '../uapi/syscalls.js';
import type { Scenario, Step } from './schema.js';

export interface StepResult {
  where: string;
  op: string;
  actor: string | null;
  summary: string;
  failures: string[];
}

export interface RunResult {
  scenario: string;
  ok: boolean;
  steps: StepResult[];
  violations: (Violation & { explanation: string; step: string; chain: string[] })[];
  /** The invariants the scenario says it breaks, and those of them that held after all. */
  expectedViolations: InvariantName[];
  missingViolations: InvariantName[];
}

const STRUCT_OF: Record<string, V.StructName> = {
  VFIO_IOMMU_SPAPR_TCE_GET_INFO: 'vfio_iommu_spapr_tce_info',
  VFIO_IOMMU_MAP_DMA: 'vfio_iommu_type1_dma_map',
  VFIO_IOMMU_UNMAP_DMA: 'vfio_iommu_type1_dma_unmap',
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY: 'vfio_iommu_spapr_register_memory',
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: 'vfio_iommu_spapr_register_memory',
  VFIO_IOMMU_SPAPR_TCE_CREATE: 'vfio_iommu_spapr_tce_create',
  VFIO_IOMMU_SPAPR_TCE_REMOVE: 'vfio_iommu_spapr_tce_remove',
  VFIO_EEH_PE_OP: 'vfio_eeh_pe_op',
  VFIO_GROUP_GET_STATUS: 'vfio_group_status',
  VFIO_DEVICE_GET_INFO: 'vfio_device_info',
  VFIO_DEVICE_GET_REGION_INFO: 'vfio_region_info',
  VFIO_DEVICE_GET_IRQ_INFO: 'vfio_irq_info',
};
const REQUEST = Object.fromEntries(Object.entries(V.VFIO_IOCTL_NAMES).map(([k, v]) => [v, Number(k)]));

/** An event's fields as text (`name=value`, bigints in hex). */
export function eventText(e: TcelabEvent): string {
  const { seq: _s, layer: _l, kind: _k, ...rest } = e as unknown as Record<string, unknown>;
  const show = (v: unknown): string => (typeof v === 'bigint' ? `0x${v.toString(16)}` : Array.isArray(v) ? `[${v.map(show).join(',')}]` : String(v));
  return Object.entries(rest)
    .map(([k, v]) => `${k}=${show(v)}`)
    .join(' ');
}

export function describeEvent(e: TcelabEvent): string {
  return `#${e.seq} ${e.layer}.${e.kind} ${eventText(e)}`;
}

/**
 * Run a scenario. `overrides` turns quirks on or off; `iommufdDriver` replaces the scenario's
 * IOMMUFD driver (to replay a scenario written for tcelab's design on the RFC's).
 */
export function runScenario(sc: Scenario, overrides: Partial<Quirks> = {}, onStep?: (m: Machine) => void, iommufdDriver?: 'ppc64' | 'rfc-2026'): RunResult {
  const it = scenarioSteps(sc, overrides, iommufdDriver);
  for (let r = it.next(); ; r = it.next()) {
    if (r.done) return r.value;
    if ('result' in r.value) onStep?.(r.value.machine);
  }
}

/** One step done: its result, the invariant violations it revealed, the machine after it. */
export interface StepDone {
  index: number;
  result: StepResult;
  violations: RunResult['violations'];
  machine: Machine;
}

/**
 * The scenario one step at a time: yields the booted machine first, then after every step;
 * returns the whole result. A viewer steps it, pauses it, or stops early.
 */
export function* scenarioSteps(
  sc: Scenario,
  overrides: Partial<Quirks> = {},
  iommufdDriver?: 'ppc64' | 'rfc-2026',
): Generator<StepDone | { boot: Machine }, RunResult> {
  const iommufd = iommufdDriver ?? sc.machine.iommufd;
  const m = new Machine({
    ...sc.machine,
    quirks: { ...sc.machine.quirks, ...overrides },
    ...(iommufd ? { iommufd, allowUnsafeInterrupts: sc.machine.allowUnsafeInterrupts ?? true } : {}),
    ...(sc.machine.ramBytes ? { ramBytes: sc.machine.ramBytes } : {}),
  });
  yield { boot: m };
  const vars = new Map<string, bigint>();
  const checker = new Checker(m);
  const procs = new Map<string, Process>();
  const fds = new Map<string, number>();
  const mappings = new Map<string, { dma: bigint; pa: number; size: number; dir: 0 | 1 | 2 }>();
  const results: StepResult[] = [];
  const violations: RunResult['violations'] = [];
  let reported = 0;

  const proc = (actor: string): Process => {
    let p = procs.get(actor);
    if (!p) {
      p = m.sys.spawn(actor);
      const a = sc.actors[actor]!;
      if (a.kind === 'vfio-user') for (const r of a.memory) p.mm.mappings.push({ start: r.at, end: r.at + r.size, kind: r.kind });
      procs.set(actor, p);
    }
    return p;
  };
  const device = (name: string) => {
    const d = m.device(name);
    if (!d) throw new Error(`no device ${name} on this machine (devices: ${m.devices.map((x) => x.name).join(', ')})`);
    return d;
  };

  for (const step of sc.steps) {
    const before = new Set<string>();
    // Counts by call need every hcall/RTAS/OPAL event, which are built only for a verbose listener.
    const byCall = Object.keys(step.expect?.count ?? {}).some((k) => k.includes(':'));
    const calls = new Map<string, number>();
    const stop = m.log.subscribe(
      (e) => {
        before.add(`${e.layer}.${e.kind}`);
        if (byCall && 'call' in e) calls.set(`${e.layer}.${e.kind}:${e.call}`, (calls.get(`${e.layer}.${e.kind}:${e.call}`) ?? 0) + 1);
      },
      { verbose: byCall },
    );
    const tallies = m.log.counts;
    const r: StepResult = { where: step.where, op: step.op, actor: step.actor, summary: '', failures: [] };
    let ret: StepOutcome = {};
    try {
      ret = execStep(step);
    } catch (e) {
      r.failures.push((e as Error).message);
    }
    stop();
    const made = (k: string) => (k.includes(':') ? (calls.get(k) ?? 0) : (m.log.counts.get(k) ?? 0) - (tallies.get(k) ?? 0));
    const hcalls = made('firmware.hcall');
    r.summary = summarize(ret) + (hcalls ? `${summarize(ret) ? ', ' : ''}${hcalls} hcall${hcalls > 1 ? 's' : ''}` : '');
    const x = step.expect;
    if (x) {
      if (x.ret !== undefined && ret.ret !== x.ret) r.failures.push(`expected ret ${x.ret}, got ${ret.ret}`);
      if (x.errno !== undefined && (ret.errno ?? null) !== x.errno) r.failures.push(`expected errno ${x.errno}, got ${ret.errno ?? 'none'}`);
      if (x.ok !== undefined && ret.ok !== x.ok) r.failures.push(`expected ok ${x.ok}, got ${ret.ok}`);
      if (x.data !== undefined && ret.data !== x.data) r.failures.push(`expected data ${JSON.stringify(x.data)}, got ${JSON.stringify(ret.data)}`);
      if (x.frozen !== undefined) {
        const d = device(String(step.fields.device ?? sc.actors[step.actor ?? '']?.['device' as never] ?? ''));
        const pe = m.peOf(d)!;
        const frozen = m.phbs[d.hw.phb.index]!.peState[pe.peNumber]!.dmaFrozen;
        if (frozen !== x.frozen) r.failures.push(`expected the PE ${x.frozen ? 'frozen' : 'not frozen'}, it is ${frozen ? 'frozen' : 'not frozen'}`);
      }
      for (const ev of x.events ?? []) if (!before.has(ev)) r.failures.push(`expected a ${ev} event, saw ${[...before].join(', ') || 'none'}`);
      for (const [k, n] of Object.entries(x.count ?? {})) if (made(k) !== n) r.failures.push(`expected ${n} ${k} event(s), saw ${made(k)}`);
      if (x.blocked !== undefined && (ret.blocked !== undefined) !== x.blocked)
        r.failures.push(x.blocked ? 'expected the call to block forever, it returned' : `expected the call to return, it blocks: ${ret.blocked}`);
      if (x.signal !== undefined && ret.signal !== x.signal)
        r.failures.push(`expected the task to die of signal ${x.signal}, ${ret.signal ? `it died of ${ret.signal}` : 'it lives'}`);
    }
    checker.checkState();
    const found = checker.violations
      .slice(reported)
      .map((v) => ({ ...v, explanation: INVARIANTS[v.invariant], step: step.where, chain: checker.recent.map(describeEvent) }));
    violations.push(...found);
    reported = checker.violations.length;
    results.push(r);
    yield { index: results.length - 1, result: r, violations: found, machine: m };
  }
  // A reenactment names the invariants it breaks: exactly those must fire, and they are expected.
  const fired = new Set(violations.map((v) => v.invariant));
  const expectedHeld = sc.violations.every((v) => fired.has(v)) && [...fired].every((v) => sc.violations.includes(v));
  const missing = sc.violations.filter((v) => !fired.has(v));
  return {
    scenario: sc.name,
    ok: results.every((s) => !s.failures.length) && expectedHeld,
    steps: results,
    violations,
    expectedViolations: sc.violations,
    missingViolations: missing,
  };

  function execStep(step: Step): StepOutcome {
    const f = step.fields;
    switch (step.op) {
      case 'bind':
        if (f.driver === 'vfio-pci') return sysRet(kret(m.bindVfioPci(String(f.device)).ret));
        return sysRet(kret(m.bindKernelDriver(String(f.device))));
      case 'eeh-inject': {
        const d = device(String(f.device));
        return { ret: m.eeh.injectErr(m.peOf(d)!) };
      }
      case 'hotplug-remove':
        return sysRet(kret(m.hotplugRemove(String(f.device))));
      case 'hotplug-add':
        return sysRet(kret(m.hotplugAdd(String(f.device))));
      case 'eeh-recover': {
        const pe = m.peOf(device(String(f.device)))!;
        m.eeh.setOption(pe, 'thaw-mmio');
        return { ret: m.eeh.setOption(pe, 'thaw-dma') };
      }
      case 'dma-set-mask': {
        const d = device(driverDevice(step));
        const mask = (1n << BigInt(Number(f.bits))) - 1n;
        if (m.pseries) return { ret: m.pseries.dmaSetMask(m.tableGroupOf(d) as PseriesPe, d, kernelDriverName(d), mask) };
        return { ret: m.ioda.dmaSetMask(m.peOf(d)!, d, mask) };
      }
      case 'dma-map': {
        const d = device(driverDevice(step));
        const size = Number(f.size ?? 4096);
        const order = Math.max(0, Math.ceil(Math.log2(Math.ceil(size / m.mem.pageSize))));
        const pfn = m.mem.allocPages(order, { kind: 'kernel', label: `${step.actor} ${String(f.as)}` });
        if (pfn === null) return { ok: false };
        const dir = f.dir === 'to-device' ? DMA_TO_DEVICE : f.dir === 'from-device' ? DMA_FROM_DEVICE : DMA_BIDIRECTIONAL;
        const dma = dmaMapPage(d, pfn * m.mem.pageSize, size, dir, m.pageShift, 0, m.log);
        if (dma === null) return { ok: false };
        mappings.set(`${step.actor}/${String(f.as)}`, { dma, pa: pfn * m.mem.pageSize, size, dir });
        return { ok: true, data: `0x${dma.toString(16)}` };
      }
      case 'dma-unmap': {
        const key = `${step.actor}/${String(f.mapping)}`;
        const mp = mappings.get(key);
        if (!mp) throw new Error(`no mapping named "${f.mapping}"`);
        dmaUnmapPage(device(driverDevice(step)), mp.dma, mp.size, mp.dir, m.log);
        mappings.delete(key);
        return { ok: true };
      }
      case 'device-write':
      case 'device-read': {
        const d = device(driverDevice(step));
        const bus = f.mapping !== undefined ? mappings.get(`${step.actor}/${String(f.mapping)}`)?.dma : (f.bus as bigint | undefined);
        if (bus === undefined) throw new Error(`${step.op} needs a known "mapping" or a "bus" address`);
        if (step.op === 'device-write') {
          const w = d.hw.dmaWrite(bus, new TextEncoder().encode(String(f.data)));
          return { ok: w.ok };
        }
        const rd = d.hw.dmaRead(bus, Number(f.len));
        return { ok: rd.ok, data: rd.data ? new TextDecoder().decode(rd.data) : undefined };
      }
      case 'open': {
        const p = proc(step.actor!);
        const res = m.sys.open(p.pid, String(f.path));
        if (res.ret >= 0 && f.as) fds.set(`${step.actor}/${f.as}`, res.ret);
        return sysRet(res);
      }
      case 'close':
        return sysRet(m.sys.close(proc(step.actor!).pid, fd(step.actor!, String(f.fd))));
      case 'exit': {
        // The actor's next step starts a new process, unless this one is stuck in its exit.
        const p = proc(step.actor!);
        m.sys.exit(p.pid);
        if (p.stuck) return { ret: -1, errno: null, blocked: p.stuck };
        procs.delete(step.actor!);
        for (const k of [...fds.keys()]) if (k.startsWith(`${step.actor}/`)) fds.delete(k);
        return { ret: 0 };
      }
      case 'ioctl':
        return ioctl(step);
      case 'iommufd':
        return iommufdStep({ m, p: proc(step.actor!), fd: (n) => fd(step.actor!, n), vars }, f);
      default:
        throw new Error(`op ${step.op} is not implemented`);
    }
  }

  function driverDevice(step: Step): string {
    const a = sc.actors[step.actor!]!;
    if (a.kind !== 'driver') throw new Error(`${step.op} needs a driver actor`);
    // Only a bound kernel driver calls the DMA API; the device's own DMA engine always runs.
    if (step.op.startsWith('dma-') && device(a.device).driver !== 'kernel') throw new Error(`${a.device} is not bound to a kernel driver`);
    return a.device;
  }

  function fd(actor: string, name: string): number {
    const n = fds.get(`${actor}/${name}`);
    if (n === undefined) throw new Error(`actor ${actor} has no descriptor named "${name}"`);
    return n;
  }

  function ioctl(step: Step) {
    const f = step.fields;
    const p = proc(step.actor!);
    const req = String(f.request);
    let arg: IoctlArg;
    if (req === 'VFIO_GROUP_SET_CONTAINER') {
      arg = new Uint8Array(4);
      new DataView(arg.buffer).setInt32(0, fd(step.actor!, String(f.container)), true);
    } else if (req === 'VFIO_GROUP_GET_DEVICE_FD') {
      arg = new TextEncoder().encode(`${String(f.name)}\0`);
    } else if (STRUCT_OF[req]) {
      const s = STRUCT_OF[req]!;
      const values: Record<string, bigint | number> = { argsz: V.structs[s].size };
      for (const [k0, v] of Object.entries(f)) {
        if (k0 === 'fd' || k0 === 'request' || k0 === 'as') continue;
        // A step's own "op" key names the step; vfio_eeh_pe_op's op field is spelled eeh_op.
        const k = k0 === 'eeh_op' ? 'op' : k0;
        if (!(k in V.structs[s].fields)) throw new Error(`${req} has no field "${k}" (fields: ${Object.keys(V.structs[s].fields).join(', ')})`);
        values[k] = BigInt(v as number | bigint | string);
      }
      arg = V.encode(s, values as never);
    } else {
      arg = BigInt((f.arg as number | bigint | undefined) ?? 0);
    }
    const res = m.sys.ioctl(p.pid, fd(step.actor!, String(f.fd)), REQUEST[req]!, arg);
    if (req === 'VFIO_GROUP_GET_DEVICE_FD' && res.ret >= 0 && f.as) fds.set(`${step.actor}/${f.as}`, res.ret);
    return sysRet(res);
  }
}

function kret(rc: number): { ret: number; errno: number } {
  return rc < 0 ? { ret: -1, errno: -rc } : { ret: rc, errno: 0 };
}

interface StepOutcome {
  ret?: number;
  errno?: string | null;
  ok?: boolean;
  data?: string;
  blocked?: string;
  signal?: number;
}

function sysRet(r: SysResult): StepOutcome {
  const out: StepOutcome = r.ret < 0 ? { ret: -1, errno: r.errno ? errnoName(r.errno) : null } : { ret: r.ret, errno: null };
  if (r.blocked) out.blocked = r.blocked;
  if (r.signal) out.signal = r.signal;
  return out;
}

function summarize(r: StepOutcome): string {
  const parts: string[] = [];
  if (r.signal) parts.push(`killed by signal ${r.signal}`);
  else if (r.blocked) parts.push(`blocked forever: ${r.blocked}`);
  else if (r.ret !== undefined) parts.push(`ret ${r.ret}${r.errno ? ` (${r.errno})` : ''}`);
  if (r.ok !== undefined) parts.push(r.ok ? 'ok' : 'failed');
  if (r.data !== undefined) parts.push(JSON.stringify(r.data));
  return parts.join(', ');
}
