/** The IOAS commands of /dev/iommu (drivers/iommu/iommufd/ioas.c) and IOMMU_OPTION. */
import { getField } from '../kernel/include/uapi/linux/vfio.js';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from '../kernel/include/uapi/linux/iommufd.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '../kernel/iommu-group.js';
import type { Process } from '../kernel/process.js';
import { Ioas, type IommufdCtx } from './context.js';
import type { Span } from './io-pagetable.js';
import { IoptPages } from './pages.js';
import type { Ucmd } from './ucmd.js';

const U64_MAX = (1n << 64n) - 1n;
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

export function ioasAlloc(ictx: IommufdCtx): Ioas | number {
  return ictx.alloc(new Ioas(ictx.platform.iopt));
}

export function ioasAllocIoctl(u: Ucmd<'iommu_ioas_alloc'>): number {
  if (u.get('flags')) return -95;
  const ioas = ioasAlloc(u.ictx);
  if (typeof ioas === 'number') return ioas;
  u.set('out_ioas_id', ioas.id);
  u.respond();
  u.ictx.finalize(ioas);
  return 0;
}

export function ioasIovaRanges(u: Ucmd<'iommu_ioas_iova_ranges'>): number {
  if (u.get('__reserved')) return -95;
  const ioas = u.ictx.get<Ioas>(u.num('ioas_id'), 'ioas');
  if (typeof ioas === 'number') return ioas;
  const max = u.num('num_iovas');
  const ptr = u.get('allowed_iovas');
  u.set('num_iovas', 0);
  u.set('out_iova_alignment', ioas.iopt.iovaAlignment);
  let n = 0;
  for (const r of ioas.iopt.usableRanges()) {
    if (n < max) {
      const b = new Uint8Array(16);
      const dv = new DataView(b.buffer);
      dv.setBigUint64(0, r.start, true);
      dv.setBigUint64(8, r.last, true);
      if (!u.proc.mm.user.write(ptr + BigInt(n * 16), b)) return -14;
    }
    n++;
  }
  u.set('num_iovas', n);
  u.respond();
  return n > max ? -90 : 0;
}

export function ioasAllowIovas(u: Ucmd<'iommu_ioas_allow_iovas'>): number {
  if (u.get('__reserved')) return -95;
  const ioas = u.ictx.get<Ioas>(u.num('ioas_id'), 'ioas');
  if (typeof ioas === 'number') return ioas;
  const ranges: Span[] = [];
  const ptr = u.get('allowed_iovas');
  for (let i = 0; i < u.num('num_iovas'); i++) {
    const b = u.proc.mm.user.read(ptr + BigInt(i * 16), 16);
    if (!b) return -14;
    const start = getField(b, { off: 0, size: 8 });
    const last = getField(b, { off: 8, size: 8 });
    if (start >= last) return -22;
    if (ranges.some((r) => r.start <= last && r.last >= start)) return -22;
    ranges.push({ start, last });
  }
  return ioas.iopt.setAllowIova(ranges);
}

function convProt(flags: number): number {
  let prot = IOMMU_CACHE;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/**
 * iopt_map_user_pages(): new iopt_pages over the user range (-EINVAL for length 0, -EOVERFLOW
 * for a wrap), then an area at the fixed or a chosen IOVA.
 */
export function mapUserPages(ictx: IommufdCtx, proc: Process, ioas: Ioas, uptr: bigint, length: bigint, prot: number, iova: bigint | null): bigint | number {
  const ps = ictx.platform.iopt.pageSize;
  if (length > U64_MAX - ps || length === 0n) return -22;
  if (uptr + length > U64_MAX) return -75;
  const base = uptr - (uptr % ps);
  const npages = Number((length + (uptr - base) + ps - 1n) / ps);
  const pages = new IoptPages({ mem: ictx.platform.mem, log: ictx.platform.log, users: ictx.platform.users }, proc, base, npages, (prot & IOMMU_WRITE) !== 0);
  if (ictx.accountMode === 'mm' && pages.accountMode === 'user') pages.accountMode = 'mm';
  return ioas.iopt.mapPages([{ pages, startByte: uptr - base, length }], length, iova, prot);
}

export function ioasMap(u: Ucmd<'iommu_ioas_map'>): number {
  const flags = u.num('flags');
  if (flags & ~MAP_FLAGS || u.get('__reserved')) return -95;
  if (u.get('iova') >= U64_MAX || u.get('length') >= U64_MAX) return -75;
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -22;
  const ioas = u.ictx.get<Ioas>(u.num('ioas_id'), 'ioas');
  if (typeof ioas === 'number') return ioas;
  const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const r = mapUserPages(u.ictx, u.proc, ioas, u.get('user_va'), u.get('length'), convProt(flags), fixed ? u.get('iova') : null);
  if (typeof r === 'number') return r;
  u.set('iova', r);
  return u.respond();
}

export function ioasCopy(u: Ucmd<'iommu_ioas_copy'>): number {
  const flags = u.num('flags');
  if (flags & ~MAP_FLAGS) return -95;
  if (u.get('length') >= U64_MAX || u.get('src_iova') >= U64_MAX || u.get('dst_iova') >= U64_MAX) return -75;
  if (!(flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE))) return -22;
  const src = u.ictx.get<Ioas>(u.num('src_ioas_id'), 'ioas');
  if (typeof src === 'number') return src;
  const list = src.iopt.getPages(u.get('src_iova'), u.get('length'));
  if (typeof list === 'number') return list;
  const dst = u.ictx.get<Ioas>(u.num('dst_ioas_id'), 'ioas');
  if (typeof dst === 'number') return dst;
  const fixed = (flags & IOMMU_IOAS_MAP_FIXED_IOVA) !== 0;
  const r = dst.iopt.mapPages(list, u.get('length'), fixed ? u.get('dst_iova') : null, convProt(flags));
  if (typeof r === 'number') return r;
  u.set('dst_iova', r);
  return u.respond();
}

