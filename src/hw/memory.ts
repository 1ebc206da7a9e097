/**
 * Physical memory: sparse, page-granular, with a buddy page allocator that hands out naturally
 * aligned power-of-two blocks up to the kernel's largest block, 2^(PAGE_SHIFT + MAX_PAGE_ORDER).
 * Every allocated block records its owner so the checker can tell a live page from a freed one.
 * Page contents are allocated lazily: a page never written reads as zeros.
 */
import type { EventLog } from '../base/events.js';
import { FreeArea } from './free-area.js';

export interface PageOwner {
  /** What holds the block: a kernel TCE table level, a user page, ... */
  kind: 'tce-table' | 'tce-shadow' | 'user' | 'kernel';
  label: string;
}

export interface Block {
  pfn: number;
  order: number;
  owner: PageOwner;
}

export interface MemoryConfig {
  ramBytes: number;
  pageShift: number;
  maxPageOrder: number;
  numaNodes?: number;
}

/** Entries of PhysMemory's cache of recently touched pages (a power of two). */
const RECENT_PAGES = 16;
/** How many dropped pages' storage PhysMemory keeps for reuse (4 MiB of 64 KiB pages). */
const SPARE_PAGES = 64;
/** Page frames per chunk of PhysMemory's page store (pfn >> CHUNK_SHIFT picks the chunk). */
const CHUNK_SHIFT = 12;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;

export class PhysMemory {
  readonly pageShift: number;
  readonly pageSize: number;
  /** pageSize - 1: the offset of an address in its page is `pa & pageMask` (pages are ≤ 2^30). */
  private readonly pageMask: number;
  readonly maxPageOrder: number;
  readonly totalPages: number;
  readonly numaNodes: number;
  /** The free lists by order, over block indices pfn / 2^order. */
  private readonly freeArea: FreeArea[] = [];
  private readonly allocated = new Map<number, Block>();
  /** Written pages' bytes, by page frame: chunks of 2^CHUNK_SHIFT frames, made on first write. */
  private readonly chunks: ((Uint8Array | undefined)[] | undefined)[];
  readonly ramBytes: number;
  private freePageCount = 0;
  /** The log's counts of page-alloc and page-free, for allocations with no listener. */
  private readonly allocEvents: { n: number } | undefined;
  private readonly freeEvents: { n: number } | undefined;

  constructor(
    cfg: MemoryConfig,
    private readonly log?: EventLog,
  ) {
    this.pageShift = cfg.pageShift;
    this.pageSize = 2 ** cfg.pageShift;
    if (cfg.pageShift > 30) throw new RangeError(`pageShift ${cfg.pageShift} is over the limit of 30`);
    this.pageMask = this.pageSize - 1;
    this.maxPageOrder = cfg.maxPageOrder;
    // Block sizes are `1 << order` below.
    if (cfg.maxPageOrder > 30) throw new RangeError(`maxPageOrder ${cfg.maxPageOrder} is over the limit of 30`);
    this.totalPages = Math.floor(cfg.ramBytes / this.pageSize);
    if (this.totalPages > 2 ** 32) throw new RangeError(`ramBytes ${cfg.ramBytes} is ${this.totalPages} pages, over the limit of 2^32 pages`);
    this.ramBytes = this.totalPages * this.pageSize;
    this.chunks = new Array(Math.ceil(this.totalPages / 2 ** CHUNK_SHIFT)).fill(undefined);
    this.numaNodes = cfg.numaNodes ?? 1;
    this.allocEvents = log?.counter('hw', 'page-alloc');
    this.freeEvents = log?.counter('hw', 'page-free');
    for (let o = 0; o <= this.maxPageOrder; o++) this.freeArea.push(new FreeArea(Math.ceil(this.totalPages / 2 ** o)));
    // Seed the free lists with the largest aligned blocks that fit.
    let pfn = 0;
    while (pfn < this.totalPages) {
      let o = this.maxPageOrder;
      while (o > 0 && (pfn % 2 ** o !== 0 || pfn + 2 ** o > this.totalPages)) o--;
      this.freeArea[o]!.add(pfn / 2 ** o);
      pfn += 2 ** o;
    }
    this.freePageCount = this.totalPages;
  }

  get freeBytes(): number {
    return this.freePageCount * this.pageSize;
  }

  /** The NUMA node of a page frame: RAM is split evenly between nodes. */
  nodeOf(pfn: number): number {
    return Math.min(this.numaNodes - 1, Math.floor((pfn * this.numaNodes) / this.totalPages));
  }

