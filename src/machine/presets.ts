/** Machine presets: the POWER generations tcelab models and their defaults. */
import type { PhbModel } from '../hw/phb.js';

export type PresetName = 'powernv8' | 'powernv9' | 'powernv10' | 'pseries';

export interface Preset {
  name: PresetName;
  /** Bare metal under OPAL, or an LPAR under a PAPR hypervisor. */
  platform: 'powernv' | 'pseries';
  /** The PHB hardware model (on pseries only the PCI bus the functions sit on). */
  phb: PhbModel;
  /** PHBs QEMU creates for this machine without -nodefaults. */
  phbs: number;
  cpu: string;
  /** The MMU the kernel picks by default (POWER8 has no radix). */
  mmu: 'radix' | 'hash';
}

export const PRESETS: Record<PresetName, Preset> = {
  powernv8: { name: 'powernv8', platform: 'powernv', phb: 'PHB3', phbs: 3, cpu: 'POWER8', mmu: 'hash' },
  powernv9: { name: 'powernv9', platform: 'powernv', phb: 'PHB4', phbs: 6, cpu: 'POWER9', mmu: 'radix' },
  powernv10: { name: 'powernv10', platform: 'powernv', phb: 'PHB5', phbs: 6, cpu: 'POWER10', mmu: 'radix' },
  /** QEMU `-machine pseries -cpu POWER9` with a second spapr-pci-host-bridge, as recorded. */
  pseries: { name: 'pseries', platform: 'pseries', phb: 'PHB4', phbs: 2, cpu: 'POWER9 (architected)', mmu: 'radix' },
};

export function isPresetName(s: string): s is PresetName {
  return s in PRESETS;
}
