/**
 * <linux/vfio.h>: ioctl numbers, constants and the byte layout of the sPAPR structures, as the
 * kernel's VFIO code and userspace both compile them (little-endian ppc64le / x86-64 hosts).
 * This header module imports nothing but base/, so the kernel-side VFIO code may include it.
 */

export const VFIO_TYPE = 0x3b; // ';'
export const VFIO_BASE = 100;
/** _IO(VFIO_TYPE, VFIO_BASE + n). */
export const vfioIo = (n: number): number => (VFIO_TYPE << 8) | (VFIO_BASE + n);

export const VFIO_API_VERSION = 0;

export const VFIO_GET_API_VERSION = vfioIo(0);
export const VFIO_CHECK_EXTENSION = vfioIo(1);
export const VFIO_SET_IOMMU = vfioIo(2);
export const VFIO_GROUP_GET_STATUS = vfioIo(3);
export const VFIO_GROUP_SET_CONTAINER = vfioIo(4);
export const VFIO_GROUP_UNSET_CONTAINER = vfioIo(5);
export const VFIO_GROUP_GET_DEVICE_FD = vfioIo(6);
export const VFIO_DEVICE_GET_INFO = vfioIo(7);
export const VFIO_DEVICE_GET_REGION_INFO = vfioIo(8);
export const VFIO_DEVICE_GET_IRQ_INFO = vfioIo(9);
export const VFIO_DEVICE_SET_IRQS = vfioIo(10);
export const VFIO_DEVICE_RESET = vfioIo(11);
export const VFIO_IOMMU_GET_INFO = vfioIo(12);
export const VFIO_IOMMU_SPAPR_TCE_GET_INFO = vfioIo(12);
export const VFIO_IOMMU_MAP_DMA = vfioIo(13);
export const VFIO_IOMMU_UNMAP_DMA = vfioIo(14);
export const VFIO_IOMMU_ENABLE = vfioIo(15);
export const VFIO_IOMMU_DISABLE = vfioIo(16);
export const VFIO_IOMMU_SPAPR_REGISTER_MEMORY = vfioIo(17);
export const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY = vfioIo(18);
export const VFIO_IOMMU_SPAPR_TCE_CREATE = vfioIo(19);
export const VFIO_IOMMU_SPAPR_TCE_REMOVE = vfioIo(20);
export const VFIO_EEH_PE_OP = vfioIo(21);

/** Names for traces and reports. */
export const VFIO_IOCTL_NAMES: Record<number, string> = {
  [VFIO_GET_API_VERSION]: 'VFIO_GET_API_VERSION',
  [VFIO_CHECK_EXTENSION]: 'VFIO_CHECK_EXTENSION',
  [VFIO_SET_IOMMU]: 'VFIO_SET_IOMMU',
  [VFIO_GROUP_GET_STATUS]: 'VFIO_GROUP_GET_STATUS',
  [VFIO_GROUP_SET_CONTAINER]: 'VFIO_GROUP_SET_CONTAINER',
  [VFIO_GROUP_UNSET_CONTAINER]: 'VFIO_GROUP_UNSET_CONTAINER',
  [VFIO_GROUP_GET_DEVICE_FD]: 'VFIO_GROUP_GET_DEVICE_FD',
  [VFIO_DEVICE_GET_INFO]: 'VFIO_DEVICE_GET_INFO',
  [VFIO_DEVICE_GET_REGION_INFO]: 'VFIO_DEVICE_GET_REGION_INFO',
  [VFIO_DEVICE_GET_IRQ_INFO]: 'VFIO_DEVICE_GET_IRQ_INFO',
  [VFIO_DEVICE_SET_IRQS]: 'VFIO_DEVICE_SET_IRQS',
  [VFIO_DEVICE_RESET]: 'VFIO_DEVICE_RESET',
  [VFIO_IOMMU_SPAPR_TCE_GET_INFO]: 'VFIO_IOMMU_SPAPR_TCE_GET_INFO',
  [VFIO_IOMMU_MAP_DMA]: 'VFIO_IOMMU_MAP_DMA',
  [VFIO_IOMMU_UNMAP_DMA]: 'VFIO_IOMMU_UNMAP_DMA',
  [VFIO_IOMMU_ENABLE]: 'VFIO_IOMMU_ENABLE',
  [VFIO_IOMMU_DISABLE]: 'VFIO_IOMMU_DISABLE',
  [VFIO_IOMMU_SPAPR_REGISTER_MEMORY]: 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY',
  [VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY]: 'VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY',
  [VFIO_IOMMU_SPAPR_TCE_CREATE]: 'VFIO_IOMMU_SPAPR_TCE_CREATE',
  [VFIO_IOMMU_SPAPR_TCE_REMOVE]: 'VFIO_IOMMU_SPAPR_TCE_REMOVE',
  [VFIO_EEH_PE_OP]: 'VFIO_EEH_PE_OP',
};

