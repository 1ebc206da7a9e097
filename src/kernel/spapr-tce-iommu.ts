/**
 * spapr_tce_iommu_ops (arch/powerpc/kernel/iommu.c) as the 2026 PPC64 IOMMUFD RFC extends it:
 * a paging domain over one TCE table on the allocating device's table group. The RFC's bugs are
 * named quirks; with a quirk fixed the domain does what the RFC meant.
 *   - domain_alloc_paging(): create_table(window 0, 4K TCEs, 1 GiB, 1 level), a table reference
 *     for the domain, and (quirk rfc-hwpt-alloc-programs-pe) set_window() on the spot;
 *   - attach_dev(): records the device (quirk rfc-single-device-domain), or programs its PE;
 *   - map_pages()/unmap_pages(): TCE set/clear through the table's ops.
 */
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE, type DmaDirection } from '../hw/tce.js';
import { type IommuDomain, type IommuGroup, type IommuOps, IOMMU_CAP_CACHE_COHERENCY, IOMMU_READ, IOMMU_WRITE } from './iommu-group.js';
import { type IommuTable, iommuTceTableGet, iommuTceTablePut } from './iommu-table.js';
import type { KPciDev } from './pci.js';
import type { Quirks } from './quirks.js';
import type { TableGroup } from './table-group.js';

const SZ_4K = 4096n;
const RFC_WINDOW = 0x4000_0000n;

/** struct ppc64_domain of the RFC. */
export interface Ppc64Domain extends IommuDomain {
  table: IommuTable;
  /** The table group the table was created on. */
  readonly tableGroup: TableGroup;
  /** Devices attached (the RFC keeps the last one only). */
  devices: KPciDev[];
}

export function isPpc64Domain(d: IommuDomain): d is Ppc64Domain {
  return 'table' in d;
}

/** The RFC's iommu_ops for a PowerNV machine. */
export function spaprTceRfcOps(quirks: Quirks): IommuOps {
  return {
    capable: (_dev, cap) => cap === IOMMU_CAP_CACHE_COHERENCY,
    domainAllocPaging: (_dev, group) => allocPaging(group, quirks),
  };
}

function allocPaging(group: IommuGroup, quirks: Quirks): Ppc64Domain | number {
  const tg = group.tableGroup;
  const r = tg.ops.createTable(tg, 0, 12, RFC_WINDOW, 1);
  if (typeof r === 'number') return -12;
  iommuTceTableGet(r);
  if (quirks['rfc-hwpt-alloc-programs-pe']) tg.ops.setWindow(tg, 0, r);
  const domain: Ppc64Domain = {
    type: 'paging',
    label: `${tg.label} rfc`,
    pgsizeBitmap: SZ_4K,
    geometry: { apertureStart: 0n, apertureEnd: quirks['rfc-aperture-off-by-one'] ? RFC_WINDOW : RFC_WINDOW - 1n, forceAperture: true },
    table: r,
    tableGroup: tg,
    devices: [],
    ops: {
      attachDev: (d, dev, g) => attachDev(d as Ppc64Domain, dev, g, quirks),
      mapPages: (d, iova, paddr, pgsize, pgcount, prot) => mapPages(d as Ppc64Domain, iova, paddr, pgsize, pgcount, prot, quirks),
      unmapPages: (d, iova, pgsize, pgcount) => unmapPages(d as Ppc64Domain, iova, pgsize, pgcount),
      iovaToPhys: (d, iova) => {
        const tbl = (d as Ppc64Domain).table;
        const tce = tbl.ops.get(tbl, Number(iova >> BigInt(tbl.itPageShift)));
        return BigInt(tce - (tce % tbl.pageSize));
      },
      free: (d) => {
        if (quirks['rfc-domain-table-leak']) return;
        // Fixed: the domain gives back every reference it holds; PEs still using the table keep theirs.
        const tbl = (d as Ppc64Domain).table;
        while (tbl.refs > tbl.groups.length && !iommuTceTablePut(tbl));
      },
    },
  };
  return domain;
}

function attachDev(domain: Ppc64Domain, dev: KPciDev, group: IommuGroup, quirks: Quirks): number {
  if (quirks['rfc-single-device-domain']) {
    domain.devices = [dev];
    if (!quirks['rfc-hwpt-alloc-programs-pe'] && group.tableGroup === domain.tableGroup) return programPe(group.tableGroup, domain.table);
    return 0;
  }
  if (!domain.devices.includes(dev)) domain.devices.push(dev);
  return programPe(group.tableGroup, domain.table);
}

/**
 * Point window 0 of a PE at the domain's table (the RFC fixed: at attach, for every PE), with the
 * reference take_ownership() drops when the PE is blocked again.
 */
function programPe(tg: TableGroup, tbl: IommuTable): number {
  if (tg.tables[0] === tbl) return 0;
  if (tg.tables[0]) tg.ops.unsetWindow(tg, 0);
  iommuTceTableGet(tbl);
  const rc = tg.ops.setWindow(tg, 0, tbl);
  if (rc) iommuTceTablePut(tbl);
  return rc;
}

function mapPages(domain: Ppc64Domain, iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number, quirks: Quirks) {
  const tbl = domain.table;
  if (pgsize !== SZ_4K) return { ret: -22, mapped: 0n };
  const size = BigInt(pgcount) * pgsize;
  if (iova < domain.geometry.apertureStart || iova + size - 1n > domain.geometry.apertureEnd) return { ret: -22, mapped: 0n };
  if ((iova | paddr) % pgsize) return { ret: -22, mapped: 0n };
  let dir: DmaDirection = DMA_BIDIRECTIONAL;
  if (quirks['rfc-inverted-direction']) {
    if (!(prot & IOMMU_WRITE)) dir = DMA_FROM_DEVICE;
    if (!(prot & IOMMU_READ)) dir = DMA_TO_DEVICE;
  } else {
    if (!(prot & IOMMU_WRITE)) dir = DMA_TO_DEVICE;
    if (!(prot & IOMMU_READ)) dir = DMA_FROM_DEVICE;
  }
  const ret = tbl.ops.set(tbl, Number(iova >> BigInt(tbl.itPageShift)), pgcount, Number(paddr), dir);
  if (ret) return { ret: 0, mapped: 0n };
  return { ret: 0, mapped: quirks['rfc-mapped-one-page'] ? pgsize : size };
}

function unmapPages(domain: Ppc64Domain, iova: bigint, pgsize: bigint, pgcount: number): bigint {
  const tbl = domain.table;
  if (pgsize !== SZ_4K) return 0n;
  tbl.ops.clear(tbl, Number(iova >> BigInt(tbl.itPageShift)), pgcount);
  return pgsize * BigInt(pgcount);
}
