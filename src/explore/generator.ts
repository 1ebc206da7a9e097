/**
 * Random interleavings of operations from several actors — kernel drivers doing DMA, two VFIO
 * user processes, binding changes, hotplug and EEH — deterministic for a seed. Steps are written in the
 * scenario vocabulary, so a sequence that breaks an invariant is directly a runnable scenario.
 */
import type { Actor, Scenario, Step } from '../scenario/schema.js';

/** mulberry32: a small deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What exploration runs on: PowerNV POWER9 with the tour topology, or the recorded pSeries LPAR. */
export type ExploreTarget = 'powernv9' | 'pseries';

interface Topo {
  devices: string[];
  /** The devices of each IOMMU group. */
  groups: string[][];
  /** TCE_CREATE geometries worth trying. */
  pageShifts: number[];
  windowSizes: bigint[];
}

const TOPOS: Record<ExploreTarget, Topo> = {
  powernv9: {
    devices: ['0000:01:00.0', '0001:01:00.0', '0002:02:00.0', '0002:02:00.1', '0003:01:00.0'],
    groups: [['0000:01:00.0'], ['0001:01:00.0'], ['0002:02:00.0', '0002:02:00.1'], ['0003:01:00.0']],
    pageShifts: [12, 16],
    windowSizes: [1n << 30n, 1n << 32n, 1n << 40n],
  },
  // The recorded LPAR: one PE per PHB. Windows stay ≤ 2^20 TCEs: removing a pSeries window
  // exchanges every entry by hcall, 2^29 of them for a 2^28-TCE window.
  pseries: {
    devices: ['0000:00:01.0', '0001:00:01.0'],
    groups: [['0000:00:01.0'], ['0001:00:01.0']],
    pageShifts: [12, 16, 24],
    windowSizes: [1n << 28n, 1n << 30n, 1n << 32n],
  },
};
const USERS = ['qemu', 'dpdk'];
/** The IOMMUFD user (PowerNV runs tcelab's PPC64 IOMMUFD driver beside the legacy containers). */
const VMM = 'vmm';
const MEM = 0x10000000n;

export function exploreActors(target: ExploreTarget): Record<string, Actor> {
  const users = target === 'pseries' ? USERS : [...USERS, VMM];
  return {
    ...Object.fromEntries(TOPOS[target].devices.map((d, i) => [`drv${i}`, { kind: 'driver', device: d } as Actor])),
    ...Object.fromEntries(
      users.map((u) => [
        u,
        {
          kind: 'vfio-user',
          memory: [
            { at: MEM, size: 0x1000000n, kind: 'anon' },
            { at: 0x20000000n, size: 0x100000n, kind: 'readonly' },
          ],
        } as Actor,
      ]),
    ),
  };
}

/**
 * What one run may touch. Swarm testing: most runs focus on one group, one user and that group's
 * devices, which makes long chains of related calls likely; some runs use everything.
 */
interface Swarm {
  groups: number[];
  users: string[];
  devices: string[];
  topo: Topo;
}

type Gen = (r: () => number, w: Swarm) => Omit<Step, 'where' | 'expect'>;

/** A generator's weight, the generator, and whether it needs what only PowerNV models (device DMA engines, EEH, hotplug). */
type WeightedGen = [number, Gen] | [number, Gen, 'powernv-only'];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const io = (actor: string, fd: string, request: string, fields: Record<string, unknown> = {}) => ({ actor, op: 'ioctl', fields: { fd, request, ...fields } });
const drv = (r: () => number, w: Swarm) => `drv${w.topo.devices.indexOf(pick(r, w.devices))}`;

/** A device cdev of the swarm (the prologue of an IOMMUFD run opens them as cd0, cd1, …). */
const fd = (r: () => number, w: Swarm) => `cd${Math.floor(r() * w.devices.length)}`;
/** Object ids after the prologue's devices: its IOAS first, then whatever the run allocates. */
const oid = (r: () => number, w: Swarm, spread: number) => w.devices.length + 1 + Math.floor(r() * spread);
const ufd = (request: string, fields: Record<string, unknown>, on = 'ifd') => ({ actor: VMM, op: 'iommufd', fields: { fd: on, request, ...fields } });