// Extensions / IOMMU types.
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const VFIO_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;

export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

export const VFIO_IOMMU_SPAPR_INFO_DDW = 1 << 0;
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_NUM_IRQS = 5;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_OFFSET_SHIFT = 40n;

export const VFIO_EEH_PE_DISABLE = 0;
export const VFIO_EEH_PE_ENABLE = 1;
export const VFIO_EEH_PE_UNFREEZE_IO = 2;
export const VFIO_EEH_PE_UNFREEZE_DMA = 3;
export const VFIO_EEH_PE_GET_STATE = 4;
export const VFIO_EEH_PE_RESET_DEACTIVATE = 5;
export const VFIO_EEH_PE_RESET_HOT = 6;
export const VFIO_EEH_PE_RESET_FUNDAMENTAL = 7;
export const VFIO_EEH_PE_CONFIGURE = 8;
export const VFIO_EEH_PE_INJECT_ERR = 9;
export const VFIO_EEH_PE_STATE_NORMAL = 0;
export const VFIO_EEH_PE_STATE_RESET = 1;
export const VFIO_EEH_PE_STATE_STOPPED = 2;
export const VFIO_EEH_PE_STATE_STOPPED_DMA = 4;
export const VFIO_EEH_PE_STATE_UNAVAIL = 5;

/** A field of a C struct: byte offset and width. */
export interface Field {
  off: number;
  size: 1 | 2 | 4 | 8;
}

