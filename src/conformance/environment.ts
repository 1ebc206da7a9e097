/** The modelled machine a recording asks for, from its qemu_machine, kernel and command line. */
import type { MachineOptions } from '../machine/machine.js';
import { isPresetName } from '../machine/presets.js';
import type { OracleRecord } from './records.js';

export class EnvironmentError extends Error {}

export function machineOptionsFor(r: OracleRecord): MachineOptions {
  const words = r.qemu_machine.trim().split(/\s+/);
  const preset = words[0]!;
  if (!isPresetName(preset)) throw new EnvironmentError(`qemu_machine "${r.qemu_machine}": tcelab models powernv8, powernv9 and powernv10`);
  const pageSize = /-64k\b/.test(r.kernel) ? '64k' : '4k';
  const cmdline = r.kernel_cmdline ?? '';
  const opts: MachineOptions = { preset, pageSize, topology: 'qemu' };
  if (/\bdisable_radix\b/.test(cmdline)) opts.mmu = 'hash';
  return opts;
}
