// B5 ownership churn: a bus PE with 8 functions (0000:01:00.0-7 on PHB 0) claimed for a user
// (iommu_group_claim_dma_owner: take_ownership per device, which unsets window #0, drops the
// bypass window, repoints the 8 devices and frees the table) and released again
// (release_ownership: a new default table, window #0 set, bypass on, devices repointed).
// Work = transitions (2 per cycle).
import { load } from './common.mjs';

const { Machine } = await load('machine/machine.js');

const fn = (f) => ({
  addr: { domain: 0, bus: 1, dev: 0, fn: f },
  vendor: 0x8086,
  device: 0x10d3,
  model: `nic-${f}`,
  dmaMask: (1n << 64n) - 1n,
  m64: false,
  bars: [{ index: 0, size: 0x10000, kind: 'mem32' }],
});

export async function setup({ cycles = 2000 }) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', topology: { phbs: 1, devices: Array.from({ length: 8 }, (_, i) => fn(i)) } });
  const group = m.groups[0];
  if (!group || group.devices.length !== 8) throw new Error('B5: expected one group of 8 devices');
  // A kernel driver bound to any function makes the claim fail with -EPERM: bind all to vfio-pci.
  for (const d of group.devices) m.bindVfioPci(d.name);
  const owner = {};
  const run = () => {
    for (let i = 0; i < cycles; i++) {
      if (group.claimDmaOwner(owner) !== 0) throw new Error('B5: claim failed');
      group.releaseDmaOwner();
    }
    const ok = m.devices.every((d) => d.table === m.peOf(d).tables[0] && d.table !== null);
    return { work: 2 * cycles, check: ok ? 8 : 0 };
  };
  return { run, finish: () => ({ klogLines: m.klog.lines.length }) };
}
