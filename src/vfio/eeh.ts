/** VFIO_EEH_PE_OP (vfio_spapr_ioctl_eeh_pe_op) for one group. */
import { errno } from '../base/errno.js';
import type { Eeh } from '../kernel/eeh.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import type { Pe } from '../kernel/powernv/pe.js';
import { copyStructFromUser, type IoctlArg } from '../kernel/uaccess.js';
import {
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
} from '../kernel/include/uapi/linux/vfio.js';

export interface EehOps {
  enabled(): boolean;
  peOp(g: IommuGroup, arg: IoctlArg): number;
}

/** No EEH-capable PE (eeh_iommu_group_to_pe() is NULL): every PE op is -ENODEV. */
export const noEehOps: EehOps = {
  enabled: () => false,
  peOp: () => -errno.ENODEV,
};

export function vfioEehOps(eeh: Eeh): EehOps {
  return {
    enabled: () => eeh.enabled,
    peOp(g, arg) {
      const pe = g.tableGroup as Pe;
      if (!pe) return -errno.ENODEV;
      const cs = copyStructFromUser(arg, 'vfio_eeh_pe_op', 'op');
      if (typeof cs === 'number') return cs;
      const op = cs.v;
      if (op.flags) return -errno.EINVAL;
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
          if (op.argsz < BigInt(offsetofend('vfio_eeh_pe_op', 'err.mask'))) return -errno.EINVAL;
          if (typeof copyStructFromUser(arg, 'vfio_eeh_pe_op', 'err.mask') === 'number') return -errno.EFAULT;
          return eeh.injectErr(pe);
        default:
          return -errno.EINVAL;
      }
    },
  };
}
