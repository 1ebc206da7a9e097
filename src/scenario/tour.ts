/**
 * The built-in tour `tcelab run` shows on the default machine: kernel drivers DMA through the
 * 32-bit TCE window and through the 64-bit bypass, devices move real bytes, a bad DMA freezes a
 * PE and EEH recovery thaws it.
 */
import { dmaMapPage, dmaUnmapPage } from '../kernel/dma-api.js';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../hw/tce.js';
import { Machine, type MachineOptions } from '../machine/machine.js';
import { type MachineReport, machineReport } from './report.js';

export interface TourStep {
  step: string;
  ok: boolean;
  detail: string;
}

export interface TourResult {
  steps: TourStep[];
  report: MachineReport;
}

const hex = (n: bigint | number) => `0x${n.toString(16)}`;

export function runTour(opts: Partial<MachineOptions> = {}): TourResult {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', topology: 'tour', ...opts });
  const steps: TourStep[] = [];
  const note = (step: string, ok: boolean, detail: string) => steps.push({ step, ok, detail });
  const cpu = 0;
  const pageAlloc = (label: string) => {
    const pfn = m.mem.allocPages(0, { kind: 'kernel', label });
    if (pfn === null) throw new Error('out of memory in the tour');
    return pfn * m.mem.pageSize;
  };

  // 1. A 32-bit device: its driver maps a buffer through the TCE window, the device writes into it.
  const sas = m.devices.find((d) => d.hw.spec.model === 'mpt3sas')!;
  const sasPe = m.peOf(sas)!;
  m.ioda.dmaSetMask(sasPe, sas, (1n << 32n) - 1n);
  const buf = pageAlloc('mpt3sas DMA buffer');
  const dma = dmaMapPage(sas, buf, 4096, DMA_FROM_DEVICE, m.pageShift, cpu, m.log);
  const payload = new TextEncoder().encode('written by the device through TCE window #0');
  const w = dma === null ? { ok: false, reason: 'mapping failed' } : sas.hw.dmaWrite(dma, payload);
  const landed = new TextDecoder().decode(m.mem.read(buf, payload.length));
  note(
    '32-bit DMA through the TCE window',
    w.ok && landed === new TextDecoder().decode(payload),
    `${sas.name}: dma_map_page → bus ${dma === null ? 'none' : hex(dma)}, device wrote ${payload.length} bytes to RAM ${hex(buf)}`,
  );

  // 2. The same adapter with a 64-bit mask uses the bypass window at 1<<59.
  m.ioda.dmaSetMask(sasPe, sas, (1n << 64n) - 1n);
  const dma64 = dmaMapPage(sas, buf, 4096, DMA_TO_DEVICE, m.pageShift, cpu, m.log);
  const r = dma64 === null ? { ok: false } : sas.hw.dmaRead(dma64, payload.length);
  note(
    '64-bit DMA through the bypass window',
    r.ok && dma64 === (1n << 59n) + BigInt(buf),
    `${sas.name}: bus ${dma64 === null ? 'none' : hex(dma64)} = RAM + 1<<59, device read back ${payload.length} bytes`,
  );
  if (dma !== null) dmaUnmapPage(sas, dma, 4096, DMA_FROM_DEVICE, m.log);

  // 3. Two functions behind a PCIe-to-PCI bridge share one bus-all PE and its table.
  const nics = m.devices.filter((d) => d.hw.spec.model.startsWith('legacy-nic'));
  const nicPe = m.peOf(nics[0]!)!;
  const shared = nics.map((d) => {
    m.ioda.dmaSetMask(nicPe, d, (1n << 32n) - 1n);
    return dmaMapPage(d, pageAlloc(`${d.name} ring`), 8192, DMA_BIDIRECTIONAL, m.pageShift, cpu, m.log);
  });
  note(
    'bus PE: two functions, one table',
    shared.every((x) => x !== null) && nics.every((d) => d.table === nicPe.tables[0]),
    `${nics.map((d) => d.name).join(' and ')} share PE#${nicPe.peNumber.toString(16)}; mapped at ${shared.map((x) => (x === null ? 'none' : hex(x))).join(', ')}`,
  );

  // 4. A DMA to a bus address nothing maps freezes the PE; the frozen PE moves no data.
  const e1000e = m.devices.find((d) => d.hw.spec.model === 'e1000e')!;
  const pe0 = m.peOf(e1000e)!;
  const bad = e1000e.hw.dmaRead(0x7000_0000n, 64);
  const frozen = m.eeh.getState(pe0) !== 0;
  const blocked = e1000e.hw.dmaRead(0x7000_0000n, 64);
  note(
    'bad DMA freezes the PE (EEH)',
    !bad.ok && frozen && !blocked.ok,
    `${e1000e.name}: read at 0x70000000 → ${bad.reason}; PE#${pe0.peNumber.toString(16)} frozen, next DMA refused`,
  );

  // 5. Recovery: thaw DMA and MMIO through OPAL, then DMA works again.
  m.eeh.setOption(pe0, 'thaw-mmio');
  m.eeh.setOption(pe0, 'thaw-dma');
  const page = pageAlloc('e1000e ring');
  m.ioda.dmaSetMask(pe0, e1000e, (1n << 32n) - 1n);
  const again = dmaMapPage(e1000e, page, 4096, DMA_TO_DEVICE, m.pageShift, cpu, m.log);
  const ok = again !== null && e1000e.hw.dmaRead(again, 64).ok;
  note('EEH recovery', ok && m.eeh.getState(pe0) === 0, `PE#${pe0.peNumber.toString(16)} thawed; DMA at ${again === null ? 'none' : hex(again)} succeeds`);

  return { steps, report: machineReport(m) };
}
