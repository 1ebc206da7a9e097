/**
 * Hardware page tables (drivers/iommu/iommufd/hw_pagetable.c): an HWPT_PAGING object wraps an
 * iommu_domain the device's IOMMU driver allocated and fills it from its IOAS. Also the
 * commands that act on HWPTs and on devices' IOMMU information.
 */
import {
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
} from '../kernel/include/uapi/linux/iommufd.js';
import { IOMMU_CAP_DIRTY_TRACKING, type IommuDomain } from '../kernel/iommu-group.js';
import { Fault, HwptPaging, type Ioas, type IommufdCtx, type IommufdDevice } from './context.js';
import { hwptAttach, hwptDetach } from './device.js';
import type { Ucmd } from './ucmd.js';

const U64_MAX = (1n << 64n) - 1n;

/** Driver data for a new domain (struct iommu_user_data): its type and the user's bytes, read when the driver asks. */
export interface UserData {
  type: number;
  read(): Uint8Array | null;
}

/** iommufd_hwpt_paging_alloc(): a new domain for the device, filled from the IOAS. */
export function hwptPagingAlloc(
  ictx: IommufdCtx,
  ioas: Ioas,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: boolean,
  userData: UserData | null,
  /** A domain the kernel caller built itself (the sPAPR container over IOMMUFD). */
  domain?: IommuDomain,
): HwptPaging | number {
  const ops = idev.igroup.group.ops;
  if ((flags || userData) && !ops.domainAllocUser) return -95;
  // No driver here tracks dirty pages or nests: every allocation flag is refused.
  if (flags) return -95;
  const hwpt = ictx.alloc(new HwptPaging(ioas));
  if (typeof hwpt === 'number') return hwpt;
  ioas.users++;
  const g = idev.igroup.group;
  const bytes = userData ? userData.read() : null;
  const d = domain
    ? domain
    : userData
      ? bytes
        ? ops.domainAllocUser!(idev.dev, g, userData.type, bytes)
        : -14
      : ops.domainAllocPaging
        ? ops.domainAllocPaging(idev.dev, g)
        : -12;
  if (typeof d === 'number') {
    ictx.abort(hwpt);
    return d;
  }
  hwpt.domain = d;
  if (immediateAttach) {
    const rc = hwptAttach(hwpt, idev);
    if (rc) {
      ictx.abort(hwpt);
      return rc;
    }
  }
  const rc = ioas.iopt.addDomain(d);
  if (rc) {
    if (immediateAttach) hwptDetach(idev);
    ictx.abort(hwpt);
    return rc;
  }
  hwpt.listed = true;
  ioas.hwpts.push(hwpt);
  return hwpt;
}

export function hwptAllocIoctl(u: Ucmd<'iommu_hwpt_alloc'>): number {
  if (u.get('__reserved')) return -95;
  const dataType = u.num('data_type');
  const dataLen = u.num('data_len');
  if ((dataType === IOMMU_HWPT_DATA_NONE && dataLen) || (dataType !== IOMMU_HWPT_DATA_NONE && !dataLen)) return -22;
  const idev = u.ictx.get<IommufdDevice>(u.num('dev_id'), 'device');
  if (typeof idev === 'number') return idev;
  const pt = u.ictx.objects.get(u.num('pt_id'));
  if (!pt) return -22;
  let hwpt: HwptPaging | number;
  const ptr = u.get('data_uptr');
  const data: UserData | null = dataLen ? { type: dataType, read: () => u.proc.mm.user.read(ptr, dataLen) } : null;
  if (pt.type === 'ioas') hwpt = hwptPagingAlloc(u.ictx, pt as Ioas, idev, u.num('flags'), false, data);
  else if (pt.type === 'hwpt_paging')
    hwpt = -95; // nested HWPTs need domain_alloc_user()
  else return -22;
  if (typeof hwpt === 'number') return hwpt;
  u.set('out_hwpt_id', hwpt.id);
  u.respond();
  u.ictx.finalize(hwpt);
  return 0;
}

export function hwptSetDirtyTracking(u: Ucmd<'iommu_hwpt_set_dirty_tracking'>): number {
  if (u.num('flags') & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) return -95;
  const hwpt = u.ictx.get<HwptPaging>(u.num('hwpt_id'), 'hwpt_paging');
  if (typeof hwpt === 'number') return hwpt;
  return -95; // no dirty_ops
}

export function hwptGetDirtyBitmap(u: Ucmd<'iommu_hwpt_get_dirty_bitmap'>): number {
  if (u.num('flags') & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR || u.get('__reserved')) return -95;
  const hwpt = u.ictx.get<HwptPaging>(u.num('hwpt_id'), 'hwpt_paging');
  if (typeof hwpt === 'number') return hwpt;
  // iommufd_check_iova_range()
  const iova = u.get('iova');
  const last = iova + u.get('length') - 1n;
  if (last > U64_MAX || last < 0n) return -75;
  const align = hwpt.ioas.iopt.iovaAlignment;
  if (iova & (align - 1n) || (last + 1n) & (align - 1n)) return -22;
  const pg = u.get('page_size');
  if (!pg) return -22;
  if (iova & (pg - 1n) || (last + 1n) & (pg - 1n)) return -22;
  return -95;
}

export function hwptInvalidate(u: Ucmd<'iommu_hwpt_invalidate'>): number {
  let rc: number;
  if (u.get('__reserved')) rc = -95;
  else if (u.get('entry_num') && (!u.get('data_uptr') || !u.get('entry_len'))) rc = -22;
  else {
    // iommufd_get_hwpt_nested(): tcelab has no nested HWPTs.
    rc = -2;
  }
  u.set('entry_num', 0);
  u.respond();
  return rc;
}

export function getHwInfo(u: Ucmd<'iommu_hw_info'>): number {
  if (u.get('flags') || u.get('__reserved') || u.get('__reserved_hi')) return -95;
  const idev = u.ictx.get<IommufdDevice>(u.num('dev_id'), 'device');
  if (typeof idev === 'number') return idev;
  const ops = idev.igroup.group.ops;
  const info = ops.hwInfo ? ops.hwInfo(idev.dev, idev.igroup.group) : { type: IOMMU_HW_INFO_TYPE_NONE, data: new Uint8Array(0) };
  const want = u.num('data_len');
  const copy = Math.min(want, info.data.length);
  if (want) {
    const out = new Uint8Array(want);
    out.set(info.data.subarray(0, copy));
    if (!u.proc.mm.user.write(u.get('data_uptr'), out)) return -14;
  }
  u.set('out_data_type', info.type);
  u.set('data_len', info.data.length);
  u.set('out_capabilities', ops.capable(idev.dev, IOMMU_CAP_DIRTY_TRACKING) ? 1 : 0);
  u.set('out_max_pasid_log2', 0);
  return u.respond();
}

/** IOMMU_FAULT_QUEUE_ALLOC: a fault object and its file; `install` puts the file in the fd table. */
export function faultAlloc(u: Ucmd<'iommu_fault_alloc'>, install: (f: Fault) => number): number {
  if (u.get('flags')) return -95;
  const fault = u.ictx.alloc(new Fault());
  if (typeof fault === 'number') return fault;
  fault.users++;
  u.ictx.hold();
  const fd = install(fault);
  u.set('out_fault_id', fault.id);
  u.set('out_fault_fd', fd);
  u.respond();
  u.ictx.finalize(fault);
  return 0;
}

/** The fault file's release. */
export function faultRelease(ictx: IommufdCtx, fault: Fault): void {
  fault.users--;
  ictx.put();
}
