/**
 * The VFIO sPAPR TCE IOMMU driver (drivers/vfio/vfio_iommu_spapr_tce.c), v1 and v2: container
 * state, window creation and removal, map/unmap through the platform's table ops, memory
 * preregistration and locked_vm accounting, with the real kernel's quirks (see kernel/quirks.ts).
 */
import { shrToNum } from '../base/bits.js';
import { errno } from '../base/errno.js';
import type { EventLog } from '../base/events.js';
import { type PhysMemory, viewSetU64BE, viewU64BE } from '../hw/memory.js';
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_NONE, DMA_TO_DEVICE, type DmaDirection, TCE_PERM_MASK, tceAddr } from '../hw/tce.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import { type IommuTable, iommuTceTablePut, TceRun } from '../kernel/iommu-table.js';
import { type MmIommuContext, type MmIommuRegion, mmIommuGet, mmIommuMappedInc, mmIommuNew, mmIommuPut, MmIommuRun } from '../kernel/mm-iommu.js';
import { accountLockedVm, type Mapping, type Mm, type Process, pinUserPages, unpinUserPage, vpnOfPhys } from '../kernel/process.js';
import { kernelOops, type OopsSite } from '../kernel/oops.js';
import type { KernelLog } from '../kernel/printk.js';
import type { Quirks } from '../kernel/quirks.js';
import { argValue, copyStructFromUser, copyToUser, type IoctlArg, structBytesFromUser } from '../kernel/uaccess.js';
import type { TableGroup } from '../kernel/table-group.js';
import {
  type Field,
  getField,
  offsetofend,
  setField,
  structs,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_EEH,
  VFIO_EEH_PE_OP,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_SPAPR_INFO_DDW,
  VFIO_IOMMU_SPAPR_REGISTER_MEMORY,
  VFIO_IOMMU_SPAPR_TCE_CREATE,
  VFIO_IOMMU_SPAPR_TCE_GET_INFO,
  VFIO_IOMMU_SPAPR_TCE_REMOVE,
  VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  u32Num,
  u64Num,
} from '../kernel/include/uapi/linux/vfio.js';
import type { EehOps } from './eeh.js';

const { EPERM, EINVAL, ENXIO, ENOTTY, EBUSY, ENODEV, EFAULT, ENOENT, ENOSPC } = errno;
const IOMMU_PAGE_SHIFT_4K = 12;
/** Where a store through a NULL userspace-view slot faults. */
const OOPS_SITE: OopsSite = { fn: 'tce_iommu_ioctl', module: 'vfio_iommu_spapr_tce', address: 0, write: true };
const TWO_POW_53 = 1n << 53n;

export interface SpaprTceContext {
  mem: PhysMemory;
  klog: KernelLog;
  log: EventLog;
  quirks: Quirks;
  mmIommu: MmIommuContext;
  eeh: EehOps;
  /** The process making the current call. */
  current(): Process;
}

/** struct tce_container. */
export class TceContainer {
  enabled = false;
  defWindowPending = false;
  lockedPages = 0;
  /** The owning mm (mmgrab) and its process, set by the first ENABLE/REGISTER/CREATE/REMOVE. */
  mm: Mm | null = null;
  owner: Process | null = null;
  readonly tables: [IommuTable | null, IommuTable | null] = [null, null];
  /** Attached groups, newest first (list_add). */
  readonly groupList: IommuGroup[] = [];
  /** Preregistered regions this container references, newest first. */
  readonly preregList: MmIommuRegion[] = [];
  /**
   * The region lookups of every map (user addresses from the call's vaddr) and of the releases
   * (user addresses read back from the userspace view), made at the first use, then restarted.
   */
  mapRun: MmIommuRun | null = null;
  viewRun: MmIommuRun | null = null;

  constructor(readonly v2: boolean) {}
}

const u64 = (n: bigint) => BigInt.asUintN(64, n);

/**
 * A u64 field as a number when the number is exact (below 2^53, or a larger value whose low bits
 * are zero, as a page-aligned IOVA of a DDW at 2^59 is), else -1: one conversion per field and
 * call, then entries and alignment by number arithmetic.
 */
function exactNum(x: bigint): number {
  const n = Number(x);
  return n <= Number.MAX_SAFE_INTEGER || BigInt(n) === x ? n : -1;
}

const MAP = structs.vfio_iommu_type1_dma_map.fields;
const MAP_MINSZ = offsetofend('vfio_iommu_type1_dma_map', 'size');
const UNMAP = structs.vfio_iommu_type1_dma_unmap.fields;
const UNMAP_MINSZ = offsetofend('vfio_iommu_type1_dma_unmap', 'size');

/**
 * A u64 field of a MAP/UNMAP_DMA image as the bigint shrField() and alignedField() fall back to
 * when its number `n` (u64Num) is not exact; 0n, never read, when it is (no allocation).
 */
function bigField(b: Uint8Array, f: Field, n: number): bigint {
  return n >= 0 ? 0n : getField(b, f);
}

/** x >> shift of a u64 field, from its exactNum `n` when there is one (a division by 2^shift is exact). */
function shrField(x: bigint, n: number, pageSize: number, shift: number): number {
  return n >= 0 ? Math.floor(n / pageSize) : shrToNum(x, shift);
}

