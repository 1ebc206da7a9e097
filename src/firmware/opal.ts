/**
 * OPAL (skiboot) calls the PowerNV kernel uses for DMA: map_pe_dma_window, map_pe_dma_window_real,
 * pci_tce_kill and the EEH freeze controls. Arguments are validated as skiboot does and answered
 * with OPAL's own return codes; a rejected call changes nothing.
 */
import type { EventLog } from '../base/events.js';
import type { Phb, PhbGeneration } from '../hw/phb.js';

export const OPAL_SUCCESS = 0;
export const OPAL_PARAMETER = -1;
export const OPAL_BUSY = -2;
export const OPAL_HARDWARE = -6;
export const OPAL_UNSUPPORTED = -7;

export const OPAL_PCI_TCE_KILL_PAGES = 0;
export const OPAL_PCI_TCE_KILL_PE = 1;
export const OPAL_PCI_TCE_KILL_ALL = 2;

/** OPAL_EEH freeze states (opal-api.h). */
export const OPAL_EEH_STOPPED_NOT_FROZEN = 0;
export const OPAL_EEH_STOPPED_MMIO_DMA_FREEZE = 4;
export const OPAL_EEH_ACTION_CLEAR_FREEZE_MMIO = 1;
export const OPAL_EEH_ACTION_CLEAR_FREEZE_DMA = 2;
export const OPAL_EEH_ACTION_CLEAR_FREEZE_ALL = 3;

const MAX_NO_TRANSLATE_END = 0x0003_ffff_ffff_ffffn;
const SZ_16M = 1n << 24n;

export class Opal {
  /** The log's count of OPAL calls, for the kill that counts without a listener. */
  private readonly opalEvents: { n: number };

  constructor(
    private readonly phbs: Phb[],
    private readonly log: EventLog,
  ) {
    this.opalEvents = log.counter('firmware', 'opal');
  }

  private phb(id: number): Phb | undefined {
    return this.phbs[id];
  }

  private done(call: string, args: (number | bigint)[], rc: number): number {
    this.log.emit({ layer: 'firmware', kind: 'opal', call, args, rc });
    return rc;
  }

  private checkPeWindow(phb: Phb, pe: number, windowId: number): boolean {
    return pe >= 0 && pe < phb.numPes && windowId >> 1 === pe;
  }

  /** OPAL_PCI_MAP_PE_DMA_WINDOW (44). tableSize is the size of one level. */
  mapPeDmaWindow(phbId: number, pe: number, windowId: number, levels: number, tableAddr: number, tableSize: number, pageSize: number): number {
    const args = [phbId, pe, windowId, levels, tableAddr, tableSize, pageSize];
    const phb = this.phb(phbId);
    if (!phb) return this.done('map_pe_dma_window', args, OPAL_PARAMETER);
    if (!this.checkPeWindow(phb, pe, windowId)) return this.done('map_pe_dma_window', args, OPAL_PARAMETER);
    if (tableSize === 0) {
      phb.setTve(windowId, null);
      return this.done('map_pe_dma_window', args, OPAL_SUCCESS);
    }
    if (levels < 1 || levels > 5 || tableSize < 0x1000 || (tableSize & (tableSize - 1)) !== 0) {
      return this.done('map_pe_dma_window', args, OPAL_PARAMETER);
    }
    const tts = Math.log2(tableSize) - 11;
    const pageShift = Math.log2(pageSize);
    if (tts > 31 || !Number.isInteger(pageShift) || !phb.gen.tceShifts.includes(pageShift)) {
      return this.done('map_pe_dma_window', args, OPAL_PARAMETER);
    }
    phb.setTve(windowId, { kind: 'xlate', tableAddr: tableAddr - (tableAddr % 4096), levels, levelBytes: tableSize, pageShift });
    return this.done('map_pe_dma_window', args, OPAL_SUCCESS);
  }

  /** OPAL_PCI_MAP_PE_DMA_WINDOW_REAL (45): the no-translate (bypass) window. */
  mapPeDmaWindowReal(phbId: number, pe: number, windowId: number, pciStart: bigint, size: bigint): number {
    const args = [phbId, pe, windowId, pciStart, size];
    const phb = this.phb(phbId);
    if (!phb || !this.checkPeWindow(phb, pe, windowId)) return this.done('map_pe_dma_window_real', args, OPAL_PARAMETER);
    if (size === 0n) {
      phb.setTve(windowId, null);
      return this.done('map_pe_dma_window_real', args, OPAL_SUCCESS);
    }
    if (pciStart >> 59n !== BigInt(windowId & 1)) return this.done('map_pe_dma_window_real', args, OPAL_PARAMETER);
    const start = pciStart & ~(1n << 59n);
    const end = start + size;
    if (start % SZ_16M !== 0n || size % SZ_16M !== 0n || end > MAX_NO_TRANSLATE_END) {
      return this.done('map_pe_dma_window_real', args, OPAL_PARAMETER);
    }
    phb.setTve(windowId, { kind: 'bypass', start, end });
    return this.done('map_pe_dma_window_real', args, OPAL_SUCCESS);
  }

  /** OPAL_PCI_TCE_KILL (126). PHB3 has no OPAL kill; PHB4/5 turn page kills into PE kills (HW560152). */
  pciTceKill(phbId: number, killType: number, pe: number, tceSize: number, dmaAddr: bigint | number, npages: number): number {
    const rc = this.tceKill(phbId, killType, pe, tceSize, dmaAddr);
    // One call per map and unmap: its arguments are built only for a listener.
    if (this.log.listening) this.killDone(phbId, killType, pe, tceSize, dmaAddr, npages, rc);
    else this.opalEvents.n++;
    return rc;
  }

