/** The modelled machine a recording asks for, from its qemu_machine, kernel and command line. */
import type { MachineOptions } from '../machine/machine.js';
import { isPresetName } from '../machine/presets.js';
import type { OracleRecord } from './records.js';

export class EnvironmentError extends Error {}

/** A QEMU size ("4G", "2048M", "1T"; megabytes without a suffix), in bytes. */
export function qemuSize(s: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(s);
  if (!m) throw new EnvironmentError(`cannot read QEMU size "${s}"`);
  const shift = { '': 20, K: 10, M: 20, G: 30, T: 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * 2 ** shift;
}

export function machineOptionsFor(r: OracleRecord): MachineOptions {
  const words = r.qemu_machine.trim().split(/\s+/);
  // The machine type comes first; its properties follow after commas (pseries,cap-cfpc=broken,…).
  const preset = words[0]!.split(',')[0]!;
  if (!isPresetName(preset)) throw new EnvironmentError(`qemu_machine "${r.qemu_machine}": tcelab models powernv8, powernv9, powernv10 and pseries`);
  const pageSize = /-64k\b/.test(r.kernel) ? '64k' : '4k';
  const cmdline = r.kernel_cmdline ?? '';
  const opts: MachineOptions = { preset, pageSize, topology: 'qemu' };
  if (/\bdisable_radix\b/.test(cmdline)) opts.mmu = 'hash';
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1] ?? '';
    if (w === '-global' && /^spapr-pci-host-bridge\.ddw=(off|false)$/.test(next)) opts.ddw = false;
    if (w === '-m') {
      const maxmem = /(?:^|,)maxmem=([^,]+)/.exec(next);
      const size = /^(\d+[KMGT]?)(?:,|$)/i.exec(next) ?? /(?:^|,)size=([^,]+)/.exec(next);
      if (size) opts.ramBytes = qemuSize(size[1]!);
      if (maxmem) opts.maxmemBytes = qemuSize(maxmem[1]!);
    }
  }
  return opts;
}
