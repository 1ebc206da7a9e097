/**
 * /dev/iommu (drivers/iommu/iommufd/main.c): the command table and its dispatch. Numbers below
 * IOMMUFD_CMD_BASE or past the table go to the type1 compatibility ioctls.
 */
import { IOMMUFD_CMD_BASE, IOMMUFD_IOCTLS } from '../kernel/include/uapi/linux/iommufd.js';
import type { Process } from '../kernel/process.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { type Fault, IommufdCtx, type IommufdPlatform } from './context.js';
import { faultAlloc, getHwInfo, hwptAllocIoctl, hwptGetDirtyBitmap, hwptInvalidate, hwptSetDirtyTracking } from './hw-pagetable.js';
import { ioasAllocIoctl, ioasAllowIovas, ioasCopy, ioasIovaRanges, ioasMap, ioasUnmap, iommufdOption, vfioIoas } from './ioas.js';
import { type Ucmd, ucmdFromUser } from './ucmd.js';
import { iommufdVfioIoctl } from './vfio-compat.js';

const ENOTTY = -25;
const NR_OPS = 0x8f - IOMMUFD_CMD_BASE;

/** iommufd_fops_open(). */
export function iommufdOpen(platform: IommufdPlatform): IommufdCtx {
  return new IommufdCtx(platform);
}

/** iommufd_fops_ioctl(). `installFault` puts a new fault file in the caller's fd table. */
export function iommufdIoctl(ictx: IommufdCtx, proc: Process, cmd: number, arg: IoctlArg, installFault: (f: Fault) => number): number {
  const nr = cmd & 0xff;
  if (nr < IOMMUFD_CMD_BASE || nr - IOMMUFD_CMD_BASE >= NR_OPS) return iommufdVfioIoctl(ictx, proc, cmd, arg);
  if (typeof arg === 'bigint' || arg.length < 4) return -14;
  const op = IOMMUFD_IOCTLS[((0x3b << 8) | nr) >>> 0];
  if (!op || ((0x3b << 8) | nr) !== cmd) return ENOTTY;
  const u = ucmdFromUser(ictx, proc, op.struct, arg);
  if (typeof u === 'number') return u;
  switch (op.struct) {
    case 'iommu_destroy':
      return ictx.remove((u as Ucmd<'iommu_destroy'>).num('id'));
    case 'iommu_ioas_alloc':
      return ioasAllocIoctl(u as Ucmd<'iommu_ioas_alloc'>);
    case 'iommu_ioas_allow_iovas':
      return ioasAllowIovas(u as Ucmd<'iommu_ioas_allow_iovas'>);
    case 'iommu_ioas_copy':
      return ioasCopy(u as Ucmd<'iommu_ioas_copy'>);
    case 'iommu_ioas_iova_ranges':
      return ioasIovaRanges(u as Ucmd<'iommu_ioas_iova_ranges'>);
    case 'iommu_ioas_map':
      return ioasMap(u as Ucmd<'iommu_ioas_map'>);
    case 'iommu_ioas_unmap':
      return ioasUnmap(u as Ucmd<'iommu_ioas_unmap'>);
    case 'iommu_option':
      return iommufdOption(u as Ucmd<'iommu_option'>);
    case 'iommu_vfio_ioas':
      return vfioIoas(u as Ucmd<'iommu_vfio_ioas'>);
    case 'iommu_hwpt_alloc':
      return hwptAllocIoctl(u as Ucmd<'iommu_hwpt_alloc'>);
    case 'iommu_hw_info':
      return getHwInfo(u as Ucmd<'iommu_hw_info'>);
    case 'iommu_hwpt_set_dirty_tracking':
      return hwptSetDirtyTracking(u as Ucmd<'iommu_hwpt_set_dirty_tracking'>);
    case 'iommu_hwpt_get_dirty_bitmap':
      return hwptGetDirtyBitmap(u as Ucmd<'iommu_hwpt_get_dirty_bitmap'>);
    case 'iommu_hwpt_invalidate':
      return hwptInvalidate(u as Ucmd<'iommu_hwpt_invalidate'>);
    case 'iommu_fault_alloc':
      return faultAlloc(u as Ucmd<'iommu_fault_alloc'>, installFault);
    default:
      return ENOTTY;
  }
}
