/**
 * A PowerNV PCIe host bridge (PHB3 on POWER8, PHB4 on POWER9, PHB5 on POWER10) as far as DMA
 * goes: the RID→PE table, a TVT of two TVEs per PE (TVE#1 decodes bus addresses with bit 59 set),
 * translated and no-translate (bypass) TVEs, the table walk through a TCE cache that only a TCE
 * kill clears, and EEH freeze of a PE whose DMA fails.
 */
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from './memory.js';
import { RidTable } from './rtt.js';
import { TCE_PCI_READ, TCE_PCI_WRITE, tcePerm } from './tce.js';
import { TveCache } from './tce-cache.js';

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

/** What a translated TVE decodes, in numbers: IOMMU page size, entries per level, pages reached. */
interface TveGeometry {
  tableAddr: number;
  levels: number;
  pageShift: number;
  pageSize: number;
  /**
   * The decoded page index of a bus address below 2^32 is `(bus >>> pageShift) & keyMask`
   * when the span is a power of two and pages are 4 KiB to 1 GiB (the hit path), else -1.
   */
  keyMask: number;
  entries: number;
  span: number;
  /** The decoded page index fits a number (span × page size ≤ 2^53). */
  numeric: boolean;
  /** entries^level for each level, the divisor of the page index that picks that level's slot. */
  levelDiv: number[];
  /** log2(entries^level) per level when entries is a power of two up to 2^30 (slots by shift), else empty. */
  levelShift: number[];
  /** log2(entries) when levelShift has the shifts, else -1. */
  levelBits: number;
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
  readonly rtt = new RidTable();
  private readonly tvt: (Tve | null)[];
  private readonly geometry: (TveGeometry | null)[];
  readonly peState: PeState[];
  /** Cached leaf TCEs: by TVE index, decoded page index → TCE (one lookup on a hit). */
  private readonly tceCache: (TveCache | undefined)[];
  tceCacheEnabled = true;
  /** How many PE/page kills the PHB has processed (for reports). */
  kills = 0;
  /** The log's counts of DMAs, TCE kills and TVE writes, for the paths that count without a listener. */
  private readonly dmaEvents: { n: number };
  private readonly killEvents: { n: number };
  private readonly tveEvents: { n: number };

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
    this.tceCache = new Array(this.numPes * 2).fill(undefined);
    this.dmaEvents = log.counter('hw', 'dma');
    this.killEvents = log.counter('hw', 'tce-kill');
    this.tveEvents = log.counter('hw', 'tve-write');
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
      const bits = Math.log2(entries);
      // Slots by shift and mask need a power of two that `&` can mask (below 2^31).
      const shifts = Number.isInteger(bits) && bits <= 30;
      const levelDiv: number[] = [];
      const levelShift: number[] = [];
      for (let lev = 0; lev < tve.levels; lev++) {
        levelDiv.push(entries ** lev);
        if (shifts) levelShift.push(lev * bits);
      }
      const pageSize = 2 ** tve.pageShift;
      // The hit path walks by shift and mask, a level at a time (at least one level of two entries or more).
      const hitPath = levelShift.length > 0 && bits >= 1 && tve.pageShift >= 12 && tve.pageShift <= 30;
      this.geometry[index] = {
        tableAddr: tve.tableAddr,
        levels: tve.levels,
        pageShift: tve.pageShift,
        pageSize,
        // Below 2^32 with 4K pages or more the page number is below 2^20: a mask of 2^30 - 1 keeps it whole.
        keyMask: hitPath ? Math.min(span, 2 ** 30) - 1 : -1,
        entries,
        span,
        numeric: span * 2 ** tve.pageShift <= 2 ** 53,
        levelDiv,
        levelShift,
        levelBits: levelShift.length ? bits : -1,
      };
    } else this.geometry[index] = null;
    if (this.log.listening) this.log.emit({ layer: 'hw', kind: 'tve-write', phb: this.index, tve: index });
    else this.tveEvents.n++;
  }

  killAll(): void {
    for (const c of this.tceCache) c?.clear();
    this.kills++;
    this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'all', pe: -1 });
  }

  killPe(pe: number): void {
    this.tceCache[pe * 2]?.clear();
    this.tceCache[pe * 2 + 1]?.clear();
    this.kills++;
    // Every map and unmap kills: the event body is built only for a listener.
    if (this.log.listening) this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'pe', pe });
    else this.killEvents.n++;
  }

  /** Invalidate `npages` TCEs of `pageShift` starting at bus address `bus` for one PE. */
  killPages(pe: number, pageShift: number, bus: bigint, npages: number): void {
    const tveIdx = pe * 2 + Number((bus >> TVE1_SELECT_BIT) & 1n);
    const tve = this.tvt[tveIdx];
    if (tve?.kind === 'xlate') {
      const size = 1n << BigInt(pageShift);
      const c = this.tceCache[tveIdx];
      // A kill of more pages than the cache holds may as well drop the whole window's entries.
      if (c && npages > c.size) c.clear();
      else for (let i = 0; c && i < npages; i++) c.delete(decodedIndex(tve, bus + BigInt(i) * size));
    }
    this.kills++;
    this.log.emit({ layer: 'hw', kind: 'tce-kill', phb: this.index, scope: 'pages', pe });
  }

  /** The cached leaf TCEs of one TVE (decoded page index → TCE), for reports; nothing is cached here. */
  cachedEntries(tveIdx: number): ReadonlyMap<number, number> | undefined {
    return this.tceCache[tveIdx]?.entries();
  }

  /** Number of cached translations (for reports and the checker). */
  get cachedTces(): number {
    let n = 0;
    for (const c of this.tceCache) if (c) n += c.size;
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
  translate(pe: number, bus: bigint, write: boolean, checkStale = true): { pa?: number; reason?: string; stale: boolean; remain: number } {
    const pa = this.translateBus(pe, bus, write, checkStale);
    if (pa < 0) return { reason: this.xReason, remain: this.xRemain, stale: this.xStale };
    return { pa, remain: this.xRemain, stale: this.xStale };
  }

  /** Bytes left in the IOMMU page after the last translated address. */
  private xRemain = 0;
  /** The last translation hit a cached TCE that memory no longer holds (checked on request). */
  private xStale = false;
  /** Why the last translation faulted. */
  private xReason = '';

  /** translateAt() of a bus address given as a bigint or as a number below 2^53. */
  private translateBus(pe: number, bus: bigint | number, write: boolean, checkStale: boolean): number {
    if (typeof bus === 'number') return this.translateAt(pe, bus, 0, undefined, write, checkStale);
    // Bits 0..52 of the address (every bit a TVE decodes) and bit 59 (selects the TVE), as
    // numbers: an address below 2^53 converts whole, others go by their two 32-bit halves.
    const low = Number(bus);
    // Number() rounds monotonically: a result in [0, 2^53) means the bigint was exactly that.
    if (low >= 0 && low <= Number.MAX_SAFE_INTEGER) return this.translateAt(pe, low, 0, bus, write, checkStale);
    const hi = Number(bus >> 32n);
    if (hi < 0 || hi >= 0x1000_0000) return this.fault('address outside the DMA space', 1, false);
    return this.translateAt(pe, (hi % 0x20_0000) * 0x1_0000_0000 + Number(bus & 0xffff_ffffn), hi >= 0x800_0000 ? 1 : 0, bus, write, checkStale);
  }

  private fault(reason: string, remain: number, stale: boolean): number {
    this.xReason = reason;
    this.xRemain = remain;
    this.xStale = stale;
    return -1;
  }

  /**
   * The translation in numbers, allocating nothing: `low` is bits 0..52 of the bus address,
   * `sel` its bit 59, `bus` the whole address when it is a bigint (a number address is `low`).
   * Returns the real address and sets xRemain/xStale, or returns -1 with xReason set.
   */
  private translateAt(pe: number, low: number, sel: number, bus: bigint | undefined, write: boolean, checkStale: boolean): number {
    const tveIdx = pe * 2 + sel;
    const tve = this.tvt[tveIdx];
    if (!tve) return this.fault(sel ? 'access to invalid TVE#1' : 'access to invalid TVE#0', 1, false);
    if (tve.kind === 'bypass') {
      // The no-translate address is bits 0..49.
      const a = low % 0x4_0000_0000_0000;
      const remain = 4096 - (low % 4096);
      if (a < tve.start || a >= tve.end) return this.fault('no-translate address out of range', remain, false);
      if (!this.mem.isRam(a)) return this.fault('no-translate address not in RAM', remain, false);
      this.xRemain = remain;
      this.xStale = false;
      return a;
    }
    const g = this.geometry[tveIdx]!;
    // Below 2^32 an unsigned shift divides exactly.
    const pageNo = low <= 0xffff_ffff ? low >>> g.pageShift : Math.floor(low / g.pageSize);
    const offset = low - pageNo * g.pageSize;
    const remain = g.pageSize - offset;
    // A table reaching beyond 2^53 bytes of bus space decodes bits a number cannot hold.
    const key = g.numeric ? pageNo - Math.floor(pageNo / g.span) * g.span : decodedIndex(tve, bus ?? BigInt(low));
    const cache = this.tceCacheEnabled ? this.tceCache[tveIdx] : undefined;
    const cached = cache === undefined ? -1 : cache.get(key);
    let tce: number;
    let stale = false;
    if (cached >= 0) {
      tce = cached;
      // The hardware never re-reads memory on a hit; the walk only tells whether it is stale.
      if (checkStale) stale = this.walk(g, key) !== cached;
    } else {
      tce = this.walk(g, key);
      if (tce < 0) return this.fault(WALK_REASONS[tce]!, remain, false);
    }
    const perm = tcePerm(tce);
    if (perm === 0) return this.fault('TCE page fault (entry not valid)', remain, stale);
    if (write ? !(perm & TCE_PCI_WRITE) : !(perm & TCE_PCI_READ)) {
      return this.fault(`TCE access fault (${write ? 'write' : 'read'} to a ${perm === 1 ? 'read-only' : 'write-only'} TCE)`, remain, stale);
    }
    if (cached < 0 && this.tceCacheEnabled) this.cacheFill(tveIdx, g, key, tce);
    const pa = Math.floor(tce / g.pageSize) * g.pageSize + offset;
    if (!this.mem.isRam(pa)) return this.fault('TCE points outside RAM', remain, stale);
    this.xRemain = remain;
    this.xStale = stale;
    return pa;
  }

  /**
   * The hit path of a DMA of `len` bytes from RID `rid`: a bus address below 2^32 into one IOMMU
   * page of TVE#0 of a PE that is not frozen, a translated TVE whose geometry has a keyMask, the
   * TCE cached or walked, the access permitted, the page in RAM. Returns the real address, or -1
   * for anything else (no PE, a fault, a bypass TVE, another geometry, several pages) having
   * changed nothing that translateAt() would not change for the same address: the caller then
   * goes the whole way. Does not check cached TCEs for staleness (nobody listens).
   */
  private translateHit(rid: number, bus: number, len: number, write: boolean): number {
    const pe = this.rtt.peOf(rid);
    if (pe < 0 || bus !== bus >>> 0 || len === 0 || this.peState[pe]!.dmaFrozen) return -1;
    const g = this.geometry[pe * 2];
    if (g == null || g.keyMask < 0) return -1;
    const offset = bus & (g.pageSize - 1);
    if (offset + len > g.pageSize) return -1;
    const key = (bus >>> g.pageShift) & g.keyMask;
    const cache = this.tceCacheEnabled ? this.tceCache[pe * 2] : undefined;
    let tce = cache === undefined ? -1 : cache.get(key);
    if (tce < 0) tce = this.walkHit(pe * 2, g, key, write);
    else if ((write ? tce & TCE_PCI_WRITE : tce & TCE_PCI_READ) === 0) return -1;
    if (tce < 0) return -1;
    // The TCE's page: its low bits (below 2^32, so `>>> 0` keeps them) cleared.
    const pa = tce - ((tce >>> 0) & (g.pageSize - 1)) + offset;
    return pa < this.mem.ramBytes ? pa : -1;
  }

  /**
   * translateHit() on a cache miss: the walked TCE when it permits the access (cached, as
   * translateAt() caches it once the permission passed), else -1.
   */
  private walkHit(tveIdx: number, g: TveGeometry, key: number, write: boolean): number {
    // walk() by shift and mask (a hit-path geometry has them): a read outside RAM or an indirect
    // entry without permission is a fault, for the whole path to report.
    const bits = g.levelBits;
    let base = g.tableAddr;
    let tce = 0;
    for (let sh = (g.levels - 1) * bits; ; sh -= bits) {
      const ea = base + (sh < 32 ? (key >>> sh) & (g.entries - 1) : 0) * 8;
      if (ea >= this.mem.ramBytes) return -1;
      tce = this.mem.peekU64BE(ea);
      if (sh === 0) break;
      if (tcePerm(tce) === 0) return -1;
      // The next level's address: the TCE's low 12 bits cleared (`>>> 0` keeps them exactly).
      base = tce - ((tce >>> 0) & 0xfff);
    }
    if ((write ? tce & TCE_PCI_WRITE : tce & TCE_PCI_READ) === 0) return -1;
    if (this.tceCacheEnabled) this.cacheFill(tveIdx, g, key, tce);
    return tce;
  }

  /** Cache a walked TCE (the TVE's cache made on first use). */
  private cacheFill(tveIdx: number, g: TveGeometry, key: number, tce: number): void {
    const cache = this.tceCache[tveIdx];
    if (cache) cache.set(key, tce);
    else {
      const c = new TveCache(g.span);
      c.set(key, tce);
      this.tceCache[tveIdx] = c;
    }
  }

  /**
   * The hardware walk: `levels` reads, each indirect entry must carry a permission bit. Returns
   * the leaf TCE, or a WALK_ code (< 0).
   */
  private walk(g: TveGeometry, pageIdx: number): number {
    let base = g.tableAddr;
    const entries = g.entries;
    // Below 2^32 with a power-of-two level: the slot by shift and mask.
    const shifts = pageIdx <= 0xffff_ffff && g.levelShift.length ? g.levelShift : undefined;
    for (let lev = g.levels - 1; lev >= 0; lev--) {
      let slot: number;
      if (shifts) {
        const sh = shifts[lev]!;
        slot = sh >= 32 ? 0 : (pageIdx >>> sh) & (entries - 1);
      } else {
        const q = Math.floor(pageIdx / g.levelDiv[lev]!);
        slot = q - Math.floor(q / entries) * entries;
      }
      const ea = base + slot * 8;
      if (!this.mem.isRam(ea)) return WALK_OUTSIDE_RAM;
      const tce = this.mem.peekU64BE(ea);
      if (lev === 0) return tce;
      if (tcePerm(tce) === 0) return WALK_INVALID_INDIRECT;
      // The next level's address: the TCE's low 12 bits cleared (`>>> 0` keeps them exactly).
      base = tce - ((tce >>> 0) & 0xfff);
    }
    return WALK_BAD_LEVELS;
  }

  /**
   * A device DMA of `len` bytes at bus address `bus` on behalf of RID `rid`. Reads return the
   * bytes; writes store `data`. A failed translation freezes the PE; a frozen PE moves no data.
   */
  dma(device: string, rid: number, bus: bigint, len: number, write: boolean, data?: Uint8Array): DmaResult {
    if (write) {
      const reason = this.transfer(device, rid, bus, data!.subarray(0, len), true);
      return reason === undefined ? { ok: true } : { ok: false, reason };
    }
    const out = new Uint8Array(len);
    const reason = this.transfer(device, rid, bus, out, false);
    return reason === undefined ? { ok: true, data: out } : { ok: false, reason };
  }

  /**
   * The device side of a DMA without a result object: reads fill `buf` (its whole length) from
   * bus address `bus`, writes store it there. `bus` may be a number below 2^53. Returns undefined
   * when the DMA moved the data, else the fault (the PE froze, as with dma()).
   */
  transfer(device: string, rid: number, bus: bigint | number, buf: Uint8Array, write: boolean): string | undefined {
    // The common case apart, small enough for V8 to inline: a number address below 2^32 into
    // one IOMMU page of a PE that is not frozen, translated, nobody listening.
    if (typeof bus === 'number' && !this.log.listening) {
      const pa = this.translateHit(rid, bus, buf.length, write);
      if (pa >= 0) {
        if (write) this.mem.write(pa, buf);
        else this.mem.readSmall(pa, buf);
        this.dmaEvents.n++;
        return undefined;
      }
    }
    return this.transferAny(device, rid, bus, buf, write);
  }

  /** transfer() of any DMA: events for a listener, faults, several pages, bigint addresses. */
  private transferAny(device: string, rid: number, bus: bigint | number, buf: Uint8Array, write: boolean): string | undefined {
    if (typeof bus === 'number' && !(Number.isSafeInteger(bus) && bus >= 0)) {
      throw new RangeError(`DMA bus address ${bus}: a number address must be an integer in [0, 2^53)`);
    }
    const len = buf.length;
    const pe = this.rtt.peOf(rid);
    if (pe < 0) return this.dmaFail(device, bus, len, write, 'RID has no PE', false);
    if (this.peState[pe]!.dmaFrozen) return this.dmaFail(device, bus, len, write, `PE#${pe.toString(16)} is frozen`, false);
    const listening = this.log.listening;
    if (len === 0) {
      // Nothing to translate or move.
      if (listening) this.log.emit({ layer: 'hw', kind: 'dma', device, bus: BigInt(bus), len, write, ok: true, pa: 0, stale: false });
      else this.dmaEvents.n++;
      return undefined;
    }
    // The first IOMMU page; most DMAs end inside it.
    const pa = this.translateBus(pe, bus, write, listening);
    if (pa < 0) return this.dmaFault(pe, device, bus, len, write, this.xReason, bus, this.xStale);
    let anyStale = this.xStale;
    if (this.xRemain >= len) {
      if (write) this.mem.write(pa, buf);
      else this.mem.readInto(pa, buf);
    } else {
      // Translate every page first: a fault moves no data.
      const pas: number[] = [pa];
      const ns: number[] = [this.xRemain];
      // Past 2^53 the address goes on as a bigint.
      const big = typeof bus === 'bigint' || bus + len > Number.MAX_SAFE_INTEGER ? BigInt(bus) : undefined;
      let done = this.xRemain;
      while (done < len) {
        const a = big === undefined ? (bus as number) + done : big + BigInt(done);
        const u = this.translateBus(pe, a, write, listening);
        if (this.xStale) anyStale = true;
        if (u < 0) return this.dmaFault(pe, device, bus, len, write, this.xReason, a, anyStale);
        const n = Math.min(len - done, this.xRemain);
        pas.push(u);
        ns.push(n);
        done += n;
      }
      let off = 0;
      for (let i = 0; i < pas.length; i++) {
        const piece = buf.subarray(off, off + ns[i]!);
        if (write) this.mem.write(pas[i]!, piece);
        else this.mem.readInto(pas[i]!, piece);
        off += ns[i]!;
      }
    }
    if (listening) this.log.emit({ layer: 'hw', kind: 'dma', device, bus: BigInt(bus), len, write, ok: true, pa, stale: anyStale });
    else this.dmaEvents.n++;
    return undefined;
  }

  /** A DMA that failed translation at `at`: the PE freezes. */
  private dmaFault(pe: number, device: string, bus: bigint | number, len: number, write: boolean, reason: string, at: bigint | number, stale: boolean): string {
    this.freeze(pe, `${reason} at 0x${at.toString(16)}`);
    return this.dmaFail(device, bus, len, write, reason, stale);
  }

  private dmaFail(device: string, bus: bigint | number, len: number, write: boolean, reason: string, stale: boolean): string {
    this.log.emit({ layer: 'hw', kind: 'dma', device, bus: BigInt(bus), len, write, ok: false, reason, stale });
    return reason;
  }
}

/** The page index a translated TVE decodes: bits above the table's reach are ignored. */
function decodedIndex(tve: Extract<Tve, { kind: 'xlate' }>, bus: bigint): number {
  const idxMask = (1n << BigInt((Math.log2(tve.levelBytes) - 3) * tve.levels)) - 1n;
  return Number((bus >> BigInt(tve.pageShift)) & idxMask);
}