/** The IOMMUFD user: /dev/iommu, device cdevs, IOAS maps, HWPTs, attach and detach, by small ids. */
const IOMMUFD_GENS: WeightedGen[] = [
  [2, () => ({ actor: VMM, op: 'open', fields: { path: '/dev/iommu', as: 'ifd' } }), 'powernv-only'],
  [
    1,
    (r, w) => {
      const n = fd(r, w);
      return { actor: VMM, op: 'open', fields: { path: `/dev/vfio/devices/vfio${n.slice(2)}`, as: n } };
    },
    'powernv-only',
  ],
  [1, (r, w) => ufd('VFIO_DEVICE_BIND_IOMMUFD', { iommufd: 'ifd' }, fd(r, w)), 'powernv-only'],
  [2, () => ufd('IOMMU_IOAS_ALLOC', {}), 'powernv-only'],
  [
    4,
    (r, w) =>
      ufd('IOMMU_IOAS_MAP', {
        ioas_id: oid(r, w, 2),
        flags: pick(r, [7, 7, 3, 5, 6]),
        user_va: MEM + BigInt(pick(r, [0, 0x10000, 0x200000])),
        length: BigInt(pick(r, [0x10000, 0x100000])),
        iova: pick(r, [0x100000n, 0x10000000n, 1n << 59n]),
      }),
    'powernv-only',
  ],
  [2, (r, w) => ufd('IOMMU_IOAS_UNMAP', { ioas_id: oid(r, w, 2), iova: 0n, length: (1n << 64n) - 1n }), 'powernv-only'],
  [
    2,
    (r, w) =>
      ufd('IOMMU_HWPT_ALLOC', {
        dev_id: 1 + Math.floor(r() * w.devices.length),
        pt_id: oid(r, w, 2),
        ...(r() < 0.5 ? { ppc64: { windows: ['dma32', 'ddw'], page_shift: 16, window_size: 1n << 32n, levels: 1 } } : {}),
      }),
    'powernv-only',
  ],
  [3, (r, w) => ufd('VFIO_DEVICE_ATTACH_IOMMUFD_PT', { pt_id: oid(r, w, 4) }, fd(r, w)), 'powernv-only'],
  [1, (r, w) => ufd('VFIO_DEVICE_DETACH_IOMMUFD_PT', {}, fd(r, w)), 'powernv-only'],
  [1, (r, w) => ufd('IOMMU_DESTROY', { id: oid(r, w, 4) }), 'powernv-only'],
  [1, (r, w) => ({ actor: VMM, op: 'close', fields: { fd: pick(r, ['ifd', fd(r, w)]) } }), 'powernv-only'],
  [1, () => ({ actor: VMM, op: 'exit', fields: {} }), 'powernv-only'],
];