/** Is the field a multiple of `size` (a power of two)? From its exactNum `n` when there is one. */
function alignedField(x: bigint, n: number, size: number): boolean {
  // No `%` on numbers past 2^31 (a call to fmod): the quotient times the size gives it back.
  return n >= 0 ? Math.floor(n / size) * size === n : (x & BigInt(size - 1)) === 0n;
}

/** What buildV2 and its passes share during one map. */
interface BuildV2Pass {
  /** The regions behind the map's user addresses (offsets from its vaddr). */
  regions: MmIommuRun | null;
  /** The vaddr as a number, and whether every user address of the map is exact as one. */
  tceNum: number;
  exact: boolean;
  /** The error that stopped checkPagesV2. */
  ret: number;
}

export class SpaprTceDriver {
  /** The run of entries buildV2 and clear exchange at a time. */
  private readonly run = new TceRun(4096);
  /** The state buildV2 shares with its passes over each run. */
  private readonly pass: BuildV2Pass = { regions: null, tceNum: 0, exact: false, ret: 0 };

  constructor(protected readonly ctx: SpaprTceContext) {}

  private get pageShift(): number {
    return this.ctx.mem.pageShift;
  }

  eehEnabled(): boolean {
    return this.ctx.eeh.enabled();
  }

  /** tce_iommu_open(): only the two sPAPR types. `_owner` is the container file's iommufd, if any. */
  open(type: bigint, _owner?: unknown): TceContainer | number {
    if (type !== BigInt(VFIO_SPAPR_TCE_IOMMU) && type !== BigInt(VFIO_SPAPR_TCE_v2_IOMMU)) return -EINVAL;
    return new TceContainer(type === BigInt(VFIO_SPAPR_TCE_v2_IOMMU));
  }

  /** CHECK_EXTENSION with no container (driver probe). */
  static checkExtension(arg: bigint, eehEnabled: boolean): number {
    if (arg === BigInt(VFIO_SPAPR_TCE_IOMMU) || arg === BigInt(VFIO_SPAPR_TCE_v2_IOMMU)) return 1;
    if (arg === BigInt(VFIO_EEH)) return eehEnabled ? 1 : 0;
    return 0;
  }

  private mmSet(c: TceContainer): number {
    const cur = this.ctx.current();
    if (c.mm) return c.mm === cur.mm ? 0 : -EPERM;
    c.mm = cur.mm;
    c.owner = cur;
    cur.mm.grabs++;
    return 0;
  }

  private account(c: TceContainer, pages: number, inc: boolean): number {
    return accountLockedVm(c.owner!, c.mm!, pages, inc, this.pageShift, this.ctx.log);
  }

  /** tce_iommu_ioctl(). */
  ioctl(c: TceContainer, cmd: number, arg: IoctlArg): number {
    if (cmd === VFIO_CHECK_EXTENSION) return SpaprTceDriver.checkExtension(argValue(arg), this.ctx.eeh.enabled());
    if (c.mm && c.mm !== this.ctx.current().mm) return -EPERM;
    switch (cmd) {
      case VFIO_IOMMU_SPAPR_TCE_GET_INFO:
        return this.getInfo(c, arg);
      case VFIO_IOMMU_MAP_DMA:
        return this.mapDma(c, arg);
      case VFIO_IOMMU_UNMAP_DMA:
        return this.unmapDma(c, arg);
      case VFIO_IOMMU_SPAPR_REGISTER_MEMORY:
        if (!c.v2) break;
        return this.registerMemory(c, arg);
      case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY:
        if (!c.v2) break;
        return this.unregisterMemory(c, arg);
      case VFIO_IOMMU_ENABLE:
        if (c.v2) break;
        return this.enable(c);
      case VFIO_IOMMU_DISABLE:
        if (c.v2) break;
        if (c.enabled) {
          c.enabled = false;
          this.account(c, c.lockedPages, false);
        }
        return 0;
      case VFIO_EEH_PE_OP: {
        let ret = 0;
        for (const g of c.groupList) {
          ret = this.ctx.eeh.peOp(g, arg);
          if (ret) break;
        }
        return ret;
      }
      case VFIO_IOMMU_SPAPR_TCE_CREATE:
        if (!c.v2) break;
        return this.tceCreate(c, arg);
      case VFIO_IOMMU_SPAPR_TCE_REMOVE:
        if (!c.v2) break;
        return this.tceRemove(c, arg);
    }
    return -ENOTTY;
  }

  private firstTableGroup(c: TceContainer): TableGroup | null {
    return c.groupList[0]?.tableGroup ?? null;
  }

