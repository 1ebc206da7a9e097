/**
 * struct io_pagetable (drivers/iommu/iommufd/io_pagetable.c): the IOVA space of an IOAS. Areas
 * map IOVA ranges onto iopt_pages; reserved ranges (outside a domain's aperture, a device's
 * reserved regions) and the allowed ranges constrain where areas may go and where the kernel
 * picks IOVAs; every attached domain holds a translation of every area.
 */
import { minBig, roundupPow2 } from '../base/bits.js';
import type { IommuDomain } from '../kernel/iommu-group.js';
import { iommuMap, iommuUnmap } from '../kernel/iommu-map.js';
import type { IoptPages } from './pages.js';

const U64_MAX = (1n << 64n) - 1n;

export interface IoptArea {
  iova: bigint;
  last: bigint;
  /** null while the area is being set up or torn down. */
  pages: IoptPages | null;
  /** Byte offset of the area's start inside its pages. */
  startByte: bigint;
  pageOffset: bigint;
  prot: number;
  /** The area's pages are pinned for the domains (area->storage_domain). */
  filled: boolean;
}

interface Reserved {
  start: bigint;
  last: bigint;
  owner: object;
}

export interface Span {
  start: bigint;
  last: bigint;
}

/** The platform values the IOVA allocator depends on. */
export interface IoptPlatform {
  pageSize: bigint;
  /** HPAGE_SIZE (1 when the MMU offers no huge page size: HPAGE_SHIFT 0). */
  hpageSize: bigint;
  /** The fix for the HPAGE_SHIFT 0 alignment cap (quirk iova-alignment-hpage-zero off). */
  capAtLeastPage: boolean;
}

function ffs64(n: bigint): bigint {
  return n & -n;
}

/** Holes of [start, last] not covered by any of the spans. */
function holes(used: Span[], start: bigint, last: bigint): Span[] {
  const sorted = used.filter((u) => u.last >= start && u.start <= last).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Span[] = [];
  let cur = start;
  for (const u of sorted) {
    if (u.start > cur) out.push({ start: cur, last: u.start - 1n });
    if (u.last >= cur) {
      if (u.last >= last) return out;
      cur = u.last + 1n;
    }
  }
  if (cur <= last) out.push({ start: cur, last });
  return out;
}

/** Merged used spans of [start, last] (interval_tree_span_iter's used spans). */
function usedSpans(used: Span[], start: bigint, last: bigint): Span[] {
  const hs = holes(used, start, last);
  const out: Span[] = [];
  let cur = start;
  for (const h of hs) {
    if (h.start > cur) out.push({ start: cur, last: h.start - 1n });
    cur = h.last + 1n;
    if (h.last === last) return out;
  }
  if (cur <= last && (hs.length === 0 || hs[hs.length - 1]!.last < last)) out.push({ start: cur, last });
  return out;
}

export class IoPagetable {
  readonly areas: IoptArea[] = [];
  readonly reserved: Reserved[] = [];
  allowed: Span[] = [];
  readonly domains: IommuDomain[] = [];
  iovaAlignment = 1n;
  disableLargePages = false;

  constructor(private readonly platform: IoptPlatform) {}

  areasIn(start: bigint, last: bigint): IoptArea[] {
    return this.areas.filter((a) => a.iova <= last && a.last >= start).sort((a, b) => (a.iova < b.iova ? -1 : 1));
  }

  private reservedIn(start: bigint, last: bigint): boolean {
    return this.reserved.some((r) => r.start <= last && r.last >= start);
  }

  /** The IOVA ranges userspace may use: holes in the reserved ranges. */
  usableRanges(): Span[] {
    return holes(this.reserved, 0n, U64_MAX);
  }