  /**
   * alloc_pages(order): a naturally aligned block of 2^order pages, or null when the order is
   * above MAX_PAGE_ORDER or no block is free. The block is zeroed.
   */
  allocPages(order: number, owner: PageOwner): number | null {
    if (order < 0 || order > this.maxPageOrder) return null;
    let o = order;
    while (o <= this.maxPageOrder && this.freeArea[o]!.nrFree === 0) o++;
    if (o > this.maxPageOrder) return null;
    // Lowest address first keeps allocation deterministic.
    let index = this.freeArea[o]!.lowest();
    this.freeArea[o]!.delete(index);
    const pfn = index * (1 << o);
    // Split: the upper half of each level down to `order` goes on the free list below.
    while (o > order) {
      o--;
      index *= 2;
      this.freeArea[o]!.add(index + 1);
    }
    this.allocated.set(pfn, { pfn, order, owner });
    this.freePageCount -= 1 << order;
    // Zeroed: written pages read as zeros again; chunks of the store never written are skipped.
    const end = pfn + (1 << order);
    for (let p = pfn; p < end; ) {
      if (this.chunks[p >>> CHUNK_SHIFT] === undefined) p = ((p >>> CHUNK_SHIFT) + 1) * (CHUNK_MASK + 1);
      else this.dropPage(p++);
    }
    if (this.log?.listening) this.log.emit({ layer: 'hw', kind: 'page-alloc', pfn, order, owner: owner.label });
    else if (this.allocEvents) this.allocEvents.n++;
    return pfn;
  }

  /** free_pages(): returns the block and merges buddies. Freeing an unknown block is a model bug. */
  freePages(pfn: number, order: number): void {
    const b = this.allocated.get(pfn);
    if (!b || b.order !== order) throw new Error(`free of a block not allocated: pfn ${pfn} order ${order}`);
    this.allocated.delete(pfn);
    this.freePageCount += 1 << order;
    if (this.log?.listening) this.log.emit({ layer: 'hw', kind: 'page-free', pfn, order, owner: b.owner.label });
    else if (this.freeEvents) this.freeEvents.n++;
    // Block indices stay below 2^32: the buddy is index ^ 1, the merged block index >>> 1.
    let index = pfn / (1 << order);
    let o = order;
    while (o < this.maxPageOrder) {
      const buddy = (index ^ 1) >>> 0;
      if (!this.freeArea[o]!.has(buddy)) break;
      this.freeArea[o]!.delete(buddy);
      index >>>= 1;
      o++;
    }
    this.freeArea[o]!.add(index);
  }

  /** The allocated block that contains a page frame, or null if the page is free. */
  blockOf(pfn: number): Block | null {
    for (let o = 0; o <= this.maxPageOrder; o++) {
      const head = Math.floor(pfn / (1 << o)) * (1 << o);
      const b = this.allocated.get(head);
      if (b && b.order >= o && pfn < head + (1 << b.order)) return b;
    }
    return null;
  }

  blocks(): IterableIterator<Block> {
    return this.allocated.values();
  }

  /**
   * Pages touched lately, direct-mapped by the low bits of the page frame: a table walk moves
   * between directory and leaf pages (of the table and of its userspace view), and TCE runs stay
   * within one page most of the time.
   */
  private readonly recentPfn = new Float64Array(RECENT_PAGES).fill(Number.NaN); // NaN: no page
  private readonly recentPage: (Uint8Array | null)[] = new Array(RECENT_PAGES).fill(null);

  private page(pa: number, forWrite: boolean): Uint8Array | null {
    // Below 2^32 an unsigned shift divides exactly.
    const pfn = pa >= 0 && pa <= 0xffff_ffff ? pa >>> this.pageShift : Math.floor(pa / this.pageSize);
    const slot = pfn & (RECENT_PAGES - 1);
    if (this.recentPfn[slot] === pfn) return this.recentPage[slot]!;
    if (pfn < 0 || pfn >= this.totalPages) throw new RangeError(`physical address 0x${pa.toString(16)} beyond RAM`);
    let p = this.stored(pfn);
    if (!p && forWrite) {
      p = this.spare.pop()?.fill(0) ?? new Uint8Array(this.pageSize);
      this.store(pfn, p);
    }
    if (p) {
      this.recentPfn[slot] = pfn;
      this.recentPage[slot] = p;
    }
    return p ?? null;
  }

  /**
   * The bytes of the page holding `pa` when it was ever written, else null (it reads as zeros).
   * For runs of 8-byte entries within one page (TCE table levels): no lookup per entry.
   */
  pageData(pa: number): Uint8Array | null {
    return this.page(pa, false);
  }

