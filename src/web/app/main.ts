/**
 * The page of `tcelab view`. It holds no model: the timeline, the machine report of the chosen
 * step, tables and the conformance diff all come from the server as JSON; a live run arrives as
 * server-sent events. Stepping back and forward asks the server for that step's state.
 */
import type { DiffResponse, MachineReport, StateResponse, TimelineResponse, Update } from '../protocol.js';
import { renderDiff } from './diff.js';
import { $, getJson, h, replace } from './dom.js';
import { renderTables, type TablesState } from './tables.js';
import { LAYERS, renderTimeline, type TimelineFilter } from './timeline.js';
import { renderTopology } from './topology.js';
import { renderWindows } from './windows.js';

/** Marks on the step strip at most. */
const MARKS = 1000;
/** A live run redraws at most this often. */
const FOLLOW_MS = 200;

type Tab = 'topology' | 'windows' | 'tables' | 'timeline' | 'diff';

const app = {
  tl: null as TimelineResponse | null,
  step: 0,
  /** The step asked for last (ahead of `step` while its state is on the way). */
  want: 0,
  report: null as MachineReport | null,
  tab: 'topology' as Tab,
  tables: { table: null, from: 0 } as TablesState,
  filter: { layers: new Set<string>(LAYERS), text: '' } as TimelineFilter,
  focus: null as number | null,
  diff: null as DiffResponse | null,
  /** Bumped on every step change, so a slow answer for an old step is dropped. */
  generation: 0,
  /** A redraw of a live run is due. */
  followTimer: null as ReturnType<typeof setTimeout> | null,
};

function tabs(): Tab[] {
  const t: Tab[] = ['topology', 'windows', 'tables', 'timeline'];
  if (app.tl?.kind === 'recording') t.push('diff');
  return t;
}

function renderTabs(): void {
  replace(
    $('tabs'),
    ...tabs().map((t) => {
      const b = h('button', { id: `tab-${t}`, class: t === app.tab ? 'active' : '' }, t === 'diff' ? 'conformance diff' : t);
      b.addEventListener('click', () => {
        app.tab = t;
        render();
      });
      return b;
    }),
  );
  for (const t of ['topology', 'windows', 'tables', 'timeline', 'diff']) $(`view-${t}`).hidden = t !== app.tab;
}

function renderHeader(): void {
  const tl = app.tl!;
  const last = tl.steps.length - 1;
  const st = tl.steps[app.step];
  $('source').textContent = `${tl.source} (${tl.kind})`;
  $('step-label').textContent = `step ${app.step} / ${last}${st ? ` · ${st.label}` : ''}`;
  ($('btn-back') as HTMLButtonElement).disabled = app.want <= 0;
  ($('btn-fwd') as HTMLButtonElement).disabled = app.want >= last;
  $('status').textContent = tl.done ? '' : 'running…';
  // One mark per step, or per run of steps when there are more than MARKS.
  const bad = new Set(tl.violations.map((v) => v.step));
  const per = Math.ceil(tl.steps.length / MARKS);
  const marks: HTMLElement[] = [];
  for (let first = 0; first < tl.steps.length; first += per) {
    const range = tl.steps.slice(first, first + per);
    const violated = range.some((s) => bad.has(s.index));
    const failed = range.some((s) => s.failures.length);
    const current = app.step >= first && app.step < first + per;
    const title = per === 1 ? `step ${first}: ${range[0]!.label}` : `steps ${first}–${first + range.length - 1}`;
    const m = h('span', { class: `mark${violated ? ' violation' : ''}${failed ? ' failed' : ''}${current ? ' current' : ''}`, 'data-step': first, title });
    m.addEventListener('click', () => void go(first));
    marks.push(m);
  }
  replace($('strip'), ...marks);
}

function render() {
  if (!app.tl) return;
  renderHeader();
  renderTabs();
  const view = $(`view-${app.tab}`);
  const openTable = (id: number) => {
    app.tables = { table: id, from: 0 };
    app.tab = 'tables';
    render();
  };
  switch (app.tab) {
    case 'topology':
      return renderTopology(view, app.report, openTable);
    case 'windows':
      return renderWindows(view, app.report, openTable);
    case 'tables':
      renderTables(view, app.report, app.step, app.tables, app.tl.tables, render).catch(showError);
      return;
    case 'timeline':
      return renderTimeline(view, app.tl, app.step, app.filter, (s, e) => void go(s, e), render, app.focus);
    case 'diff':
      if (!app.diff) {
        replace(view, h('p', {}, 'loading…'));
        getJson<DiffResponse>('/api/diff')
          .then((d) => {
            app.diff = d;
            render();
          })
          .catch(showError);
        return;
      }
      return renderDiff(view, app.diff, (s) => {
        app.tab = 'timeline';
        void go(s);
      });
  }
}

function showError(e: unknown): void {
  $('status').textContent = (e as Error).message;
}

/** Move to a step: fetch its state, then redraw everything. */
async function go(step: number, focus: number | null = null): Promise<void> {
  const tl = app.tl!;
  const target = Math.max(0, Math.min(step, tl.steps.length - 1));
  const gen = ++app.generation;
  app.want = target;
  app.focus = focus;
  const s = await getJson<StateResponse>(`/api/state?step=${target}`);
  if (gen !== app.generation) return;
  app.step = target;
  app.report = s.report;
  render();
  document.body.dataset.step = String(target);
}

function applyUpdate(u: Update): void {
  const tl = app.tl;
  if (!tl) return;
  if (u.step.index > tl.steps.length) {
    // Steps taken between the timeline's fetch and the stream's start: fetch it again.
    getJson<TimelineResponse>('/api/timeline')
      .then((t) => {
        app.tl = t;
        renderHeader();
      })
      .catch(showError);
    return;
  }
  if (u.step.index === tl.steps.length) {
    tl.steps.push(u.step);
    tl.events.push(...u.events);
    tl.violations.push(...u.violations);
  }
  tl.done = u.done;
  app.diff = null;
  // Follow a live run while the cursor sits on its last step; redraw at most every FOLLOW_MS.
  if (app.followTimer !== null) return;
  const following = app.want >= tl.steps.length - 2 || !app.report;
  app.followTimer = setTimeout(() => {
    app.followTimer = null;
    if (following) void go(tl.steps.length - 1);
    else renderHeader();
  }, FOLLOW_MS);
}

async function start(): Promise<void> {
  $('btn-back').addEventListener('click', () => void go(app.want - 1));
  $('btn-fwd').addEventListener('click', () => void go(app.want + 1));
  document.addEventListener('keydown', (e) => {
    if ((e.target as HTMLElement).tagName === 'INPUT') return;
    if (e.key === 'ArrowLeft') void go(app.want - 1);
    if (e.key === 'ArrowRight') void go(app.want + 1);
  });
  app.tl = await getJson<TimelineResponse>('/api/timeline');
  await go(app.tl.steps.length - 1);
  document.body.dataset.ready = 'true';
  if (!app.tl.done) {
    const es = new EventSource('/api/events');
    es.addEventListener('update', (e) => applyUpdate(JSON.parse((e as MessageEvent<string>).data) as Update));
  }
}

start().catch(showError);