/** Struct layouts: field offsets and sizes, minsz = offsetofend(last required field). */
export const structs = {
  vfio_group_status: { size: 8, fields: { argsz: { off: 0, size: 4 }, flags: { off: 4, size: 4 } } },
  vfio_iommu_spapr_tce_info: {
    size: 32,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      dma32_window_start: { off: 8, size: 4 },
      dma32_window_size: { off: 12, size: 4 },
      'ddw.pgsizes': { off: 16, size: 8 },
      'ddw.max_dynamic_windows_supported': { off: 24, size: 4 },
      'ddw.levels': { off: 28, size: 4 },
    },
  },
  vfio_iommu_type1_info: {
    size: 24,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      iova_pgsizes: { off: 8, size: 8 },
      cap_offset: { off: 16, size: 4 },
      pad: { off: 20, size: 4 },
    },
  },
  vfio_iommu_type1_dma_map: {
    size: 32,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      vaddr: { off: 8, size: 8 },
      iova: { off: 16, size: 8 },
      size: { off: 24, size: 8 },
    },
  },
  vfio_iommu_type1_dma_unmap: {
    size: 24,
    fields: { argsz: { off: 0, size: 4 }, flags: { off: 4, size: 4 }, iova: { off: 8, size: 8 }, size: { off: 16, size: 8 } },
  },
  vfio_iommu_spapr_register_memory: {
    size: 24,
    fields: { argsz: { off: 0, size: 4 }, flags: { off: 4, size: 4 }, vaddr: { off: 8, size: 8 }, size: { off: 16, size: 8 } },
  },
  vfio_iommu_spapr_tce_create: {
    size: 40,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      page_shift: { off: 8, size: 4 },
      __resv1: { off: 12, size: 4 },
      window_size: { off: 16, size: 8 },
      levels: { off: 24, size: 4 },
      __resv2: { off: 28, size: 4 },
      start_addr: { off: 32, size: 8 },
    },
  },
  vfio_iommu_spapr_tce_remove: {
    size: 16,
    fields: { argsz: { off: 0, size: 4 }, flags: { off: 4, size: 4 }, start_addr: { off: 8, size: 8 } },
  },
  vfio_eeh_pe_op: {
    size: 40,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      op: { off: 8, size: 4 },
      'err.type': { off: 16, size: 4 },
      'err.func': { off: 20, size: 4 },
      'err.addr': { off: 24, size: 8 },
      'err.mask': { off: 32, size: 8 },
    },
  },
  vfio_device_info: {
    size: 24,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      num_regions: { off: 8, size: 4 },
      num_irqs: { off: 12, size: 4 },
      cap_offset: { off: 16, size: 4 },
      pad: { off: 20, size: 4 },
    },
  },
  vfio_region_info: {
    size: 32,
    fields: {
      argsz: { off: 0, size: 4 },
      flags: { off: 4, size: 4 },
      index: { off: 8, size: 4 },
      cap_offset: { off: 12, size: 4 },
      size: { off: 16, size: 8 },
      offset: { off: 24, size: 8 },
    },
  },
  vfio_irq_info: {
    size: 16,
    fields: { argsz: { off: 0, size: 4 }, flags: { off: 4, size: 4 }, index: { off: 8, size: 4 }, count: { off: 12, size: 4 } },
  },
} as const satisfies Record<string, { size: number; fields: Record<string, Field> }>;

export type StructName = keyof typeof structs;

/** offsetofend(struct, field). */
export function offsetofend<S extends StructName>(s: S, field: keyof (typeof structs)[S]['fields']): number {
  const f = (structs[s].fields as Record<string, Field>)[field as string]!;
  return f.off + f.size;
}

/** Read a field (little-endian) from a struct image; u64 fields come back as bigint. */
export function getField(buf: Uint8Array, f: Field): bigint {
  return readField(new DataView(buf.buffer, buf.byteOffset, buf.byteLength), f);
}

/** A field of the image `dv` views; 0 when the image is too short to hold it. */
function readField(dv: DataView, f: Field): bigint {
  if (f.off + f.size > dv.byteLength) return 0n;
  switch (f.size) {
    case 1:
      return BigInt(dv.getUint8(f.off));
    case 2:
      return BigInt(dv.getUint16(f.off, true));
    case 4:
      return BigInt(dv.getUint32(f.off, true));
    default:
      return dv.getBigUint64(f.off, true);
  }
}

export function setField(buf: Uint8Array, f: Field, v: bigint | number): void {
  if (f.off + f.size > buf.length) return;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const b = BigInt.asUintN(f.size * 8, BigInt(v));
  switch (f.size) {
    case 1:
      dv.setUint8(f.off, Number(b));
      break;
    case 2:
      dv.setUint16(f.off, Number(b), true);
      break;
    case 4:
      dv.setUint32(f.off, Number(b), true);
      break;
    default:
      dv.setBigUint64(f.off, b, true);
  }
}

/**
 * Decode every field of a struct image into a record of bigints. The image is the first `len`
 * bytes of `buf` (all of it by default): fields past them read as 0.
 */
export function decode<S extends StructName>(s: S, buf: Uint8Array, len = buf.length): Record<keyof (typeof structs)[S]['fields'], bigint> {
  const hot = hotDecoders[s as HotStruct];
  // A DataView costs about 100 ns to make: the hot decoders read the bytes.
  return (hot ? hot(buf, len) : decodeFieldTable(s, new DataView(buf.buffer, buf.byteOffset, len))) as Record<keyof (typeof structs)[S]['fields'], bigint>;
}

