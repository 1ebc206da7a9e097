/**
 * Scenario files (YAML): the machine, the actors and the steps, validated with errors that name
 * the file, line and column and what was expected.
 */
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { INVARIANTS, type InvariantName } from '../check/invariants.js';
import { qemuSize } from '../conformance/environment.js';
import { HYPERVISOR_PROFILES } from '../firmware/papr/profile.js';
import { isQuirkName, QUIRKS, type QuirkName, type Quirks } from '../kernel/quirks.js';
import { isPresetName, PRESETS, type PresetName } from '../machine/presets.js';
import { VFIO_IOCTL_NAMES } from '../kernel/include/uapi/linux/vfio.js';
import { IOMMUFD_STEP_REQUESTS } from './iommufd-steps.js';

export class ScenarioError extends Error {}

export type Actor = { kind: 'driver'; device: string } | { kind: 'vfio-user'; memory: { at: bigint; size: bigint; kind: 'anon' | 'readonly' }[] };

export interface Expect {
  ret?: number;
  errno?: string;
  ok?: boolean;
  data?: string;
  frozen?: boolean;
  events?: string[];
  /** Events during the step by "layer.kind" or "layer.kind:call" (e.g. firmware.hcall:H_PUT_TCE) → how many. */
  count?: Record<string, number>;
  /** The call never returns: the task sleeps on a lock a dead task holds. */
  blocked?: boolean;
  /** The task died in the call, killed by this signal. */
  signal?: number;
}

/** The machine a scenario runs on; the pSeries options need preset: pseries. */
export interface ScenarioMachine {
  preset: PresetName;
  pageSize: '4k' | '64k';
  topology: 'qemu' | 'tour';
  quirks: Partial<Quirks>;
  ramBytes?: number;
  ddw?: boolean;
  maxmemBytes?: number;
  hypervisor?: string;
  multiTce?: boolean;
  /** An IOMMUFD kernel and its PPC64 driver. */
  iommufd?: 'ppc64' | 'rfc-2026';
  allowUnsafeInterrupts?: boolean;
  /** Who provides /dev/vfio/vfio (iommufd needs machine.iommufd). */
  vfioContainer?: 'legacy' | 'iommufd';
}

const EXPECT_KEYS = ['ret', 'errno', 'ok', 'data', 'frozen', 'events', 'count', 'blocked', 'signal'];

export interface Step {
  /** Where the step is in its file ("file:line"). */
  where: string;
  actor: string | null;
  op: string;
  fields: Record<string, unknown>;
  expect: Expect | null;
}

export interface Scenario {
  name: string;
  machine: ScenarioMachine;
  /** Invariants the scenario shows being broken (a quirk's reenactment): exactly these must fire. */
  violations: InvariantName[];
  actors: Record<string, Actor>;
  steps: Step[];
}

const IOCTLS = new Set(Object.values(VFIO_IOCTL_NAMES));

/** Per op: the actor kind it needs and its fields (name → type, '?' suffix = optional). */
export const OPS: Record<string, { actor: 'driver' | 'vfio-user' | 'machine'; fields: Record<string, string> }> = {
  'dma-set-mask': { actor: 'driver', fields: { bits: 'int' } },
  'dma-map': { actor: 'driver', fields: { as: 'string', size: 'int?', dir: 'dir?' } },
  'dma-unmap': { actor: 'driver', fields: { mapping: 'string' } },
  'device-write': { actor: 'driver', fields: { mapping: 'string?', bus: 'u64?', data: 'string' } },
  'device-read': { actor: 'driver', fields: { mapping: 'string?', bus: 'u64?', len: 'int' } },
  open: { actor: 'vfio-user', fields: { path: 'string', as: 'string?' } },
  close: { actor: 'vfio-user', fields: { fd: 'string' } },
  ioctl: { actor: 'vfio-user', fields: { fd: 'string', request: 'ioctl', '*': 'any' } },
  iommufd: { actor: 'vfio-user', fields: { fd: 'string', request: 'iommufd-request', as: 'string?', '*': 'any' } },
  exit: { actor: 'vfio-user', fields: {} },
  bind: { actor: 'machine', fields: { device: 'string', driver: 'driver' } },
  'eeh-inject': { actor: 'machine', fields: { device: 'string' } },
  'eeh-recover': { actor: 'machine', fields: { device: 'string' } },
  'hotplug-remove': { actor: 'machine', fields: { device: 'string' } },
  'hotplug-add': { actor: 'machine', fields: { device: 'string' } },
};

