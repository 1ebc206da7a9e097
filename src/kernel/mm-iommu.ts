/**
 * Preregistered IOMMU memory (arch/powerpc/mm/book3s64/iommu_api.c): per-mm regions of pinned
 * user memory that VFIO v2 maps from, with their use and mapping counts.
 */
import { pow2 } from '../base/bits.js';
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from '../hw/memory.js';
import type { Quirks } from './quirks.js';
import { accountLockedVm, type Mapping, type Process, pinUserPagesUpTo, unpinUserPage } from './process.js';

export interface MmIommuRegion {
  ua: bigint;
  /** Number of kernel pages. */
  entries: number;
  /** Largest IOMMU page shift mm_iommu_ua_to_hpa() allows (mem->pageshift). */
  pageshift: number;
  /** Physical address of each kernel page. */
  hpas: number[];
  /**
   * page_shift(compound_head(page)) of each pinned page, as pinned at registration (a hugetlb or
   * THP page stays compound while pinned); null when every page is a small page.
   */
  pageShifts: Uint8Array | null;
  /** References (mm_iommu_get / new). */
  used: number;
  /** 1 = live with no mappings; each TCE adds one; 0 = being released. */
  mapped: number;
}

export interface MmIommuContext {
  mem: PhysMemory;
  log: EventLog;
  /** The page shift of a transparent huge page (PMD size); 0 when the MMU has none. */
  thpShift: number;
  quirks: Quirks;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function ffs(n: bigint): number {
  if (n === 0n) return 64;
  let i = 0;
  while (((n >> BigInt(i)) & 1n) === 0n) i++;
  return i;
}

/**
 * mm_iommu_new(): pin and account a new region; -EINVAL on overlap, -ENOMEM over the limit. A
 * pin that stops part way returns what pin_user_pages() returned for its chunk: the number of
 * pages it pinned (a positive ioctl return; quirk `register-partial-pin-count`), or -errno when
 * it pinned none (or when fixed).
 */
export function mmIommuNew(ctx: MmIommuContext, proc: Process, ua: bigint, entries: number): MmIommuRegion | number {
  const { mem } = ctx;
  const mm = proc.mm;
  const shift = mem.pageShift;
  let ret = accountLockedVm(proc, mm, entries, true, shift, ctx.log);
  if (ret) return ret;
  // vzalloc(entries * sizeof(hpa)): an empty region is a zero-byte vmalloc, which WARNs and fails.
  if (entries === 0) {
    accountLockedVm(proc, mm, entries, false, shift, ctx.log);
    return -12;
  }
  const hpas: number[] = [];
  ret = pinChunks(ctx, proc, ua, entries, hpas);
  const end = ua + (BigInt(entries) << BigInt(shift));
  if (!ret) {
    for (const r of mm.iommuGroupMemList) {
      const rEnd = r.ua + (BigInt(r.entries) << BigInt(shift));
      if (r.ua < end && ua < rEnd) {
        ret = -22;
        break;
      }
    }
  }
  if (ret) {
    const vpn0 = Number(ua >> BigInt(shift));
    for (let i = 0; i < hpas.length; i++) unpinUserPage(mm, vpn0 + i);
    accountLockedVm(proc, mm, entries, false, shift, ctx.log);
    return ret;
  }
  const region: MmIommuRegion = { ua, entries, pageshift: 0, hpas, pageShifts: null, used: 1, mapped: 1 };
  setPageShifts(ctx, proc, region);
  mm.iommuGroupMemList.unshift(region);
  return region;
}

/**
 * mm_iommu_do_alloc()'s pinning: pin_user_pages() a chunk of entries at a time (as many as a
 * MAX_PAGE_ORDER block of vma pointers holds). 0 when every page is pinned, else what the short
 * chunk returned.
 */
function pinChunks(ctx: MmIommuContext, proc: Process, ua: bigint, entries: number, hpas: number[]): number {
  const { mem } = ctx;
  const chunk = Math.min(2 ** (mem.pageShift + mem.maxPageOrder) / 8, entries);
  for (let entry = 0; entry < entries; entry += chunk) {
    const n = Math.min(entries - entry, chunk);
    const before = hpas.length;
    const err = pinUserPagesUpTo(proc.mm, mem, ua + (BigInt(entry) << BigInt(mem.pageShift)), n, { write: true, thpShift: ctx.thpShift }, hpas);
    if (err) return hpas.length > before && ctx.quirks['register-partial-pin-count'] ? hpas.length - before : err;
  }
  return 0;
}

/**
 * The region's mem->pageshift and its pages' compound shifts. The kernel starts from the natural
 * alignment of ua and size, then walks the pinned pages keeping the smaller of that and
 * `pageshift`, a variable set to a page's huge size only when the page is hugetlb (PageHuge)
 * and mem->pageshift is still above PAGE_SHIFT, and never set back: once a hugetlb page was seen,
 * the small pages after it keep its size in the result (its check at map time then falls to
 * tce_page_is_contained()). Quirk `prereg-pageshift-sticky`; fixed, each page counts for itself.
 */
function setPageShifts(ctx: MmIommuContext, proc: Process, region: MmIommuRegion): void {
  const shift = ctx.mem.pageShift;
  let memShift = ffs(region.ua | (BigInt(region.entries) << BigInt(shift)));
  let pageshift = shift;
  let m: Mapping | undefined;
  for (let i = 0; i < region.entries; i++) {
    const va = region.ua + (BigInt(i) << BigInt(shift));
    if (!m || va < m.start || va >= m.end) m = proc.mm.findMapping(va);
    // Only a huge mapping faults pages in as compound blocks.
    const compound = m?.kind === 'hugetlb' || m?.kind === 'thp' ? compoundShift(ctx.mem, region.hpas[i]!) : shift;
    if (compound > shift) {
      region.pageShifts ??= new Uint8Array(region.entries).fill(shift);
      region.pageShifts[i] = compound;
    }
    if (memShift > shift && m?.kind === 'hugetlb') pageshift = compound;
    else if (!ctx.quirks['prereg-pageshift-sticky']) pageshift = shift;
    memShift = Math.min(memShift, pageshift);
  }
  region.pageshift = memShift;
}

/** page_shift(compound_head(page)) of the user page at physical address `hpa`: its block's size. */
function compoundShift(mem: PhysMemory, hpa: number): number {
  const b = mem.blockOf(Math.floor(hpa / mem.pageSize));
  return b && b.owner.kind === 'user' ? mem.pageShift + b.order : mem.pageShift;
}

/** mm_iommu_get(): an exact (ua, entries) match, with a new reference. */
export function mmIommuGet(proc: Process, ua: bigint, entries: number): MmIommuRegion | null {
  const r = proc.mm.iommuGroupMemList.find((m) => m.ua === ua && m.entries === entries);
  if (!r) return null;
  r.used++;
  return r;
}

/** mm_iommu_put(): drops a reference; the last one unpins and unaccounts unless mapped (-EBUSY). */
export function mmIommuPut(ctx: MmIommuContext, proc: Process, mem: MmIommuRegion): number {
  if (mem.used === 0) return -2;
  mem.used--;
  if (mem.used > 0) return 0;
  if (mem.mapped !== 1) {
    mem.used++;
    return -16;
  }
  mem.mapped = 0;
  const list = proc.mm.iommuGroupMemList;
  list.splice(list.indexOf(mem), 1);
  const shift = ctx.mem.pageShift;
  const vpn0 = Number(mem.ua >> BigInt(shift));
  for (let i = 0; i < mem.entries; i++) unpinUserPage(proc.mm, vpn0 + i);
  accountLockedVm(proc, proc.mm, mem.entries, false, shift, ctx.log);
  return 0;
}

/** mm_iommu_lookup(): the first region that fully contains [ua, ua+size). */
export function mmIommuLookup(proc: Process, kernelPageShift: number, ua: bigint, size: bigint): MmIommuRegion | null {
  for (const r of proc.mm.iommuGroupMemList) {
    const end = r.ua + (BigInt(r.entries) << BigInt(kernelPageShift));
    if (ua >= r.ua && ua + size <= end) return r;
  }
  return null;
}

/** mm_iommu_mapped_inc(): fails (-ENXIO) once the region is being released. */
export function mmIommuMappedInc(mem: MmIommuRegion): number {
  if (mem.mapped === 0) return -6;
  mem.mapped++;
  return 0;
}

/** `n` of mmIommuMappedDec() on a region whose pages allow the IOMMU page size. */
function mappedDecBy(r: MmIommuRegion, n: number, pageshift: number): void {
  if (n > 0 && pageshift <= r.pageshift && r.mapped > 1) r.mapped = Math.max(1, r.mapped - n);
}

/** mm_iommu_mapped_dec(). */
export function mmIommuMappedDec(mem: MmIommuRegion): void {
  if (mem.mapped > 1) mem.mapped--;
}

/**
 * mm_iommu_lookup() + mm_iommu_ua_to_hpa() for the IOMMU pages of one run of user addresses,
 * given as byte offsets from `ua0`. Regions never overlap (mm_iommu_new refuses that), so the
 * region that held the last page is the only one that can hold the next page inside it; only a
 * page outside it is looked up again.
 */
export class MmIommuRun {
  private r: MmIommuRegion | null = null;
  /** The offset of `ua0` inside `r`, and r's size in bytes. */
  private at = 0;
  private bytes = 0;
  private readonly kpage: number;
  /** 1 / kpage: a product instead of a quotient, exact for a power of two. */
  private readonly kinv: number;
  /** ua0's offset in its kernel page. */
  private ua0Off = 0;
  /** The IOMMU page size in bytes: a page must fit the region whole. */
  private size = 0;
  /** r's user address as a number when below 2^53, else -1. */
  private rUa = -1;
  /** The user address offsets are taken from (-1 before the first restart). */
  private ua0 = -1n;

