/**
 * <linux/iommufd.h> as of Linux 6.12: the ioctl numbers on /dev/iommu, the byte layout of every
 * command struct (each starts with a u32 `size` and is extensible), and the constants. Also the
 * VFIO device-cdev structs of <linux/vfio.h> that bind a device to an iommufd.
 */
import type { Field } from './vfio.js';

export const IOMMUFD_TYPE = 0x3b; // ';'
export const IOMMUFD_CMD_BASE = 0x80;
const io = (nr: number): number => (IOMMUFD_TYPE << 8) | nr;

/** An IOMMUFD command (type ';', numbers from IOMMUFD_CMD_BASE), whatever its size bits. */
export function isIommufdCmd(cmd: number): boolean {
  return ((cmd >>> 8) & 0xff) === IOMMUFD_TYPE && (cmd & 0xff) >= IOMMUFD_CMD_BASE;
}

export const IOMMU_DESTROY = io(0x80);
export const IOMMU_IOAS_ALLOC = io(0x81);
export const IOMMU_IOAS_ALLOW_IOVAS = io(0x82);
export const IOMMU_IOAS_COPY = io(0x83);
export const IOMMU_IOAS_IOVA_RANGES = io(0x84);
export const IOMMU_IOAS_MAP = io(0x85);
export const IOMMU_IOAS_UNMAP = io(0x86);
export const IOMMU_OPTION = io(0x87);
export const IOMMU_VFIO_IOAS = io(0x88);
export const IOMMU_HWPT_ALLOC = io(0x89);
export const IOMMU_GET_HW_INFO = io(0x8a);
export const IOMMU_HWPT_SET_DIRTY_TRACKING = io(0x8b);
export const IOMMU_HWPT_GET_DIRTY_BITMAP = io(0x8c);
export const IOMMU_HWPT_INVALIDATE = io(0x8d);
export const IOMMU_FAULT_QUEUE_ALLOC = io(0x8e);

/** VFIO device cdev ioctls (VFIO_BASE + 18..20). */
export const VFIO_DEVICE_BIND_IOMMUFD = (IOMMUFD_TYPE << 8) | (100 + 18);
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = (IOMMUFD_TYPE << 8) | (100 + 19);
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = (IOMMUFD_TYPE << 8) | (100 + 20);

export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;

export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;

export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;

export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

const f = (off: number, size: Field['size']): Field => ({ off, size });

/** Struct layouts: size = sizeof(struct), min = offsetofend(the last field of the first version). */
export const iommufdStructs = {
  iommu_destroy: { size: 8, min: 8, fields: { size: f(0, 4), id: f(4, 4) } },
  iommu_ioas_alloc: { size: 12, min: 12, fields: { size: f(0, 4), flags: f(4, 4), out_ioas_id: f(8, 4) } },
  iommu_iova_range: { size: 16, min: 16, fields: { start: f(0, 8), last: f(8, 8) } },
  iommu_ioas_iova_ranges: {
    size: 32,
    min: 32,
    fields: { size: f(0, 4), ioas_id: f(4, 4), num_iovas: f(8, 4), __reserved: f(12, 4), allowed_iovas: f(16, 8), out_iova_alignment: f(24, 8) },
  },
  iommu_ioas_allow_iovas: {
    size: 24,
    min: 24,
    fields: { size: f(0, 4), ioas_id: f(4, 4), num_iovas: f(8, 4), __reserved: f(12, 4), allowed_iovas: f(16, 8) },
  },
  iommu_ioas_map: {
    size: 40,
    min: 40,
    fields: { size: f(0, 4), flags: f(4, 4), ioas_id: f(8, 4), __reserved: f(12, 4), user_va: f(16, 8), length: f(24, 8), iova: f(32, 8) },
  },
  iommu_ioas_copy: {
    size: 40,
    min: 40,
    fields: {
      size: f(0, 4),
      flags: f(4, 4),
      dst_ioas_id: f(8, 4),
      src_ioas_id: f(12, 4),
      length: f(16, 8),
      dst_iova: f(24, 8),
      src_iova: f(32, 8),
    },
  },
  iommu_ioas_unmap: { size: 24, min: 24, fields: { size: f(0, 4), ioas_id: f(4, 4), iova: f(8, 8), length: f(16, 8) } },
  iommu_option: {
    size: 24,
    min: 24,
    fields: { size: f(0, 4), option_id: f(4, 4), op: f(8, 2), __reserved: f(10, 2), object_id: f(12, 4), val64: f(16, 8) },
  },
  iommu_vfio_ioas: { size: 12, min: 12, fields: { size: f(0, 4), ioas_id: f(4, 4), op: f(8, 2), __reserved: f(10, 2) } },
  iommu_hwpt_alloc: {
    size: 48,
    min: 24,
    fields: {
      size: f(0, 4),
      flags: f(4, 4),
      dev_id: f(8, 4),
      pt_id: f(12, 4),
      out_hwpt_id: f(16, 4),
      __reserved: f(20, 4),
      data_type: f(24, 4),
      data_len: f(28, 4),
      data_uptr: f(32, 8),
      fault_id: f(40, 4),
      __reserved2: f(44, 4),
    },
  },
  iommu_hw_info: {
    size: 40,
    min: 32,
    fields: {
      size: f(0, 4),
      flags: f(4, 4),
      dev_id: f(8, 4),
      data_len: f(12, 4),
      data_uptr: f(16, 8),
      out_data_type: f(24, 4),
      out_max_pasid_log2: f(28, 1),
      __reserved: f(29, 1),
      __reserved_hi: f(30, 2),
      out_capabilities: f(32, 8),
    },
  },
  iommu_hwpt_set_dirty_tracking: { size: 16, min: 16, fields: { size: f(0, 4), flags: f(4, 4), hwpt_id: f(8, 4), __reserved: f(12, 4) } },
  iommu_hwpt_get_dirty_bitmap: {
    size: 48,
    min: 48,
    fields: {
      size: f(0, 4),
      hwpt_id: f(4, 4),
      flags: f(8, 4),
      __reserved: f(12, 4),
      iova: f(16, 8),
      length: f(24, 8),
      page_size: f(32, 8),
      data: f(40, 8),
    },
  },
  iommu_hwpt_invalidate: {
    size: 32,
    min: 32,
    fields: {
      size: f(0, 4),
      hwpt_id: f(4, 4),
      data_uptr: f(8, 8),
      data_type: f(16, 4),
      entry_len: f(20, 4),
      entry_num: f(24, 4),
      __reserved: f(28, 4),
    },
  },
  iommu_fault_alloc: { size: 16, min: 16, fields: { size: f(0, 4), flags: f(4, 4), out_fault_id: f(8, 4), out_fault_fd: f(12, 4) } },
  vfio_device_bind_iommufd: {
    size: 16,
    min: 16,
    fields: { argsz: f(0, 4), flags: f(4, 4), iommufd: f(8, 4), out_devid: f(12, 4) },
  },
  vfio_device_attach_iommufd_pt: { size: 12, min: 12, fields: { argsz: f(0, 4), flags: f(4, 4), pt_id: f(8, 4) } },
  vfio_device_detach_iommufd_pt: { size: 8, min: 8, fields: { argsz: f(0, 4), flags: f(4, 4) } },
} as const satisfies Record<string, { size: number; min: number; fields: Record<string, Field> }>;