  private getInfo(c: TceContainer, arg: IoctlArg): number {
    if (!c.groupList.length) return -ENXIO;
    const tg = this.firstTableGroup(c);
    if (!tg) return -ENXIO;
    const cs = copyStructFromUser(arg, 'vfio_iommu_spapr_tce_info', 'dma32_window_size');
    if (typeof cs === 'number') return cs;
    const argsz = cs.v.argsz;
    let minsz = cs.minsz;
    const out = new Uint8Array(structs.vfio_iommu_spapr_tce_info.size);
    out.set(cs.bytes);
    const f = structs.vfio_iommu_spapr_tce_info.fields;
    setField(out, f.dma32_window_start, tg.tce32Start);
    setField(out, f.dma32_window_size, tg.tce32Size);
    setField(out, f.flags, 0);
    if (tg.maxDynamicWindowsSupported && c.v2) {
      setField(out, f.flags, VFIO_IOMMU_SPAPR_INFO_DDW);
      setField(out, f['ddw.pgsizes'], tg.pgsizes);
      setField(out, f['ddw.max_dynamic_windows_supported'], tg.maxDynamicWindowsSupported);
      setField(out, f['ddw.levels'], tg.maxLevels);
    }
    const ddwsz = offsetofend('vfio_iommu_spapr_tce_info', 'ddw.levels');
    if (argsz >= BigInt(ddwsz)) minsz = ddwsz;
    if (!copyToUser(arg, out.subarray(0, minsz))) return -EFAULT;
    return 0;
  }

  private enable(c: TceContainer): number {
    if (c.enabled) return -EBUSY;
    if (!c.groupList.length) return -ENODEV;
    const tg = this.firstTableGroup(c);
    if (!tg) return -ENODEV;
    if (!tg.tce32Size) return -EPERM;
    const ret = this.mmSet(c);
    if (ret) return ret;
    const locked = Math.floor(tg.tce32Size / this.ctx.mem.pageSize);
    const r = this.account(c, locked, true);
    if (r) return r;
    c.lockedPages = locked;
    c.enabled = true;
    return 0;
  }

  /** tce_iommu_find_table(): the window holding `ioba` (its exactNum `n`), or -1. */
  findTable(c: TceContainer, ioba: bigint, n = exactNum(ioba)): number {
    for (let i = 0; i < 2; i++) {
      const tbl = c.tables[i];
      if (!tbl) continue;
      // Page shifts are ≥ 12: the entry of a u64 address is below 2^52, exact as a number.
      const entry = shrField(ioba, n, tbl.pageSize, tbl.itPageShift);
      if (tbl.itOffset <= entry && entry < tbl.itOffset + tbl.itSize) return i;
    }
    return -1;
  }

  /**
   * iommu_tce_put/clear_param_check() of a call's iova (`first` = its entry, `ok` = aligned, and
   * the vaddr aligned for a put): the first page inside the window. Only the first page is checked
   * unless the end-of-window quirk is fixed.
   */
  protected paramCheck(tbl: IommuTable, first: number, ok: boolean, npages: number): number {
    const end = tbl.itOffset + tbl.itSize;
    if (!ok || first < tbl.itOffset || first + 1 > end) return this.ctx.quirks['unaligned-iova-returns-1'] ? 1 : -EINVAL;
    if (!this.ctx.quirks['no-end-of-window-check'] && first + npages > end) return -EINVAL;
    return 0;
  }

  private mapDma(c: TceContainer, arg: IoctlArg): number {
    if (!c.enabled) return -EPERM;
    const b = structBytesFromUser(arg, MAP_MINSZ);
    if (typeof b === 'number') return b;
    const flags = u32Num(b, MAP.flags.off);
    if (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) return -EINVAL;
    let ret = this.createDefaultWindow(c);
    if (ret) return ret;
    const iova = u64Num(b, MAP.iova.off);
    const iovaBig = bigField(b, MAP.iova, iova);
    const num = this.findTable(c, iovaBig, iova);
    if (num < 0) return -ENXIO;
    const tbl = c.tables[num]!;
    const ps = tbl.pageSize;
    const size = u64Num(b, MAP.size.off);
    const sizeBig = bigField(b, MAP.size, size);
    const vaddr = u64Num(b, MAP.vaddr.off);
    const vaddrBig = bigField(b, MAP.vaddr, vaddr);
    const vaddrAligned = alignedField(vaddrBig, vaddr, ps);
    if (!alignedField(sizeBig, size, ps) || !vaddrAligned) return -EINVAL;
    let dir: DmaDirection;
    if (flags & VFIO_DMA_MAP_FLAG_READ) dir = flags & VFIO_DMA_MAP_FLAG_WRITE ? DMA_BIDIRECTIONAL : DMA_TO_DEVICE;
    else if (flags & VFIO_DMA_MAP_FLAG_WRITE) dir = DMA_FROM_DEVICE;
    else return -EINVAL;
    const npages = shrField(sizeBig, size, ps, tbl.itPageShift);
    const entry = shrField(iovaBig, iova, ps, tbl.itPageShift);
    ret = this.paramCheck(tbl, entry, alignedField(iovaBig, iova, ps) && vaddrAligned, npages);
    if (ret) return ret;
    // The one bigint of a call: the user address the map's lookups start from.
    return this.build(c, tbl, entry, vaddr >= 0 ? BigInt(vaddr) : vaddrBig, npages, dir);
  }

  /** Map `pages` IOMMU pages of user memory at `tce` from `entry` on (tce_iommu_build(_v2)). */
  protected build(c: TceContainer, tbl: IommuTable, entry: number, tce: bigint, pages: number, dir: DmaDirection): number {
    return c.v2 ? this.buildV2(c, tbl, entry, tce, pages, dir) : this.buildV1(c, tbl, entry, tce, pages, dir);
  }

