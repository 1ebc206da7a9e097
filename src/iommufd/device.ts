/**
 * Devices bound to an iommufd (drivers/iommu/iommufd/device.c): bind claims the device's IOMMU
 * group for the context (the blocked domain), attach points the group at an HWPT (an IOAS
 * attach finds or makes an automatic one), replace swaps HWPTs, detach goes back to blocked and
 * unbind gives the group back to the kernel.
 */
import type { KPciDev } from '../kernel/pci.js';
import { HwptPaging, type Ioas, type IommufdCtx, IommufdDevice, IommufdGroup } from './context.js';
import { hwptPagingAlloc } from './hw-pagetable.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import { IOMMU_CAP_CACHE_COHERENCY, IOMMU_RESV_DIRECT_RELAXABLE } from '../kernel/iommu-group.js';

/** iommufd_device_bind(). */
export function deviceBind(ictx: IommufdCtx, dev: KPciDev, group: IommuGroup): IommufdDevice | number {
  const p = ictx.platform;
  if (!group.ops.capable(dev, IOMMU_CAP_CACHE_COHERENCY)) return -22;
  let igroup = ictx.groups.get(group.id);
  const fresh = !igroup;
  if (!igroup) igroup = new IommufdGroup(group);
  if (!p.isolatedMsi) {
    if (!p.allowUnsafeInterrupts) return -1;
    p.klog.printk(
      `vfio-pci ${dev.name}: MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the "allow_unsafe_interrupts" module parameter to override`,
    );
  }
  const rc = group.claimDmaOwner(ictx);
  if (rc) return rc;
  const idev = ictx.alloc(new IommufdDevice(ictx, dev, igroup));
  if (typeof idev === 'number') {
    group.releaseDmaOwner();
    return idev;
  }
  if (fresh) ictx.groups.set(group.id, igroup);
  ictx.hold();
  // The binding driver holds the device: userspace cannot DESTROY it.
  idev.users++;
  ictx.finalize(idev);
  return idev;
}

/** iommufd_device_unbind(): detach is the caller's; the object goes, the group returns. */
export function deviceUnbind(idev: IommufdDevice): void {
  const ictx = idev.ictx;
  idev.users--;
  ictx.remove(idev.id);
  ictx.put();
}

/** iommufd_device_attach_reserved_iova(): the device's reserved regions become reserved IOVA. */
function attachReservedIova(idev: IommufdDevice, hwpt: HwptPaging): number {
  const iopt = hwpt.ioas.iopt;
  for (const r of idev.igroup.group.ops.getResvRegions?.(idev.dev) ?? []) {
    if (r.type === IOMMU_RESV_DIRECT_RELAXABLE) continue;
    const rc = iopt.reserveIova(r.start, r.start + r.length - 1n, idev.dev);
    if (rc) {
      iopt.removeReserved(idev.dev);
      return rc;
    }
  }
  return 0;
}

/** iommufd_hw_pagetable_attach(). */
export function hwptAttach(hwpt: HwptPaging, idev: IommufdDevice): number {
  const g = idev.igroup;
  if (g.hwpt && g.hwpt !== hwpt) return -22;
  let rc = attachReservedIova(idev, hwpt);
  if (rc) return rc;
  if (!g.devices.length) {
    rc = g.group.attach(hwpt.domain!);
    if (rc) {
      hwpt.ioas.iopt.removeReserved(idev.dev);
      return rc;
    }
    g.hwpt = hwpt;
  }
  hwpt.users++;
  g.devices.push(idev);
  return 0;
}

/** iommufd_hw_pagetable_detach(): the HWPT the device leaves (the caller drops its reference). */
export function hwptDetach(idev: IommufdDevice): HwptPaging {
  const g = idev.igroup;
  const hwpt = g.hwpt!;
  g.devices.splice(g.devices.indexOf(idev), 1);
  if (!g.devices.length) {
    g.group.detach();
    g.hwpt = null;
  }
  hwpt.ioas.iopt.removeReserved(idev.dev);
  return hwpt;
}

