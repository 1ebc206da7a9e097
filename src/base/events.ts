/**
 * The one event stream every layer reports to. The checker, the CLI report and the conformance
 * suite read it instead of poking at internals. Events carry no wall-clock time: the same
 * machine, inputs and seed give the same stream.
 */

export type Layer = 'hw' | 'firmware' | 'kernel' | 'vfio' | 'uapi' | 'machine';

export interface EventBase {
  seq: number;
  layer: Layer;
}

export type EventBody =
  | { layer: 'kernel'; kind: 'printk'; text: string }
  | { layer: 'kernel'; kind: 'ownership'; group: number; owner: 'kernel' | 'vfio' | 'iommufd' }
  | { layer: 'kernel'; kind: 'iommufd-pin'; pid: number; pages: number; mode: string }
  | { layer: 'kernel'; kind: 'dma-map'; device: string; dma: bigint; npages: number }
  | { layer: 'kernel'; kind: 'dma-unmap'; device: string; dma: bigint; npages: number }
  | { layer: 'kernel'; kind: 'table-base'; device: string; table: number | null }
  | { layer: 'kernel'; kind: 'locked-vm'; pid: number; pages: number; delta: number }
  | { layer: 'kernel'; kind: 'oops'; pid: number; fn: string; address: number; signal: number }
  | { layer: 'kernel'; kind: 'soft-lockup'; pid: number; fn: string }
  | { layer: 'firmware'; kind: 'opal'; call: string; args: (number | bigint)[]; rc: number }
  | { layer: 'firmware'; kind: 'hcall'; call: string; args: (number | bigint)[]; rc: number }
  | { layer: 'firmware'; kind: 'rtas'; call: string; args: (number | bigint)[]; rc: number }
  | { layer: 'hw'; kind: 'tce-write'; pa: number; value: number }
  | { layer: 'hw'; kind: 'tce-kill'; phb: number; scope: 'pe' | 'pages' | 'all'; pe: number }
  | { layer: 'hw'; kind: 'tve-write'; phb: number; tve: number }
  | {
      layer: 'hw';
      kind: 'dma';
      device: string;
      bus: bigint;
      len: number;
      write: boolean;
      ok: boolean;
      pa?: number;
      reason?: string;
      stale?: boolean;
    }
  | { layer: 'hw'; kind: 'eeh-freeze'; phb: number; pe: number; reason: string }
  | { layer: 'hw'; kind: 'eeh-clear'; phb: number; pe: number }
  | { layer: 'hw'; kind: 'page-alloc'; pfn: number; order: number; owner: string }
  | { layer: 'hw'; kind: 'page-free'; pfn: number; order: number; owner: string }
  | { layer: 'vfio'; kind: 'ioctl'; pid: number; file: string; request: string; ret: number; errno: number }
  | { layer: 'uapi'; kind: 'syscall'; pid: number; call: string; ret: number; errno: number }
  | { layer: 'machine'; kind: 'note'; text: string };

export type TcelabEvent = EventBase & EventBody;

/** High-volume kinds are recorded only when a listener asks for them. */
const VERBOSE_KINDS = new Set(['tce-write', 'hcall', 'page-alloc', 'page-free']);

export type Listener = (e: TcelabEvent) => void;

export class EventLog {
  private nextSeq = 0;
  private readonly listeners: Listener[] = [];
  private verboseListeners = 0;
  /** Events by kind (kinds are unique across layers), counted even with no listener. */
  private readonly byKind = new Map<string, { layer: Layer; n: number }>();

  /** True when somebody wants the per-TCE and per-page events (they cost time). */
  get verbose(): boolean {
    return this.verboseListeners > 0;
  }

  subscribe(fn: Listener, opts: { verbose?: boolean } = {}): () => void {
    this.listeners.push(fn);
    if (opts.verbose) this.verboseListeners++;
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
      if (opts.verbose) this.verboseListeners--;
    };
  }

  /** Event counts keyed "layer.kind" (kinds that happened). */
  get counts(): Map<string, number> {
    return new Map([...this.byKind].filter(([, c]) => c.n > 0).map(([kind, c]) => [`${c.layer}.${kind}`, c.n]));
  }

  /**
   * The counter of one kind, for a hot path that counts its events without a listener by
   * `counter.n++` (the same count tally() keeps, with no lookup by kind).
   */
  counter(layer: Layer, kind: EventBody['kind']): { n: number } {
    let c = this.byKind.get(kind);
    if (!c) {
      c = { layer, n: 0 };
      this.byKind.set(kind, c);
    }
    return c;
  }

  /** True when somebody reads events; hot paths build event bodies only then. */
  get listening(): boolean {
    return this.listeners.length > 0;
  }

  /** Count an event nobody listens to, without building its body. */
  tally(layer: Layer, kind: EventBody['kind']): void {
    const c = this.byKind.get(kind);
    if (c) c.n++;
    else this.byKind.set(kind, { layer, n: 1 });
  }

  emit(body: EventBody): void {
    this.tally(body.layer, body.kind);
    if (this.listeners.length === 0) return;
    if (VERBOSE_KINDS.has(body.kind) && !this.verbose) return;
    const e = { seq: this.nextSeq++, ...body } as TcelabEvent;
    for (const l of this.listeners) l(e);
  }
}