export type IommufdStruct = keyof typeof iommufdStructs;
export type IommufdFields<S extends IommufdStruct> = Record<keyof (typeof iommufdStructs)[S]['fields'], bigint>;

/** The command structs /dev/iommu dispatches on, by ioctl number. */
export const IOMMUFD_IOCTLS: Record<number, { name: string; struct: IommufdStruct }> = {
  [IOMMU_DESTROY]: { name: 'IOMMU_DESTROY', struct: 'iommu_destroy' },
  [IOMMU_IOAS_ALLOC]: { name: 'IOMMU_IOAS_ALLOC', struct: 'iommu_ioas_alloc' },
  [IOMMU_IOAS_ALLOW_IOVAS]: { name: 'IOMMU_IOAS_ALLOW_IOVAS', struct: 'iommu_ioas_allow_iovas' },
  [IOMMU_IOAS_COPY]: { name: 'IOMMU_IOAS_COPY', struct: 'iommu_ioas_copy' },
  [IOMMU_IOAS_IOVA_RANGES]: { name: 'IOMMU_IOAS_IOVA_RANGES', struct: 'iommu_ioas_iova_ranges' },
  [IOMMU_IOAS_MAP]: { name: 'IOMMU_IOAS_MAP', struct: 'iommu_ioas_map' },
  [IOMMU_IOAS_UNMAP]: { name: 'IOMMU_IOAS_UNMAP', struct: 'iommu_ioas_unmap' },
  [IOMMU_OPTION]: { name: 'IOMMU_OPTION', struct: 'iommu_option' },
  [IOMMU_VFIO_IOAS]: { name: 'IOMMU_VFIO_IOAS', struct: 'iommu_vfio_ioas' },
  [IOMMU_HWPT_ALLOC]: { name: 'IOMMU_HWPT_ALLOC', struct: 'iommu_hwpt_alloc' },
  [IOMMU_GET_HW_INFO]: { name: 'IOMMU_GET_HW_INFO', struct: 'iommu_hw_info' },
  [IOMMU_HWPT_SET_DIRTY_TRACKING]: { name: 'IOMMU_HWPT_SET_DIRTY_TRACKING', struct: 'iommu_hwpt_set_dirty_tracking' },
  [IOMMU_HWPT_GET_DIRTY_BITMAP]: { name: 'IOMMU_HWPT_GET_DIRTY_BITMAP', struct: 'iommu_hwpt_get_dirty_bitmap' },
  [IOMMU_HWPT_INVALIDATE]: { name: 'IOMMU_HWPT_INVALIDATE', struct: 'iommu_hwpt_invalidate' },
  [IOMMU_FAULT_QUEUE_ALLOC]: { name: 'IOMMU_FAULT_QUEUE_ALLOC', struct: 'iommu_fault_alloc' },
};
