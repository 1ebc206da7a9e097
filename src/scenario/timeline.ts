/**
 * A run as a timeline: steps (step 0 is the boot), every event with its layer and the step it
 * belongs to, invariant violations linked to the event that revealed them, and the machine
 * report after each step. `tcelab run --events FILE` writes it as JSONL and `tcelab view FILE`
 * reads it back (docs/view.md describes the format).
 */
import type { Layer, TcelabEvent } from '../base/events.js';
import { Checker, INVARIANTS } from '../check/invariants.js';
import type { OracleRecord } from '../conformance/records.js';
import { type RecordDone, replayRecords } from '../conformance/run.js';
import type { Quirks } from '../kernel/quirks.js';
import type { Machine } from '../machine/machine.js';
import type { MachineReport } from './report.js';
import { eventText, type RunResult, scenarioSteps } from './runner.js';
import type { Scenario } from './schema.js';

export const EVENT_LOG_FORMAT = 'tcelab-events';
export const EVENT_LOG_VERSION = 1;

export type TimelineLayer = Layer | 'check';

export interface TimelineEvent {
  /** Position in the whole timeline (event seqs restart with every machine). */
  i: number;
  step: number;
  layer: TimelineLayer;
  kind: string;
  text: string;
  /** On a check event: the timeline event that revealed the violation. */
  cause?: number | null;
}

export interface TimelineStep {
  index: number;
  label: string;
  summary: string;
  failures: string[];
  /** Its events: i in [firstEvent, endEvent). */
  firstEvent: number;
  endEvent: number;
}

export interface TimelineViolation {
  invariant: string;
  explanation: string;
  detail: string;
  step: number;
  /** The timeline event that revealed it, and the check event that reports it. */
  cause: number | null;
  event: number;
}

export interface EventLogHeader {
  format: typeof EVENT_LOG_FORMAT;
  version: number;
  source: string;
  kind: 'scenario' | 'recording';
}

export type EventLogLine =
  | EventLogHeader
  | ({ type: 'event' } & TimelineEvent)
  | ({ type: 'step'; state: MachineReport | null } & TimelineStep)
  | ({ type: 'violation' } & TimelineViolation);

/** Collects a timeline as a run goes; `listen` attaches it to each machine's event log. */
export class TimelineRecorder {
  readonly events: TimelineEvent[] = [];
  readonly steps: TimelineStep[] = [];
  readonly violations: TimelineViolation[] = [];
  /** Event seq → timeline index, for the current machine. */
  private bySeq = new Map<number, number>();
  private stepStart = 0;

  /** Start recording a machine's events (a new machine: seqs start again). */
  listen(log: { subscribe(fn: (e: TcelabEvent) => void): () => void }): () => void {
    this.bySeq = new Map();
    return log.subscribe((e) => {
      this.bySeq.set(e.seq, this.events.length);
      this.events.push({ i: this.events.length, step: this.steps.length, layer: e.layer, kind: e.kind, text: eventText(e) });
    });
  }

  /** Close a step: its events are those since the last one; violations get a check event each. */
  endStep(
    s: { label: string; summary: string; failures: string[] },
    found: { invariant: string; explanation: string; detail: string; eventSeq: number | null }[] = [],
  ): TimelineStep {
    for (const v of found) {
      const cause = v.eventSeq === null ? null : (this.bySeq.get(v.eventSeq) ?? null);
      const i = this.events.length;
      this.events.push({ i, step: this.steps.length, layer: 'check', kind: 'invariant', text: `${v.invariant}: ${v.detail}`, cause });
      this.violations.push({ invariant: v.invariant, explanation: v.explanation, detail: v.detail, step: this.steps.length, cause, event: i });
    }
    const step = { index: this.steps.length, ...s, firstEvent: this.stepStart, endEvent: this.events.length };
    this.steps.push(step);
    this.stepStart = this.events.length;
    return step;
  }
}

export class EventLogError extends Error {}

export function isEventLog(text: string): boolean {
  const first = text.slice(0, text.indexOf('\n') >>> 0);
  try {
    return (JSON.parse(first) as { format?: string }).format === EVENT_LOG_FORMAT;
  } catch {
    return false;
  }
}

