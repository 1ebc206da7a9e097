/**
 * What the view's server sends the page, as types only: the page imports nothing else from
 * tcelab. Every shape comes from the serialisers `--json` uses (machineReport, tableReport,
 * the timeline, the conformance comparison).
 */
import type { Answer, Mismatch } from '../conformance/compare.js';
import type { MachineReport } from '../scenario/report.js';
import type { TableReport, TceReport } from '../scenario/tables.js';
import type { TimelineEvent, TimelineStep, TimelineViolation } from '../scenario/timeline.js';

export type {
  DomainReport,
  HwptReport,
  IoasReport,
  IommufdContextReport,
  IommufdDeviceReport,
  IommufdReport,
} from '../scenario/iommufd-report.js';
export type { ContainerReport, FunctionReport, GroupReport, MachineReport, PeReport, WindowReport } from '../scenario/report.js';
export type { Answer, Mismatch, TableReport, TceReport, TimelineEvent, TimelineStep, TimelineViolation };

export type SourceKind = 'idle' | 'scenario' | 'recording' | 'events' | 'program';

/** GET /api/timeline */
export interface TimelineResponse {
  kind: SourceKind;
  source: string;
  /** False while a live run (`tcelab run --view`) is still going. */
  done: boolean;
  /** Whether /api/table can answer (an event log holds reports, not machines). */
  tables: boolean;
  steps: TimelineStep[];
  events: TimelineEvent[];
  violations: TimelineViolation[];
}

/** GET /api/state?step=N */
export interface StateResponse {
  step: number;
  report: MachineReport | null;
}

/** GET /api/tces?step=N&id=T&from=I&count=C */
export interface TcesResponse {
  table: number;
  entries: TceReport[];
}

/** The kernel's recorded answer to one call. */
export interface KernelAnswer {
  ret: number;
  errno: string | null;
  out: Record<string, unknown>;
  vmlck_kb: number;
  dmesg: string[];
}

export interface DiffRow {
  step: number;
  seq: number;
  scn: string;
  op: string;
  case: string;
  kernel: KernelAnswer;
  model: Answer | null;
  mismatches: Mismatch[];
}

/** GET /api/diff: mismatched records first, then the rest, each in recording order. */
export interface DiffResponse {
  records: number;
  mismatched: number;
  rows: DiffRow[];
}

/** One server-sent event ("update") of GET /api/events: what a live run added. */
export interface Update {
  step: TimelineStep;
  events: TimelineEvent[];
  violations: TimelineViolation[];
  done: boolean;
}