export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, intAsBigInt: false });
  const at = (n: Node | null | undefined) => {
    const r = n?.range;
    if (!r) return `${file}`;
    const p = lc.linePos(r[0]);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const p = e.linePos?.[0];
    throw new ScenarioError(`${file}:${p?.line ?? 1}:${p?.col ?? 1}: YAML syntax: ${e.message.split('\n')[0]}`);
  }
  const fail = (n: Node | null | undefined, msg: string): never => {
    throw new ScenarioError(`${at(n)}: ${msg}`);
  };
  const root = doc.contents as Node | null;
  if (!isMap(root)) fail(root, 'expected a mapping with "machine", "actors" and "steps"');
  const get = (path: (string | number)[]) => doc.getIn(path, true) as Node | undefined;
  const js = doc.toJS() as Record<string, unknown>;
  for (const k of Object.keys(js))
    if (!['name', 'machine', 'violations', 'actors', 'steps'].includes(k))
      fail(get([k]) ?? root, `unknown top-level key "${k}" (expected name, machine, violations, actors, steps)`);
  const violations = (js.violations ?? []) as unknown[];
  if (!Array.isArray(violations)) fail(get(['violations']), 'violations: expected a list of invariant names');
  for (const [i, v] of violations.entries())
    if (typeof v !== 'string' || !(v in INVARIANTS))
      fail(get(['violations', i]), `violations[${i}]: unknown invariant ${JSON.stringify(v)}; known: ${Object.keys(INVARIANTS).join(', ')}`);

  const mj = (js.machine ?? {}) as Record<string, unknown>;
  if (typeof mj !== 'object' || Array.isArray(mj)) fail(get(['machine']), 'machine: expected a mapping');
  const preset = mj.preset ?? 'powernv9';
  if (!isPresetName(String(preset)))
    fail(get(['machine', 'preset']), `machine.preset: expected powernv8, powernv9, powernv10 or pseries, got ${JSON.stringify(preset)}`);
  const pageSize = mj.pageSize ?? '64k';
  if (pageSize !== '4k' && pageSize !== '64k') fail(get(['machine', 'pageSize']), `machine.pageSize: expected 4k or 64k, got ${JSON.stringify(pageSize)}`);
  const isPseries = PRESETS[preset as PresetName].platform === 'pseries';
  const topology = mj.topology ?? (isPseries ? 'qemu' : 'tour');
  if (topology !== 'qemu' && topology !== 'tour')
    fail(get(['machine', 'topology']), `machine.topology: expected qemu or tour, got ${JSON.stringify(topology)}`);
  const iommufd = mj.iommufd;
  if (iommufd !== undefined && iommufd !== 'ppc64' && iommufd !== 'rfc-2026')
    fail(get(['machine', 'iommufd']), `machine.iommufd: expected ppc64 or rfc-2026, got ${JSON.stringify(iommufd)}`);
  if (iommufd !== undefined && isPseries) fail(get(['machine', 'iommufd']), 'machine.iommufd: tcelab models IOMMUFD on PowerNV machines only');
  const unsafe = mj.allowUnsafeInterrupts;
  if (unsafe !== undefined && typeof unsafe !== 'boolean')
    fail(get(['machine', 'allowUnsafeInterrupts']), `machine.allowUnsafeInterrupts: expected true or false, got ${JSON.stringify(unsafe)}`);
  const vc = mj.vfioContainer;
  if (vc !== undefined && vc !== 'legacy' && vc !== 'iommufd')
    fail(get(['machine', 'vfioContainer']), `machine.vfioContainer: expected legacy or iommufd, got ${JSON.stringify(vc)}`);
  if (vc === 'iommufd' && iommufd === undefined)
    fail(get(['machine', 'vfioContainer']), 'machine.vfioContainer: iommufd needs machine.iommufd (ppc64 or rfc-2026)');
  if (isPseries && topology !== 'qemu') fail(get(['machine', 'topology']), 'machine.topology: pseries has only the recorded machine (qemu)');
  for (const k of Object.keys(mj))
    if (!MACHINE_KEYS.includes(k)) fail(get(['machine', k]), `machine.${k}: unknown machine option (expected ${MACHINE_KEYS.join(', ')})`);
  const quirks: Partial<Quirks> = {};
  for (const [q, v] of Object.entries((mj.quirks ?? {}) as Record<string, unknown>)) {
    if (!isQuirkName(q)) fail(get(['machine', 'quirks', q]), `machine.quirks: unknown quirk "${q}"`);
    if (typeof v !== 'boolean') fail(get(['machine', 'quirks', q]), `machine.quirks.${q}: expected true or false, got ${JSON.stringify(v)}`);
    quirks[q as keyof Quirks] = v as boolean;
  }
  for (const [key, on] of [
    ['quirk', true],
    ['fix', false],
  ] as const) {
    const list = mj[key] ?? [];
    if (!Array.isArray(list)) fail(get(['machine', key]), `machine.${key}: expected a list of quirk names`);
    for (const [i, q] of (list as unknown[]).entries()) {
      if (typeof q !== 'string' || !isQuirkName(q))
        fail(get(['machine', key, i]), `machine.${key}[${i}]: unknown quirk ${JSON.stringify(q)}; known: ${Object.keys(QUIRKS).join(', ')}`);
      quirks[q as QuirkName] = on;
    }
  }
  const machine: ScenarioMachine = { preset: preset as PresetName, pageSize: pageSize as '4k' | '64k', topology: topology as 'qemu' | 'tour', quirks };
  if (iommufd) machine.iommufd = iommufd as 'ppc64' | 'rfc-2026';
  if (unsafe) machine.allowUnsafeInterrupts = true;
  if (vc === 'iommufd') machine.vfioContainer = 'iommufd';
  const pseriesOnly = (k: string) => {
    if (!isPseries) fail(get(['machine', k]), `machine.${k}: only for preset pseries (this machine is ${preset})`);
  };
  const size = (k: 'ram' | 'maxmem'): number => {
    const v = mj[k];
    const n = typeof v === 'number' ? v : typeof v === 'string' ? tryQemuSize(v) : null;
    if (n === null || !Number.isSafeInteger(n) || n <= 0)
      fail(get(['machine', k]), `machine.${k}: expected a size such as 2G or 4096M, got ${JSON.stringify(v)}`);
    return n!;
  };
  const onOff = (k: 'ddw' | 'multiTce'): boolean => {
    const v = mj[k];
    if (v === 'on' || v === true) return true;
    if (v === 'off' || v === false) return false;
    return fail(get(['machine', k]), `machine.${k}: expected on or off, got ${JSON.stringify(v)}`);
  };
  if (mj.ram !== undefined) machine.ramBytes = size('ram');
  if (mj.maxmem !== undefined) {
    pseriesOnly('maxmem');
    machine.maxmemBytes = size('maxmem');
    if (machine.maxmemBytes < (machine.ramBytes ?? 2 ** 31))
      fail(get(['machine', 'maxmem']), `machine.maxmem: ${JSON.stringify(mj.maxmem)} is below the machine's RAM (${machine.ramBytes ?? 2 ** 31} bytes)`);
  }
  if (mj.ddw !== undefined) {
    pseriesOnly('ddw');
    machine.ddw = onOff('ddw');
  }
  if (mj.multiTce !== undefined) {
    pseriesOnly('multiTce');
    machine.multiTce = onOff('multiTce');
  }
  if (mj.hypervisor !== undefined) {
    pseriesOnly('hypervisor');
    if (typeof mj.hypervisor !== 'string' || !(mj.hypervisor in HYPERVISOR_PROFILES))
      fail(get(['machine', 'hypervisor']), `machine.hypervisor: expected ${Object.keys(HYPERVISOR_PROFILES).join(', ')}, got ${JSON.stringify(mj.hypervisor)}`);
    machine.hypervisor = mj.hypervisor as string;
  }

  const actors: Record<string, Actor> = {};
  for (const [name, a] of Object.entries((js.actors ?? {}) as Record<string, Record<string, unknown>>)) {
    const n = get(['actors', name]);
    if (typeof a !== 'object' || a === null) fail(n, `actors.${name}: expected a mapping with "kind"`);
    if (a.kind === 'driver') {
      if (typeof a.device !== 'string') fail(get(['actors', name, 'device']) ?? n, `actors.${name}.device: expected a PCI address like "0003:01:00.0"`);
      actors[name] = { kind: 'driver', device: a.device as string };
    } else if (a.kind === 'vfio-user') {
      const mem = (a.memory ?? []) as Record<string, unknown>[];
      if (!Array.isArray(mem)) fail(get(['actors', name, 'memory']), `actors.${name}.memory: expected a list of {at, size, kind}`);
      actors[name] = {
        kind: 'vfio-user',
        memory: mem.map((r, i) => {
          const rn = get(['actors', name, 'memory', i]);
          const kind = r.kind ?? 'anon';
          if (kind !== 'anon' && kind !== 'readonly') fail(rn, `actors.${name}.memory[${i}].kind: expected anon or readonly, got ${JSON.stringify(kind)}`);
          return {
            at: u64(r.at, rn, `actors.${name}.memory[${i}].at`, fail),
            size: u64(r.size, rn, `actors.${name}.memory[${i}].size`, fail),
            kind: kind as 'anon' | 'readonly',
          };
        }),
      };
    } else fail(get(['actors', name, 'kind']) ?? n, `actors.${name}.kind: expected driver or vfio-user, got ${JSON.stringify(a.kind)}`);
  }

  const stepsNode = get(['steps']);
  if (!isSeq(stepsNode)) fail(stepsNode ?? root, 'steps: expected a list');
  const steps = ((js.steps ?? []) as Record<string, unknown>[]).map((s, i) => {
    const sn = get(['steps', i]);
    if (typeof s !== 'object' || s === null || Array.isArray(s)) fail(sn, `steps[${i}]: expected a mapping with "op"`);
    const op = s.op;
    if (typeof op !== 'string' || !(op in OPS))
      fail(get(['steps', i, 'op']) ?? sn, `steps[${i}].op: unknown op ${JSON.stringify(op)}; expected one of ${Object.keys(OPS).join(', ')}`);
    const spec = OPS[op as string]!;
    const actor = (s.actor ?? null) as string | null;
    if (spec.actor === 'machine') {
      if (actor !== null) fail(get(['steps', i, 'actor']), `steps[${i}]: ${op} is a machine step and takes no actor`);
    } else {
      if (typeof actor !== 'string' || !actors[actor])
        fail(
          get(['steps', i, 'actor']) ?? sn,
          `steps[${i}].actor: expected one of the actors (${Object.keys(actors).join(', ') || 'none declared'}), got ${JSON.stringify(actor)}`,
        );
      if (actors[actor!]!.kind !== spec.actor)
        fail(get(['steps', i, 'actor']), `steps[${i}]: ${op} needs a ${spec.actor} actor, "${actor}" is a ${actors[actor!]!.kind}`);
    }
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(s)) {
      if (k === 'op' || k === 'actor' || k === 'expect') continue;
      const type = spec.fields[k] ?? spec.fields['*'];
      if (!type) fail(get(['steps', i, k]), `steps[${i}].${k}: ${op} has no field "${k}" (fields: ${Object.keys(spec.fields).join(', ') || 'none'})`);
      fields[k] = checkType(v, type!, get(['steps', i, k]), `steps[${i}].${k}`, fail);
    }
    for (const [k, t] of Object.entries(spec.fields)) {
      if (k !== '*' && !t.endsWith('?') && !(k in s)) fail(sn, `steps[${i}]: ${op} needs field "${k}"`);
    }
    const e = s.expect as Record<string, unknown> | undefined;
    if (e !== undefined && (typeof e !== 'object' || e === null)) fail(get(['steps', i, 'expect']), `steps[${i}].expect: expected a mapping`);
    for (const k of Object.keys(e ?? {})) {
      if (!EXPECT_KEYS.includes(k)) fail(get(['steps', i, 'expect', k]), `steps[${i}].expect.${k}: unknown expectation (${EXPECT_KEYS.join(', ')})`);
    }
    const count = (e?.count ?? {}) as Record<string, unknown>;
    if (typeof count !== 'object' || Array.isArray(count))
      fail(get(['steps', i, 'expect', 'count']), `steps[${i}].expect.count: expected a mapping of event kind → number`);
    for (const [k, v] of Object.entries(count)) {
      const cn = get(['steps', i, 'expect', 'count', k]);
      if (!/^[a-z]+\.[a-z-]+(:[A-Za-z0-9_,.-]+)?$/.test(k))
        fail(cn, `steps[${i}].expect.count: "${k}" is not "layer.kind" or "layer.kind:call" (e.g. firmware.hcall:H_PUT_TCE_INDIRECT)`);
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
        fail(cn, `steps[${i}].expect.count.${k}: expected a non-negative integer, got ${JSON.stringify(v)}`);
    }
    const line = sn?.range ? lc.linePos(sn.range[0]).line : 0;
    return { where: `${file}:${line}`, actor, op: op as string, fields, expect: (e ?? null) as Expect | null };
  });
  return { name: String(js.name ?? file), machine, violations: violations as InvariantName[], actors, steps };
}

