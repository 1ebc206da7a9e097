/**
 * A TCE table: its levels with occupancy, a heat strip of valid entries (the server aggregates;
 * one canvas pixel column per bucket, so a 2^24-entry table costs no more than a small one) and,
 * on a click in the strip, the individual TCEs with real address, R/W bits and TCE-cache state.
 */
import type { MachineReport, TableReport, TceReport, TcesResponse } from '../protocol.js';
import { getJson, grid, h, replace, row, size } from './dom.js';

const PAGE = 64;

function heatStrip(t: TableReport, onPick: (entry: number) => void): HTMLCanvasElement {
  const c = h('canvas', { id: 'heat', width: t.heat.length, height: 24, title: 'valid TCEs per bucket; click to zoom' });
  const g = c.getContext('2d');
  if (g) {
    const img = g.createImageData(t.heat.length, 1);
    t.heat.forEach((n, i) => {
      const f = n / t.bucketSize;
      img.data.set(n ? [255, Math.round(200 * (1 - f)), 0, 255] : [230, 230, 230, 255], i * 4);
    });
    for (let y = 0; y < 24; y++) g.putImageData(img, 0, y);
  }
  c.addEventListener('click', (e) => {
    const bucket = Math.floor((e.offsetX / c.clientWidth) * t.heat.length);
    onPick(bucket * t.bucketSize);
  });
  return c;
}

function tceRows(entries: TceReport[]): HTMLTableElement {
  return grid(
    { id: 'tces' },
    ['entry', 'bus address', 'TCE', 'real address', 'R', 'W', 'TCE cache'],
    entries.map((e) =>
      row(
        { class: `tce${e.read || e.write ? ' valid' : ''}${e.stale ? ' stale' : ''}` },
        `0x${e.index.toString(16)}`,
        e.bus,
        e.tce,
        e.read || e.write ? e.pa : '–',
        e.read ? 'R' : '',
        e.write ? 'W' : '',
        e.cached === null ? '' : e.stale ? `STALE copy ${e.cached}` : 'cached',
      ),
    ),
  );
}

export interface TablesState {
  table: number | null;
  from: number;
}

export async function renderTables(
  el: HTMLElement,
  r: MachineReport | null,
  step: number,
  st: TablesState,
  enabled: boolean,
  rerender: () => void,
): Promise<void> {
  if (!enabled) return replace(el, h('p', {}, 'An event log holds machine reports, not table contents: open the scenario itself to see tables.'));
  // Every table a PE's window points at, then the IOMMUFD domains' tables no PE uses.
  const choices = (r?.pes ?? []).flatMap((pe) =>
    pe.windows.flatMap((w) => (w.table === undefined ? [] : [{ table: w.table, label: `PHB${pe.phb} PE#${pe.pe} window #${w.num}` }])),
  );
  for (const c of r?.iommufd?.contexts ?? [])
    for (const hw of c.hwpts)
      for (const w of hw.domain?.windows ?? [])
        if (!choices.some((x) => x.table === w.table)) choices.push({ table: w.table, label: `iommufd #${c.id} HWPT #${hw.id} window #${w.num}` });
  if (!choices.length) return replace(el, h('p', {}, 'No TCE table at this step.'));
  if (st.table === null || !choices.some((x) => x.table === st.table)) st.table = choices[0]!.table;
  const select = h(
    'select',
    { id: 'table-select' },
    ...choices.map((x) => h('option', { value: x.table, selected: x.table === st.table }, `${x.label} (iommu_table#${x.table})`)),
  );
  select.addEventListener('change', () => {
    st.table = Number(select.value);
    st.from = 0;
    rerender();
  });
  replace(el, h('h2', {}, 'TCE table'), select, h('p', { class: 'muted' }, 'loading…'));
  const t = await getJson<TableReport>(`/api/table?step=${step}&id=${st.table}`);
  const levels = grid(
    { id: 'levels' },
    ['level', 'blocks', 'valid entries', 'occupancy'],
    t.occupancy.map((l) =>
      row(
        { class: 'level' },
        l.level === 0 ? '0 (leaf TCEs)' : String(l.level),
        `${l.blocks} / ${l.maxBlocks}`,
        String(l.valid),
        h('div', { class: 'meter' }, h('div', { style: `width:${(100 * l.valid) / Math.max(1, l.blocks * t.levelSize)}%` })),
      ),
    ),
  );
  const zoom = h('div', { id: 'zoom' });
  const showTces = async () => {
    const z = await getJson<TcesResponse>(`/api/tces?step=${step}&id=${t.id}&from=${st.from}&count=${PAGE}`);
    const prev = h('button', { disabled: st.from === 0 }, `◀ ${PAGE}`);
    const next = h('button', { disabled: st.from + PAGE >= t.entries }, `${PAGE} ▶`);
    prev.addEventListener('click', () => {
      st.from = Math.max(0, st.from - PAGE);
      void showTces();
    });
    next.addEventListener('click', () => {
      st.from += PAGE;
      void showTces();
    });
    replace(zoom, h('h3', {}, `Entries ${st.from}…${st.from + z.entries.length - 1}`), prev, ' ', next, tceRows(z.entries));
  };
  const heat = heatStrip(t, (entry) => {
    st.from = entry;
    void showTces();
  });
  replace(
    el,
    h('h2', {}, `TCE table iommu_table#${t.id}${t.freed ? ' (freed)' : ''}`),
    select,
    h(
      'p',
      { id: 'table-summary' },
      `window at ${t.start} · IOMMU page ${size(t.pageSize)} · ${t.entries} entries · ${t.levels} level${t.levels === 1 ? '' : 's'} of ${t.levelSize} entries · ${t.valid} valid · TVEs: ${t.tves.join(', ') || 'none'} · TCE cache: ${t.cached} cached, `,
      h('span', { class: t.stale ? 'bad' : '' }, `${t.stale} stale`),
    ),
    levels,
    h('h3', {}, `Valid TCEs, ${t.heat.length} buckets of ${t.bucketSize} entries (click to zoom)`),
    heat,
    zoom,
  );
  await showTces();
}
