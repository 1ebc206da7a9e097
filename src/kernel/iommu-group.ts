/**
 * IOMMU groups (one per PE) and the iommu core's DMA-owner protocol: a user claiming a group
 * attaches the blocked domain (take_ownership per device); releasing it re-attaches the platform
 * domain (release_ownership per device).
 */
import type { EventLog } from '../base/events.js';
import type { KPciDev } from './pci.js';
import type { TableGroup } from './table-group.js';

export type DomainType = 'platform' | 'blocked';

export class IommuGroup {
  domain: DomainType = 'platform';
  /** The DMA owner cookie (a VFIO group) and how many times it claimed. */
  owner: object | null = null;
  ownerCnt = 0;

  constructor(
    readonly id: number,
    readonly tableGroup: TableGroup,
    /** The group's functions (a hot-unplugged one leaves). */
    readonly devices: KPciDev[],
    private readonly log: EventLog,
  ) {}

  /** A group is viable for VFIO when every device is bound to vfio-pci (or to no driver). */
  get viable(): boolean {
    return this.devices.every((d) => d.removed || d.driver === 'vfio-pci' || d.driver === null);
  }

  private attachDomain(domain: DomainType): number {
    const tg = this.tableGroup;
    for (const dev of this.devices) {
      if (dev.removed) continue;
      if (domain === 'blocked') {
        const rc = tg.ops.takeOwnership(tg, dev.name);
        if (rc) return rc;
      } else {
        tg.ops.releaseOwnership(tg, dev.name);
      }
    }
    this.domain = domain;
    this.log.emit({ layer: 'kernel', kind: 'ownership', group: this.id, owner: domain === 'blocked' ? 'vfio' : 'kernel' });
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
    const rc = this.attachDomain('blocked');
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
    this.attachDomain('platform');
  }
}
