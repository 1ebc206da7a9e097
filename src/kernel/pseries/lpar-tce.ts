/**
 * iommu_table_lpar_multi_ops (pseries/iommu.c): TCE updates as PAPR hypercalls. Building more
 * than one TCE goes through H_PUT_TCE_INDIRECT with a per-CPU list page of up to 512 TCEs;
 * clearing uses H_STUFF_TCE in chunks of 512; exchange is H_GET_TCE then H_PUT_TCE. The VFIO
 * userspace view is a single-level array of user addresses, one slot per TCE.
 */
import { type PaprHypervisor, H_SUCCESS, SPAPR_TCE_LIST_MAX } from '../../firmware/papr/hypervisor.js';
import type { PhysMemory } from '../../hw/memory.js';
import { DMA_NONE, type DmaDirection, directionToPerm, tceAddr, tceDirection } from '../../hw/tce.js';
import { errno } from '../../base/errno.js';
import type { IommuTable, IommuTableOps, TceRun } from '../iommu-table.js';
import type { KernelLog } from '../printk.js';
import { vzallocFits } from '../vmalloc.js';

export interface LparTceContext {
  hv: PaprHypervisor;
  mem: PhysMemory;
  klog: KernelLog;
}

export interface LparTableOps extends IommuTableOps {
  /**
   * pseries_tce_iommu_userspace_view_alloc(): vzalloc() of one slot per TCE for the table's
   * VFIO userspace view; 0, or -ENOMEM when vmalloc refuses the size.
   */
  userspaceViewAlloc(tbl: IommuTable, task: { pid: number; uid: number; comm: string }): number;
  /** Entries (relative to it_offset) whose userspace-view slot holds a user address (for the checker). */
  filledViewSlots(tbl: IommuTable): number[];
}

