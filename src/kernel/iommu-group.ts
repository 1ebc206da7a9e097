/**
 * IOMMU groups (one per PE) and the iommu core's domain and DMA-owner protocol. A group is
 * always attached to one domain: the platform domain (the kernel's own DMA windows), the
 * blocked domain (nothing translates: a user owns the group), or a paging domain that an
 * IOMMUFD user allocated. Changing the domain calls the new domain's attach_dev() for every
 * device of the group; on PowerPC the blocked domain's attach is take_ownership() and the
 * platform domain's is release_ownership().
 */
import type { EventLog } from '../base/events.js';
import type { KPciDev } from './pci.js';
import type { TableGroup } from './table-group.js';

export type DomainType = 'platform' | 'blocked' | 'paging';

/** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE of include/linux/iommu.h. */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;

export interface IommuDomainGeometry {
  apertureStart: bigint;
  /** Last valid IOVA (inclusive). */
  apertureEnd: bigint;
  forceAperture: boolean;
}

/** struct iommu_domain_ops. */
export interface IommuDomainOps {
  attachDev(domain: IommuDomain, dev: KPciDev, group: IommuGroup): number;
  /** map_pages(): returns 0 or -errno, and how many bytes it says it mapped. */
  mapPages?(domain: IommuDomain, iova: bigint, paddr: bigint, pgsize: bigint, pgcount: number, prot: number): { ret: number; mapped: bigint };
  /** unmap_pages(): bytes unmapped. */
  unmapPages?(domain: IommuDomain, iova: bigint, pgsize: bigint, pgcount: number): bigint;
  iovaToPhys?(domain: IommuDomain, iova: bigint): bigint;
  free?(domain: IommuDomain): void;
}

/** struct iommu_domain. */
export interface IommuDomain {
  readonly type: DomainType;
  readonly ops: IommuDomainOps;
  pgsizeBitmap: bigint;
  geometry: IommuDomainGeometry;
  /**
   * The IOVA ranges that translate, when the domain has several (a PPC64 domain's 32-bit and
   * 64-bit windows); what lies between them inside the geometry is reserved.
   */
  apertures?: { start: bigint; last: bigint }[];
  /** A name for logs and reports. */
  readonly label: string;
}

export const IOMMU_RESV_DIRECT = 0;
export const IOMMU_RESV_DIRECT_RELAXABLE = 1;
export const IOMMU_RESV_RESERVED = 2;
export const IOMMU_RESV_MSI = 3;
export const IOMMU_RESV_SW_MSI = 4;

/** struct iommu_resv_region. */
export interface IommuResvRegion {
  start: bigint;
  length: bigint;
  type: number;
}

export const IOMMU_CAP_CACHE_COHERENCY = 0;
export const IOMMU_CAP_NOEXEC = 1;
export const IOMMU_CAP_PRE_BOOT_PROTECTION = 2;
export const IOMMU_CAP_ENFORCE_CACHE_COHERENCY = 3;
export const IOMMU_CAP_DEFERRED_FLUSH = 4;
export const IOMMU_CAP_DIRTY_TRACKING = 5;

/** The parts of struct iommu_ops an IOMMUFD user reaches. */
export interface IommuOps {
  capable(dev: KPciDev, cap: number): boolean;
  /** domain_alloc_paging(), or undefined when the driver has none. */
  domainAllocPaging?(dev: KPciDev, group: IommuGroup): IommuDomain | number;
  /** domain_alloc_user() with driver data (its type and bytes, as the user gave them). */
  domainAllocUser?(dev: KPciDev, group: IommuGroup, type: number, data: Uint8Array): IommuDomain | number;
  /** hw_info(): the info type and its data, or undefined (no op: type NONE). */
  hwInfo?(dev: KPciDev, group: IommuGroup): { type: number; data: Uint8Array };
  getResvRegions?(dev: KPciDev): IommuResvRegion[];
}

export class IommuGroup {
  /** The attached domain (group->domain). */
  current: IommuDomain;
  /** The DMA owner cookie (a VFIO group or an IOMMUFD context) and how many times it claimed. */
  owner: object | null = null;
  ownerCnt = 0;