/** iommufd_hw_pagetable_put(): an automatic HWPT goes with its last user. */
function hwptPut(ictx: IommufdCtx, hwpt: HwptPaging): void {
  if (hwpt.autoDomain) ictx.putAndTryDestroy(hwpt);
  else hwpt.users--;
}

type AttachFn = (idev: IommufdDevice, hwpt: HwptPaging) => HwptPaging | null | number;

function doAttach(idev: IommufdDevice, hwpt: HwptPaging): HwptPaging | null | number {
  const rc = hwptAttach(hwpt, idev);
  return rc ? rc : null;
}

/** iommufd_device_do_replace(): returns the HWPT left behind, whose reference the caller drops. */
function doReplace(idev: IommufdDevice, hwpt: HwptPaging): HwptPaging | null | number {
  const g = idev.igroup;
  const old = g.hwpt;
  if (!old) return -22;
  if (hwpt === old) return null;
  const newIoas = hwpt.ioas !== old.ioas;
  if (newIoas) {
    for (const d of g.devices) {
      const rc = attachReservedIova(d, hwpt);
      if (rc) {
        for (const x of g.devices) hwpt.ioas.iopt.removeReserved(x.dev);
        return rc;
      }
    }
  }
  const rc = g.group.replace(hwpt.domain!);
  if (rc) {
    if (newIoas) for (const x of g.devices) hwpt.ioas.iopt.removeReserved(x.dev);
    return rc;
  }
  if (newIoas) for (const x of g.devices) old.ioas.iopt.removeReserved(x.dev);
  g.hwpt = hwpt;
  const n = g.devices.length;
  hwpt.users += n;
  if (n > 1) old.users -= n - 1;
  return old;
}

/** iommufd_device_auto_get_domain(): reuse a compatible automatic HWPT of the IOAS, or make one. */
function autoGetDomain(idev: IommufdDevice, ioas: Ioas, fn: AttachFn): { hwpt: HwptPaging; destroy: HwptPaging | null } | number {
  const immediate = fn === doAttach;
  for (const hwpt of ioas.hwpts) {
    if (!hwpt.autoDomain) continue;
    const r = fn(idev, hwpt);
    if (typeof r === 'number') {
      if (r === -22) continue;
      return r;
    }
    return { hwpt, destroy: r };
  }
  const hwpt = hwptPagingAlloc(idev.ictx, ioas, idev, 0, immediate, null);
  if (typeof hwpt === 'number') return hwpt;
  let destroy: HwptPaging | null = null;
  if (!immediate) {
    const r = fn(idev, hwpt);
    if (typeof r === 'number') {
      idev.ictx.abort(hwpt);
      return r;
    }
    destroy = r;
  }
  hwpt.autoDomain = true;
  idev.ictx.finalize(hwpt);
  return { hwpt, destroy };
}

/** iommufd_device_change_pt(): the pt id (IOAS or HWPT) the device ends up on, or -errno. */
function changePt(idev: IommufdDevice, ptId: number, fn: AttachFn): number {
  const ictx = idev.ictx;
  const pt = ictx.objects.get(ptId);
  if (!pt) return -2;
  let out: number;
  let destroy: HwptPaging | null;
  if (pt instanceof HwptPaging) {
    const r = fn(idev, pt);
    if (typeof r === 'number') return r;
    destroy = r;
    out = pt.id;
  } else if (pt.type === 'ioas') {
    const r = autoGetDomain(idev, pt as Ioas, fn);
    if (typeof r === 'number') return r;
    destroy = r.destroy;
    out = r.hwpt.id;
  } else return -22;
  if (destroy) hwptPut(ictx, destroy);
  return out;
}

/** iommufd_device_attach(). */
export function deviceAttach(idev: IommufdDevice, ptId: number): number {
  const r = changePt(idev, ptId, doAttach);
  if (r < 0) return r;
  idev.users++;
  return r;
}

/** iommufd_device_replace(). */
export function deviceReplace(idev: IommufdDevice, ptId: number): number {
  return changePt(idev, ptId, doReplace);
}

/** iommufd_device_detach(). */
export function deviceDetach(idev: IommufdDevice): void {
  const hwpt = hwptDetach(idev);
  hwptPut(idev.ictx, hwpt);
  idev.users--;
}