  private unmapDma(c: TceContainer, arg: IoctlArg): number {
    if (!c.enabled) return -EPERM;
    const b = structBytesFromUser(arg, UNMAP_MINSZ);
    if (typeof b === 'number') return b;
    if (u32Num(b, UNMAP.flags.off)) return -EINVAL;
    let ret = this.createDefaultWindow(c);
    if (ret) return ret;
    const iova = u64Num(b, UNMAP.iova.off);
    const iovaBig = bigField(b, UNMAP.iova, iova);
    const num = this.findTable(c, iovaBig, iova);
    if (num < 0) return -ENXIO;
    const tbl = c.tables[num]!;
    const ps = tbl.pageSize;
    const size = u64Num(b, UNMAP.size.off);
    const sizeBig = bigField(b, UNMAP.size, size);
    if (!alignedField(sizeBig, size, ps)) return -EINVAL;
    const npages = shrField(sizeBig, size, ps, tbl.itPageShift);
    const entry = shrField(iovaBig, iova, ps, tbl.itPageShift);
    ret = this.paramCheck(tbl, entry, alignedField(iovaBig, iova, ps), npages);
    if (ret) return ret;
    return this.clear(c, tbl, entry, npages);
  }

  // ---- map / unmap algorithms ----

  /** tce_page_is_contained(): the backing page must be at least one IOMMU page. */
  protected pageIsContained(c: TceContainer, ua: bigint, shift: number): boolean {
    return this.backingShift(c.mm!.findMapping(ua)) >= shift;
  }

  protected backingShift(m: Mapping | undefined): number {
    return m?.kind === 'hugetlb' && m.hugePageShift ? m.hugePageShift : this.pageShift;
  }

  /** The container's run over user addresses read back from userspace-view slots (offsets from 0). */
  private storedUaRun(c: TceContainer, tbl: IommuTable): MmIommuRun {
    if (!c.viewRun) c.viewRun = new MmIommuRun(c.owner!, this.pageShift, tbl.pageSize, 0n);
    else c.viewRun.restart(0n, tbl.pageSize);
    return c.viewRun;
  }

  /** The container's run over the user addresses of a map from `tce` on. */
  private mapUaRun(c: TceContainer, tbl: IommuTable, tce: bigint): MmIommuRun {
    if (!c.mapRun) c.mapRun = new MmIommuRun(c.owner!, this.pageShift, tbl.pageSize, tce);
    else c.mapRun.restart(tce, tbl.pageSize);
    return c.mapRun;
  }

  /**
   * tce_iommu_build_v2(), a run of entries at a time (TceRun). User addresses are kept as byte
   * offsets from `tce`: the region behind a page is looked up again only when a
   * page leaves the last ones found. For each run the checks of every page come first (they only
   * read), then one exchange of the pages that passed them, then, entry by entry in the kernel's
   * order, the mapped count, the old entry's release and the userspace view. The passes are
   * methods of their own, called once per run: V8 optimizes them from their own calls.
   */
  private buildV2(c: TceContainer, tbl: IommuTable, entry: number, tce: bigint, pages: number, dir: DmaDirection): number {
    let ret = 0;
    let i = 0;
    const run = this.run;
    const pass = this.pass;
    pass.regions = this.mapUaRun(c, tbl, tce);
    pass.tceNum = Number(tce);
    pass.exact = pass.tceNum + pages * tbl.pageSize <= 2 ** 53 && tce <= TWO_POW_53;
    while (i < pages) {
      const e = entry + i;
      const pua = tbl.ops.useraddrptr!(tbl, e, true);
      const n = pua === null ? 1 : Math.min(pages - i, run.capacity, tbl.ops.runLength(tbl, e));
      const m = this.checkPagesV2(tbl, i, n);
      const done = m ? tbl.ops.xchgRunNoKill(tbl, e, m, dir, run) : 0;
      // The last entry attempted failed: it is only released (tce_iommu_unuse_page_v2).
      const failed = done && run.ret ? 1 : 0;
      if (done && pua === null) {
        // One entry (n = 1). *pua = cpu_to_be64(tce) through a table without a userspace view:
        // the task dies here, inside tce_iommu_ioctl (tce_iommu_build_v2 is inlined), with the
        // TCE already written.
        mmIommuMappedInc(pass.regions.region(i * tbl.pageSize)!);
        if (!failed) {
          kernelOops(this.ctx.klog, this.ctx.log, this.ctx.current(), OOPS_SITE, this.ctx.mem.pageSize);
          return 0;
        }
      }
      if (pua !== null && done) this.storeRunV2(c, tbl, tce, pua, i, done, failed);
      if (failed) {
        ret = run.ret;
        i += done - 1;
        break;
      }
      i += m;
      if (m < n) {
        ret = pass.ret;
        break;
      }
    }
    if (ret) this.clear(c, tbl, entry, i);
    else tbl.ops.tceKill?.(tbl, entry, pages);
    return ret;
  }