/** Read an event log: the header, the timeline and the state after every step. */
export function parseEventLog(
  text: string,
  file: string,
): { header: EventLogHeader; events: TimelineEvent[]; steps: TimelineStep[]; violations: TimelineViolation[]; states: (MachineReport | null)[] } {
  const lines = text.split('\n');
  const out = { events: [] as TimelineEvent[], steps: [] as TimelineStep[], violations: [] as TimelineViolation[], states: [] as (MachineReport | null)[] };
  let header: EventLogHeader | null = null;
  lines.forEach((line, n) => {
    if (!line.trim()) return;
    const where = `${file}:${n + 1}:1`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new EventLogError(`${where}: not JSON (${(e as Error).message})`);
    }
    if (!header) {
      if (o.format !== EVENT_LOG_FORMAT) throw new EventLogError(`${where}: expected the header {"format":"${EVENT_LOG_FORMAT}",…}`);
      if (o.version !== EVENT_LOG_VERSION) throw new EventLogError(`${where}: version: expected ${EVENT_LOG_VERSION}, got ${JSON.stringify(o.version)}`);
      header = o as unknown as EventLogHeader;
      return;
    }
    const need = (keys: string[]) => {
      for (const k of keys) if (!(k in o)) throw new EventLogError(`${where}: a "${String(o.type)}" line needs "${k}"`);
    };
    const { type, ...body } = o;
    if (type === 'event') {
      need(['i', 'step', 'layer', 'kind', 'text']);
      if (body.i !== out.events.length) throw new EventLogError(`${where}: i: expected ${out.events.length}, got ${JSON.stringify(body.i)}`);
      out.events.push(body as unknown as TimelineEvent);
    } else if (type === 'step') {
      need(['index', 'label', 'firstEvent', 'endEvent', 'state']);
      if (body.index !== out.steps.length) throw new EventLogError(`${where}: index: expected ${out.steps.length}, got ${JSON.stringify(body.index)}`);
      const { state, ...step } = body;
      out.steps.push({ summary: '', failures: [], ...step } as unknown as TimelineStep);
      out.states.push((state as MachineReport | null) ?? null);
    } else if (type === 'violation') {
      need(['invariant', 'detail', 'step', 'event']);
      out.violations.push({ explanation: '', cause: null, ...body } as unknown as TimelineViolation);
    } else throw new EventLogError(`${where}: type: expected event, step or violation, got ${JSON.stringify(type)}`);
  });
  if (!header) throw new EventLogError(`${file}:1:1: empty event log`);
  return { header, ...out };
}

/** A scenario run recorded step by step into `rec` (step 0 is the boot). */
export function* recordScenario(
  sc: Scenario,
  quirks: Partial<Quirks>,
  rec: TimelineRecorder,
  iommufd?: 'ppc64' | 'rfc-2026',
): Generator<{ step: TimelineStep; machine: Machine }, RunResult> {
  const it = scenarioSteps(sc, quirks, iommufd);
  let stop = () => {};
  try {
    let r = it.next();
    for (; !r.done; r = it.next()) {
      const v = r.value;
      if ('boot' in v) {
        stop = rec.listen(v.boot.log);
        yield { step: rec.endStep({ label: 'boot', summary: bootSummary(v.boot), failures: [] }), machine: v.boot };
        continue;
      }
      const s = v.result;
      const label = `${s.where} ${s.actor ? `${s.actor} ` : ''}${s.op}`;
      yield { step: rec.endStep({ label, summary: s.summary, failures: s.failures }, v.violations), machine: v.machine };
    }
    return r.value;
  } finally {
    stop();
  }
}

/** A recording replayed record by record into `rec`: step 0 is the first boot, step k is record k-1. */
export function* recordRecording(
  records: OracleRecord[],
  rec: TimelineRecorder,
): Generator<{ step: TimelineStep; machine: Machine | null; record: RecordDone | null }> {
  let stop = () => {};
  let checker: Checker | null = null;
  let reported = 0;
  try {
    for (const r of replayRecords(records)) {
      if ('boot' in r) {
        stop();
        stop = rec.listen(r.boot.log);
        checker = new Checker(r.boot);
        reported = 0;
        if (rec.steps.length === 0) yield { step: rec.endStep({ label: 'boot', summary: bootSummary(r.boot), failures: [] }), machine: r.boot, record: null };
        continue;
      }
      if ('skipped' in r) {
        const x = r.record;
        yield {
          step: rec.endStep({ label: `#${x.seq} ${x.scn} ${x.op} "${x.case}"`, summary: `not replayed: ${r.skipped}`, failures: [] }),
          machine: null,
          record: null,
        };
        continue;
      }
      const found = [];
      if (checker && r.machine) {
        checker.checkState();
        found.push(...checker.violations.slice(reported).map((v) => ({ ...v, explanation: INVARIANTS[v.invariant] })));
        reported = checker.violations.length;
      }
      const x = r.record;
      const label = `#${x.seq} ${x.scn} ${x.op} "${x.case}"`;
      const a = r.answer;
      const summary = a ? `ret ${a.ret}${a.errno ? ` (${a.errno})` : ''}` : 'not replayed';
      const failures = r.mismatches.map((m) => `${m.field}: kernel ${m.kernel} vs model ${m.model}`);
      yield { step: rec.endStep({ label, summary, failures }, found), machine: r.machine, record: r };
    }
  } finally {
    stop();
  }
}

function bootSummary(m: Machine): string {
  return `${m.opts.preset}, ${m.mem.pageSize / 1024}K pages, ${m.mmu} MMU: ${m.klog.nextSeq} kernel log lines`;
}

/** A recorded timeline as event-log lines (JSONL, no trailing newline on each). */
export function eventLogLines(header: Omit<EventLogHeader, 'format' | 'version'>, rec: TimelineRecorder, states: (MachineReport | null)[]): string[] {
  const out = [JSON.stringify({ format: EVENT_LOG_FORMAT, version: EVENT_LOG_VERSION, ...header })];
  for (const s of rec.steps) {
    for (let i = s.firstEvent; i < s.endEvent; i++) out.push(JSON.stringify({ type: 'event', ...rec.events[i] }));
    out.push(JSON.stringify({ type: 'step', ...s, state: states[s.index] ?? null }));
    for (const v of rec.violations) if (v.step === s.index) out.push(JSON.stringify({ type: 'violation', ...v }));
  }
  return out;
}