  constructor(
    readonly id: number,
    readonly tableGroup: TableGroup,
    /** The group's functions (a hot-unplugged one leaves). */
    readonly devices: KPciDev[],
    private readonly log: EventLog,
    readonly defaultDomain: IommuDomain,
    readonly blockingDomain: IommuDomain,
    readonly ops: IommuOps,
  ) {
    this.current = defaultDomain;
  }

  /** The type of the attached domain. */
  get domain(): DomainType {
    return this.current.type;
  }

  /** A group is viable for VFIO when every device is bound to vfio-pci (or to no driver). */
  get viable(): boolean {
    return this.devices.every((d) => d.removed || d.driver === 'vfio-pci' || d.driver === null);
  }

  /** __iommu_group_set_domain(): attach every device; on a failure the others go back. */
  setDomain(domain: IommuDomain): number {
    if (this.current === domain) return 0;
    const done: KPciDev[] = [];
    for (const dev of this.devices) {
      if (dev.removed) continue;
      const rc = domain.ops.attachDev(domain, dev, this);
      if (rc) {
        for (const d of done) this.current.ops.attachDev(this.current, d, this);
        return rc;
      }
      done.push(dev);
    }
    this.current = domain;
    this.log.emit({
      layer: 'kernel',
      kind: 'ownership',
      group: this.id,
      owner: domain.type === 'platform' ? 'kernel' : domain.type === 'blocked' ? 'vfio' : 'iommufd',
    });
    return 0;
  }

  /**
   * iommu_group_claim_dma_owner(): -EPERM while a kernel driver of the group uses the DMA API
   * (iommu_device_use_default_domain() counted it), -EBUSY when another owner holds the group.
   */
  claimDmaOwner(owner: object): number {
    if (this.ownerCnt) {
      if (this.owner !== owner) return -16;
      this.ownerCnt++;
      return 0;
    }
    if (this.devices.some((d) => !d.removed && d.driver === 'kernel')) return -1;
    const rc = this.setDomain(this.blockingDomain);
    if (rc) return rc;
    this.owner = owner;
    this.ownerCnt = 1;
    return 0;
  }

  /** iommu_device_use_default_domain(): a kernel driver may not bind while a user owns the group. */
  useDefaultDomain(): number {
    return this.ownerCnt ? -16 : 0;
  }

  /** iommu_group_release_dma_owner(). */
  releaseDmaOwner(): void {
    if (!this.ownerCnt) return;
    if (--this.ownerCnt) return;
    this.owner = null;
    this.setDomain(this.defaultDomain);
  }

  /** iommu_attach_group(): only over the default or blocked domain (-EBUSY otherwise). */
  attach(domain: IommuDomain): number {
    if (this.current !== this.defaultDomain && this.current !== this.blockingDomain) return -16;
    return this.setDomain(domain);
  }

  /** iommu_group_replace_domain(). */
  replace(domain: IommuDomain): number {
    return this.setDomain(domain);
  }

  /** iommu_detach_group(): back to the blocked domain while owned, else the default. */
  detach(): void {
    this.setDomain(this.owner ? this.blockingDomain : this.defaultDomain);
  }
}

/**
 * The platform and blocked domains over a table group's ownership ops (spapr_tce_iommu_ops).
 * `block` replaces take_ownership() as the blocked domain's attach.
 */
export function tableGroupDomains(tg: TableGroup, block?: (tg: TableGroup) => number): { platform: IommuDomain; blocked: IommuDomain } {
  const geometry: IommuDomainGeometry = { apertureStart: 0n, apertureEnd: 0n, forceAperture: false };
  return {
    platform: {
      type: 'platform',
      label: `${tg.label} platform`,
      pgsizeBitmap: 0n,
      geometry,
      ops: {
        attachDev: (_d, dev) => {
          tg.ops.releaseOwnership(tg, dev.name);
          return 0;
        },
      },
    },
    blocked: {
      type: 'blocked',
      label: `${tg.label} blocked`,
      pgsizeBitmap: 0n,
      geometry,
      ops: { attachDev: (_d, dev) => (block ? block(tg) : tg.ops.takeOwnership(tg, dev.name)) },
    },
  };
}