  /**
   * tce_iommu_build_v2()'s checks of the pages [i, i + n) of a map: the region and real address
   * (into run.hpa), the pinned page being large enough, a region being released. Returns how
   * many passed; the error that stopped them in pass.ret (0 when a released region stops the map
   * without one). Everything comes from the region as registered: the process's mappings now
   * play no part (the pages pinned at registration are what gets mapped).
   */
  private checkPagesV2(tbl: IommuTable, i: number, n: number): number {
    const pass = this.pass;
    const regions = pass.regions!;
    const hpas = this.run.hpa;
    const step = tbl.pageSize;
    const shift = tbl.itPageShift;
    // A pinned page is at least PAGE_SIZE: only a larger IOMMU page can fail the containment check.
    const contained = shift <= this.pageShift;
    pass.ret = 0;
    for (let m = 0; m < n; ) {
      const d = (i + m) * step;
      const r = regions.region(d);
      // mm_iommu_ua_to_hpa() keeps the offset of an IOMMU page inside a larger kernel page.
      const hpa = r ? regions.hpa(r, d, shift) : -1;
      if (!r || hpa < 0) {
        pass.ret = -EINVAL;
        return m;
      }
      // tce_page_is_contained(): the compound page pinned at registration.
      if (!contained && regions.pageShiftAt(r, d) < shift) {
        pass.ret = -EPERM;
        return m;
      }
      // mm_iommu_mapped_inc() fails only on a region being released: the map stops there.
      if (r.mapped === 0) return m;
      // The pages from m on inside r get the answers page m got (each larger IOMMU page is
      // checked on its own): their real addresses at once.
      const k = contained ? Math.min(n - m, regions.span(d, step)) : 1;
      regions.hpas(r, d, step, k, hpas, m);
      m += k;
    }
    return n;
  }

  /**
   * storeRunV2() for the common run: every entry exchanged, none replacing a valid one, the user
   * addresses exact as numbers and the view's slots in RAM. Then nothing but the mapped counts
   * and the view changes, so each region's count goes up once by its entries (still not from 0:
   * mm_iommu_mapped_inc() refuses a region being released) and the view's slots take the user
   * addresses a memory page at a time. Returns false having changed nothing otherwise.
   */
  private storeFreshRunV2(tbl: IommuTable, pua: number, i: number, done: number): boolean {
    const mem = this.ctx.mem;
    const old = this.run.old;
    if (!mem.isRam(pua) || !mem.isRam(pua + done * 8 - 1)) return false;
    for (let k = 0; k < done; k++) if (old[k]! & TCE_PERM_MASK) return false;
    const regions = this.pass.regions!;
    const step = tbl.pageSize;
    for (let k = 0; k < done; ) {
      const d = (i + k) * step;
      const r = regions.region(d)!;
      const n = Math.min(done - k, regions.span(d, step));
      if (r.mapped !== 0) r.mapped += n;
      k += n;
    }
    const mask = mem.pageSize - 1;
    let ua = this.pass.tceNum + i * step;
    for (let k = 0; k < done; ) {
      const at = pua + k * 8;
      const b = mem.pageView(at, true)!;
      const off = at & mask;
      const n = Math.min(done - k, (mem.pageSize - off) / 8);
      for (let o = off, end = off + n * 8; o < end; o += 8, ua += step) viewSetU64BE(b, o, ua);
      k += n;
    }
    return true;
  }

  /**
   * The exchanged entries [0, done) of the run from page i, entry by entry in the kernel's order:
   * the mapped count, the old entry's release, the user address into the userspace view from
   * `pua` on (the view's slots a memory page at a time); the last entry only released when its
   * exchange failed.
   */
  private storeRunV2(c: TceContainer, tbl: IommuTable, tce: bigint, pua: number, i: number, done: number, failed: number): void {
    if (!failed && this.pass.exact && this.storeFreshRunV2(tbl, pua, i, done)) return;
    const mem = this.ctx.mem;
    const mask = mem.pageSize - 1;
    const run = this.run;
    const pass = this.pass;
    const regions = pass.regions!;
    const { tceNum, exact } = pass;
    const step = tbl.pageSize;
    const shift = tbl.itPageShift;
    let stored: MmIommuRun | null = null; // only when an entry is replaced or a map fails
    // The region of entry k, looked up again when `left` entries after the last lookup ran out.
    let r: MmIommuRegion | null = null;
    let left = 0;
    for (let k = 0; k < done; ) {
      const at = pua + k * 8;
      const b = mem.isRam(at) ? mem.pageView(at, true) : null;
      let off = at & mask;
      for (const end = Math.min(done, k + (mem.pageSize - off) / 8); k < end; k++, off += 8) {
        const d = (i + k) * step;
        if (left === 0) {
          r = regions.region(d)!;
          left = regions.span(d, step);
        }
        left--;
        mmIommuMappedInc(r!);
        const last = k === done - failed;
        if (last || run.old[k]! & TCE_PERM_MASK) {
          stored ??= this.storedUaRun(c, tbl);
          stored.mappedDec(b ? viewU64BE(b, off) : mem.readU64BE(pua + k * 8), shift);
          if (b) viewSetU64BE(b, off, 0);
        }
        if (last) return;
        if (b) viewSetU64BE(b, off, exact ? tceNum + d : Number(tce + BigInt(i + k) * BigInt(step)));
      }
    }
  }