  /** The bytes of the page holding `pa`, allocated if it was never written. */
  pageDataForWrite(pa: number): Uint8Array {
    return this.page(pa, true)!;
  }

  /**
   * DataViews of pages touched lately, by page frame in the same slots as the recent pages (NaN:
   * none). A page dropped loses its view with its contents (dropPage).
   */
  private readonly viewPfn = new Float64Array(RECENT_PAGES).fill(Number.NaN);
  private readonly recentView: (DataView | null)[] = new Array(RECENT_PAGES).fill(null);

  /**
   * pageData() (or pageDataForWrite() when `forWrite`) as a DataView, for runs of 8-byte entries
   * (viewU64BE): a page touched lately keeps its view, which costs about 100 ns to make, and is
   * found by its page frame alone (one compare, no page lookup).
   */
  pageView(pa: number, forWrite: boolean): DataView | null {
    const pfn = pa >= 0 && pa <= 0xffff_ffff ? pa >>> this.pageShift : Math.floor(pa / this.pageSize);
    const slot = pfn & (RECENT_PAGES - 1);
    if (this.viewPfn[slot] === pfn) return this.recentView[slot]!;
    const p = this.page(pa, forWrite);
    if (!p) return null;
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    this.viewPfn[slot] = pfn;
    this.recentView[slot] = v;
    return v;
  }

  /** The stored bytes of a page frame in RAM, undefined when it was never written. */
  private stored(pfn: number): Uint8Array | undefined {
    return this.chunks[pfn >>> CHUNK_SHIFT]?.[pfn & CHUNK_MASK];
  }

  private store(pfn: number, bytes: Uint8Array | undefined): void {
    let c = this.chunks[pfn >>> CHUNK_SHIFT];
    if (!c) {
      if (!bytes) return;
      c = new Array(CHUNK_MASK + 1).fill(undefined);
      this.chunks[pfn >>> CHUNK_SHIFT] = c;
    }
    c[pfn & CHUNK_MASK] = bytes;
  }

  /**
   * Storage of pages whose contents went away (allocated again, so zeroed), kept for the next
   * page written: a table's levels come and go with its windows, and a fresh 64 KiB array each
   * time costs an allocation and, in numbers, a garbage collection.
   */
  private readonly spare: Uint8Array[] = [];

  /** Forget a page's storage (it reads as zeros again) and the last-page cache of it. */
  private dropPage(pfn: number): void {
    const p = this.stored(pfn);
    if (!p) return;
    if (this.spare.length < SPARE_PAGES) this.spare.push(p);
    this.store(pfn, undefined);
    const slot = pfn & (RECENT_PAGES - 1);
    if (this.recentPfn[slot] === pfn) {
      this.recentPfn[slot] = Number.NaN;
      this.recentPage[slot] = null;
    }
    if (this.viewPfn[slot] === pfn) {
      this.viewPfn[slot] = Number.NaN;
      this.recentView[slot] = null;
    }
  }

  /**
   * How many 8-byte-aligned big-endian words of RAM equal `value`: what a root scan of the
   * kernel's linear map (/proc/kcore) finds. Pages never written read as zero.
   */
  countU64BE(value: bigint): number {
    let n = 0;
    const hi = Number(value >> 32n);
    const lo = Number(value & 0xffff_ffffn);
    if (value === 0n) throw new RangeError('countU64BE: zero matches every untouched page');
    for (const c of this.chunks) {
      for (const p of c ?? []) {
        if (!p) continue;
        const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
        for (let off = 0; off < p.length; off += 8) if (dv.getUint32(off + 4, false) === lo && dv.getUint32(off, false) === hi) n++;
      }
    }
    return n;
  }

  /** Copy one page's contents to another (page migration). */
  copyPage(fromPfn: number, toPfn: number): void {
    const src = this.stored(fromPfn);
    this.dropPage(toPfn);
    if (src) this.store(toPfn, src.slice());
  }

  /** True when a physical address is backed by RAM. */
  isRam(pa: number): boolean {
    return pa >= 0 && pa < this.ramBytes;
  }

  /** Big-endian 64-bit read. Values must stay below 2^53 (real addresses plus permission bits do). */
  readU64BE(pa: number): number {
    const p = this.page(pa, false);
    return p ? getU64BE(p, pa & this.pageMask) : 0;
  }

  writeU64BE(pa: number, value: number): void {
    setU64BE(this.page(pa, true)!, pa & this.pageMask, value);
  }

