/**
 * The sPAPR TCE container over IOMMUFD (tcelab's design: `--vfio-container iommufd` with
 * `--iommufd ppc64`). /dev/vfio/vfio is an iommufd; its sPAPR v1/v2 ioctls keep every rule of
 * the container (the checks and errnos, windows, preregistration, locked_vm) while the state
 * lives in IOMMUFD objects:
 *   - each device of an attached group is bound to the file's iommufd and attached to one HWPT,
 *     a paging domain of the PPC64 driver whose windows are the container's tables: the default
 *     window and TCE_CREATE/REMOVE set and unset a window on every PE of the domain at once;
 *   - MAP_DMA is an area of the compat IOAS at the fixed IOVA: v2 areas map the preregistered
 *     pages (nothing pinned or charged again), v1 areas pin like IOAS_MAP (ENABLE charged the
 *     window); a map over mapped IOVAs replaces them, and UNMAP_DMA of part of an area keeps the
 *     rest mapped, as TCEs do;
 *   - the IOAS is the one IOMMU_VFIO_IOAS returns, so the fd's IOMMUFD ioctls see the maps.
 */
import { errno } from '../base/errno.js';
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection } from '../hw/tce.js';
import type { HwptPaging, Ioas, IommufdCtx, IommufdDevice } from '../iommufd/context.js';
import { deviceAttach, deviceBind, deviceDetach, deviceUnbind } from '../iommufd/device.js';
import { hwptPagingAlloc } from '../iommufd/hw-pagetable.js';
import { compatIoas } from '../iommufd/ioas.js';
import { IoptPages } from '../iommufd/pages.js';
import { compatIoasCreate } from '../iommufd/vfio-compat.js';
import { type IommuGroup, IOMMU_READ, IOMMU_WRITE } from '../kernel/iommu-group.js';
import type { IommuTable } from '../kernel/iommu-table.js';
import { type MmIommuRegion, mmIommuMappedDec, mmIommuMappedInc, MmIommuRun } from '../kernel/mm-iommu.js';
import { ppc64DomainSetWindow, ppc64DomainUnsetWindow, ppc64EmptyDomain, type Ppc64TceDomain } from '../kernel/ppc64-iommu.js';
import { SpaprTceDriver, TceContainer } from './spapr-tce.js';

const { EINVAL, EPERM, EFAULT } = errno;

/** A sPAPR container whose groups, windows and maps are IOMMUFD objects. */
export class IommufdTceContainer extends TceContainer {
  /** The HWPT every attached device is on (made with the first group). */
  hwpt: HwptPaging | null = null;
  /** The devices bound for each attached group. */
  readonly idevs = new Map<IommuGroup, IommufdDevice[]>();

  constructor(
    v2: boolean,
    readonly ictx: IommufdCtx,
    readonly ioas: Ioas,
  ) {
    super(v2);
  }

  get domain(): Ppc64TceDomain | null {
    return (this.hwpt?.domain as Ppc64TceDomain | null) ?? null;
  }
}

/** The first `length` bytes of a list of pieces. */
function clip(pieces: MapPiece[], length: bigint): MapPiece[] {
  const out: MapPiece[] = [];
  let left = length;
  for (const p of pieces) {
    if (left <= 0n) break;
    out.push(p.length <= left ? p : { ...p, length: left });
    left -= p.length;
  }
  return out;
}

/** One piece of a MAP_DMA: a run of user memory in one pages object. */
interface MapPiece {
  pages: IoptPages;
  startByte: bigint;
  length: bigint;
  region: MmIommuRegion | null;
}

export class SpaprTceIommufdDriver extends SpaprTceDriver {
  /** The pages object over each preregistered region (one, however many areas map it). */
  private readonly preregPages = new WeakMap<MmIommuRegion, IoptPages>();
  private readonly regionOf = new WeakMap<IoptPages, MmIommuRegion>();

  /** SET_IOMMU: the container and the compat IOAS it maps into. */
  override open(type: bigint, owner?: unknown): TceContainer | number {
    const c = super.open(type);
    if (typeof c === 'number') return c;
    const ictx = owner as IommufdCtx;
    const rc = compatIoasCreate(ictx);
    if (rc) return rc;
    const ioas = compatIoas(ictx) as Ioas;
    ioas.users++;
    return new IommufdTceContainer(c.v2, ictx, ioas);
  }

