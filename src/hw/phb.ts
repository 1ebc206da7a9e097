/**
 * A PowerNV PCIe host bridge (PHB3 on POWER8, PHB4 on POWER9, PHB5 on POWER10) as far as DMA
 * goes: the RID→PE table, a TVT of two TVEs per PE (TVE#1 decodes bus addresses with bit 59 set),
 * translated and no-translate (bypass) TVEs, the table walk through a TCE cache that only a TCE
 * kill clears, and EEH freeze of a PE whose DMA fails.
 */
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from './memory.js';
import { TCE_PCI_READ, TCE_PCI_WRITE, tcePerm } from './tce.js';

export type PhbModel = 'PHB3' | 'PHB4' | 'PHB5';

export interface PhbGeneration {
  model: PhbModel;
  /** Number of PEs of a small PHB; the last one is reserved. */
  numPes: number;
  /** PHB indices that have twice as many PEs (QEMU's PHB4/PHB5: the first PHB of each PEC). */
  bigPhbs: number[];
  /** IOMMU page shifts the PHB supports ("ibm,supported-tce-sizes"). */
  tceShifts: number[];
  /** PHB3 invalidates through its TCE kill register; PHB4/5 through OPAL. */
  killViaOpal: boolean;
  /** The CPU generation the PHB sits in, used for names. */
  cpu: 'POWER8' | 'POWER9' | 'POWER10';
  /**
   * The kernel puts idle functions below this PHB's root port into D3hot (recorded: it does on
   * QEMU's PHB4/PHB5, never on its PHB3).
   */
  idleD3hot: boolean;
}

export const PHB_GENERATIONS: Record<PhbModel, PhbGeneration> = {
  PHB3: { model: 'PHB3', numPes: 256, bigPhbs: [], tceShifts: [12, 16, 24, 28], killViaOpal: false, cpu: 'POWER8', idleD3hot: false },
  PHB4: { model: 'PHB4', numPes: 256, bigPhbs: [0, 3], tceShifts: [12, 16, 21, 30], killViaOpal: true, cpu: 'POWER9', idleD3hot: true },
  PHB5: { model: 'PHB5', numPes: 256, bigPhbs: [0, 3], tceShifts: [12, 16, 21, 30], killViaOpal: true, cpu: 'POWER10', idleD3hot: true },
};

/** Bit 59 of a bus address selects TVE#1 of the PE. */
export const TVE1_SELECT_BIT = 59n;
const NO_TRANSLATE_MASK = 0x0003_ffff_ffff_ffffn;

/** What a translated TVE decodes, in numbers: IOMMU page size, entries per level, pages reached. */
interface TveGeometry {
  pageSize: number;
  entries: number;
  span: number;
  /** The decoded page index fits a number (span × page size ≤ 2^53). */
  numeric: boolean;
  /** entries^level for each level, the divisor of the page index that picks that level's slot. */
  levelDiv: number[];
}

/** walk() results that are no TCE (a TCE is ≥ 0). */
const WALK_OUTSIDE_RAM = -1;
const WALK_INVALID_INDIRECT = -2;
const WALK_BAD_LEVELS = -3;
const WALK_REASONS: Record<number, string> = {
  [WALK_OUTSIDE_RAM]: 'TCE table read outside RAM',
  [WALK_INVALID_INDIRECT]: 'invalid indirect TCE',
  [WALK_BAD_LEVELS]: 'invalid TVE levels',
};

export type Tve = { kind: 'xlate'; tableAddr: number; levels: number; levelBytes: number; pageShift: number } | { kind: 'bypass'; start: bigint; end: bigint };

/** The TVE as the PHB stores it (TABLE_ADDR | NUM_LEVELS | TCE_TABLE_SIZE | IO_PSIZE). */
export function encodeTve(t: Tve | null): bigint {
  if (!t) return 0n;
  if (t.kind === 'bypass') return (1n << 12n) | 0x80n; // no-translate marker bits; bounds kept decoded
  const tts = BigInt(Math.log2(t.levelBytes) - 11);
  const tps = BigInt(t.pageShift - 11);
  return ((BigInt(t.tableAddr) >> 12n) << 16n) | (BigInt(t.levels - 1) << 13n) | (tts << 8n) | tps;
}

