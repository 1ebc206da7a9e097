/** VFIO_EEH_PE_OP (vfio_spapr_ioctl_eeh_pe_op) for one group. */
import { errno } from '../base/errno.js';
import type { Eeh } from '../kernel/eeh.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import type { Pe } from '../kernel/powernv/pe.js';
import { type IoctlArg, copyFromUser } from '../kernel/uaccess.js';
import {
  decode,
  offsetofend,
  VFIO_EEH_PE_CONFIGURE,
  VFIO_EEH_PE_DISABLE,
  VFIO_EEH_PE_ENABLE,
  VFIO_EEH_PE_GET_STATE,
  VFIO_EEH_PE_INJECT_ERR,
  VFIO_EEH_PE_RESET_DEACTIVATE,
  VFIO_EEH_PE_RESET_FUNDAMENTAL,
  VFIO_EEH_PE_RESET_HOT,
  VFIO_EEH_PE_UNFREEZE_DMA,
  VFIO_EEH_PE_UNFREEZE_IO,
} from '../uapi/linux/vfio.js';

export interface EehOps {
  enabled(): boolean;
  peOp(g: IommuGroup, arg: IoctlArg): number;
}

export function vfioEehOps(eeh: Eeh): EehOps {
  return {
    enabled: () => eeh.enabled,
    peOp(g, arg) {
      const pe = g.tableGroup as Pe;
      if (!pe) return -errno.ENODEV;
      let minsz = offsetofend('vfio_eeh_pe_op', 'op');
      let inb = copyFromUser(arg, minsz);
      if (!inb) return -errno.EFAULT;
      const op = decode('vfio_eeh_pe_op', inb);
      if (op.argsz < BigInt(minsz) || op.flags) return -errno.EINVAL;
      switch (Number(op.op)) {
        case VFIO_EEH_PE_DISABLE:
          return eeh.setOption(pe, 'disable');
        case VFIO_EEH_PE_ENABLE:
          return eeh.setOption(pe, 'enable');
        case VFIO_EEH_PE_UNFREEZE_IO:
          return eeh.setOption(pe, 'thaw-mmio');
        case VFIO_EEH_PE_UNFREEZE_DMA:
          return eeh.setOption(pe, 'thaw-dma');
        case VFIO_EEH_PE_GET_STATE:
          return eeh.getState(pe);
        case VFIO_EEH_PE_RESET_DEACTIVATE:
          return eeh.reset(pe, 'deactivate');
        case VFIO_EEH_PE_RESET_HOT:
          return eeh.reset(pe, 'hot');
        case VFIO_EEH_PE_RESET_FUNDAMENTAL:
          return eeh.reset(pe, 'fundamental');
        case VFIO_EEH_PE_CONFIGURE:
          return eeh.configure(pe);
        case VFIO_EEH_PE_INJECT_ERR:
          minsz = offsetofend('vfio_eeh_pe_op', 'err.mask');
          if (op.argsz < BigInt(minsz)) return -errno.EINVAL;
          inb = copyFromUser(arg, minsz);
          if (!inb) return -errno.EFAULT;
          return eeh.injectErr(pe);
        default:
          return -errno.EINVAL;
      }
    },
  };
}
