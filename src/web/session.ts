/**
 * What `tcelab view` shows: a source (the idle default machine, a scenario, a recording or a saved
 * event log) recorded as a timeline, and the machine at any step. A step's machine is rebuilt on
 * demand by running the source again up to that step (the model is deterministic); moving forward
 * continues the same run, moving back starts a fresh one.
 */
import { readFileSync } from 'node:fs';
import { Checker, INVARIANTS } from '../check/invariants.js';
import { type OracleRecord, parseRecords } from '../conformance/records.js';
import type { Quirks } from '../kernel/quirks.js';
import { Machine, type MachineOptions } from '../machine/machine.js';
import { type MachineReport, machineReport } from '../scenario/report.js';
import { parseScenario, type Scenario } from '../scenario/schema.js';
import { findTable, type TableReport, type TceReport, tableReport, tceEntries } from '../scenario/tables.js';
import { isEventLog, parseEventLog, recordRecording, recordScenario, TimelineRecorder, type TimelineStep } from '../scenario/timeline.js';
import type { DiffResponse, DiffRow, SourceKind, TimelineResponse, Update } from './protocol.js';

type Source =
  | { kind: 'idle'; options: MachineOptions }
  | { kind: 'scenario'; sc: Scenario; quirks: Partial<Quirks> }
  | { kind: 'recording'; records: OracleRecord[] }
  | { kind: 'events'; states: (MachineReport | null)[] }
  | { kind: 'program'; machine: Machine; states: (MachineReport | null)[] };

/** A watched program: the machine reports kept for its most recent steps. */
const PROGRAM_STATES = 2000;

type Run = Iterator<{ step: TimelineStep; machine: Machine | null }, unknown>;

interface Cursor {
  run: Run;
  step: number;
  machine: Machine | null;
}

export class ViewSession {
  readonly rec = new TimelineRecorder();
  readonly diffRows: DiffRow[] = [];
  done = false;
  private readonly listeners = new Set<(u: Update) => void>();
  /** The run that fills the timeline, and a second one that serves earlier steps. */
  private readonly main: Cursor | null;
  private view: Cursor | null = null;
  private cache: { step: number; table: number; report: TableReport } | null = null;

  private constructor(
    private readonly source: Source,
    readonly file: string,
  ) {
    this.main = source.kind === 'events' || source.kind === 'program' ? null : { run: this.fresh(this.rec), step: -1, machine: null };
  }

  /** The default machine, idle. */
  static idle(options: MachineOptions): ViewSession {
    return new ViewSession({ kind: 'idle', options }, '(default machine)');
  }

  /**
   * Load FILE: a scenario (.yaml/.yml), a saved event log or a recording (.jsonl). Throws the
   * parser's error (file:line:col) on a malformed file.
   */
  static load(file: string, text: string, quirks: Partial<Quirks>): ViewSession {
    if (/\.ya?ml$/i.test(file)) return new ViewSession({ kind: 'scenario', sc: parseScenario(text, file), quirks }, file);
    if (isEventLog(text)) {
      const log = parseEventLog(text, file);
      const s = new ViewSession({ kind: 'events', states: log.states }, file);
      s.rec.events.push(...log.events);
      s.rec.steps.push(...log.steps);
      s.rec.violations.push(...log.violations);
      s.done = true;
      return s;
    }
    return new ViewSession({ kind: 'recording', records: parseRecords(text, file) }, file);
  }

  /**
   * Watch a machine a program drives (tcelab exec --view): every VFIO ioctl or system call ends a
   * step, after which the invariants are checked and the machine's report kept. A program cannot
   * be rerun, so only its current step has tables.
   */
  static watch(machine: Machine, label: string): ViewSession {
    const states: (MachineReport | null)[] = [];
    const s = new ViewSession({ kind: 'program', machine, states }, label);
    s.rec.listen(machine.log);
    const checker = new Checker(machine);
    let reported = 0;
    s.rec.endStep({ label: 'start', summary: `${machine.opts.preset}, every function bound to vfio-pci`, failures: [] });
    states[0] = machineReport(machine);
    machine.log.subscribe((e) => {
      if (!((e.layer === 'vfio' && e.kind === 'ioctl') || (e.layer === 'uapi' && e.kind === 'syscall'))) return;
      const firstEvent = s.rec.steps.at(-1)!.endEvent;
      const firstViolation = s.rec.violations.length;
      checker.checkState();
      const found = checker.violations.slice(reported).map((v) => ({ ...v, explanation: INVARIANTS[v.invariant] }));
      reported = checker.violations.length;
      const label = e.kind === 'ioctl' ? `pid ${e.pid} ${e.request} on ${e.file}` : `pid ${e.pid} ${e.call}`;
      const step = s.rec.endStep({ label, summary: e.ret < 0 || e.errno ? `ret ${e.ret} (errno ${e.errno})` : `ret ${e.ret}`, failures: [] }, found);
      states[step.index] = machineReport(machine);
      if (step.index >= PROGRAM_STATES) states[step.index - PROGRAM_STATES] = null;
      s.emit({ step, events: s.rec.events.slice(firstEvent), violations: s.rec.violations.slice(firstViolation), done: false });
    });
    return s;
  }

