/** Machine presets: the POWER generations tcelab models and their defaults. */
import type { PhbModel } from '../hw/phb.js';

export type PresetName = 'powernv8' | 'powernv9' | 'powernv10';

export interface Preset {
  name: PresetName;
  phb: PhbModel;
  /** PHBs QEMU creates for this machine without -nodefaults. */
  phbs: number;
  cpu: string;
  /** The MMU the kernel picks by default (POWER8 has no radix). */
  mmu: 'radix' | 'hash';
}

export const PRESETS: Record<PresetName, Preset> = {
  powernv8: { name: 'powernv8', phb: 'PHB3', phbs: 3, cpu: 'POWER8', mmu: 'hash' },
  powernv9: { name: 'powernv9', phb: 'PHB4', phbs: 6, cpu: 'POWER9', mmu: 'radix' },
  powernv10: { name: 'powernv10', phb: 'PHB5', phbs: 6, cpu: 'POWER10', mmu: 'radix' },
};

export function isPresetName(s: string): s is PresetName {
  return s in PRESETS;
}