  /** iopt_alloc_iova(): the lowest suitable hole; never IOVA 0. */
  allocIova(addr: bigint, length: bigint): bigint | number {
    const ps = this.platform.pageSize;
    const pageOffset = addr % ps;
    if (length === 0n || length >= U64_MAX / 2n) return -75;
    let align = addr === 0n ? roundupPow2(length) : minBig(roundupPow2(length), ffs64(addr));
    let max = this.platform.hpageSize;
    if (this.platform.capAtLeastPage && max < ps) max = ps;
    if (align >= max) align = max;
    if (align < this.iovaAlignment) return -22;
    const check = (s: Span): bigint | null => {
      let a = s.start + align - 1n;
      if (a > U64_MAX) return null;
      a = (a & ~(align - 1n)) | pageOffset;
      if (a >= s.last || s.last - a < length - 1n) return null;
      return a;
    };
    const lo = ps;
    const hi = U64_MAX - ps;
    const allowedSpans = this.allowed.length ? usedSpans(this.allowed, lo, hi) : [{ start: lo, last: hi }];
    const used: Span[] = [...this.reserved, ...this.areas.map((a) => ({ start: a.iova, last: a.last }))];
    for (const as of allowedSpans) {
      if (check(as) === null) continue;
      for (const h of holes(used, as.start, as.last)) {
        const a = check(h);
        if (a !== null) return a;
      }
    }
    return -28;
  }

  /** iopt_check_iova(). */
  checkIova(iova: bigint, length: bigint): number {
    if (iova & (this.iovaAlignment - 1n)) return -22;
    const last = iova + length - 1n;
    if (last > U64_MAX) return -75;
    if (this.reservedIn(iova, last)) return -22;
    if (this.areasIn(iova, last).length) return -17;
    return 0;
  }

  /**
   * iopt_map_pages(): place one area per element (consecutive IOVAs), then fill every domain.
   * `iova` is the fixed IOVA, or null to let the kernel choose.
   */
  mapPages(list: { pages: IoptPages; startByte: bigint; length: bigint }[], length: bigint, iova: bigint | null, prot: number): bigint | number {
    if (length & (this.iovaAlignment - 1n) || length === 0n) return -22;
    let dst: bigint;
    if (iova === null) {
      const first = list[0]!;
      const r = this.allocIova(first.pages.uptr + first.startByte, length);
      if (typeof r === 'number') return r;
      dst = r;
    } else {
      const rc = this.checkIova(iova, length);
      if (rc) return rc;
      dst = iova;
    }
    const ps = this.platform.pageSize;
    const made: IoptArea[] = [];
    let at = dst;
    for (const e of list) {
      if (prot & 2 && !e.pages.writable) return this.abort(made, -1);
      const area: IoptArea = { iova: at, last: at + e.length - 1n, pages: null, startByte: e.startByte, pageOffset: e.startByte % ps, prot, filled: false };
      if (area.pageOffset & (this.iovaAlignment - 1n)) return this.abort(made, -22);
      if (area.last > U64_MAX) return this.abort(made, -75);
      this.areas.push(area);
      made.push(area);
      at += e.length;
    }
    for (let i = 0; i < made.length; i++) {
      const rc = this.fillArea(made[i]!, list[i]!.pages);
      if (rc) {
        for (let j = 0; j < i; j++) this.unfillArea(made[j]!, list[j]!.pages);
        return this.abort(made, rc);
      }
    }
    for (let i = 0; i < made.length; i++) made[i]!.pages = list[i]!.pages;
    return dst;
  }

  private abort(made: IoptArea[], rc: number): number {
    for (const a of made) this.areas.splice(this.areas.indexOf(a), 1);
    return rc;
  }

  /** Page indexes of an area inside its pages. */
  private pageRange(area: IoptArea): [number, number] {
    const ps = this.platform.pageSize;
    return [Number(area.startByte / ps), Number((area.startByte + (area.last - area.iova)) / ps)];
  }

