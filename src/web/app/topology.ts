/**
 * Topology: the chip, its PHBs, the PEs on each with owner and group, their functions, groups,
 * VFIO containers and IOMMUFD contexts.
 */
import type { FunctionReport, MachineReport, PeReport } from '../protocol.js';
import { grid, h, replace, row } from './dom.js';
import { renderIommufd } from './iommufd.js';

export function ownerText(pe: PeReport): string {
  if (pe.owner === 'kernel') return 'kernel DMA';
  if (pe.owner === 'iommufd')
    return pe.hwpt ? `IOMMUFD domain of HWPT #${pe.hwpt.id} (iommufd #${pe.hwpt.context}, ${pe.hwpt.domain})` : 'IOMMUFD paging domain';
  if (pe.owner === 'blocked') return 'blocked by IOMMUFD (bound, not attached)';
  return pe.container === null ? 'blocked (VFIO, no container)' : `VFIO container #${pe.container}`;
}

function functionRow(f: FunctionReport, pe: PeReport | undefined): HTMLElement {
  const window0 = pe?.windows.find((w) => w.num === 0 && w.kind === 'tce')?.table;
  const stalePtr = f.driver === 'kernel' && f.table !== null && (f.tableFreed || f.table !== window0);
  return h(
    'li',
    { class: `function${f.removed ? ' removed' : ''}${stalePtr ? ' bad' : ''}`, 'data-name': f.name },
    h('code', {}, f.name),
    ` ${f.model}${f.bridge ? ' (bridge)' : ''} · driver ${f.driver ?? 'none'}`,
    f.table !== null ? ` · table pointer iommu_table#${f.table}${f.tableFreed ? ' (freed)' : ''}` : '',
    stalePtr ? h('strong', {}, ' stale table pointer') : '',
    f.removed ? ' · unplugged' : '',
  );
}

export function renderTopology(el: HTMLElement, r: MachineReport | null, openTable: (id: number) => void) {
  if (!r) return replace(el, h('p', {}, 'No machine state at this step.'));
  const t = r.topology;
  const chips = t.chips.map((c) =>
    h(
      'div',
      { class: 'chip' },
      h('h3', {}, `chip ${c.chip} · ${t.cpu} · ${t.platform}`),
      ...c.phbs.map((p) => {
        const pes = r.pes.filter((pe) => pe.phb === p.index);
        return h(
          'div',
          { class: 'phb', 'data-phb': p.index },
          h('h4', {}, `PHB${p.index} (${p.model})`),
          pes.length ? null : h('p', { class: 'muted' }, 'no PE with DMA'),
          ...pes.map((pe) =>
            h(
              'div',
              { class: `pe owner-${pe.owner}${pe.frozen ? ' frozen' : ''}`, 'data-pe': `${pe.phb}:${pe.pe}` },
              h(
                'div',
                { class: 'pe-head' },
                h('b', {}, `PE#${pe.pe}`),
                ` group ${pe.group ?? '–'} · `,
                h('span', { class: 'owner' }, ownerText(pe)),
                pe.frozen ? h('strong', {}, ' FROZEN') : '',
              ),
              h('ul', {}, ...t.functions.filter((f) => pe.devices.includes(f.name)).map((f) => functionRow(f, pe))),
            ),
          ),
          ...t.functions
            .filter((f) => f.phb === p.index && !r.pes.some((pe) => pe.phb === p.index && pe.devices.includes(f.name)))
            .map((f) => h('ul', {}, functionRow(f, undefined))),
        );
      }),
    ),
  );
  const hwptOf = (group: number) => r.pes.find((pe) => pe.group === group)?.hwpt;
  const groups = grid(
    { id: 'groups' },
    ['IOMMU group', 'domain', 'container', 'functions'],
    t.groups.map((g) =>
      row(
        {},
        String(g.id),
        g.domain === 'paging' && hwptOf(g.id) ? `paging (HWPT #${hwptOf(g.id)!.id}, iommufd #${hwptOf(g.id)!.context})` : g.domain,
        g.container === null ? '–' : `#${g.container}`,
        g.devices.join(', '),
      ),
    ),
  );
  const containers = t.containers.length
    ? grid(
        { id: 'containers' },
        ['VFIO container', 'IOMMU', 'owner', 'groups', 'tables', 'locked pages'],
        t.containers.map((c) =>
          row(
            {},
            `#${c.id}`,
            c.iommu ?? 'not set',
            c.owner ? `${c.owner.comm} (pid ${c.owner.pid})` : '–',
            c.groups.join(', '),
            c.tables.map((x) => `#${x}`).join(', ') || '–',
            String(c.lockedPages),
          ),
        ),
      )
    : h('p', { class: 'muted' }, 'No VFIO container.');
  replace(
    el,
    h('h2', {}, `Topology · ${r.machine}, ${r.pageSize / 1024}K pages, ${r.mmu} MMU`),
    ...chips,
    h('h3', {}, 'IOMMU groups'),
    groups,
    h('h3', {}, 'VFIO containers'),
    containers,
    ...renderIommufd(r, openTable),
  );
}
