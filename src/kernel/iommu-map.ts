/**
 * iommu_map() / iommu_unmap() of the iommu core (drivers/iommu/iommu.c): split a range into the
 * largest page sizes the domain supports and call its map_pages()/unmap_pages() until the range
 * is done, trusting the `mapped` count each call reports.
 */
import type { IommuDomain } from './iommu-group.js';

function fls(n: bigint): number {
  return n.toString(2).length - 1;
}

function ffsIdx(n: bigint): number {
  return fls(n & -n);
}

const genmask = (hi: number): bigint => (1n << BigInt(hi + 1)) - 1n;

/** iommu_pgsize(): the page size for the next step and how many of them. */
export function iommuPgsize(domain: IommuDomain, iova: bigint, paddr: bigint, size: bigint): { pgsize: bigint; count: number } {
  const merge = paddr | iova;
  let pgsizes = domain.pgsizeBitmap & genmask(fls(size));
  if (merge) pgsizes &= genmask(ffsIdx(merge));
  const idx = fls(pgsizes);
  const pgsize = 1n << BigInt(idx);
  let sz = size;
  const bigger = domain.pgsizeBitmap & ~genmask(idx);
  if (bigger) {
    const next = 1n << BigInt(ffsIdx(bigger));
    if (!((iova ^ paddr) & (next - 1n))) {
      const offset = next - (merge & (next - 1n));
      if (offset + next <= sz) sz = offset;
    }
  }
  return { pgsize, count: Number(sz >> BigInt(idx)) };
}

/** iommu_map(): -EINVAL unless iova, paddr and size are aligned to the smallest page size. */
export function iommuMap(domain: IommuDomain, iova: bigint, paddr: bigint, size: bigint, prot: number): number {
  const ops = domain.ops;
  if (!ops.mapPages || domain.pgsizeBitmap === 0n) return -19;
  if (domain.type !== 'paging') return -22;
  const min = domain.pgsizeBitmap & -domain.pgsizeBitmap;
  if ((iova | paddr | size) & (min - 1n)) return -22;
  const origIova = iova;
  const origSize = size;
  let ret = 0;
  while (size) {
    const { pgsize, count } = iommuPgsize(domain, iova, paddr, size);
    const r = ops.mapPages(domain, iova, paddr, pgsize, count, prot);
    size -= r.mapped;
    ret = r.ret;
    if (ret) break;
    // A driver that maps nothing and reports success would spin the kernel forever.
    if (!r.mapped) {
      ret = -5;
      break;
    }
    iova += r.mapped;
    paddr += r.mapped;
  }
  if (ret) iommuUnmap(domain, origIova, origSize - size);
  return ret;
}

/** iommu_unmap(): bytes unmapped. */
export function iommuUnmap(domain: IommuDomain, iova: bigint, size: bigint): bigint {
  const ops = domain.ops;
  if (!ops.unmapPages || domain.type !== 'paging') return 0n;
  const min = domain.pgsizeBitmap & -domain.pgsizeBitmap;
  if ((iova | size) & (min - 1n)) return 0n;
  let unmapped = 0n;
  while (unmapped < size) {
    const { pgsize, count } = iommuPgsize(domain, iova, iova, size - unmapped);
    const n = ops.unmapPages(domain, iova, pgsize, count);
    if (!n) break;
    iova += n;
    unmapped += n;
  }
  return unmapped;
}