  /** iopt_area_fill_domains(): pin the area's pages and map them into every domain. */
  private fillArea(area: IoptArea, pages: IoptPages): number {
    if (!this.domains.length) return 0;
    const [first, last] = this.pageRange(area);
    const rc = pages.fill(first, last);
    if (rc) return rc;
    const done: IommuDomain[] = [];
    for (const d of this.domains) {
      const r = this.mapArea(area, pages, d);
      if (r) {
        for (const x of done) iommuUnmap(x, area.iova, area.last - area.iova + 1n);
        pages.unfill(first, last);
        return r;
      }
      done.push(d);
    }
    area.filled = true;
    return 0;
  }

  private unfillArea(area: IoptArea, pages: IoptPages): void {
    if (!area.filled) return;
    for (const d of this.domains) iommuUnmap(d, area.iova, area.last - area.iova + 1n);
    const [first, last] = this.pageRange(area);
    pages.unfill(first, last);
    area.filled = false;
  }

  /** batch_to_domain(): one iommu_map() per physically contiguous run of pinned pages. */
  private mapArea(area: IoptArea, pages: IoptPages, d: IommuDomain): number {
    const ps = this.platform.pageSize;
    const [first, last] = this.pageRange(area);
    let iova = area.iova;
    let i = first;
    let offset = area.pageOffset;
    while (i <= last) {
      const pa = pages.pfns.get(i)!;
      let j = i;
      while (j < last && pages.pfns.get(j + 1) === pages.pfns.get(j)! + Number(ps)) j++;
      let next = iova + BigInt(j - i + 1) * ps - offset;
      if (next > area.last + 1n) next = area.last + 1n;
      const rc = this.disableLargePages
        ? this.mapSmall(d, iova, BigInt(pa) + offset, next - iova, area.prot)
        : iommuMap(d, iova, BigInt(pa) + offset, next - iova, area.prot);
      if (rc) {
        if (iova > area.iova) iommuUnmap(d, area.iova, iova - area.iova);
        return rc;
      }
      iova = next;
      offset = 0n;
      i = j + 1;
    }
    return 0;
  }

  /** batch_iommu_map_small(): one PAGE_SIZE at a time, so that any page can be unmapped alone. */
  private mapSmall(d: IommuDomain, iova: bigint, pa: bigint, size: bigint, prot: number): number {
    const ps = this.platform.pageSize;
    for (let off = 0n; off < size; off += ps) {
      const rc = iommuMap(d, iova + off, pa + off, minBig(size - off, ps), prot);
      if (rc) {
        if (off) iommuUnmap(d, iova, off);
        return rc;
      }
    }
    return 0;
  }

  /** iopt_get_pages(): the pages behind a contiguous run of areas (COPY's source). */
  getPages(iova: bigint, length: bigint): { pages: IoptPages; startByte: bigint; length: bigint }[] | number {
    if (!length) return -22;
    const last = iova + length - 1n;
    if (last > U64_MAX) return -75;
    const out: { pages: IoptPages; startByte: bigint; length: bigint }[] = [];
    let cur = iova;
    let area = this.areas.find((a) => a.iova <= cur && a.last >= cur);
    while (area?.pages) {
      const end = last < area.last ? last : area.last;
      out.push({ pages: area.pages, startByte: area.startByte + (cur - area.iova), length: end - cur + 1n });
      if (last <= area.last) return out;
      cur = area.last + 1n;
      area = this.areas.find((a) => a.iova === cur);
    }
    return -2;
  }

  /** iopt_unmap_iova_range(): whole areas only; the unmapped byte count. */
  unmapRange(start: bigint, last: bigint): { rc: number; unmapped: bigint } {
    let unmapped = 0n;
    for (;;) {
      const area = this.areasIn(start, last)[0];
      if (!area) break;
      if (!area.pages) return { rc: -16, unmapped };
      if (area.iova < start || area.last > last) return { rc: -2, unmapped };
      const pages = area.pages;
      area.pages = null;
      this.unfillArea(area, pages);
      this.areas.splice(this.areas.indexOf(area), 1);
      unmapped += area.last - area.iova + 1n;
    }
    return { rc: unmapped ? 0 : -2, unmapped };
  }

