/**
 * The VFIO type1 container ioctls that /dev/iommu also answers (drivers/iommu/iommufd/
 * vfio_compat.c), over the context's compat IOAS. The sPAPR types are not among them.
 */
import { copyStructFromUser, copyToUser, type IoctlArg, readStructFromUser } from '../kernel/uaccess.js';
import {
  encode,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
} from '../kernel/include/uapi/linux/vfio.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '../kernel/iommu-group.js';
import type { Process } from '../kernel/process.js';
import type { IommufdCtx } from './context.js';
import { compatIoas, ioasAlloc, mapUserPages } from './ioas.js';

const ENOTTY = -25;
const VFIO_DMA_UNMAP_FLAG_ALL = 2;
const VFIO_IOMMU_INFO_PGSIZES = 1;
const VFIO_IOMMU_INFO_CAPS = 2;
const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;
const U64_MAX = (1n << 64n) - 1n;

export function iommufdVfioIoctl(ictx: IommufdCtx, proc: Process, cmd: number, arg: IoctlArg): number {
  switch (cmd) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_SET_IOMMU:
      return setIommu(ictx, typeof arg === 'bigint' ? arg : 0n);
    case VFIO_CHECK_EXTENSION:
      return checkExtension(ictx, typeof arg === 'bigint' ? arg : 0n);
    case VFIO_IOMMU_GET_INFO:
      return getInfo(ictx, arg);
    case VFIO_IOMMU_MAP_DMA:
      return mapDma(ictx, proc, arg);
    case VFIO_IOMMU_UNMAP_DMA:
      return unmapDma(ictx, arg);
    default:
      return ENOTTY;
  }
}

function checkExtension(ictx: IommufdCtx, type: bigint): number {
  switch (Number(type)) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      return 1;
    case VFIO_DMA_CC_IOMMU: {
      const ioas = compatIoas(ictx);
      if (typeof ioas === 'number') return ioas;
      return ioas.hwpts.length ? 0 : 1;
    }
    default:
      return 0;
  }
}

function setIommu(ictx: IommufdCtx, type: bigint): number {
  if (type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) return -22;
  const ioas = compatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  return type === BigInt(VFIO_TYPE1_IOMMU) ? ioas.iopt.disableLarge() : 0;
}

/** iommufd_get_pagesizes(): what every domain can map, at least PAGE_SIZE granular. */
function pageSizes(ictx: IommufdCtx, ioas: { iopt: { domains: { pgsizeBitmap: bigint }[]; iovaAlignment: bigint } }): bigint {
  const ps = ictx.platform.iopt.pageSize;
  let bm = U64_MAX;
  for (const d of ioas.iopt.domains) bm &= d.pgsizeBitmap;
  if (bm & (ps - 1n)) bm = (bm & ~(ps - 1n)) | ps;
  return bm > ioas.iopt.iovaAlignment ? bm : ioas.iopt.iovaAlignment;
}

function getInfo(ictx: IommufdCtx, arg: IoctlArg): number {
  const cs = copyStructFromUser(arg, 'vfio_iommu_type1_info', 'iova_pgsizes');
  if (typeof cs === 'number') return cs;
  const argsz = Number(cs.v.argsz);
  const ioas = compatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  const infoSize = 24;
  const ranges = ioas.iopt.usableRanges();
  const dmaAvail = new Uint8Array(16);
  const dv = new DataView(dmaAvail.buffer);
  dv.setUint16(0, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
  dv.setUint16(2, 1, true);
  dv.setUint32(8, 0xffff_ffff, true);
  const iova = new Uint8Array(16 + 16 * ranges.length);
  const iv = new DataView(iova.buffer);
  iv.setUint16(0, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, true);
  iv.setUint16(2, 1, true);
  iv.setUint32(8, ranges.length, true);
  ranges.forEach((r, i) => {
    iv.setBigUint64(16 + 16 * i, r.start, true);
    iv.setBigUint64(24 + 16 * i, r.last, true);
  });
  const total = infoSize + dmaAvail.length + iova.length;
  const buf = arg as Uint8Array;
  if (argsz >= total) {
    dv.setUint32(4, infoSize + dmaAvail.length, true);
    buf.set(dmaAvail, infoSize);
    buf.set(iova, infoSize + dmaAvail.length);
  }
  const out = encode('vfio_iommu_type1_info', {
    argsz: total,
    flags: VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
    iova_pgsizes: pageSizes(ictx, ioas),
    cap_offset: argsz >= total ? infoSize : 0,
  });
  if (!copyToUser(arg, out.subarray(0, Math.min(argsz, infoSize)))) return -14;
  return 0;
}

function mapDma(ictx: IommufdCtx, proc: Process, arg: IoctlArg): number {
  const cs = readStructFromUser(arg, 'vfio_iommu_type1_dma_map', 'size');
  if (typeof cs === 'number') return cs;
  const flags = Number(cs.v.flags);
  if (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) return -22;
  let prot = IOMMU_CACHE;
  if (flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = compatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  const r = mapUserPages(ictx, proc, ioas, cs.v.vaddr, cs.v.size, prot, cs.v.iova);
  return typeof r === 'number' ? r : 0;
}

function unmapDma(ictx: IommufdCtx, arg: IoctlArg): number {
  const cs = readStructFromUser(arg, 'vfio_iommu_type1_dma_unmap', 'size');
  if (typeof cs === 'number') return cs;
  const flags = Number(cs.v.flags);
  if (flags & ~VFIO_DMA_UNMAP_FLAG_ALL) return -22;
  const ioas = compatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  let r: { rc: number; unmapped: bigint };
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (cs.v.iova !== 0n || cs.v.size !== 0n) return -22;
    r = ioas.iopt.unmapAll();
  } else {
    if (ioas.iopt.disableLargePages) {
      const rc = ioas.iopt.cutIova(cs.v.iova ? [cs.v.iova + cs.v.size - 1n, cs.v.iova - 1n] : [cs.v.iova + cs.v.size - 1n]);
      if (rc) return rc;
    }
    r = ioas.iopt.unmapIova(cs.v.iova, cs.v.size);
  }
  const out = encode('vfio_iommu_type1_dma_unmap', { argsz: cs.v.argsz, flags: cs.v.flags, iova: cs.v.iova, size: r.unmapped });
  if (!copyToUser(arg, out)) return -14;
  return r.rc;
}

/** iommufd_vfio_compat_ioas_create(): a group set on the context gets a compat IOAS (or keeps its one). */
export function compatIoasCreate(ictx: IommufdCtx): number {
  const ioas = ioasAlloc(ictx);
  if (typeof ioas === 'number') return ioas;
  if (ictx.vfioIoas) {
    ictx.abort(ioas);
    return 0;
  }
  ictx.vfioIoas = ioas;
  ictx.finalize(ioas);
  return 0;
}