  /** Bind every device of the group to the iommufd and attach it to the container's HWPT. */
  protected override takeOwnership(c: TceContainer, g: IommuGroup): number {
    const ic = c as IommufdTceContainer;
    const bound: IommufdDevice[] = [];
    const undo = (rc: number): number => {
      for (const d of bound) this.unbind(d);
      return rc;
    };
    for (const dev of g.devices) {
      if (dev.removed) continue;
      const idev = deviceBind(ic.ictx, dev, g);
      if (typeof idev === 'number') return undo(idev);
      bound.push(idev);
      if (!ic.hwpt) {
        const rc = this.allocHwpt(ic, g, idev);
        if (rc) return undo(rc);
      }
      const rc = deviceAttach(idev, ic.hwpt!.id);
      if (rc < 0) return undo(rc);
    }
    ic.idevs.set(g, bound);
    return 0;
  }

  /** The HWPT: an empty PPC64 domain given the windows the container already has. */
  private allocHwpt(ic: IommufdTceContainer, g: IommuGroup, idev: IommufdDevice): number {
    const domain = ppc64EmptyDomain(g.tableGroup);
    for (let n = 0; n < 2; n++) {
      const tbl = ic.tables[n];
      if (tbl) ppc64DomainSetWindow(domain, n, tbl, tbl.itPageShift);
    }
    const hwpt = hwptPagingAlloc(ic.ictx, ic.ioas, idev, 0, false, null, domain);
    if (typeof hwpt === 'number') return hwpt;
    ic.ictx.finalize(hwpt);
    // The container holds it: IOMMU_DESTROY from userspace is -EBUSY.
    hwpt.users++;
    ic.hwpt = hwpt;
    return ic.ioas.iopt.domainApertureChanged(domain);
  }

  private unbind(idev: IommufdDevice): void {
    if (idev.igroup.devices.includes(idev)) deviceDetach(idev);
    deviceUnbind(idev);
  }

  /** A group leaves: the maps go (as the container clears its tables), then its devices. */
  override detachGroup(c: TceContainer, g: IommuGroup): void {
    super.detachGroup(c, g);
    const ic = c as IommufdTceContainer;
    for (const idev of ic.idevs.get(g) ?? []) this.unbind(idev);
    ic.idevs.delete(g);
  }

  /** The PE's windows go when its devices leave the HWPT. */
  protected override releaseWindow(): void {}

  protected override programWindow(c: TceContainer, num: number, tbl: IommuTable): number {
    const ic = c as IommufdTceContainer;
    const d = ic.domain;
    if (!d) return 0;
    const rc = ppc64DomainSetWindow(d, num, tbl, tbl.itPageShift);
    if (rc) return rc;
    return ic.ioas.iopt.domainApertureChanged(d);
  }

  protected override unprogramWindow(c: TceContainer, num: number): void {
    const ic = c as IommufdTceContainer;
    const d = ic.domain;
    if (!d) return;
    ppc64DomainUnsetWindow(d, num);
    ic.ioas.iopt.domainApertureChanged(d);
  }

  /**
   * MAP_DMA: the checks of tce_iommu_build(_v2) page by page before anything changes, then the
   * old maps of the range go and one area per run of user memory takes their place.
   */
  protected override build(c: TceContainer, tbl: IommuTable, entry: number, tce: bigint, pages: number, dir: DmaDirection): number {
    const ic = c as IommufdTceContainer;
    if (!pages) return 0;
    const step = tbl.pageSize;
    const shift = tbl.itPageShift;
    const pieces = c.v2 ? this.preregPieces(ic, tce, pages, step, shift) : this.userPieces(ic, tce, pages, step, shift, dir);
    if (typeof pieces === 'number') return pieces;
    this.clear(c, tbl, entry, pages);
    // Past the window's end (the no-end-of-window-check quirk lets a map run on) the entries
    // are the memory after the table, written as VFIO's container writes them; no area holds them.
    const inside = Math.max(0, Math.min(pages, tbl.itOffset + tbl.itSize - entry));
    const prot = dir === DMA_TO_DEVICE ? IOMMU_READ : dir === DMA_FROM_DEVICE ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE;
    const mapped = clip(pieces, BigInt(inside) * BigInt(step));
    if (mapped.length) {
      const r = ic.ioas.iopt.mapPages(mapped, BigInt(inside) * BigInt(step), BigInt(entry) << BigInt(shift), prot);
      if (typeof r === 'number') return c.v2 ? r : -EFAULT;
      for (const p of mapped) if (p.region) for (let i = 0n; i < p.length; i += BigInt(step)) mmIommuMappedInc(p.region);
    }
    if (inside < pages) return super.build(c, tbl, entry + inside, tce + BigInt(inside * step), pages - inside, dir);
    return 0;
  }