  /** tce_iommu_build() (v1): pins each page directly. */
  private buildV1(c: TceContainer, tbl: IommuTable, entry: number, tce: bigint, pages: number, dir: DmaDirection): number {
    const { mem } = this.ctx;
    const ksize = BigInt(mem.pageSize);
    let ret = 0;
    let i = 0;
    const write = this.ctx.quirks['v1-pin-write'] || dir !== DMA_TO_DEVICE;
    for (; i < pages; i++) {
      const offset = Number(tce & ~(BigInt(tbl.pageSize) - 1n) & (ksize - 1n));
      const pinned = pinUserPages(c.mm!, mem, tce - (tce % ksize), 1, { write, thpShift: this.ctx.mmIommu.thpShift });
      if (typeof pinned === 'number') {
        ret = -EFAULT;
        break;
      }
      if (!this.pageIsContained(c, tce, tbl.itPageShift)) {
        ret = -EPERM;
        break;
      }
      const hpa = pinned[0]! + offset;
      const x = tbl.ops.xchgNoKill(tbl, entry + i, hpa, dir);
      if (x.ret) {
        unpinUserPage(c.mm!, Number(tce / ksize));
        ret = x.ret;
        break;
      }
      if (x.dir !== DMA_NONE) this.unusePage(c, x.hpa);
      tce += BigInt(tbl.pageSize);
    }
    if (ret) this.clear(c, tbl, entry, i);
    else tbl.ops.tceKill?.(tbl, entry, pages);
    return ret;
  }

  /** tce_iommu_unuse_page(): unpin the page behind an old v1 TCE. */
  private unusePage(c: TceContainer, hpa: number): void {
    const vpn = vpnOfPhys(c.mm!, this.ctx.mem, hpa);
    if (vpn !== undefined) unpinUserPage(c.mm!, vpn);
  }

  /**
   * tce_iommu_clear(): exchange out every valid TCE of a range, then one kill. Returns 0. A run
   * of entries at a time (TceRun); a leaf absent from the userspace view is skipped whole.
   */
  clear(c: TceContainer, tbl: IommuTable, entry: number, pages: number): number {
    const first = entry;
    // Without the end-of-window check a range can be far larger than the table. Past one full
    // cover of a multi-level table the walk wraps onto slots already cleared, and a flat table
    // ends where RAM ends; the kernel would spin through the rest (for minutes) to no effect.
    // A multi-level table's levels cover its window: a range no longer than it is within reach.
    const reach = tbl.itIndirectLevels
      ? pages <= tbl.itSize
        ? pages
        : tbl.itLevelSize ** (tbl.itIndirectLevels + 1)
      : Math.floor((this.ctx.mem.ramBytes - tbl.itBase) / 8) - (entry - tbl.itOffset);
    const last = entry + Math.max(0, Math.min(pages, reach));
    const stored = c.v2 ? this.storedUaRun(c, tbl) : null;
    const skipAbsent = tbl.itIndirectLevels && tbl.itUserspace !== null;
    const run = this.run;
    while (entry < last) {
      // The userspace-view slot of the run's first entry, when there is a view to release from.
      // Each run's releases are a method of their own, which V8 optimizes from its own calls.
      const pua = stored || skipAbsent ? (tbl.ops.useraddrptr?.(tbl, entry, false) ?? null) : null;
      if (pua === null && skipAbsent) {
        entry = alignUpToLast(entry, tbl.itLevelSize) + 1;
        continue;
      }
      const n = Math.min(last - entry, run.capacity, tbl.ops.runLength(tbl, entry));
      const done = tbl.ops.xchgRunNoKill(tbl, entry, n, DMA_NONE, run);
      const ok = run.ret ? done - 1 : done;
      if (!stored) {
        for (let k = 0; k < ok; k++) if (run.old[k]! & TCE_PERM_MASK) this.unusePage(c, tceAddr(run.old[k]!));
      } else if (pua !== null) this.releaseRunV2(stored, pua, ok, tbl.itPageShift);
      entry += done;
    }
    if (!this.ctx.quirks['missing-tce-kill']) tbl.ops.tceKill?.(tbl, first, pages);
    return 0;
  }

  /**
   * tce_iommu_unuse_page_v2() of each entry k < count of the run just cleared whose old TCE was
   * valid, its userspace-view slot at pua + 8k (the view's slots a memory page at a time).
   */
  private releaseRunV2(stored: MmIommuRun, pua: number, count: number, shift: number): void {
    const mem = this.ctx.mem;
    const mask = mem.pageSize - 1;
    const old = this.run.old;
    for (let k = 0; k < count; ) {
      const at = pua + k * 8;
      const b = mem.isRam(at) ? mem.pageView(at, false) : null;
      let off = at & mask;
      const end = Math.min(count, k + (mem.pageSize - off) / 8);
      if (b) {
        stored.mappedDecSlots(b, off, old, k, end - k, TCE_PERM_MASK, shift);
        k = end;
        continue;
      }
      for (; k < end; k++, off += 8) if (old[k]! & TCE_PERM_MASK) stored.mappedDec(mem.readU64BE(pua + k * 8), shift);
    }
  }

  // ---- preregistration ----

