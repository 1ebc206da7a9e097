/** /dev/vfio/N (drivers/vfio/group.c): the group file, its container link and device fds. */
import { errno } from '../base/errno.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import { copyStructFromUser, copyToUser, type IoctlArg } from '../kernel/uaccess.js';
import { encode, VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE } from '../kernel/include/uapi/linux/vfio.js';
import type { IommufdCtx } from '../iommufd/context.js';
import { compatIoasCreate } from '../iommufd/vfio-compat.js';
import type { VfioContainer } from './container.js';
import type { VfioDevice } from './device.js';

export class VfioGroup {
  container: VfioContainer | null = null;
  /** The iommufd set as the group's "container" when IOMMUFD provides /dev/vfio/vfio. */
  iommufd: IommufdCtx | null = null;
  /** 1 while attached, +1 per open device file. */
  containerUsers = 0;
  /** The one open file of the group (a second open is -EBUSY). */
  opened = false;
  /** Device cdev files bound to an iommufd (cdev_device_open_cnt): the group cannot be opened. */
  cdevOpenCnt = 0;
  /** Its last device was unplugged (group->iommu_group is NULL): every group ioctl is -ENODEV. */
  dead = false;
  /** group->group_lock (a mutex) held forever by a task stuck in D state (its description). */
  stuckHolder: string | null = null;

  constructor(
    readonly iommuGroup: IommuGroup,
    readonly devices: VfioDevice[],
  ) {}

  /** vfio_device_remove_group() for the last device: leave the container, then refuse everything. */
  removeLastDevice(): void {
    if (this.container) this.container.detachGroup(this);
    this.dead = true;
  }

  /** Why taking group_lock would wait forever, or null. */
  lockWait(): string | null {
    return this.stuckHolder ? `group ${this.iommuGroup.id} group_lock held by ${this.stuckHolder}` : null;
  }

  /**
   * A call that takes group_lock and then the container's group_lock for writing (release,
   * SET_CONTAINER, UNSET_CONTAINER): behind a dead reader the caller sleeps holding group_lock.
   */
  containerWriteWait(c: VfioContainer | null, who: string): string | null {
    const own = this.lockWait();
    if (own) return own;
    const why = c?.writeWait() ?? null;
    if (why) this.stuckHolder = who;
    return why;
  }

  /** VFIO_GROUP_GET_STATUS. */
  getStatus(arg: IoctlArg): number {
    if (this.dead) return -errno.ENODEV;
    const cs = copyStructFromUser(arg, 'vfio_group_status', 'flags');
    if (typeof cs === 'number') return cs;
    const p = cs.v;
    let flags = 0;
    if (this.container || this.iommufd) flags |= VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
    else if (!this.iommuGroup.ownerCnt && this.iommuGroup.viable) flags |= VFIO_GROUP_FLAGS_VIABLE;
    if (!copyToUser(arg, encode('vfio_group_status', { argsz: p.argsz, flags }))) return -errno.EFAULT;
    return 0;
  }

  /**
   * VFIO_GROUP_SET_CONTAINER with an iommufd: the context gets its compat IOAS; ownership is
   * claimed only when a device is opened.
   */
  setIommufd(ictx: IommufdCtx): number {
    if (this.container || this.iommufd) return -errno.EINVAL;
    if (this.dead) return -errno.ENODEV;
    const rc = compatIoasCreate(ictx);
    if (rc) return rc;
    ictx.hold();
    this.iommufd = ictx;
    return 0;
  }

  /** VFIO_GROUP_SET_CONTAINER, once the fd argument has been resolved to a container. */
  setContainer(container: VfioContainer | null): number {
    if (this.container || this.iommufd) return -errno.EINVAL;
    if (this.dead) return -errno.ENODEV;
    if (!container) return -errno.EBADFD;
    return container.attachGroup(this);
  }

  /** VFIO_GROUP_UNSET_CONTAINER. */
  unsetContainer(): number {
    if (this.iommufd) {
      this.iommufd.put();
      this.iommufd = null;
      return 0;
    }
    if (!this.container) return -errno.EINVAL;
    if (this.containerUsers !== 1) return -errno.EBUSY;
    this.container.detachGroup(this);
    return 0;
  }

  /** VFIO_GROUP_GET_DEVICE_FD: the device by name; the caller opens the file. */
  lookupDevice(name: string): VfioDevice | number {
    if (this.dead) return -errno.ENODEV;
    const dev = this.devices.find((d) => d.kdev.name === name && !d.kdev.removed);
    if (!dev) return -errno.ENODEV;
    // vfio_group_use_container(): a container without an IOMMU driver (no SET_IOMMU yet) is -EINVAL.
    if (!this.iommufd && !this.container?.iommuData) return -errno.EINVAL;
    return dev;
  }

  /** vfio_group_fops_release(). */
  release(): void {
    if (this.container) this.container.detachGroup(this);
    this.iommufd?.put();
    this.iommufd = null;
    this.opened = false;
  }
}