  /** The watched program is over: the timeline is complete. */
  finish(): void {
    this.done = true;
    const last = this.rec.steps.at(-1);
    if (last) this.emit({ step: last, events: [], violations: [], done: true });
  }

  static loadFile(file: string, quirks: Partial<Quirks>): ViewSession {
    return ViewSession.load(file, readFileSync(file, 'utf8'), quirks);
  }

  get kind(): SourceKind {
    return this.source.kind;
  }

  /** A new run of the source, recording into `rec`. */
  private fresh(rec: TimelineRecorder): Run {
    const s = this.source;
    if (s.kind === 'scenario') return recordScenario(s.sc, s.quirks, rec);
    if (s.kind === 'recording') return recordRecording(s.records, rec);
    if (s.kind === 'idle') {
      const options = s.options;
      return (function* () {
        const m = new Machine(options);
        yield { step: rec.endStep({ label: 'boot', summary: `${m.opts.preset} booted, idle`, failures: [] }), machine: m };
      })();
    }
    throw new Error('an event log cannot be run again');
  }

  /** Take the next step of the main run; false when it is over. */
  advance(): boolean {
    if (!this.main || this.done) return false;
    const firstEvent = this.rec.events.length;
    const firstViolation = this.rec.violations.length;
    const r = this.main.run.next();
    if (r.done) {
      this.done = true;
      const last = this.rec.steps.at(-1);
      if (last) this.emit({ step: last, events: [], violations: [], done: true });
      return false;
    }
    this.main.step = r.value.step.index;
    this.main.machine = r.value.machine;
    const rec = (r.value as { record?: { record: OracleRecord; answer: DiffRow['model']; mismatches: DiffRow['mismatches'] } | null }).record;
    if (rec) {
      const x = rec.record;
      this.diffRows.push({
        step: r.value.step.index,
        seq: x.seq,
        scn: x.scn,
        op: x.op,
        case: x.case,
        kernel: { ret: x.ret, errno: x.errno ?? null, out: x.out ?? {}, vmlck_kb: x.vmlck_kb, dmesg: x.dmesg ?? [] },
        model: rec.answer,
        mismatches: rec.mismatches,
      });
    }
    this.emit({ step: r.value.step, events: this.rec.events.slice(firstEvent), violations: this.rec.violations.slice(firstViolation), done: false });
    return true;
  }

  /** Run the source to its end at once. */
  runAll(): void {
    while (this.advance());
  }

  /** Run the source one step every `delayMs`, so a page watches it happen. */
  async runLive(delayMs: number): Promise<void> {
    while (this.advance()) await new Promise((r) => setTimeout(r, delayMs));
  }

  subscribe(fn: (u: Update) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(u: Update): void {
    for (const l of [...this.listeners]) l(u);
  }

  timeline(): TimelineResponse {
    return {
      kind: this.kind,
      source: this.file,
      done: this.done,
      tables: this.source.kind !== 'events',
      steps: this.rec.steps,
      events: this.rec.events,
      violations: this.rec.violations,
    };
  }

  diff(): DiffResponse {
    const bad = this.diffRows.filter((r) => r.mismatches.length);
    return { records: this.diffRows.length, mismatched: bad.length, rows: [...bad, ...this.diffRows.filter((r) => !r.mismatches.length)] };
  }

  /** The machine after `step`, rebuilt if need be; null for an event log or a step not run yet. */
  machineAt(step: number): Machine | null {
    if (this.source.kind === 'program') return step === this.rec.steps.length - 1 ? this.source.machine : null;
    if (!this.main || step < 0 || step > this.main.step) return null;
    if (step === this.main.step) return this.main.machine;
    if (!this.view || this.view.step > step) this.view = { run: this.fresh(new TimelineRecorder()), step: -1, machine: null };
    while (this.view.step < step) {
      const r = this.view.run.next();
      if (r.done) break;
      this.view.step = r.value.step.index;
      this.view.machine = r.value.machine;
    }
    return this.view.machine;
  }

  state(step: number): MachineReport | null {
    if (this.source.kind === 'events' || this.source.kind === 'program') return this.source.states[step] ?? null;
    const m = this.machineAt(step);
    return m ? machineReport(m) : null;
  }

  /** A table's report at a step; a string says why there is none. */
  table(step: number, id: number): TableReport | string {
    if (this.cache?.step === step && this.cache.table === id) return this.cache.report;
    const m = this.machineAt(step);
    if (!m) return this.noTables(step);
    const t = findTable(m, id);
    if (!t) return `no iommu_table#${id} at step ${step}`;
    const report = tableReport(m, t);
    this.cache = { step, table: id, report };
    return report;
  }

  private noTables(step: number): string {
    if (this.source.kind === 'events') return 'an event log holds machine reports, not tables';
    if (this.source.kind === 'program') return `a running program cannot be rerun: tables exist for its current step (${this.rec.steps.length - 1}) only`;
    return `step ${step} has not run`;
  }

  tces(step: number, id: number, from: number, count: number): TceReport[] | string {
    const m = this.machineAt(step);
    if (!m) return this.noTables(step);
    const t = findTable(m, id);
    if (!t) return `no iommu_table#${id} at step ${step}`;
    return tceEntries(m, t, from, count);
  }
}