/** decode() by walking the struct's field table: what the hot decoders must agree with. */
export function decodeFieldTable(s: StructName, dv: DataView): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const [k, f] of fieldList(s)) out[k] = readField(dv, f);
  return out;
}

/** The little-endian u32 at `off` of `b` (in bounds). */
function le32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/** A u32 / u64 field at `off`, 0 when the image is too short to hold it (as readField). */
function u32At(b: Uint8Array, len: number, off: number): bigint {
  return off + 4 <= len ? BigInt(le32(b, off)) : 0n;
}

function u64At(b: Uint8Array, len: number, off: number): bigint {
  if (off + 8 > len) return 0n;
  const n = u64Num(b, off);
  return n >= 0 ? BigInt(n) : (BigInt(le32(b, off + 4)) << 32n) | BigInt(le32(b, off));
}

/** The little-endian u32 field at `off` of an image that holds it, as a number. */
export function u32Num(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

/**
 * The little-endian u64 field at `off` of an image that holds it, as a number when the number is
 * exact, else -1 (the caller reads the bigint then): below 2^53, or above with low bits that the
 * sum keeps (hi * 2^32 is exact and the sum within twice it, so the difference is exact too: a
 * page-aligned IOVA of a DDW at 2^59).
 */
export function u64Num(b: Uint8Array, off: number): number {
  // The bytes read here, not through le32(): V8 inlines this whole into MAP/UNMAP_DMA.
  const lo = (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
  const hi = (b[off + 4]! | (b[off + 5]! << 8) | (b[off + 6]! << 16) | (b[off + 7]! << 24)) >>> 0;
  const n = hi * 0x1_0000_0000 + lo;
  return hi < 0x20_0000 || n - hi * 0x1_0000_0000 === lo ? n : -1;
}

const DMA_MAP = structs.vfio_iommu_type1_dma_map.fields;
const DMA_UNMAP = structs.vfio_iommu_type1_dma_unmap.fields;

/**
 * Decoders of the structs every MAP_DMA and UNMAP_DMA decodes: one fixed-shape record, no field
 * table walked; the fields in table order, so the record equals decodeFieldTable()'s.
 */
export const hotDecoders = {
  vfio_iommu_type1_dma_map: (b: Uint8Array, len: number) => ({
    argsz: u32At(b, len, DMA_MAP.argsz.off),
    flags: u32At(b, len, DMA_MAP.flags.off),
    vaddr: u64At(b, len, DMA_MAP.vaddr.off),
    iova: u64At(b, len, DMA_MAP.iova.off),
    size: u64At(b, len, DMA_MAP.size.off),
  }),
  vfio_iommu_type1_dma_unmap: (b: Uint8Array, len: number) => ({
    argsz: u32At(b, len, DMA_UNMAP.argsz.off),
    flags: u32At(b, len, DMA_UNMAP.flags.off),
    iova: u64At(b, len, DMA_UNMAP.iova.off),
    size: u64At(b, len, DMA_UNMAP.size.off),
  }),
} satisfies { [S in StructName]?: (b: Uint8Array, len: number) => Record<keyof (typeof structs)[S]['fields'], bigint> };
type HotStruct = keyof typeof hotDecoders;

/** Object.entries of a struct's fields, made once per struct. */
const fieldLists = new Map<StructName, [string, Field][]>();
function fieldList(s: StructName): [string, Field][] {
  let l = fieldLists.get(s);
  if (!l) {
    l = Object.entries(structs[s].fields as Record<string, Field>);
    fieldLists.set(s, l);
  }
  return l;
}

/** Encode a struct image from field values (unnamed fields zero). */
export function encode<S extends StructName>(s: S, values: Partial<Record<keyof (typeof structs)[S]['fields'], bigint | number>>): Uint8Array {
  const buf = new Uint8Array(structs[s].size);
  for (const [k, v] of Object.entries(values)) {
    const f = (structs[s].fields as Record<string, Field>)[k];
    if (f && v !== undefined) setField(buf, f, v as bigint | number);
  }
  return buf;
}
