/** DMA windows per PE on a logarithmic bus-address axis (0 … 2^64). */
import type { MachineReport, WindowReport } from '../protocol.js';
import { h, replace, size } from './dom.js';
import { ownerText } from './topology.js';

/** Position of a bus address on the axis, 0..1: log2(a + 1) / 64. */
function pos(a: bigint): number {
  if (a <= 0n) return 0;
  const bits = a.toString(2).length;
  const top = Number(a >> BigInt(Math.max(0, bits - 52)));
  return (Math.log2(top) + Math.max(0, bits - 52)) / 64;
}

const TICKS: [string, number][] = [
  ['0', 0],
  ['4K', 12],
  ['1M', 20],
  ['4G', 32],
  ['1T', 40],
  ['2^48', 48],
  ['2^59', 59],
  ['2^64', 64],
];

function windowLabel(w: WindowReport): string {
  const len = BigInt(w.end) - BigInt(w.start) + 1n;
  if (w.kind === 'bypass') return `#${w.num} ${w.start} · ${size(len)} · bypass (no translation)`;
  const head = `#${w.num} ${w.start} · ${size(len)} · IOMMU page ${size(w.pageSize ?? 0)} · ${w.levels} level${w.levels === 1 ? '' : 's'} · ${w.entries} TCEs`;
  // An IOMMUFD domain's table is filled by IOAS maps, not by the kernel's DMA API allocator.
  if (w.hwpt) return `${head} · domain of HWPT #${w.hwpt.id} (iommufd #${w.hwpt.context})`;
  return `${head}, ${w.entriesInUse} allocated by the DMA API`;
}

export function renderWindows(el: HTMLElement, r: MachineReport | null, openTable: (id: number) => void) {
  if (!r) return replace(el, h('p', {}, 'No machine state at this step.'));
  const axis = h('div', { class: 'axis' }, ...TICKS.map(([t, b]) => h('span', { class: 'tick', style: `left:${(b / 64) * 100}%` }, t)));
  const rows = r.pes
    .filter((pe) => pe.windows.length)
    .map((pe) => {
      const bars = pe.windows.map((w) => {
        const a = pos(BigInt(w.start));
        const b = Math.max(pos(BigInt(w.end) + 1n), a + 0.004);
        return h('div', { class: `bar ${w.kind}${w.hwpt ? ' iommufd' : ''}`, style: `left:${a * 100}%;width:${(b - a) * 100}%`, title: windowLabel(w) });
      });
      const labels = pe.windows.map((w) => {
        const li = h('li', { class: 'window', 'data-start': w.start, 'data-num': w.num, 'data-kind': w.kind }, windowLabel(w));
        if (w.table !== undefined) {
          const b = h('button', { class: 'link' }, `iommu_table#${w.table}`);
          b.addEventListener('click', () => openTable(w.table!));
          li.append(' · ', b);
        }
        return li;
      });
      return h(
        'div',
        { class: 'pe-windows', 'data-pe': `${pe.phb}:${pe.pe}` },
        h('div', { class: 'pe-head' }, h('b', {}, `PHB${pe.phb} PE#${pe.pe}`), ` · ${pe.devices.join(', ')} · ${ownerText(pe)}`),
        h('div', { class: 'track' }, ...bars),
        h('ul', {}, ...labels),
      );
    });
  replace(el, h('h2', {}, 'DMA windows (bus address, logarithmic)'), axis, ...rows);
}