  constructor(
    private readonly proc: Process,
    private readonly kernelPageShift: number,
    size: number,
    ua0: bigint,
  ) {
    this.kpage = pow2(kernelPageShift);
    this.kinv = 1 / this.kpage;
    this.restart(ua0, size);
  }

  /**
   * A new run of the same process from `ua0` (a caller reuses one run for many calls). The region
   * found last stays while it is registered (mm_iommu_put() zeroes `mapped` as it unlists one).
   */
  restart(ua0: bigint, size: number): void {
    if (ua0 === this.ua0 && size === this.size) {
      // The same run again (the releases' run from 0): only the region may have gone.
      if (this.r && this.r.mapped === 0) this.r = null;
      return;
    }
    this.ua0 = ua0;
    this.size = size;
    const n = Number(ua0);
    // No `%` on numbers past 2^31 (a call to fmod): the quotient times the page gives it back.
    this.ua0Off = ua0 >= 0n && ua0 <= SAFE ? n - Math.floor(n * this.kinv) * this.kpage : Number(ua0 & BigInt(this.kpage - 1));
    const r = this.r;
    // Far from r the difference may round, but stays far outside it: region() looks up again.
    // Both below 2^53, the difference of the numbers is exact (no bigint made).
    if (r && r.mapped !== 0) this.at = this.rUa >= 0 && ua0 >= 0n && ua0 <= SAFE ? n - this.rUa : Number(ua0 - r.ua);
    else this.r = null;
  }

