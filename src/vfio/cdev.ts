/**
 * /dev/vfio/devices/vfioN (drivers/vfio/device_cdev.c): a device file opened without its group.
 * Nothing but BIND_IOMMUFD works until the file is bound to an iommufd; binding blocks the
 * group file, opens the device, and claims its IOMMU group for the iommufd context. ATTACH and
 * DETACH then move the device between IOASes and HWPTs; closing the file unbinds.
 */
import { errno } from '../base/errno.js';
import type { IommufdCtx, IommufdDevice } from '../iommufd/context.js';
import { deviceAttach, deviceBind, deviceDetach, deviceReplace, deviceUnbind } from '../iommufd/device.js';
import { getField, setField, VFIO_EEH_PE_OP } from '../kernel/include/uapi/linux/vfio.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import {
  iommufdStructs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from '../kernel/include/uapi/linux/iommufd.js';
import { copyFromUser, type IoctlArg } from '../kernel/uaccess.js';
import type { VfioDevice } from './device.js';
import type { VfioGroup } from './group.js';

/** What binding needs from the rest of the system. */
export interface CdevServices {
  /** The iommufd context behind a descriptor: -EBADF when it is not open, -EBADFD when it is not /dev/iommu. */
  iommufdFromFd(fd: number): IommufdCtx | number;
  deviceOpened(d: VfioDevice): void;
  deviceClosed(d: VfioDevice): void;
  /**
   * VFIO_EEH_PE_OP on a bound device file, for the device's PE (tcelab's PPC64 IOMMUFD design);
   * undefined where the cdev path has no EEH (the RFC).
   */
  eehPeOp?(g: IommuGroup, arg: IoctlArg): number;
}

const F = iommufdStructs;

export class VfioCdevFile {
  accessGranted = false;
  private ictx: IommufdCtx | null = null;
  private idev: IommufdDevice | null = null;
  private attached = false;

  constructor(
    readonly device: VfioDevice,
    readonly group: VfioGroup,
    private readonly k: CdevServices,
    /** Opened through the group's GET_DEVICE_FD, not the cdev. */
    private readonly viaGroup = false,
  ) {}

  ioctl(cmd: number, arg: IoctlArg): number {
    if (cmd === VFIO_DEVICE_BIND_IOMMUFD) return this.bind(arg);
    if (!this.accessGranted) return -errno.EINVAL;
    if (cmd === VFIO_DEVICE_ATTACH_IOMMUFD_PT) return this.attach(arg);
    if (cmd === VFIO_DEVICE_DETACH_IOMMUFD_PT) return this.detach(arg);
    if (cmd === VFIO_EEH_PE_OP && this.k.eehPeOp) return this.k.eehPeOp(this.group.iommuGroup, arg);
    return this.device.ioctl(cmd, arg);
  }

  /** vfio_df_ioctl_bind_iommufd(). */
  private bind(arg: IoctlArg): number {
    const s = F.vfio_device_bind_iommufd;
    const b = copyFromUser(arg, s.size);
    if (!b) return -errno.EFAULT;
    const iommufd = Number(BigInt.asIntN(32, getField(b, s.fields.iommufd)));
    if (getField(b, s.fields.argsz) < BigInt(s.size) || getField(b, s.fields.flags) || iommufd < 0) return -errno.EINVAL;
    // vfio_device_block_group()
    if (this.group.opened) return -errno.EBUSY;
    this.group.cdevOpenCnt++;
    const rc = this.open(iommufd);
    if (rc < 0) {
      this.group.cdevOpenCnt--;
      return rc;
    }
    setField(arg as Uint8Array, s.fields.out_devid, this.idev!.id);
    return 0;
  }

  /** The locked part of bind: one binding per file and per device, then vfio_df_open(). */
  private open(fd: number): number {
    if (this.accessGranted) return -errno.EINVAL;
    const ictx = this.k.iommufdFromFd(fd);
    if (typeof ictx === 'number') return ictx;
    if (this.device.kdev.openCount !== 0) return -errno.EINVAL;
    ictx.hold();
    const rc = this.openWith(ictx);
    if (rc) ictx.put();
    return rc;
  }

  /** vfio_df_device_first_open() with an iommufd: bind, then the driver's open_device(). */
  private openWith(ictx: IommufdCtx): number {
    const kdev = this.device.kdev;
    const idev = deviceBind(ictx, kdev, this.group.iommuGroup);
    if (typeof idev === 'number') return idev;
    this.ictx = ictx;
    this.accessGranted = true;
    this.idev = idev;
    this.k.deviceOpened(this.device);
    return 0;
  }

  /**
   * A device file of a group whose "container" is an iommufd (/dev/vfio/vfio provided by
   * IOMMUFD): GET_DEVICE_FD binds the device to that context and attaches it to the compat IOAS.
   */
  openForGroup(ictx: IommufdCtx): number {
    ictx.hold();
    const rc = this.openWith(ictx);
    if (rc) {
      ictx.put();
      return rc;
    }
    const ioas = ictx.vfioIoas;
    const r = ioas ? deviceAttach(this.idev!, ioas.id) : -19;
    if (r < 0) {
      this.release();
      return r;
    }
    this.attached = true;
    return 0;
  }

  /** vfio_df_ioctl_attach_pt(): attach, or replace while attached. */
  private attach(arg: IoctlArg): number {
    const s = F.vfio_device_attach_iommufd_pt;
    const b = copyFromUser(arg, s.size);
    if (!b) return -errno.EFAULT;
    if (getField(b, s.fields.argsz) < BigInt(s.size) || getField(b, s.fields.flags)) return -errno.EINVAL;
    const pt = Number(getField(b, s.fields.pt_id));
    const r = this.attached ? deviceReplace(this.idev!, pt) : deviceAttach(this.idev!, pt);
    if (r < 0) return r;
    this.attached = true;
    setField(arg as Uint8Array, s.fields.pt_id, r);
    return 0;
  }

  /** vfio_df_ioctl_detach_pt(). */
  private detach(arg: IoctlArg): number {
    const s = F.vfio_device_detach_iommufd_pt;
    const b = copyFromUser(arg, s.size);
    if (!b) return -errno.EFAULT;
    if (getField(b, s.fields.argsz) < BigInt(s.size) || getField(b, s.fields.flags)) return -errno.EINVAL;
    if (this.attached) {
      deviceDetach(this.idev!);
      this.attached = false;
    }
    return 0;
  }

  /** vfio_df_unbind_iommufd() at the file's release: close the device, detach, unbind. */
  release(): void {
    if (!this.accessGranted) return;
    this.k.deviceClosed(this.device);
    if (this.attached) deviceDetach(this.idev!);
    this.attached = false;
    deviceUnbind(this.idev!);
    this.ictx!.put();
    this.accessGranted = false;
    if (!this.viaGroup) this.group.cdevOpenCnt--;
  }
}

/** VFIO_DEVICE_BIND_IOMMUFD on a device file from a group's GET_DEVICE_FD: checked, then -EINVAL. */
export function groupDeviceBind(arg: IoctlArg): number {
  const s = F.vfio_device_bind_iommufd;
  const b = copyFromUser(arg, s.size);
  if (!b) return -errno.EFAULT;
  return -errno.EINVAL;
}
