/**
 * The timeline: every event with its layer, grouped by step, filterable by layer and text. Check
 * events (invariant violations) are marked and link to the event that revealed them.
 */
import type { TimelineEvent, TimelineResponse } from '../protocol.js';
import { h, replace } from './dom.js';

export const LAYERS = ['uapi', 'vfio', 'kernel', 'firmware', 'hw', 'machine', 'check'] as const;
/** Rows drawn at once: the steps nearest the cursor whose events pass the filter. */
const MAX_ROWS = 1500;

export interface TimelineFilter {
  layers: Set<string>;
  text: string;
}

export function renderTimeline(
  el: HTMLElement,
  tl: TimelineResponse,
  step: number,
  f: TimelineFilter,
  go: (step: number, event?: number) => void,
  changed: () => void,
  focus: number | null,
): void {
  const boxes = LAYERS.map((l) => {
    const cb = h('input', { type: 'checkbox', 'data-layer': l, checked: f.layers.has(l) });
    cb.addEventListener('change', () => {
      if (cb.checked) f.layers.add(l);
      else f.layers.delete(l);
      changed();
    });
    return h('label', { class: `layer-${l}` }, cb, ` ${l}`);
  });
  const search = h('input', { type: 'search', id: 'filter-text', placeholder: 'filter text', value: f.text });
  search.addEventListener('change', () => {
    f.text = search.value;
    changed();
  });
  const passes = (e: TimelineEvent) => f.layers.has(e.layer) && (!f.text || `${e.layer}.${e.kind} ${e.text}`.includes(f.text));
  const violations = h(
    'ul',
    { id: 'violations' },
    ...tl.violations.map((v) => {
      const a = h('button', { class: 'link' }, v.cause === null ? `step ${v.step}` : `event #${v.cause}`);
      a.addEventListener('click', () => go(v.step, v.cause ?? v.event));
      return h('li', { class: 'violation' }, h('b', {}, v.invariant), ` at step ${v.step}: ${v.detail} — caused by `, a);
    }),
  );
  // The steps around the cursor, out to MAX_ROWS events.
  let lo = step;
  let hi = step;
  let rows = 0;
  const count = (s: number) => tl.events.slice(tl.steps[s]!.firstEvent, tl.steps[s]!.endEvent).filter(passes).length + 1;
  rows += count(step);
  while (rows < MAX_ROWS && (lo > 0 || hi < tl.steps.length - 1)) {
    if (lo > 0) rows += count(--lo);
    if (hi < tl.steps.length - 1) rows += count(++hi);
  }
  const list = h('div', { id: 'events' });
  for (let s = lo; s <= hi; s++) {
    const st = tl.steps[s]!;
    const head = h(
      'div',
      { class: `step${s === step ? ' current' : ''}${st.failures.length ? ' failed' : ''}`, 'data-step': s },
      h('b', {}, `step ${s}`),
      ` ${st.label}`,
      st.summary ? ` → ${st.summary}` : '',
      ...st.failures.map((x) => h('div', { class: 'bad' }, x)),
    );
    head.addEventListener('click', () => go(s));
    list.append(head);
    for (let i = st.firstEvent; i < st.endEvent; i++) {
      const e = tl.events[i]!;
      if (!passes(e)) continue;
      const row = h(
        'div',
        { class: `ev layer-${e.layer}${e.layer === 'check' ? ' violation' : ''}${i === focus ? ' focus' : ''}`, 'data-i': i },
        h('span', { class: 'idx' }, `#${i}`),
        h('span', { class: 'lk' }, `${e.layer}.${e.kind}`),
        ` ${e.text}`,
      );
      if (e.layer === 'check' && e.cause !== undefined && e.cause !== null) {
        const a = h('button', { class: 'link cause' }, `caused by #${e.cause}`);
        a.addEventListener('click', (ev) => {
          ev.stopPropagation();
          go(tl.events[e.cause!]!.step, e.cause!);
        });
        row.append(' ', a);
      }
      list.append(row);
    }
  }
  replace(
    el,
    h('h2', {}, `Timeline · ${tl.events.length} events in ${tl.steps.length} steps`),
    h('div', { class: 'filters' }, ...boxes, search),
    tl.violations.length ? h('h3', { class: 'bad' }, `${tl.violations.length} invariant violation(s)`) : h('p', { class: 'muted' }, 'No invariant violated.'),
    violations,
    list,
  );
  const target = (focus !== null ? list.querySelector(`[data-i="${focus}"]`) : null) ?? list.querySelector('.step.current');
  target?.scrollIntoView({ block: 'center' });
}