const GENS: WeightedGen[] = [
  [3, (r, w) => ({ actor: null, op: 'bind', fields: { device: pick(r, w.devices), driver: pick(r, ['vfio-pci', 'kernel']) } })],
  [1, (r, w) => ({ actor: null, op: 'eeh-inject', fields: { device: pick(r, w.devices) } }), 'powernv-only'],
  [1, (r, w) => ({ actor: null, op: 'eeh-recover', fields: { device: pick(r, w.devices) } }), 'powernv-only'],
  [1, (r, w) => ({ actor: null, op: pick(r, ['hotplug-remove', 'hotplug-add']), fields: { device: pick(r, w.devices) } }), 'powernv-only'],
  [2, (r, w) => ({ actor: pick(r, w.users), op: 'open', fields: { path: '/dev/vfio/vfio', as: 'c' } })],
  [
    3,
    (r, w) => {
      const g = pick(r, w.groups);
      return { actor: pick(r, w.users), op: 'open', fields: { path: `/dev/vfio/${g}`, as: `g${g}` } };
    },
  ],
  [4, (r, w) => io(pick(r, w.users), `g${pick(r, w.groups)}`, 'VFIO_GROUP_SET_CONTAINER', { container: 'c' })],
  [3, (r, w) => io(pick(r, w.users), 'c', 'VFIO_SET_IOMMU', { arg: pick(r, [7, 7, 2]) })],
  [1, (r, w) => io(pick(r, w.users), 'c', 'VFIO_IOMMU_ENABLE')],
  [
    3,
    (r, w) =>
      io(pick(r, w.users), 'c', 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY', {
        vaddr: MEM + BigInt(pick(r, [0, 0x400000])),
        size: BigInt(pick(r, [0x400000, 0x800000])),
      }),
  ],
  [
    1,
    (r, w) =>
      io(pick(r, w.users), 'c', 'VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY', {
        vaddr: MEM + BigInt(pick(r, [0, 0x400000])),
        size: BigInt(pick(r, [0x400000, 0x800000])),
      }),
  ],
  [
    5,
    (r, w) =>
      io(pick(r, w.users), 'c', 'VFIO_IOMMU_MAP_DMA', {
        flags: pick(r, [1, 2, 3]),
        vaddr: MEM + BigInt(pick(r, [0, 0x10000, 0x200000])),
        iova: pick(r, [0n, 0x10000n, 0x100000n, 1n << 59n]),
        size: BigInt(pick(r, [0x10000, 0x20000, 0x100000])),
      }),
  ],
  [
    3,
    (r, w) =>
      io(pick(r, w.users), 'c', 'VFIO_IOMMU_UNMAP_DMA', {
        iova: pick(r, [0n, 0x10000n, 0x100000n, 1n << 59n]),
        size: BigInt(pick(r, [0x10000, 0x100000, 0x80000000])),
      }),
  ],
  [
    2,
    (r, w) =>
      io(pick(r, w.users), 'c', 'VFIO_IOMMU_SPAPR_TCE_CREATE', {
        page_shift: pick(r, w.topo.pageShifts),
        window_size: pick(r, w.topo.windowSizes),
        levels: pick(r, [1, 2]),
      }),
  ],
  [1, (r, w) => io(pick(r, w.users), 'c', 'VFIO_IOMMU_SPAPR_TCE_REMOVE', { start_addr: pick(r, [0n, 1n << 59n]) })],
  [1, (r, w) => io(pick(r, w.users), `g${pick(r, w.groups)}`, 'VFIO_GROUP_UNSET_CONTAINER')],
  [1, (r, w) => ({ actor: pick(r, w.users), op: 'close', fields: { fd: pick(r, ['c', ...w.groups.map((g) => `g${g}`)]) } })],
  [1, (r, w) => ({ actor: pick(r, w.users), op: 'exit', fields: {} })],
  [2, (r, w) => ({ actor: drv(r, w), op: 'dma-set-mask', fields: { bits: pick(r, [32, 64]) } })],
  [
    3,
    (r, w) => ({
      actor: drv(r, w),
      op: 'dma-map',
      fields: { as: pick(r, ['a', 'b']), size: pick(r, [4096, 65536]), dir: pick(r, ['to-device', 'from-device', 'bidirectional']) },
    }),
  ],
  [1, (r, w) => ({ actor: drv(r, w), op: 'dma-unmap', fields: { mapping: pick(r, ['a', 'b']) } })],
  [
    3,
    (r, w) => ({
      actor: drv(r, w),
      op: 'device-read',
      fields: r() < 0.7 ? { mapping: pick(r, ['a', 'b']), len: 64 } : { bus: pick(r, [0n, 0x10000n, 1n << 59n]), len: 64 },
    }),
    'powernv-only',
  ],
  [2, (r, w) => ({ actor: drv(r, w), op: 'device-write', fields: { mapping: pick(r, ['a', 'b']), data: 'tcelab' } }), 'powernv-only'],
  ...IOMMUFD_GENS,
];

function swarm(r: () => number, topo: Topo): Swarm {
  if (r() < 0.2) return { groups: topo.groups.map((_, i) => i), users: USERS, devices: topo.devices, topo };
  const g = Math.floor(r() * topo.groups.length);
  return { groups: [g], users: [pick(r, USERS)], devices: topo.groups[g]!, topo };
}

/** The generators a target can run. */
function gensFor(target: ExploreTarget): WeightedGen[] {
  return target === 'pseries' ? GENS.filter((g) => g[2] !== 'powernv-only') : GENS;
}