export function lparTceOps(ctx: LparTceContext): LparTableOps {
  const { hv, mem } = ctx;
  /**
   * The userspace view of each table that has one (it_userspace). vzalloc() reserved it whole;
   * the model backs its pages as they are first written.
   */
  const views = new WeakMap<IommuTable, Map<number, number>>();
  let tcePage: number | null = null;
  /** FW_FEATURE_PUT_TCE_IND | FW_FEATURE_STUFF_TCE, from "hcall-multi-tce". */
  const multiTce = hv.hypertasFunctions().includes('hcall-multi-tce');
  const ioba = (tbl: IommuTable, index: number) => BigInt(index) << BigInt(tbl.itPageShift);
  const rpnTce = (pa: number, dir: DmaDirection) => BigInt(pa) | BigInt(directionToPerm(dir));
  const putOne = (tbl: IommuTable, index: number, pa: number, dir: DmaDirection) => hv.hPutTce(tbl.itIndex, ioba(tbl, index), rpnTce(pa, dir));
  /** The H_PUT_TCE return code of the last exchange. */
  let lastRc = H_SUCCESS;
  /** H_GET_TCE then H_PUT_TCE of one entry: the old TCE, the put's return code in lastRc. */
  const exchange = (tbl: IommuTable, index: number, hpa: number, dir: DmaDirection): number => {
    const old = hv.hGetTce(tbl.itIndex, ioba(tbl, index));
    lastRc = hv.hPutTce(tbl.itIndex, ioba(tbl, index), dir === DMA_NONE ? 0n : rpnTce(hpa, dir));
    return Number(old.tce);
  };

  return {
    userspaceViewAlloc(tbl, task) {
      if (!vzallocFits(mem, ctx.klog, task, Math.ceil((tbl.itSize * 8) / mem.pageSize) * mem.pageSize)) return -errno.ENOMEM;
      views.set(tbl, new Map());
      return 0;
    },
    filledViewSlots(tbl) {
      const out: number[] = [];
      for (const [page, pa] of views.get(tbl) ?? []) {
        for (let k = 0; k < mem.pageSize / 8; k++) if (mem.readU64BE(pa + 8 * k)) out.push((page * mem.pageSize) / 8 + k);
      }
      return out;
    },
    /**
     * tce_buildmulti_pSeriesLP(): errors other than resource shortage are only logged (return 0).
     * One TCE, or a hypervisor without the multi-TCE hcalls: tce_build_pSeriesLP(), H_PUT_TCE each.
     */
    set(tbl, index, npages, pa, dir) {
      if (npages === 1 || !multiTce) {
        for (let i = 0; i < npages; i++) putOne(tbl, index + i, pa + i * tbl.pageSize, dir);
        return 0;
      }
      if (tcePage === null) {
        const pfn = mem.allocPages(0, { kind: 'kernel', label: 'tce_page (per-CPU H_PUT_TCE_INDIRECT list)' });
        if (pfn === null) {
          for (let i = 0; i < npages; i++) putOne(tbl, index + i, pa + i * tbl.pageSize, dir);
          return 0;
        }
        tcePage = pfn * mem.pageSize;
      }
      for (let done = 0; done < npages; ) {
        const n = Math.min(npages - done, SPAPR_TCE_LIST_MAX, mem.pageSize >> 3);
        for (let k = 0; k < n; k++) mem.writeU64BE(tcePage + 8 * k, Number(rpnTce(pa + (done + k) * tbl.pageSize, dir)));
        if (hv.hPutTceIndirect(tbl.itIndex, ioba(tbl, index + done), BigInt(tcePage), n) !== H_SUCCESS) break;
        done += n;
      }
      return 0;
    },
    /** tce_exchange_pseries(). */
    xchgNoKill(tbl, index, hpa, dir, out = { ret: 0, hpa: 0, dir: DMA_NONE }) {
      const oldTce = exchange(tbl, index, hpa, dir);
      out.ret = lastRc === H_SUCCESS ? 0 : lastRc;
      out.hpa = tceAddr(oldTce);
      out.dir = tceDirection(oldTce);
      return out;
    },
    /** The hardware table is the hypervisor's: runs end only where a page of the userspace view does. */
    runLength(tbl, index) {
      const idx = index - tbl.itOffset;
      if (idx < 0) return 1;
      if (!views.has(tbl)) return idx < tbl.itSize ? tbl.itSize - idx : 1;
      const perPage = mem.pageSize / 8;
      return perPage - (idx % perPage);
    },
    /** tce_exchange_pseries() entry by entry: H_GET_TCE and H_PUT_TCE for each. */
    xchgRunNoKill(tbl, index, count, dir, run: TceRun) {
      run.ret = 0;
      for (let k = 0; k < count; k++) {
        run.old[k] = exchange(tbl, index + k, dir === DMA_NONE ? 0 : run.hpa[k]!, dir);
        if (lastRc !== H_SUCCESS) {
          run.ret = lastRc;
          return k + 1;
        }
      }
      return count;
    },
    /** tce_useraddr_pSeriesLP(): &it_userspace[index - it_offset], or NULL without a view. */
    useraddrptr(tbl, index, alloc) {
      const view = views.get(tbl);
      if (!view) return null;
      const slot = (index - tbl.itOffset) * 8;
      const page = Math.floor(slot / mem.pageSize);
      let pa = view.get(page);
      if (pa === undefined) {
        if (!alloc) return null;
        const pfn = mem.allocPages(0, { kind: 'tce-shadow', label: `it_userspace of table #${tbl.id}` });
        if (pfn === null) return null;
        pa = pfn * mem.pageSize;
        mem.zero(pa, mem.pageSize);
        view.set(page, pa);
      }
      return pa + (slot % mem.pageSize);
    },
    /** tce_freemulti_pSeriesLP(), or tce_free_pSeriesLP() without H_STUFF_TCE. */
    clear(tbl, index, npages) {
      if (!multiTce) {
        for (let i = 0; i < npages; i++) hv.hPutTce(tbl.itIndex, ioba(tbl, index + i), 0n);
        return;
      }
      for (let done = 0; done < npages; done += SPAPR_TCE_LIST_MAX) {
        if (hv.hStuffTce(tbl.itIndex, ioba(tbl, index + done), 0n, Math.min(SPAPR_TCE_LIST_MAX, npages - done)) !== H_SUCCESS) break;
      }
    },
    /** tce_get_pSeriesLP(). */
    get: (tbl, index) => Number(hv.hGetTce(tbl.itIndex, ioba(tbl, index)).tce),
    /** iommu_free_table(): the hypervisor keeps the TCEs; the guest frees its userspace view. */
    free(tbl) {
      const view = views.get(tbl);
      if (!view) return;
      for (const pa of view.values()) mem.freePages(pa / mem.pageSize, 0);
      views.delete(tbl);
    },
  };
}
