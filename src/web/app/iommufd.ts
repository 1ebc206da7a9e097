/** IOMMUFD in the topology: each context's IOAS, HWPTs (with their domain's windows) and bound devices. */
import type { HwptReport, IoasReport, IommufdContextReport, IommufdDeviceReport, MachineReport } from '../protocol.js';
import { grid, h, row, size } from './dom.js';

/** IOMMU_READ 1, IOMMU_WRITE 2, IOMMU_CACHE 4 as letters. */
function protText(prot: number): string {
  return `${prot & 1 ? 'R' : ''}${prot & 2 ? 'W' : ''}${prot & 4 ? 'C' : ''}` || 'none';
}

function rangeText(start: string, last: string): string {
  return `${start}–${last} (${size(BigInt(last) - BigInt(start) + 1n)})`;
}

function list(items: (string | Node)[]): HTMLElement | string {
  return items.length ? h('ul', {}, ...items.map((i) => h('li', {}, i))) : '–';
}

function ioasTable(c: IommufdContextReport): HTMLElement {
  return grid(
    { class: 'ioas-list' },
    ['IOAS', 'areas (IOVA, prot)', 'IOVA alignment', 'usable IOVA ranges'],
    c.ioas.map((a: IoasReport) =>
      row(
        { class: 'ioas', 'data-id': a.id },
        `IOAS #${a.id}${c.vfioIoas === a.id ? ' (VFIO compat)' : ''}`,
        list(a.areas.map((x) => `${rangeText(x.iova, x.last)} ${protText(x.prot)}${x.pinned ? ' pinned' : ''}`)),
        a.iovaAlignment,
        list(a.usable.map((u) => rangeText(u.start, u.last))),
      ),
    ),
  );
}

function hwptTable(c: IommufdContextReport, openTable: (id: number) => void): HTMLElement {
  const windows = (hw: HwptReport) =>
    list(
      (hw.domain?.windows ?? []).map((w) => {
        const b = h('button', { class: 'link' }, `iommu_table#${w.table}`);
        b.addEventListener('click', () => openTable(w.table));
        return h('span', { class: 'hwpt-window', 'data-start': w.start }, `#${w.num} ${rangeText(w.start, w.last)} · IOMMU page ${size(w.pageSize)} · `, b);
      }),
    );
  return grid(
    { class: 'hwpt-list' },
    ['HWPT', 'IOAS', 'made by', 'domain', 'windows', 'devices attached'],
    c.hwpts.map((hw) =>
      row(
        { class: 'hwpt', 'data-id': hw.id },
        `HWPT #${hw.id}`,
        `#${hw.ioas}`,
        hw.auto ? 'IOAS attach (automatic, shared)' : 'HWPT_ALLOC',
        hw.domain ? `${hw.domain.label} · aperture ${hw.domain.aperture.start}–${hw.domain.aperture.last}` : '–',
        windows(hw),
        c.devices
          .filter((d) => d.hwpt === hw.id)
          .map((d) => d.name)
          .join(', ') || 'none',
      ),
    ),
  );
}

function deviceTable(c: IommufdContextReport): HTMLElement {
  return grid(
    { class: 'idev-list' },
    ['device', 'function', 'IOMMU group', 'attached to'],
    c.devices.map((d: IommufdDeviceReport) =>
      row(
        { class: 'idev', 'data-id': d.id, 'data-name': d.name },
        `#${d.id}`,
        d.name,
        String(d.group),
        d.hwpt === null ? 'nothing (group blocked)' : `HWPT #${d.hwpt}`,
      ),
    ),
  );
}

/** The IOMMUFD section of the topology, or nothing when the machine's kernel has no IOMMUFD. */
export function renderIommufd(r: MachineReport, openTable: (id: number) => void): HTMLElement[] {
  const fd = r.iommufd;
  if (!fd) return [];
  const head = h('h3', {}, `IOMMUFD (${fd.driver === 'ppc64' ? "tcelab's PPC64 driver" : 'the 2026 RFC driver'})`);
  if (!fd.contexts.length) return [head, h('p', { class: 'muted' }, 'No IOMMUFD context (/dev/iommu is not open).')];
  return [
    head,
    ...fd.contexts.map((c) =>
      h(
        'div',
        { class: 'iommufd-ctx', 'data-ctx': c.id },
        h('h4', {}, `iommufd #${c.id}`),
        c.ioas.length ? ioasTable(c) : h('p', { class: 'muted' }, 'No IOAS.'),
        c.hwpts.length ? hwptTable(c, openTable) : h('p', { class: 'muted' }, 'No HWPT.'),
        c.devices.length ? deviceTable(c) : h('p', { class: 'muted' }, 'No device bound.'),
      ),
    ),
  ];
}
