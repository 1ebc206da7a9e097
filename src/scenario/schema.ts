/**
 * Scenario files (YAML): the machine, the actors and the steps, validated with errors that name
 * the file, line and column and what was expected.
 */
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { isQuirkName, type Quirks } from '../kernel/quirks.js';
import { isPresetName, type PresetName } from '../machine/presets.js';
import { VFIO_IOCTL_NAMES } from '../kernel/include/uapi/linux/vfio.js';

export class ScenarioError extends Error {}

export type Actor = { kind: 'driver'; device: string } | { kind: 'vfio-user'; memory: { at: bigint; size: bigint; kind: 'anon' | 'readonly' }[] };

export interface Expect {
  ret?: number;
  errno?: string;
  ok?: boolean;
  data?: string;
  frozen?: boolean;
  events?: string[];
}

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
  machine: { preset: PresetName; pageSize: '4k' | '64k'; topology: 'qemu' | 'tour'; quirks: Partial<Quirks>; ramBytes?: number };
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
    if (!['name', 'machine', 'actors', 'steps'].includes(k)) fail(get([k]) ?? root, `unknown top-level key "${k}" (expected name, machine, actors, steps)`);

  const mj = (js.machine ?? {}) as Record<string, unknown>;
  if (typeof mj !== 'object' || Array.isArray(mj)) fail(get(['machine']), 'machine: expected a mapping');
  const preset = mj.preset ?? 'powernv9';
  if (!isPresetName(String(preset)))
    fail(get(['machine', 'preset']), `machine.preset: expected powernv8, powernv9, powernv10 or pseries, got ${JSON.stringify(preset)}`);
  const pageSize = mj.pageSize ?? '64k';
  if (pageSize !== '4k' && pageSize !== '64k') fail(get(['machine', 'pageSize']), `machine.pageSize: expected 4k or 64k, got ${JSON.stringify(pageSize)}`);
  const topology = mj.topology ?? 'tour';
  if (topology !== 'qemu' && topology !== 'tour')
    fail(get(['machine', 'topology']), `machine.topology: expected qemu or tour, got ${JSON.stringify(topology)}`);
  let ramBytes: number | undefined;
  if (mj.ram !== undefined) {
    const m = /^(\d+)([MGT])$/.exec(String(mj.ram));
    ramBytes = m ? Number(m[1]) * 2 ** { M: 20, G: 30, T: 40 }[m[2] as 'M' | 'G' | 'T'] : Number.NaN;
    if (!(ramBytes >= 2 ** 30 && ramBytes <= 2 ** 40))
      fail(get(['machine', 'ram']), `machine.ram: expected a size from 1G to 1T such as 2G or 512G, got ${JSON.stringify(mj.ram)}`);
  }
  const quirks: Partial<Quirks> = {};
  for (const [q, v] of Object.entries((mj.quirks ?? {}) as Record<string, unknown>)) {
    if (!isQuirkName(q)) fail(get(['machine', 'quirks', q]), `machine.quirks: unknown quirk "${q}"`);
    if (typeof v !== 'boolean') fail(get(['machine', 'quirks', q]), `machine.quirks.${q}: expected true or false, got ${JSON.stringify(v)}`);
    quirks[q as keyof Quirks] = v as boolean;
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
      if (!['ret', 'errno', 'ok', 'data', 'frozen', 'events'].includes(k))
        fail(get(['steps', i, 'expect', k]), `steps[${i}].expect.${k}: unknown expectation (ret, errno, ok, data, frozen, events)`);
    }
    const line = sn?.range ? lc.linePos(sn.range[0]).line : 0;
    return { where: `${file}:${line}`, actor, op: op as string, fields, expect: (e ?? null) as Expect | null };
  });
  return {
    name: String(js.name ?? file),
    machine: {
      preset: preset as PresetName,
      pageSize: pageSize as '4k' | '64k',
      topology: topology as 'qemu' | 'tour',
      quirks,
      ...(ramBytes ? { ramBytes } : {}),
    },
    actors,
    steps,
  };
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
    default:
      return v;
  }
}