  /** The region holding the page at ua0 + d, or null (mm_iommu_lookup). */
  region(d: number): MmIommuRegion | null {
    const o = this.at + d;
    if (this.r && o >= 0 && o + this.size <= this.bytes) return this.r;
    const ua = this.ua0 + BigInt(d);
    const r = mmIommuLookup(this.proc, this.kernelPageShift, ua, BigInt(this.size));
    this.r = r;
    if (r) {
      // ua0 - r.ua lies within 2^53 of the page's offset d, so it is exact as a number.
      this.at = Number(this.ua0 - r.ua);
      this.rUa = r.ua <= SAFE ? Number(r.ua) : -1;
      this.bytes = r.entries * this.kpage;
    }
    return r;
  }

  /**
   * mm_iommu_ua_to_hpa() for the page at ua0 + d of the region region(d) returned: -1 when the
   * IOMMU page is larger than the region's pages allow (a number either way: no boxing).
   */
  hpa(r: MmIommuRegion, d: number, pageshift: number): number {
    if (pageshift > r.pageshift) return -1;
    const entry = Math.floor((this.at + d) * this.kinv);
    const off = this.ua0Off + d;
    return r.hpas[entry]! + (off - Math.floor(off * this.kinv) * this.kpage);
  }

  /** The compound page shift of the pinned kernel page at ua0 + d of `r` (tce_page_is_contained()). */
  pageShiftAt(r: MmIommuRegion, d: number): number {
    return r.pageShifts ? r.pageShifts[Math.floor((this.at + d) * this.kinv)]! : this.kernelPageShift;
  }