  unmapIova(iova: bigint, length: bigint): { rc: number; unmapped: bigint } {
    if (!length) return { rc: -22, unmapped: 0n };
    const last = iova + length - 1n;
    if (last > U64_MAX) return { rc: -75, unmapped: 0n };
    return this.unmapRange(iova, last);
  }

  unmapAll(): { rc: number; unmapped: bigint } {
    const r = this.unmapRange(0n, U64_MAX);
    return r.rc === -2 ? { rc: 0, unmapped: r.unmapped } : r;
  }

  /** iopt_cut_iova(): split the areas holding these IOVAs so that each IOVA ends an area. */
  cutIova(iovas: bigint[]): number {
    for (const iova of iovas) {
      const area = this.areas.find((a) => a.iova <= iova && a.last >= iova);
      if (!area) continue;
      const rc = this.splitArea(area, iova);
      if (rc) return rc;
    }
    return 0;
  }

  /** iopt_area_split(): `iova` becomes the last byte of the left half. */
  private splitArea(area: IoptArea, iova: bigint): number {
    if (iova === area.iova || iova === area.last) return 0;
    const pages = area.pages;
    if (!pages) return -16;
    const next = iova + 1n;
    const m = this.iovaAlignment - 1n;
    const rhsStart = area.startByte + (next - area.iova);
    if (next & m || rhsStart & m) return -22;
    // A domain could hold huge pages across the cut.
    if (area.filled && !this.disableLargePages) return -22;
    const ps = this.platform.pageSize;
    const lhs: IoptArea = { ...area, last: iova };
    const rhs: IoptArea = { ...area, iova: next, startByte: rhsStart, pageOffset: rhsStart % ps };
    if (area.filled) {
      // Both halves use the page the cut falls in.
      const shared = Number((area.startByte + (iova - area.iova)) / ps);
      if (shared === Number(rhsStart / ps)) pages.fill(shared, shared);
    }
    this.areas.splice(this.areas.indexOf(area), 1, lhs, rhs);
    return 0;
  }

  /** iopt_set_allow_iova(): -EADDRINUSE when an allowed range meets a reserved one. */
  setAllowIova(ranges: Span[]): number {
    for (const r of ranges) if (this.reservedIn(r.start, r.last)) return -98;
    this.allowed = ranges;
    return 0;
  }

  /** iopt_reserve_iova(). */
  reserveIova(start: bigint, last: bigint, owner: object): number {
    if (this.areasIn(start, last).length || this.allowed.some((a) => a.start <= last && a.last >= start)) return -98;
    this.reserved.push({ start, last, owner });
    return 0;
  }

  removeReserved(owner: object): void {
    for (let i = this.reserved.length - 1; i >= 0; i--) if (this.reserved[i]!.owner === owner) this.reserved.splice(i, 1);
  }

  private checkAlignment(align: bigint): number {
    const m = align - 1n;
    for (const a of this.areas) if (a.iova & m || (a.last - a.iova + 1n) & m || a.pageOffset & m) return -98;
    return 0;
  }

  /** iopt_table_add_domain(): reserve outside the aperture, pin and map every area. */
  addDomain(d: IommuDomain): number {
    if (this.domains.includes(d)) return -17;
    let align = ffs64(d.pgsizeBitmap);
    if (align < this.iovaAlignment) align = this.iovaAlignment;
    if (align > this.platform.pageSize) return -22;
    if (align !== this.iovaAlignment) {
      const rc = this.checkAlignment(align);
      if (rc) return rc;
    }
    const rc0 = this.reserveOutside(d);
    if (rc0) return rc0;
    const rc = this.fillDomain(d);
    if (rc) return this.undoReserve(d, rc);
    this.iovaAlignment = align;
    this.domains.push(d);
    return 0;
  }