export interface PeState {
  dmaFrozen: boolean;
  mmioFrozen: boolean;
  /** Why the PE froze (the PEST entry, roughly). */
  reason?: string;
}

export interface DmaResult {
  ok: boolean;
  data?: Uint8Array;
  reason?: string;
}

export class Phb {
  readonly gen: PhbGeneration;
  readonly reservedPe: number;
  readonly numPes: number;
  /** RID (bus<<8 | devfn) → PE number, as programmed by firmware for the kernel. */
  readonly rtt = new Map<number, number>();
  private readonly tvt: (Tve | null)[];
  private readonly geometry: (TveGeometry | null)[];
  readonly peState: PeState[];
  /** Cached leaf TCEs: TVE index → decoded page index → TCE. */
  private readonly tceCache = new Map<number, Map<number, number>>();
  tceCacheEnabled = true;
  /** How many PE/page kills the PHB has processed (for reports). */
  kills = 0;

  constructor(
    readonly index: number,
    model: PhbModel,
    readonly mem: PhysMemory,
    private readonly log: EventLog,
  ) {
    this.gen = PHB_GENERATIONS[model];
    this.numPes = this.gen.bigPhbs.includes(index) ? this.gen.numPes * 2 : this.gen.numPes;
    this.reservedPe = this.numPes - 1;
    this.tvt = new Array(this.numPes * 2).fill(null);
    this.geometry = new Array(this.numPes * 2).fill(null);
    this.peState = Array.from({ length: this.numPes }, () => ({ dmaFrozen: false, mmioFrozen: false }));
  }

  getTve(index: number): Tve | null {
    return this.tvt[index] ?? null;
  }

  /** Written through the IODA table registers by firmware. The PHB does not flush its cache. */
  setTve(index: number, tve: Tve | null): void {
    this.tvt[index] = tve;
    if (tve?.kind === 'xlate') {
      const entries = tve.levelBytes / 8;
      const span = entries ** tve.levels;
      const levelDiv = Array.from({ length: tve.levels }, (_, lev) => entries ** lev);
      this.geometry[index] = { pageSize: 2 ** tve.pageShift, entries, span, numeric: span * 2 ** tve.pageShift <= 2 ** 53, levelDiv };
    } else this.geometry[index] = null;
    this.log.emit({ layer: 'hw', kind: 'tve-write', phb: this.index, tve: index });
  }