  private registerMemory(c: TceContainer, arg: IoctlArg): number {
    let ret = this.mmSet(c);
    if (ret) return ret;
    const cs = copyStructFromUser(arg, 'vfio_iommu_spapr_register_memory', 'size');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    if (p.flags) return -EINVAL;
    const kmask = BigInt(this.ctx.mem.pageSize) - 1n;
    if (p.vaddr & kmask || p.size & kmask || u64(p.vaddr + p.size) < p.vaddr) return -EINVAL;
    const entries = Number(p.size >> BigInt(this.pageShift));
    const proc = c.owner!;
    let mem = mmIommuGet(proc, p.vaddr, entries);
    if (mem) {
      if (c.preregList.includes(mem)) {
        mmIommuPut(this.ctx.mmIommu, proc, mem);
        return -EBUSY;
      }
    } else {
      const r = mmIommuNew(this.ctx.mmIommu, proc, p.vaddr, entries);
      if (typeof r === 'number') {
        if (entries === 0) this.ctx.klog.warn('mm/vmalloc.c', 3790, '__vmalloc_node_range_noprof', proc);
        return r;
      }
      mem = r;
    }
    c.preregList.unshift(mem);
    c.enabled = true;
    ret = 0;
    return ret;
  }

  private unregisterMemory(c: TceContainer, arg: IoctlArg): number {
    if (!c.mm) return -EPERM;
    const cs = copyStructFromUser(arg, 'vfio_iommu_spapr_register_memory', 'size');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    if (p.flags) return -EINVAL;
    const kmask = BigInt(this.ctx.mem.pageSize) - 1n;
    if (p.vaddr & kmask || p.size & kmask) return -EINVAL;
    const proc = c.owner!;
    const mem = mmIommuGet(proc, p.vaddr, Number(p.size >> BigInt(this.pageShift)));
    if (!mem) return -ENOENT;
    let ret: number;
    if (!c.preregList.includes(mem)) ret = -ENOENT;
    else if (!this.ctx.quirks['unregister-while-mapped'] && mem.mapped !== 1 && mem.used === 2) ret = -EBUSY;
    else ret = this.preregFree(c, mem);
    mmIommuPut(this.ctx.mmIommu, proc, mem);
    return ret;
  }

  /** tce_iommu_prereg_free(). */
  private preregFree(c: TceContainer, mem: MmIommuRegion): number {
    const ret = mmIommuPut(this.ctx.mmIommu, c.owner!, mem);
    if (ret) return ret;
    c.preregList.splice(c.preregList.indexOf(mem), 1);
    return 0;
  }

  // ---- windows ----

  /** tce_iommu_create_table(). */
  private createTable(c: TceContainer, tg: TableGroup, num: number, pageShift: number, windowSize: bigint, levels: number): IommuTable | number {
    const tableSize = tg.ops.getTableSize(pageShift, windowSize, levels);
    if (!tableSize) return -EINVAL;
    const pages = Math.floor(tableSize / this.ctx.mem.pageSize);
    let ret = this.account(c, pages, true);
    if (ret) return ret;
    const r = tg.ops.createTable(tg, num, pageShift, windowSize, levels);
    if (typeof r === 'number') {
      ret = r;
      if (!this.ctx.quirks['create-locked-vm-leak']) this.account(c, pages, false);
      return ret;
    }
    return r;
  }

  /** tce_iommu_free_table(). */
  private freeTable(c: TceContainer, tbl: IommuTable): void {
    const pages = Math.floor(tbl.itAllocatedSize / this.ctx.mem.pageSize);
    iommuTceTablePut(tbl);
    this.account(c, pages, false);
  }

  /** tce_iommu_create_window(). */
  private createWindow(c: TceContainer, pageShift: number, windowSize: bigint, levels: number): { ret: number; start?: bigint } {
    const free = c.tables[0] === null ? 0 : c.tables[1] === null ? 1 : -1;
    if (free < 0) return { ret: -ENOSPC };
    const num = free as 0 | 1;
    const tg = this.firstTableGroup(c);
    if (!tg) return { ret: -EFAULT };
    if (pageShift >= 64 || !(tg.pgsizes & (1n << BigInt(pageShift)))) return { ret: -EINVAL };
    const tbl = this.createTable(c, tg, num, pageShift, windowSize, levels);
    if (typeof tbl === 'number') return { ret: tbl };
    const ret = this.programWindow(c, num, tbl);
    if (ret) {
      this.freeTable(c, tbl);
      return { ret };
    }
    c.tables[num] = tbl;
    return { ret: 0, start: tbl.start };
  }

  /** set_window() of the new table on every attached group; on a failure none keeps it. */
  protected programWindow(c: TceContainer, num: number, tbl: IommuTable): number {
    for (const g of c.groupList) {
      const ret = g.tableGroup.ops.setWindow(g.tableGroup, num, tbl);
      if (ret) {
        for (const g2 of c.groupList) g2.tableGroup.ops.unsetWindow(g2.tableGroup, num);
        return ret;
      }
    }
    return 0;
  }

  /** unset_window() of window `num` on every attached group. */
  protected unprogramWindow(c: TceContainer, num: number): void {
    for (const g of c.groupList) g.tableGroup.ops.unsetWindow(g.tableGroup, num);
  }

  /** tce_iommu_create_default_window(): the lazily created 32-bit window of 4K pages. */
  createDefaultWindow(c: TceContainer): number {
    if (!c.defWindowPending) return 0;
    if (!c.groupList.length) return -ENODEV;
    const tg = this.firstTableGroup(c);
    if (!tg) return -ENODEV;
    const r = this.createWindow(c, IOMMU_PAGE_SHIFT_4K, BigInt(tg.tce32Size), 1);
    if (!r.ret) c.defWindowPending = false;
    return r.ret;
  }

