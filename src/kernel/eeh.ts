/**
 * EEH for PowerNV PEs (arch/powerpc/kernel/eeh.c over the OPAL freeze controls): the state
 * VFIO reports, thawing, resets and error injection.
 */
import type { Opal } from '../firmware/opal.js';
import { OPAL_EEH_ACTION_CLEAR_FREEZE_ALL, OPAL_EEH_ACTION_CLEAR_FREEZE_DMA, OPAL_EEH_ACTION_CLEAR_FREEZE_MMIO } from '../firmware/opal.js';
import type { Pe } from './powernv/pe.js';
import type { KernelLog } from './printk.js';

export const EEH_PE_STATE_NORMAL = 0;
export const EEH_PE_STATE_STOPPED_IO_DMA = 2;

export type EehOption = 'disable' | 'enable' | 'thaw-mmio' | 'thaw-dma';
export type EehReset = 'deactivate' | 'hot' | 'fundamental';

export class Eeh {
  /** eeh_enabled(): PowerNV with OPAL has EEH. */
  enabled = true;

  constructor(
    private readonly opal: Opal,
    private readonly klog: KernelLog,
  ) {}

  /** eeh_pe_get_state(). */
  getState(pe: Pe): number {
    const s = pe.phb.hw.peState[pe.peNumber]!;
    return s.dmaFrozen || s.mmioFrozen ? EEH_PE_STATE_STOPPED_IO_DMA : EEH_PE_STATE_NORMAL;
  }

  /** eeh_pe_set_option(). */
  setOption(pe: Pe, opt: EehOption): number {
    if (opt === 'thaw-mmio') this.opal.eehFreezeClear(pe.phb.opalId, pe.peNumber, OPAL_EEH_ACTION_CLEAR_FREEZE_MMIO);
    else if (opt === 'thaw-dma') this.opal.eehFreezeClear(pe.phb.opalId, pe.peNumber, OPAL_EEH_ACTION_CLEAR_FREEZE_DMA);
    return 0;
  }

  /** eeh_pe_reset(): a reset clears the freeze; after a hot reset the emulated functions never report ready. */
  reset(pe: Pe, kind: EehReset): number {
    if (kind === 'deactivate') {
      this.opal.eehFreezeClear(pe.phb.opalId, pe.peNumber, OPAL_EEH_ACTION_CLEAR_FREEZE_ALL);
      return 0;
    }
    for (const dev of pe.devices) this.klog.printk(`${dev.driver ?? 'pci'} ${dev.name}: not ready 1023ms after bus reset; giving up`);
    return 0;
  }

  /** eeh_pe_configure(). */
  configure(_pe: Pe): number {
    return 0;
  }

  /** eeh_pe_inject_err(): freezes the PE through OPAL. */
  injectErr(pe: Pe): number {
    return this.opal.eehFreezeSet(pe.phb.opalId, pe.peNumber) ? -5 : 0;
  }
}