  killAll(): void {
    this.tceCache.clear();
    this.kills++;
    this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'all', pe: -1 });
  }

  killPe(pe: number): void {
    if (this.tceCache.size) {
      this.tceCache.delete(pe * 2);
      this.tceCache.delete(pe * 2 + 1);
    }
    this.kills++;
    // Every map and unmap kills: the event body is built only for a listener.
    if (this.log.listening) this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'pe', pe });
    else this.log.tally('hw', 'tce-kill');
  }

  /** Invalidate `npages` TCEs of `pageShift` starting at bus address `bus` for one PE. */
  killPages(pe: number, pageShift: number, bus: bigint, npages: number): void {
    const tveIdx = pe * 2 + Number((bus >> TVE1_SELECT_BIT) & 1n);
    const tve = this.tvt[tveIdx];
    if (tve?.kind === 'xlate') {
      const size = 1n << BigInt(pageShift);
      const c = this.tceCache.get(tveIdx);
      // A kill of more pages than the cache holds may as well drop the whole window's entries.
      if (c && npages > c.size) this.tceCache.delete(tveIdx);
      else for (let i = 0; c && i < npages; i++) c.delete(decodedIndex(tve, bus + BigInt(i) * size));
    }
    this.kills++;
    this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'pages', pe });
  }

  /** The cached leaf TCEs of one TVE (decoded page index → TCE), for reports; nothing is cached here. */
  cachedEntries(tveIdx: number): ReadonlyMap<number, number> | undefined {
    return this.tceCache.get(tveIdx);
  }

  /** Number of cached translations (for reports and the checker). */
  get cachedTces(): number {
    let n = 0;
    for (const c of this.tceCache.values()) n += c.size;
    return n;
  }

  freeze(pe: number, reason: string): void {
    const s = this.peState[pe]!;
    if (!s.dmaFrozen) this.log.emit({ layer: 'hw', kind: 'eeh-freeze', phb: this.index, pe, reason });
    s.dmaFrozen = true;
    s.mmioFrozen = true;
    s.reason = reason;
  }

  unfreeze(pe: number, dma: boolean, mmio: boolean): void {
    const s = this.peState[pe]!;
    if (dma) s.dmaFrozen = false;
    if (mmio) s.mmioFrozen = false;
    if (!s.dmaFrozen && !s.mmioFrozen) {
      delete s.reason;
      this.log.emit({ layer: 'hw', kind: 'eeh-clear', phb: this.index, pe });
    }
  }

  /**
   * Translate one bus address for a device: TVE select, walk (through the cache), permission.
   * Returns the real address (or a fault reason) and how many bytes remain in the IOMMU page.
   * Does not freeze.
   */
  translate(pe: number, bus: bigint, write: boolean, checkStale = true): { pa?: number; reason?: string; stale?: boolean; remain: number } {
    // Bits 0..52 of the address (every bit a TVE decodes) and bit 59 (selects the TVE), as
    // numbers: an address below 2^53 converts whole, others go by their two 32-bit halves.
    let low = Number(bus);
    let sel = 0;
    // Number() rounds monotonically: a result in [0, 2^53) means the bigint was exactly that.
    if (!(low >= 0 && low <= Number.MAX_SAFE_INTEGER)) {
      const hi = Number(bus >> 32n);
      if (hi < 0 || hi >= 0x1000_0000) return { reason: 'address outside the DMA space', remain: 1 };
      sel = hi >= 0x800_0000 ? 1 : 0;
      low = (hi % 0x20_0000) * 0x1_0000_0000 + Number(bus & 0xffff_ffffn);
    }
    const tveIdx = pe * 2 + sel;
    const tve = this.tvt[tveIdx];
    if (!tve) return { reason: `access to invalid TVE#${sel}`, remain: 1 };
    if (tve.kind === 'bypass') {
      const a = bus & NO_TRANSLATE_MASK;
      const remain = 4096 - (low % 4096);
      if (a < tve.start || a >= tve.end) return { reason: 'no-translate address out of range', remain };
      const pa = Number(a);
      if (!this.mem.isRam(pa)) return { reason: 'no-translate address not in RAM', remain };
      return { pa, remain };
    }
    const g = this.geometry[tveIdx]!;
    const pageNo = Math.floor(low / g.pageSize);
    const offset = low - pageNo * g.pageSize;
    const remain = g.pageSize - offset;
    // A table reaching beyond 2^53 bytes of bus space decodes bits a number cannot hold.
    const key = g.numeric ? pageNo - Math.floor(pageNo / g.span) * g.span : decodedIndex(tve, bus);
    const cached = this.tceCacheEnabled && this.tceCache.size ? this.tceCache.get(tveIdx)?.get(key) : undefined;
    let tce: number;
    let stale = false;
    if (cached !== undefined) {
      tce = cached;
      // The hardware never re-reads memory on a hit; the walk only tells whether it is stale.
      if (checkStale) stale = this.walk(tve, key, g) !== cached;
    } else {
      tce = this.walk(tve, key, g);
      if (tce < 0) return { reason: WALK_REASONS[tce]!, remain };
    }
    const perm = tcePerm(tce);
    if (perm === 0) return { reason: 'TCE page fault (entry not valid)', remain, stale };
    if (write ? !(perm & TCE_PCI_WRITE) : !(perm & TCE_PCI_READ)) {
      return { reason: `TCE access fault (${write ? 'write' : 'read'} to a ${perm === 1 ? 'read-only' : 'write-only'} TCE)`, remain, stale };
    }
    if (cached === undefined && this.tceCacheEnabled) {
      let c = this.tceCache.get(tveIdx);
      if (!c) {
        c = new Map();
        this.tceCache.set(tveIdx, c);
      }
      c.set(key, tce);
    }
    const pa = Math.floor(tce / g.pageSize) * g.pageSize + offset;
    if (!this.mem.isRam(pa)) return { reason: 'TCE points outside RAM', remain, stale };
    return { pa, remain, stale };
  }

  /**
   * The hardware walk: `levels` reads, each indirect entry must carry a permission bit. Returns
   * the leaf TCE, or a WALK_ code (< 0).
   */
  private walk(tve: Extract<Tve, { kind: 'xlate' }>, pageIdx: number, g: TveGeometry): number {
    let base = tve.tableAddr;
    const entries = g.entries;
    for (let lev = tve.levels - 1; lev >= 0; lev--) {
      const q = Math.floor(pageIdx / g.levelDiv[lev]!);
      const slot = q - Math.floor(q / entries) * entries;
      const ea = base + slot * 8;
      if (!this.mem.isRam(ea)) return WALK_OUTSIDE_RAM;
      const tce = this.mem.readU64BE(ea);
      if (lev === 0) return tce;
      if (tcePerm(tce) === 0) return WALK_INVALID_INDIRECT;
      base = Math.floor(tce / 4096) * 4096;
    }
    return WALK_BAD_LEVELS;
  }

  /**
   * A device DMA of `len` bytes at bus address `bus` on behalf of RID `rid`. Reads return the
   * bytes; writes store `data`. A failed translation freezes the PE; a frozen PE moves no data.
   */
  dma(device: string, rid: number, bus: bigint, len: number, write: boolean, data?: Uint8Array): DmaResult {
    const pe = this.rtt.get(rid);
    if (pe === undefined) return this.dmaFail(device, bus, len, write, 'RID has no PE', false);
    if (this.peState[pe]!.dmaFrozen) return this.dmaFail(device, bus, len, write, `PE#${pe.toString(16)} is frozen`, false);
    const listening = this.log.listening;
    if (len <= 0) {
      // Nothing to translate or move.
      const none = write ? undefined : new Uint8Array(len);
      if (listening) this.log.emit({ layer: 'hw', kind: 'dma', device, bus, len, write, ok: true, pa: 0, stale: false });
      else this.log.tally('hw', 'dma');
      return none ? { ok: true, data: none } : { ok: true };
    }
    // The first IOMMU page; most DMAs end inside it.
    const t = this.translate(pe, bus, write, listening);
    if (t.pa === undefined) return this.dmaFault(pe, device, bus, len, write, t.reason!, bus, !!t.stale);
    let anyStale = !!t.stale;
    let out: Uint8Array | undefined;
    if (t.remain >= len) {
      if (write) this.mem.write(t.pa, data!.subarray(0, len));
      else out = this.mem.read(t.pa, len);
    } else {
      const pieces: { pa: number; n: number; off: number }[] = [{ pa: t.pa, n: t.remain, off: 0 }];
      let done = t.remain;
      while (done < len) {
        const a = bus + BigInt(done);
        const u = this.translate(pe, a, write, listening);
        if (u.stale) anyStale = true;
        if (u.pa === undefined) return this.dmaFault(pe, device, bus, len, write, u.reason!, a, anyStale);
        const n = Math.min(len - done, u.remain);
        pieces.push({ pa: u.pa, n, off: done });
        done += n;
      }
      if (write) {
        for (const p of pieces) this.mem.write(p.pa, data!.subarray(p.off, p.off + p.n));
      } else {
        out = new Uint8Array(len);
        for (const p of pieces) out.set(this.mem.read(p.pa, p.n), p.off);
      }
    }
    if (listening) this.log.emit({ layer: 'hw', kind: 'dma', device, bus, len, write, ok: true, pa: t.pa, stale: anyStale });
    else this.log.tally('hw', 'dma');
    return out ? { ok: true, data: out } : { ok: true };
  }

  /** A DMA that failed translation at `at`: the PE freezes. */
  private dmaFault(pe: number, device: string, bus: bigint, len: number, write: boolean, reason: string, at: bigint, stale: boolean): DmaResult {
    this.freeze(pe, `${reason} at 0x${at.toString(16)}`);
    return this.dmaFail(device, bus, len, write, reason, stale);
  }

  private dmaFail(device: string, bus: bigint, len: number, write: boolean, reason: string, stale: boolean): DmaResult {
    this.log.emit({ layer: 'hw', kind: 'dma', device, bus, len, write, ok: false, reason, stale });
    return { ok: false, reason };
  }
}

/** The page index a translated TVE decodes: bits above the table's reach are ignored. */
function decodedIndex(tve: Extract<Tve, { kind: 'xlate' }>, bus: bigint): number {
  const idxMask = (1n << BigInt((Math.log2(tve.levelBytes) - 3) * tve.levels)) - 1n;
  return Number((bus >> BigInt(tve.pageShift)) & idxMask);
}