  private tceCreate(c: TceContainer, arg: IoctlArg): number {
    let ret = this.mmSet(c);
    if (ret) return ret;
    if (!c.groupList.length) return -ENXIO;
    const cs = copyStructFromUser(arg, 'vfio_iommu_spapr_tce_create', 'start_addr');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    if (p.flags) return -EINVAL;
    ret = this.createDefaultWindow(c);
    let start = p.start_addr;
    if (!ret) {
      const r = this.createWindow(c, Number(p.page_shift), p.window_size, Number(p.levels));
      ret = r.ret;
      if (r.start !== undefined) start = r.start;
    }
    if (!ret) {
      setField(cs.bytes, structs.vfio_iommu_spapr_tce_create.fields.start_addr, start);
      if (!copyToUser(arg, cs.bytes)) ret = -EFAULT;
    }
    return ret;
  }

  private tceRemove(c: TceContainer, arg: IoctlArg): number {
    const ret = this.mmSet(c);
    if (ret) return ret;
    if (!c.groupList.length) return -ENXIO;
    const cs = copyStructFromUser(arg, 'vfio_iommu_spapr_tce_remove', 'start_addr');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    if (p.flags) return -EINVAL;
    if (c.defWindowPending && !p.start_addr) {
      c.defWindowPending = false;
      return 0;
    }
    return this.removeWindow(c, p.start_addr);
  }

  /** tce_iommu_remove_window(). */
  private removeWindow(c: TceContainer, startAddr: bigint): number {
    const num = this.findTable(c, startAddr);
    if (num < 0) return -EINVAL;
    const tbl = c.tables[num]!;
    if (!this.ctx.quirks['remove-any-address'] && tbl.start !== startAddr) return -EINVAL;
    this.clear(c, tbl, tbl.itOffset, tbl.itSize);
    this.unprogramWindow(c, num);
    this.freeTable(c, tbl);
    c.tables[num] = null;
    return 0;
  }

  // ---- groups ----

  /** tce_iommu_attach_group(). */
  attachGroup(c: TceContainer, g: IommuGroup): number {
    const tg = g.tableGroup;
    let ret = 0;
    if (c.v2 && !tg.maxDynamicWindowsSupported) ret = -EINVAL;
    else if (!c.v2 && c.groupList.length) ret = -EBUSY;
    else if (c.groupList.includes(g)) ret = -EBUSY;
    else if (c.groupList.some((o) => o.tableGroup.ops.createTable !== tg.ops.createTable)) ret = -EPERM;
    else ret = this.takeOwnership(c, g);
    if (!c.groupList.length && !c.tables[0]) c.defWindowPending = true;
    if (!ret) c.groupList.unshift(g);
    return ret;
  }

  /** tce_iommu_take_ownership(): program every container table into the new PE. */
  protected takeOwnership(c: TceContainer, g: IommuGroup): number {
    const tg = g.tableGroup;
    for (let i = 0; i < 2; i++) {
      const tbl = c.tables[i];
      if (!tbl) continue;
      const ret = tg.ops.setWindow(tg, i, tbl);
      if (ret) {
        for (let j = 0; j < i; j++) tg.ops.unsetWindow(tg, j);
        return ret;
      }
    }
    return 0;
  }

  /** tce_iommu_detach_group(). */
  detachGroup(c: TceContainer, g: IommuGroup): void {
    const i = c.groupList.indexOf(g);
    if (i < 0) return;
    c.groupList.splice(i, 1);
    // tce_iommu_release_ownership()
    for (let n = 0; n < 2; n++) {
      const tbl = c.tables[n];
      if (!tbl) continue;
      this.clear(c, tbl, tbl.itOffset, tbl.itSize);
      this.releaseWindow(g, n);
    }
  }

  /** unset_window() of one window on a group leaving the container. */
  protected releaseWindow(g: IommuGroup, num: number): void {
    g.tableGroup.ops.unsetWindow(g.tableGroup, num);
  }

  /** tce_iommu_release(): free the container's tables and regions, undo ENABLE, drop the mm. */
  release(c: TceContainer): void {
    for (const g of [...c.groupList]) this.detachGroup(c, g);
    for (let n = 0; n < 2; n++) {
      const tbl = c.tables[n];
      if (!tbl) continue;
      c.tables[n] = null;
      this.unprogramWindow(c, n);
      this.freeTable(c, tbl);
    }
    for (const mem of [...c.preregList]) {
      const ret = this.preregFree(c, mem);
      if (ret) this.ctx.klog.warn('drivers/vfio/vfio_iommu_spapr_tce.c', 0, 'tce_iommu_release', c.owner!);
    }
    if (c.enabled && !c.v2) {
      c.enabled = false;
      this.account(c, c.lockedPages, false);
    }
    if (c.mm) c.mm.grabs--;
  }
}

/** `n |= size - 1` for a power-of-two size, on numbers above 2^32. */
function alignUpToLast(n: number, size: number): number {
  return n - (n % size) + size - 1;
}