  /**
   * v2: every IOMMU page inside a preregistered region, on a page pinned there at registration
   * that is large enough (the VFIO driver's checks: the mappings now play no part).
   */
  private preregPieces(ic: IommufdTceContainer, tce: bigint, pages: number, step: number, shift: number): MapPiece[] | number {
    const run = new MmIommuRun(ic.owner!, this.ctx.mem.pageShift, step, tce);
    const out: MapPiece[] = [];
    for (let i = 0; i < pages; i++) {
      const d = i * step;
      const r = run.region(d);
      if (!r || run.hpa(r, d, shift) < 0) return -EINVAL;
      if (shift > this.ctx.mem.pageShift && run.pageShiftAt(r, d) < shift) return -EPERM;
      const last = out.at(-1);
      if (last?.region === r) last.length += BigInt(step);
      else out.push({ pages: this.preregPagesOf(ic, r), startByte: tce + BigInt(d) - r.ua, length: BigInt(step), region: r });
    }
    return out;
  }

  private preregPagesOf(ic: IommufdTceContainer, r: MmIommuRegion): IoptPages {
    let p = this.preregPages.get(r);
    if (!p) {
      p = new IoptPages(ic.ictx.platform, ic.owner!, r.ua, r.entries, true, (i) => r.hpas[i]!);
      this.preregPages.set(r, p);
      this.regionOf.set(p, r);
    }
    return p;
  }

  /** v1: the user pages themselves, pinned as the area fills the domain; ENABLE charged them. */
  private userPieces(ic: IommufdTceContainer, tce: bigint, pages: number, step: number, shift: number, dir: DmaDirection): MapPiece[] | number {
    for (let i = 0; i < pages; i++) if (!this.pageIsContained(ic, tce + BigInt(i * step), shift)) return -EPERM;
    const ps = BigInt(this.ctx.mem.pageSize);
    const uptr = tce - (tce % ps);
    const length = BigInt(pages) * BigInt(step);
    const npages = Number((tce + length - uptr + ps - 1n) / ps);
    const write = this.ctx.quirks['v1-pin-write'] || dir !== DMA_TO_DEVICE;
    const p = new IoptPages(ic.ictx.platform, ic.owner!, uptr, npages, write);
    p.accountMode = 'none';
    return [{ pages: p, startByte: tce - uptr, length, region: null }];
  }

  /** Unmap [entry, entry + pages) of the window: areas inside go, areas across it keep their outer parts. */
  override clear(c: TceContainer, tbl: IommuTable, entry: number, pages: number): number {
    const ic = c as IommufdTceContainer;
    const iopt = ic.ioas.iopt;
    const step = BigInt(tbl.pageSize);
    const start = BigInt(entry) * step;
    const windowLast = (BigInt(tbl.itOffset) + BigInt(tbl.itSize)) * step - 1n;
    let last = start + BigInt(pages) * step - 1n;
    if (last > windowLast) {
      // The entries past the window's end are the memory after the table (no-end-of-window-check).
      const end = tbl.itOffset + tbl.itSize;
      const from = Math.max(entry, end);
      super.clear(c, tbl, from, entry + pages - from);
      last = windowLast;
    }
    if (last < start) return 0;
    for (const a of iopt.areasIn(start, last)) {
      const p = a.pages;
      if (!p) continue;
      const { iova, last: aLast, startByte, prot } = a;
      iopt.unmapRange(iova, aLast);
      const region = this.regionOf.get(p);
      if (region) {
        const lo = iova > start ? iova : start;
        const hi = aLast < last ? aLast : last;
        for (let x = lo; x <= hi; x += step) mmIommuMappedDec(region);
      }
      if (iova < start) this.remap(ic, p, startByte, iova, start - iova, prot);
      if (aLast > last) this.remap(ic, p, startByte + (last + 1n - iova), last + 1n, aLast - last, prot);
    }
    return 0;
  }

  private remap(ic: IommufdTceContainer, pages: IoptPages, startByte: bigint, iova: bigint, length: bigint, prot: number): void {
    ic.ioas.iopt.mapPages([{ pages, startByte, length }], length, iova, prot);
  }

  /** tce_iommu_release(), then the HWPT and the IOAS reference go. */
  override release(c: TceContainer): void {
    const ic = c as IommufdTceContainer;
    for (const tbl of c.tables) if (tbl) this.clear(c, tbl, tbl.itOffset, tbl.itSize);
    super.release(c);
    if (ic.hwpt) {
      ic.hwpt.users--;
      ic.ictx.remove(ic.hwpt.id);
      ic.hwpt = null;
    }
    ic.ioas.users--;
  }
}
