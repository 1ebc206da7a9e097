/** The conformance diff of a recording: record by record, the kernel's answer beside the model's, mismatches first. */
import type { DiffResponse, DiffRow } from '../protocol.js';
import { grid, h, replace } from './dom.js';

const MAX_ROWS = 500;

function answer(
  a: { ret: number; errno: string | null; out: Record<string, unknown>; vmlck_kb: number; dmesg: string[] } | null,
  bad: Set<string>,
): HTMLElement {
  if (!a) return h('td', { class: 'bad' }, 'not replayed');
  const field = (name: string, text: string) =>
    h('div', { class: bad.has(name) || [...bad].some((b) => b.startsWith(`${name}.`) || b.startsWith(`${name}[`)) ? 'bad' : '' }, `${name} ${text}`);
  return h(
    'td',
    {},
    field('ret', String(a.ret)),
    field('errno', a.errno ?? '–'),
    field('out', JSON.stringify(a.out)),
    field('vmlck_kb', String(a.vmlck_kb)),
    field('dmesg', a.dmesg.join(' ⏎ ') || '–'),
  );
}

function diffRow(r: DiffRow, go: (step: number) => void): HTMLTableRowElement {
  const bad = new Set(r.mismatches.map((m) => m.field));
  const link = h('button', { class: 'link' }, `#${r.seq}`);
  link.addEventListener('click', () => go(r.step));
  return h(
    'tr',
    { class: `diff-row${r.mismatches.length ? ' mismatch' : ''}`, 'data-seq': r.seq },
    h(
      'td',
      {},
      link,
      ` ${r.scn}`,
      h('br'),
      `${r.op} "${r.case}"`,
      ...r.mismatches.map((m) => h('div', { class: 'bad' }, `${m.field}: kernel ${m.kernel} vs model ${m.model}`)),
    ),
    answer(r.kernel, bad),
    answer(r.model, bad),
  );
}

export function renderDiff(el: HTMLElement, d: DiffResponse, go: (step: number) => void): void {
  const rows = d.rows.slice(0, MAX_ROWS);
  replace(
    el,
    h('h2', { id: 'diff-summary' }, `Conformance: ${d.records - d.mismatched} matched, ${d.mismatched} mismatched`),
    d.rows.length > MAX_ROWS ? h('p', { class: 'muted' }, `The first ${MAX_ROWS} of ${d.rows.length} records (mismatches first).`) : null,
    grid(
      { class: 'diff' },
      ['record', 'kernel (recorded)', 'model'],
      rows.map((r) => diffRow(r, go)),
    ),
  );
}