const MACHINE_KEYS = [
  'preset',
  'pageSize',
  'topology',
  'quirks',
  'quirk',
  'fix',
  'ram',
  'maxmem',
  'ddw',
  'multiTce',
  'hypervisor',
  'iommufd',
  'allowUnsafeInterrupts',
  'vfioContainer',
];

function tryQemuSize(s: string): number | null {
  try {
    return qemuSize(s);
  } catch {
    return null;
  }
}

type Fail = (n: Node | null | undefined, msg: string) => never;

function u64(v: unknown, n: Node | undefined, path: string, fail: Fail): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(v)) {
    const b = BigInt(v);
    if (b < 1n << 64n) return b;
  }
  return fail(n, `${path}: expected an unsigned 64-bit integer (decimal or 0x hex), got ${JSON.stringify(v)}`);
}

function checkType(v: unknown, type: string, n: Node | undefined, path: string, fail: Fail): unknown {
  const t = type.replace(/\?$/, '');
  switch (t) {
    case 'string':
      if (typeof v !== 'string') fail(n, `${path}: expected a string, got ${JSON.stringify(v)}`);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(n, `${path}: expected a non-negative integer, got ${JSON.stringify(v)}`);
      return v;
    case 'u64':
      return u64(v, n, path, fail);
    case 'dir':
      if (v !== 'to-device' && v !== 'from-device' && v !== 'bidirectional')
        fail(n, `${path}: expected to-device, from-device or bidirectional, got ${JSON.stringify(v)}`);
      return v;
    case 'driver':
      if (v !== 'vfio-pci' && v !== 'kernel') fail(n, `${path}: expected vfio-pci or kernel, got ${JSON.stringify(v)}`);
      return v;
    case 'ioctl':
      if (typeof v !== 'string' || !IOCTLS.has(v)) fail(n, `${path}: expected a VFIO ioctl name such as VFIO_IOMMU_MAP_DMA, got ${JSON.stringify(v)}`);
      return v;
    case 'iommufd-request':
      if (typeof v !== 'string' || !(v in IOMMUFD_STEP_REQUESTS))
        fail(n, `${path}: expected an IOMMUFD request such as IOMMU_IOAS_MAP or VFIO_DEVICE_BIND_IOMMUFD, got ${JSON.stringify(v)}`);
      return v;
    default:
      return v;
  }
}
