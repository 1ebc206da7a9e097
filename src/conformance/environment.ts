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
  // iommu=opt,opt,…: the PowerNV platform reads nobypass among them.
  if (/(?:^|\s)iommu=(?:[^\s]*,)?nobypass\b/.test(cmdline)) opts.iommuNoBypass = true;
  if (/(?:^|\s)disable_ddw(?:\s|=|$)/.test(cmdline)) opts.disableDdw = true;
  // The IOMMUFD RFC kit's kernels (6.12.95-rfc-<container>-<pagesize>): powernv_defconfig with
  // IOMMUFD and the VFIO device cdev, and E1000E=y, so the e1000e probes at boot.
  if (/-rfc-/.test(r.kernel)) {
    opts.iommufd = 'rfc-2026';
    opts.builtinDrivers = ['e1000e'];
    opts.allowUnsafeInterrupts = /\biommufd\.allow_unsafe_interrupts=(1|y|Y)\b/.test(cmdline);
    if (/-rfc-compat-/.test(r.kernel)) opts.vfioContainer = 'iommufd';
  }
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

/** A recording of the IOMMUFD oracle program (its environment lists the iommufd structs) or of the RFC kit's probe. */
export function isIommufdProgram(env: OracleRecord): boolean {
  const out = env.out as { sizeof?: Record<string, unknown>; program?: string };
  return (!!out.sizeof && 'ioas_alloc' in out.sizeof) || out.program === 'rfc_probe';
}

/** The huge page size (HPAGE_SHIFT) of machines tcelab does not model, for their device-free records. */
const FOREIGN_HPAGE_SHIFT: Record<string, number> = { x86_64: 21, aarch64: 21 };

/**
 * The machine for an IOMMUFD recording: a modelled machine with the PPC64 IOMMUFD RFC kernel, or,
 * for a machine tcelab does not model, the generic core alone with that machine's page size and
 * huge page size (only its device-free records replay).
 */
export function iommufdMachineFor(env: OracleRecord): { opts: MachineOptions; deviceFree: boolean } {
  const unsafe = /\biommufd\.allow_unsafe_interrupts=(1|y|Y)\b/.test(env.kernel_cmdline ?? '');
  const preset = env.qemu_machine.trim().split(/[\s,]+/)[0]!;
  if (isPresetName(preset)) return { opts: { iommufd: 'rfc-2026', ...machineOptionsFor(env) }, deviceFree: false };
  const out = env.out as { machine?: string; pagesize?: number };
  const arch = String(out.machine ?? '');
  const hpage = FOREIGN_HPAGE_SHIFT[arch];
  if (hpage === undefined)
    throw new EnvironmentError(`machine "${arch}" (${env.qemu_machine}): tcelab knows the page sizes of ${Object.keys(FOREIGN_HPAGE_SHIFT).join(', ')}`);
  const pageSize = out.pagesize === 65536 ? '64k' : out.pagesize === 4096 ? '4k' : null;
  if (!pageSize) throw new EnvironmentError(`pagesize ${out.pagesize}: tcelab models 4096 and 65536`);
  return {
    opts: { preset: 'powernv9', pageSize, topology: 'qemu', iommufd: 'rfc-2026', allowUnsafeInterrupts: unsafe, hugePageShift: hpage },
    deviceFree: true,
  };
}