  read(pa: number, len: number): Uint8Array {
    const off = pa & this.pageMask;
    if (off + len <= this.pageSize) {
      // Within one page: one copy, or zeros for a page never written.
      const p = this.page(pa, false);
      return p ? p.slice(off, off + len) : new Uint8Array(len);
    }
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const off = a % this.pageSize;
      const n = Math.min(len - done, this.pageSize - off);
      const p = this.page(a, false);
      if (p) out.set(p.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** read() into the caller's buffer: `out.length` bytes from `pa`. */
  readInto(pa: number, out: Uint8Array): void {
    const len = out.length;
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const off = a & this.pageMask;
      const n = Math.min(len - done, this.pageSize - off);
      const p = this.page(a, false);
      // Short pieces byte by byte: fill() and set() are calls that cost more than a few bytes.
      if (n <= 16) {
        if (p) for (let i = 0; i < n; i++) out[done + i] = p[off + i]!;
        else for (let i = 0; i < n; i++) out[done + i] = 0;
      } else if (p) out.set(p.subarray(off, off + n), done);
      else out.fill(0, done, done + n);
      done += n;
    }
  }

  /**
   * readInto() of at most 16 bytes within one page below 2^32 (what a device's small DMA reads
   * are), else readInto() itself: the stored page by its two indices, without the recent-page
   * slots (random reads mostly miss them, and a miss writes them).
   */
  readSmall(pa: number, out: Uint8Array): void {
    const off = pa & this.pageMask;
    const len = out.length;
    const pfn = pa >>> this.pageShift;
    if (pa !== pa >>> 0 || len > 16 || off + len > this.pageSize || pfn >= this.totalPages) this.readInto(pa, out);
    else {
      const p = this.stored(pfn);
      if (p === undefined) for (let i = 0; i < len; i++) out[i] = 0;
      else for (let i = 0; i < len; i++) out[i] = p[off + i]!;
    }
  }

  /**
   * readU64BE() of an address below 2^32 (a TCE table walk's reads) by the stored page's two
   * indices, without the recent-page slots; any other address through readU64BE() itself.
   */
  peekU64BE(pa: number): number {
    const pfn = pa >>> this.pageShift;
    if (pa !== pa >>> 0 || pfn >= this.totalPages) return this.readU64BE(pa);
    const p = this.stored(pfn);
    return p === undefined ? 0 : getU64BE(p, pa & this.pageMask);
  }

  write(pa: number, bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const a = pa + done;
      const off = a % this.pageSize;
      const n = Math.min(bytes.length - done, this.pageSize - off);
      this.page(a, true)!.set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Zero a range (pages that were never written stay unallocated). */
  zero(pa: number, len: number): void {
    let done = 0;
    while (done < len) {
      const a = pa + done;
      const off = a % this.pageSize;
      const n = Math.min(len - done, this.pageSize - off);
      const pfn = Math.floor(a / this.pageSize);
      if (off === 0 && n === this.pageSize) this.dropPage(pfn);
      else this.stored(pfn)?.fill(0, off, off + n);
      done += n;
    }
  }
}

/** The big-endian 64-bit value at byte `off` of `b` (below 2^53, as TCEs are). */
export function getU64BE(b: Uint8Array, off: number): number {
  const hi = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  const lo = ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0;
  return hi * 0x100000000 + lo;
}

/** Store `value` (below 2^53) big-endian at byte `off` of `b`. */
export function setU64BE(b: Uint8Array, off: number, value: number): void {
  const hi = Math.floor(value / 0x100000000);
  const lo = value >>> 0;
  b[off] = hi >>> 24;
  b[off + 1] = hi >>> 16;
  b[off + 2] = hi >>> 8;
  b[off + 3] = hi;
  b[off + 4] = lo >>> 24;
  b[off + 5] = lo >>> 16;
  b[off + 6] = lo >>> 8;
  b[off + 7] = lo;
}

/**
 * getU64BE through a DataView (PhysMemory.pageView): two 32-bit loads, a byte swap each. Entries
 * stay below 2^53.
 */
export function viewU64BE(dv: DataView, off: number): number {
  return dv.getUint32(off) * 0x100000000 + dv.getUint32(off + 4);
}

/** setU64BE through a DataView (see viewU64BE). */
export function viewSetU64BE(dv: DataView, off: number, value: number): void {
  dv.setUint32(off, Math.floor(value * (1 / 0x100000000)));
  dv.setUint32(off + 4, value >>> 0);
}
