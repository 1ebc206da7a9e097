/** The VFIO container (drivers/vfio/container.c): SET_IOMMU, CHECK_EXTENSION and group attach. */
import { errno } from '../base/errno.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { argValue } from '../kernel/uaccess.js';
import { VFIO_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION, VFIO_SET_IOMMU } from '../kernel/include/uapi/linux/vfio.js';
import type { IommufdCtx } from '../iommufd/context.js';
import type { VfioGroup } from './group.js';
import { SpaprTceDriver, type TceContainer } from './spapr-tce.js';

export class VfioContainer {
  /** Groups in the container, oldest first. */
  readonly groups: VfioGroup[] = [];
  iommuData: TceContainer | null = null;
  /** References: the container file plus one per attached group. */
  refs = 1;
  /**
   * container->group_lock, as far as a dead task leaves it: read-held forever by a task that
   * oopsed inside a container ioctl (its description), and whether a writer now waits behind it
   * (then new readers queue too). Nothing here ever spins: a call that would wait is reported.
   */
  deadReader: string | null = null;
  writerWaiting = false;

  constructor(
    readonly driver: SpaprTceDriver,
    /**
     * The iommufd behind the file when IOMMUFD provides /dev/vfio/vfio in tcelab's PPC64 design
     * (the driver keeps its groups, windows and maps in it), else null.
     */
    readonly ictx: IommufdCtx | null = null,
  ) {}

  /**
   * Why an ioctl would wait forever on group_lock (null if it runs): SET_IOMMU takes it for
   * writing and becomes the waiting writer; every other call but GET_API_VERSION reads it.
   */
  ioctlWait(cmd: number): string | null {
    if (cmd === VFIO_GET_API_VERSION || !this.deadReader) return null;
    if (cmd === VFIO_SET_IOMMU) return this.writeWait();
    return this.writerWaiting ? `container group_lock: a writer waits behind ${this.deadReader}` : null;
  }

  /** down_write(&container->group_lock) behind the dead reader: the caller waits, forever. */
  writeWait(): string | null {
    if (!this.deadReader) return null;
    this.writerWaiting = true;
    return `container group_lock held by ${this.deadReader}`;
  }

  /** vfio_fops_unl_ioctl(). */
  ioctl(cmd: number, arg: IoctlArg): number {
    switch (cmd) {
      case VFIO_GET_API_VERSION:
        return VFIO_API_VERSION;
      case VFIO_CHECK_EXTENSION:
        if (this.iommuData) return this.driver.ioctl(this.iommuData, cmd, arg);
        return Math.max(0, SpaprTceDriver.checkExtension(argValue(arg), this.driver.eehEnabled()));
      case VFIO_SET_IOMMU:
        return this.setIommu(argValue(arg));
      default:
        if (this.iommuData) return this.driver.ioctl(this.iommuData, cmd, arg);
        return -errno.EINVAL;
    }
  }

  /** vfio_ioctl_set_iommu(). */
  private setIommu(type: bigint): number {
    if (!this.groups.length || this.iommuData) return -errno.EINVAL;
    if (SpaprTceDriver.checkExtension(type, this.driver.eehEnabled()) <= 0) return -errno.ENODEV;
    const data = this.driver.open(type, this.ictx);
    if (typeof data === 'number') return data;
    // __vfio_container_attach_groups(): unwind the groups already attached on failure.
    const done: VfioGroup[] = [];
    for (const g of this.groups) {
      const ret = this.driver.attachGroup(data, g.iommuGroup);
      if (ret) {
        for (const d of done) this.driver.detachGroup(data, d.iommuGroup);
        this.driver.release(data);
        return ret;
      }
      done.push(g);
    }
    this.iommuData = data;
    return 0;
  }

  /** vfio_container_attach_group(). */
  attachGroup(g: VfioGroup): number {
    const ret = g.iommuGroup.claimDmaOwner(this.ictx ?? g);
    if (ret) return ret;
    if (this.iommuData) {
      const r = this.driver.attachGroup(this.iommuData, g.iommuGroup);
      if (r) {
        g.iommuGroup.releaseDmaOwner();
        return r;
      }
    }
    g.container = this;
    g.containerUsers = 1;
    this.groups.push(g);
    this.refs++;
    return 0;
  }

  /** vfio_group_detach_container(). */
  detachGroup(g: VfioGroup): void {
    if (this.iommuData) this.driver.detachGroup(this.iommuData, g.iommuGroup);
    g.iommuGroup.releaseDmaOwner();
    g.container = null;
    g.containerUsers = 0;
    this.groups.splice(this.groups.indexOf(g), 1);
    if (this.iommuData && !this.groups.length) {
      this.driver.release(this.iommuData);
      this.iommuData = null;
    }
    this.put();
  }

  /** vfio_container_put(): the last reference releases an unused container (and its iommufd). */
  put(): void {
    if (--this.refs === 0) this.ictx?.put();
  }
}