export function ioasUnmap(u: Ucmd<'iommu_ioas_unmap'>): number {
  const ioas = u.ictx.get<Ioas>(u.num('ioas_id'), 'ioas');
  if (typeof ioas === 'number') return ioas;
  const iova = u.get('iova');
  const length = u.get('length');
  let r: { rc: number; unmapped: bigint };
  if (iova === 0n && length === U64_MAX) r = ioas.iopt.unmapAll();
  else if (iova >= U64_MAX || length >= U64_MAX) return -75;
  else r = ioas.iopt.unmapIova(iova, length);
  if (r.rc) return r.rc;
  u.set('length', r.unmapped);
  return u.respond();
}

export function iommufdOption(u: Ucmd<'iommu_option'>): number {
  if (u.get('__reserved')) return -95;
  let rc: number;
  switch (u.num('option_id')) {
    case IOMMU_OPTION_RLIMIT_MODE:
      rc = rlimitMode(u);
      break;
    case IOMMU_OPTION_HUGE_PAGES:
      rc = hugePages(u);
      break;
    default:
      return -95;
  }
  if (rc) return rc;
  return u.respondField('val64');
}

function rlimitMode(u: Ucmd<'iommu_option'>): number {
  if (u.get('object_id')) return -95;
  const op = u.num('op');
  if (op === IOMMU_OPTION_OP_GET) {
    u.set('val64', u.ictx.accountMode === 'mm' ? 1 : 0);
    return 0;
  }
  if (op === IOMMU_OPTION_OP_SET) {
    // capable(CAP_SYS_RESOURCE): root only in this model.
    if (u.proc.uid !== 0) return -1;
    if (!u.ictx.isEmpty) return -16;
    const v = u.get('val64');
    if (v === 0n) u.ictx.accountMode = 'user';
    else if (v === 1n) u.ictx.accountMode = 'mm';
    else return -22;
    return 0;
  }
  return -95;
}

function hugePages(u: Ucmd<'iommu_option'>): number {
  const ioas = u.ictx.get<Ioas>(u.num('object_id'), 'ioas');
  if (typeof ioas === 'number') return ioas;
  const op = u.num('op');
  if (op === IOMMU_OPTION_OP_GET) {
    u.set('val64', ioas.iopt.disableLargePages ? 0 : 1);
    return 0;
  }
  if (op === IOMMU_OPTION_OP_SET) {
    const v = u.get('val64');
    if (v === 0n) return ioas.iopt.disableLarge();
    if (v === 1n) {
      ioas.iopt.enableLarge();
      return 0;
    }
    return -22;
  }
  return -95;
}

/** The IOAS that the type1 compatibility ioctls work on (-ENODEV without one). */
export function compatIoas(ictx: IommufdCtx): Ioas | number {
  return ictx.vfioIoas ?? -19;
}

export function vfioIoas(u: Ucmd<'iommu_vfio_ioas'>): number {
  if (u.get('__reserved')) return -95;
  switch (u.num('op')) {
    case IOMMU_VFIO_IOAS_GET: {
      const ioas = compatIoas(u.ictx);
      if (typeof ioas === 'number') return ioas;
      u.set('ioas_id', ioas.id);
      return u.respond();
    }
    case IOMMU_VFIO_IOAS_SET: {
      const ioas = u.ictx.get<Ioas>(u.num('ioas_id'), 'ioas');
      if (typeof ioas === 'number') return ioas;
      u.ictx.vfioIoas = ioas;
      return 0;
    }
    case IOMMU_VFIO_IOAS_CLEAR:
      u.ictx.vfioIoas = null;
      return 0;
    default:
      return -95;
  }
}