  /** The kill's event: the address as the u64 it is, whichever way the caller passed it. */
  private killDone(phbId: number, killType: number, pe: number, tceSize: number, dmaAddr: bigint | number, npages: number, rc: number): void {
    this.log.emit({ layer: 'firmware', kind: 'opal', call: 'pci_tce_kill', args: [phbId, killType, pe, tceSize, BigInt(dmaAddr), npages], rc });
  }

  private tceKill(phbId: number, killType: number, pe: number, tceSize: number, dmaAddr: bigint | number): number {
    const phb = this.phb(phbId);
    if (!phb) return OPAL_PARAMETER;
    if (!phb.gen.killViaOpal) return OPAL_UNSUPPORTED;
    switch (killType) {
      case OPAL_PCI_TCE_KILL_PAGES: {
        if (!this.killSizeOk(phb, tceSize) || !killAddrOk(dmaAddr, tceSize)) return OPAL_PARAMETER;
        if (pe < 0 || pe >= phb.numPes) return OPAL_PARAMETER;
        phb.killPe(pe);
        return OPAL_SUCCESS;
      }
      case OPAL_PCI_TCE_KILL_PE:
        if (pe < 0 || pe >= phb.numPes) return OPAL_PARAMETER;
        phb.killPe(pe);
        return OPAL_SUCCESS;
      case OPAL_PCI_TCE_KILL_ALL:
        phb.killAll();
        return OPAL_SUCCESS;
      default:
        return OPAL_PARAMETER;
    }
  }

  /** The PHB generation and TCE size the last page kill was accepted for: a table's kills all ask the same. */
  private okGen: PhbGeneration | null = null;
  private okTceSize = 0;

  /** tceSizeOk(), answered without the search for the size accepted last. */
  private killSizeOk(phb: Phb, tceSize: number): boolean {
    if (phb.gen === this.okGen && tceSize === this.okTceSize) return true;
    if (!tceSizeOk(phb, tceSize)) return false;
    this.okGen = phb.gen;
    this.okTceSize = tceSize;
    return true;
  }

  /** OPAL_PCI_EEH_FREEZE_STATUS (23): the PE's freeze state. */
  eehFreezeStatus(phbId: number, pe: number): { rc: number; state: number } {
    const phb = this.phb(phbId);
    if (!phb || pe < 0 || pe >= phb.numPes) return { rc: OPAL_PARAMETER, state: 0 };
    const s = phb.peState[pe]!;
    const state = s.dmaFrozen || s.mmioFrozen ? OPAL_EEH_STOPPED_MMIO_DMA_FREEZE : OPAL_EEH_STOPPED_NOT_FROZEN;
    this.done('eeh_freeze_status', [phbId, pe], OPAL_SUCCESS);
    return { rc: OPAL_SUCCESS, state };
  }

  /** OPAL_PCI_EEH_FREEZE_CLEAR (26). */
  eehFreezeClear(phbId: number, pe: number, action: number): number {
    const args = [phbId, pe, action];
    const phb = this.phb(phbId);
    if (!phb || pe < 0 || pe >= phb.numPes || action < 1 || action > 3) return this.done('eeh_freeze_clear', args, OPAL_PARAMETER);
    phb.unfreeze(pe, (action & OPAL_EEH_ACTION_CLEAR_FREEZE_DMA) !== 0, (action & OPAL_EEH_ACTION_CLEAR_FREEZE_MMIO) !== 0);
    return this.done('eeh_freeze_clear', args, OPAL_SUCCESS);
  }

  /** OPAL_PCI_EEH_FREEZE_SET (97): error injection freezes a PE. */
  eehFreezeSet(phbId: number, pe: number): number {
    const phb = this.phb(phbId);
    if (!phb || pe < 0 || pe >= phb.numPes) return this.done('eeh_freeze_set', [phbId, pe], OPAL_PARAMETER);
    phb.freeze(pe, 'freeze set by OPAL_PCI_EEH_FREEZE_SET');
    return this.done('eeh_freeze_set', [phbId, pe], OPAL_SUCCESS);
  }
}

/** A TCE size the PHB supports: a power of two of one of its shifts. */
function tceSizeOk(phb: Phb, tceSize: number): boolean {
  const shifts = phb.gen.tceShifts;
  // A power of two up to 2^30 is 1 << its shift (by clz); a larger size can only be 2 ** shift.
  const small = tceSize > 0 && tceSize <= 0x4000_0000 && (tceSize & (tceSize - 1)) === 0;
  const shift = small ? 31 - Math.clz32(tceSize) : -1;
  for (let i = 0; i < shifts.length; i++) {
    const s = shifts[i]!;
    if (small ? s === shift : s >= 31 && tceSize === 2 ** s) return true;
  }
  return false;
}

/** A page kill's address: aligned to the TCE size (a power of two, tceSizeOk) and below 2^60. */
function killAddrOk(dmaAddr: bigint | number, tceSize: number): boolean {
  if (typeof dmaAddr === 'number') {
    // An integer below 2^32 against a size up to 2^30: by mask, as skiboot does.
    if (dmaAddr >>> 0 === dmaAddr && tceSize <= 0x4000_0000) return (dmaAddr & (tceSize - 1)) === 0;
    // No `%` on numbers past 2^31 (a call to fmod): the quotient times the size gives it back.
    return dmaAddr >= 0 && dmaAddr < 2 ** 60 && Math.floor(dmaAddr / tceSize) * tceSize === dmaAddr;
  }
  return dmaAddr % BigInt(tceSize) === 0n && dmaAddr >> 60n === 0n;
}
