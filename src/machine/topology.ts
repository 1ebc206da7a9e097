/**
 * Topologies: which PHBs exist and which PCI functions sit behind them. The `qemu` preset mirrors
 * the machines the real-kernel recordings come from; `tour` adds a bus PE with two functions and
 * a device that uses both 32-bit and 64-bit DMA, like the MPT3 SAS adapter of the 2017 bug.
 */
import type { PciFunctionSpec } from '../hw/pci-device.js';

export interface Topology {
  /** Number of PHBs (QEMU powernv8/9/10 create 6 when -nodefaults is not given... 3 on powernv8). */
  phbs: number;
  devices: PciFunctionSpec[];
}

const E1000E = (domain: number, bus = 1, dev = 0): PciFunctionSpec => ({
  addr: { domain, bus, dev, fn: 0 },
  vendor: 0x8086,
  device: 0x10d3,
  model: 'e1000e',
  kernelDriver: 'e1000e',
  dmaMask: (1n << 64n) - 1n,
  m64: false,
  bars: [
    { index: 0, size: 0x20000, kind: 'mem32' },
    { index: 1, size: 0x20000, kind: 'mem32' },
    { index: 2, size: 0x20, kind: 'io' },
    { index: 3, size: 0x4000, kind: 'mem32' },
  ],
  msixBar: 3,
  msixVectors: 5,
  msiVectors: 1,
  refusesD3hot: true,
});

const VIRTIO_NET = (domain: number, bus = 1, dev = 0): PciFunctionSpec => ({
  addr: { domain, bus, dev, fn: 0 },
  vendor: 0x1af4,
  device: 0x1041,
  model: 'virtio-net',
  kernelDriver: 'virtio-pci',
  dmaMask: (1n << 64n) - 1n,
  m64: true,
  bars: [
    { index: 1, size: 0x1000, kind: 'mem32' },
    { index: 4, size: 0x4000, kind: 'mem64' },
  ],
  msixBar: 1,
  msixVectors: 3,
  msiVectors: 0,
  refusesD3hot: true,
});

/** The recorded machine: e1000e at 0000:01:00.0 on PHB 0, virtio-net at 0001:01:00.0 on PHB 1. */
export function qemuTopology(phbs: number): Topology {
  return { phbs, devices: [E1000E(0), VIRTIO_NET(1)] };
}

/**
 * The recorded pseries machine: one conventional PCI bus per spapr PHB, the e1000e at 0000:00:01.0
 * and the transitional virtio-net (0x1000) at 0001:00:01.0. Power management never refuses D3hot there.
 */
export function pseriesTopology(): Topology {
  const onSpaprBus = (s: PciFunctionSpec): PciFunctionSpec => ({ ...s, m64: false, refusesD3hot: false });
  return { phbs: 2, devices: [onSpaprBus(E1000E(0, 0, 1)), onSpaprBus({ ...VIRTIO_NET(1, 0, 1), device: 0x1000 })] };
}

/**
 * The tour: the recorded devices, plus on PHB 2 a PCIe-to-PCI bridge with two functions behind
 * it (one bus-all PE) and an MPT3-like SAS adapter that does 32-bit and 64-bit DMA.
 */
export function tourTopology(phbs: number): Topology {
  const fn = (bus: number, f: number, model: string, device: number): PciFunctionSpec => ({
    addr: { domain: 2, bus, dev: 0, fn: f },
    vendor: 0x8086,
    device,
    model,
    dmaMask: (1n << 32n) - 1n,
    m64: false,
    bars: [{ index: 0, size: 0x10000, kind: 'mem32' }],
  });
  return {
    phbs,
    devices: [
      E1000E(0),
      VIRTIO_NET(1),
      { ...fn(1, 0, 'pcie-pci-bridge', 0x244e), isBridge: true, dmaMask: (1n << 64n) - 1n, bars: [] },
      fn(2, 0, 'legacy-nic-a', 0x100e),
      fn(2, 1, 'legacy-nic-b', 0x100e),
      {
        // PHB 3 where the machine has one (POWER8 has three PHBs: then a second bus of PHB 0).
        addr: phbs > 3 ? { domain: 3, bus: 1, dev: 0, fn: 0 } : { domain: 0, bus: 2, dev: 0, fn: 0 },
        vendor: 0x1000,
        device: 0x0097,
        model: 'mpt3sas',
        dmaMask: (1n << 64n) - 1n,
        m64: false,
        bars: [{ index: 1, size: 0x10000, kind: 'mem32' }],
        msixBar: 1,
        msixVectors: 16,
      },
    ],
  };
}

export class TopologyError extends Error {}

/** Validate a topology read from a file; errors name the field and the limit. */
export function validateTopology(t: unknown, maxPhbs: number): Topology {
  const fail = (path: string, msg: string): never => {
    throw new TopologyError(`topology: ${path}: ${msg}`);
  };
  if (typeof t !== 'object' || t === null) fail('(root)', 'expected an object with "phbs" and "devices"');
  const o = t as Record<string, unknown>;
  if (!Number.isInteger(o.phbs) || (o.phbs as number) < 1 || (o.phbs as number) > maxPhbs) {
    fail('phbs', `expected an integer from 1 to ${maxPhbs}, got ${JSON.stringify(o.phbs)}`);
  }
  if (!Array.isArray(o.devices)) fail('devices', 'expected a list');
  const seen = new Set<string>();
  const devices = (o.devices as unknown[]).map((d, i) => {
    const p = `devices[${i}]`;
    if (typeof d !== 'object' || d === null) fail(p, 'expected an object');
    const e = d as Record<string, unknown>;
    const m = typeof e.bdf === 'string' ? /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(e.bdf) : null;
    if (!m) fail(`${p}.bdf`, `expected "dddd:bb:dd.f", got ${JSON.stringify(e.bdf)}`);
    const addr = { domain: parseInt(m![1]!, 16), bus: parseInt(m![2]!, 16), dev: parseInt(m![3]!, 16), fn: parseInt(m![4]!, 16) };
    if (addr.domain >= (o.phbs as number)) fail(`${p}.bdf`, `domain ${addr.domain} has no PHB (phbs: ${o.phbs})`);
    if (addr.bus === 0) fail(`${p}.bdf`, 'bus 0 is the root bus of the PHB (it holds the root port)');
    if (seen.has(e.bdf as string)) fail(`${p}.bdf`, `duplicate device ${e.bdf}`);
    seen.add(e.bdf as string);
    const num = (k: string, max: number) => {
      const v = e[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
        fail(`${p}.${k}`, `expected an integer from 0 to 0x${max.toString(16)}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const bits = e.dmaBits === undefined ? 64 : num('dmaBits', 64);
    if (bits < 24) fail(`${p}.dmaBits`, `a DMA mask narrower than 24 bits is not supported, got ${bits}`);
    return {
      addr,
      vendor: num('vendor', 0xffff),
      device: num('device', 0xffff),
      model: typeof e.model === 'string' ? e.model : 'pci-device',
      dmaMask: (1n << BigInt(bits)) - 1n,
      m64: e.m64 === true,
      isBridge: e.bridge === true,
      bars: [{ index: 0, size: 0x10000, kind: 'mem32' as const }],
    } satisfies PciFunctionSpec;
  });
  return { phbs: o.phbs as number, devices };
}