  /**
   * How many IOMMU pages `step` bytes apart from ua0 + d on the region region(d) just returned
   * holds whole (at least 1: the page at d).
   */
  span(d: number, step: number): number {
    return Math.floor((this.bytes - this.size - (this.at + d)) / step) + 1;
  }

  /**
   * hpa() of `count` pages `step` bytes apart from ua0 + d on, all inside `r` (span()) and of a
   * page size its pages allow, into out[from…]. A step of whole kernel pages keeps the offset in
   * the kernel page and moves the entry by step / kpage.
   */
  hpas(r: MmIommuRegion, d: number, step: number, count: number, out: Float64Array, from: number): void {
    const h = r.hpas;
    const kpage = this.kpage;
    const kinv = this.kinv;
    if (step >= kpage) {
      const off = this.ua0Off;
      const e0 = Math.floor((this.at + d) * kinv);
      const stride = step * kinv;
      for (let j = 0; j < count; j++) out[from + j] = h[e0 + j * stride]! + off;
      return;
    }
    for (let j = 0, dj = d; j < count; j++, dj += step) {
      const off = this.ua0Off + dj;
      out[from + j] = h[Math.floor((this.at + dj) * kinv)]! + (off - Math.floor(off * kinv) * kpage);
    }
  }

  /**
   * mappedDec() of the user addresses (offsets from ua0) in the big-endian 8-byte slots of `view`
   * at off, off + 8, … for the j < count whose old[from + j] has a bit of `valid`, each slot
   * zeroed after its count: tce_iommu_unuse_page_v2() of the cleared entries that held a TCE,
   * their userspace-view slots in one memory page. The decrements of the region found last are
   * counted and made when another region is looked up or at the end: n of mm_iommu_mapped_dec()
   * leave a count above 1 at max(1, mapped - n) and any other count as it was.
   */
  mappedDecSlots(view: DataView, off: number, old: Float64Array, from: number, count: number, valid: number, pageshift: number): void {
    let r = this.r;
    let at = this.at;
    let bytes = this.bytes;
    const size = this.size;
    let n = 0;
    for (let j = 0; j < count; j++, off += 8) {
      if (!(old[from + j]! & valid)) continue;
      const d = view.getUint32(off) * 0x1_0000_0000 + view.getUint32(off + 4);
      const o = at + d;
      // +0.0 is eight zero bytes: the slot zeroed by one store.
      view.setFloat64(off, 0);
      if (r !== null && o >= 0 && o + size <= bytes) {
        n++;
        continue;
      }
      if (r !== null) mappedDecBy(r, n, pageshift);
      r = this.region(d);
      at = this.at;
      bytes = this.bytes;
      n = r === null ? 0 : 1;
    }
    if (r !== null) mappedDecBy(r, n, pageshift);
  }

  /**
   * The count tce_iommu_unuse_page_v2() drops: mm_iommu_mapped_dec() of the region holding the
   * IOMMU page at ua0 + d, when there is one and its pages allow the IOMMU page size.
   */
  mappedDec(d: number, pageshift: number): void {
    const r = this.region(d);
    if (r && pageshift <= r.pageshift) mmIommuMappedDec(r);
  }
}