export function generateSteps(seed: number, length: number, target: ExploreTarget = 'powernv9', container: VfioContainerKind = 'legacy'): Step[] {
  const r = prng(seed);
  const w = swarm(r, TOPOS[target]);
  const gens = gensFor(target);
  const total = gens.reduce((s, [weight]) => s + weight, 0);
  const steps: Step[] = [];
  // Some runs start with a user's sPAPR v2 container set up on one group of the swarm, its memory
  // preregistered: the rest maps, creates and unmaps (most runs whose /dev/vfio/vfio IOMMUFD
  // provides; without it a swarm seldom gets a container that far on its own).
  if (r() < (container === 'iommufd' ? 0.6 : 0.3)) {
    const user = pick(r, w.users);
    const g = pick(r, w.groups);
    const pro: Omit<Step, 'where' | 'expect'>[] = [
      ...w.topo.groups[g]!.map((d) => ({ actor: null, op: 'bind', fields: { device: d, driver: 'vfio-pci' } })),
      { actor: user, op: 'open', fields: { path: '/dev/vfio/vfio', as: 'c' } },
      { actor: user, op: 'open', fields: { path: `/dev/vfio/${g}`, as: `g${g}` } },
      io(user, `g${g}`, 'VFIO_GROUP_SET_CONTAINER', { container: 'c' }),
      io(user, 'c', 'VFIO_SET_IOMMU', { arg: 7 }),
      io(user, 'c', 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY', { vaddr: MEM, size: 0x800000n }),
    ];
    for (const p of pro) steps.push({ ...p, where: `generated:${steps.length + 1}`, expect: null });
  }
  // A third of the PowerNV runs start with the IOMMUFD user holding the swarm's devices: bound
  // to vfio-pci (their cdevs numbered in that order), opened and bound to one iommufd.
  else if (target === 'powernv9' && r() < 0.35) {
    const pro: Omit<Step, 'where' | 'expect'>[] = [
      ...w.devices.map((d) => ({ actor: null, op: 'bind', fields: { device: d, driver: 'vfio-pci' } })),
      { actor: VMM, op: 'open', fields: { path: '/dev/iommu', as: 'ifd' } },
      ...w.devices.flatMap((_, i) => [
        { actor: VMM, op: 'open', fields: { path: `/dev/vfio/devices/vfio${i}`, as: `cd${i}` } },
        ufd('VFIO_DEVICE_BIND_IOMMUFD', { iommufd: 'ifd' }, `cd${i}`),
      ]),
      ufd('IOMMU_IOAS_ALLOC', {}),
    ];
    for (const p of pro) steps.push({ ...p, where: `generated:${steps.length + 1}`, expect: null });
  }
  for (let i = steps.length; i < length; i++) {
    let x = r() * total;
    let gen = gens[0]![1];
    for (const [weight, g] of gens) {
      if (x < weight) {
        gen = g;
        break;
      }
      x -= weight;
    }
    steps.push({ ...gen(r, w), where: `generated:${i + 1}`, expect: null });
  }
  return steps;
}

/**
 * Who provides /dev/vfio/vfio in a run: in a quarter of the PowerNV runs IOMMUFD does, so the
 * VFIO users' sPAPR containers live in IOMMUFD objects beside the IOMMUFD user's own.
 */
export function exploreContainer(seed: number, target: ExploreTarget): VfioContainerKind {
  return target === 'powernv9' && seed % 4 === 3 ? 'iommufd' : 'legacy';
}

export type VfioContainerKind = 'legacy' | 'iommufd';

export function exploreScenario(
  steps: Step[],
  quirks: Scenario['machine']['quirks'],
  target: ExploreTarget = 'powernv9',
  container: VfioContainerKind = 'legacy',
): Scenario {
  const topology = target === 'pseries' ? 'qemu' : 'tour';
  const iommufd =
    target === 'pseries' ? {} : { iommufd: 'ppc64' as const, allowUnsafeInterrupts: true, ...(container === 'iommufd' ? { vfioContainer: container } : {}) };
  return { name: 'explore', machine: { preset: target, pageSize: '64k', topology, quirks, ...iommufd }, violations: [], actors: exploreActors(target), steps };
}