  /** Reserve what lies outside the domain's apertures: below, above and between its windows. */
  private reserveOutside(d: IommuDomain): number {
    const g = d.geometry;
    if (g.apertureStart !== 0n) {
      const rc = this.reserveIova(0n, g.apertureStart - 1n, d);
      if (rc) return this.undoReserve(d, rc);
    }
    if (g.apertureEnd !== U64_MAX) {
      const rc = this.reserveIova(g.apertureEnd + 1n, U64_MAX, d);
      if (rc) return this.undoReserve(d, rc);
    }
    const aps = [...(d.apertures ?? [])].sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < aps.length; i++) {
      if (aps[i]!.start <= aps[i - 1]!.last + 1n) continue;
      const rc = this.reserveIova(aps[i - 1]!.last + 1n, aps[i]!.start - 1n, d);
      if (rc) return this.undoReserve(d, rc);
    }
    return 0;
  }

  /**
   * A domain of this table changed its windows (the sPAPR container over IOMMUFD creates and
   * removes them): reserve again outside the new apertures and recompute the IOVA alignment.
   */
  domainApertureChanged(d: IommuDomain): number {
    this.removeReserved(d);
    const rc = this.reserveOutside(d);
    if (rc) return rc;
    return this.calculateAlignment();
  }

  private undoReserve(d: IommuDomain, rc: number): number {
    this.removeReserved(d);
    return rc;
  }

  /** iopt_fill_domain(): the first domain pins; later ones map what is pinned. */
  private fillDomain(d: IommuDomain): number {
    const done: IoptArea[] = [];
    for (const area of [...this.areas].sort((a, b) => (a.iova < b.iova ? -1 : 1))) {
      const pages = area.pages;
      if (!pages) continue;
      let rc = 0;
      const [first, last] = this.pageRange(area);
      if (!area.filled) rc = pages.fill(first, last);
      if (!rc) {
        rc = this.mapArea(area, pages, d);
        if (rc && !area.filled) pages.unfill(first, last);
      }
      if (rc) {
        for (const a of done) {
          iommuUnmap(d, a.iova, a.last - a.iova + 1n);
          if (!this.domains.length) {
            const [f, l] = this.pageRange(a);
            a.pages!.unfill(f, l);
            a.filled = false;
          }
        }
        return rc;
      }
      area.filled = true;
      done.push(area);
    }
    return 0;
  }

  /** iopt_table_remove_domain(). */
  removeDomain(d: IommuDomain): void {
    const i = this.domains.indexOf(d);
    if (i < 0) return;
    this.domains.splice(i, 1);
    for (const area of this.areas) {
      if (!area.pages || !area.filled) continue;
      iommuUnmap(d, area.iova, area.last - area.iova + 1n);
      if (!this.domains.length) {
        const [first, last] = this.pageRange(area);
        area.pages.unfill(first, last);
        area.filled = false;
      }
    }
    this.removeReserved(d);
    this.calculateAlignment();
  }

  /** iopt_calculate_iova_alignment(). */
  calculateAlignment(): number {
    let align = this.disableLargePages ? this.platform.pageSize : 1n;
    for (const d of this.domains) {
      const a = ffs64(d.pgsizeBitmap);
      if (a > align) align = a;
    }
    if (align > this.iovaAlignment) {
      const rc = this.checkAlignment(align);
      if (rc) return rc;
    }
    this.iovaAlignment = align;
    return 0;
  }

  /** iopt_disable_large_pages(): refused once domains hold mappings. */
  disableLarge(): number {
    if (this.disableLargePages) return 0;
    if (this.domains.length && this.areas.length) return -22;
    this.disableLargePages = true;
    const rc = this.calculateAlignment();
    if (rc) this.disableLargePages = false;
    return rc;
  }

  enableLarge(): void {
    this.disableLargePages = false;
    this.calculateAlignment();
  }
}
