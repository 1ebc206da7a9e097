/** The text of the /proc files a VFIO program reads, as the modelled kernel would print them. */
import type { Machine } from '../machine/machine.js';
import { PRESETS } from '../machine/presets.js';
import type { ProcFile } from './protocol.js';

const kB = (bytes: number | bigint) => `${String(BigInt(bytes) / 1024n).padStart(8)} kB`;

function cpuinfo(m: Machine): string {
  return [
    'processor\t: 0',
    `cpu\t\t: ${PRESETS[m.opts.preset].cpu}, altivec supported`,
    '',
    'timebase\t: 512000000',
    ...(m.pseries
      ? ['platform\t: pSeries', 'model\t\t: IBM pSeries (emulated by qemu)', 'machine\t\t: CHRP IBM pSeries (emulated by qemu)']
      : ['platform\t: PowerNV', 'model\t\t: IBM PowerNV (emulated by qemu)', 'machine\t\t: PowerNV IBM PowerNV (emulated by qemu)', 'firmware\t: OPAL']),
    `MMU\t\t: ${m.mmu === 'radix' ? 'Radix' : 'Hash'}`,
    '',
  ].join('\n');
}

/** hugetlb lines only when the MMU has a huge page size (the kernel prints none otherwise). */
function meminfo(m: Machine): string {
  const lines = [`MemTotal:       ${kB(m.mem.ramBytes)}`, `MemFree:        ${kB(m.mem.freeBytes)}`];
  if (m.hugePageShift) lines.push(`Hugepagesize:   ${kB(2 ** m.hugePageShift)}`);
  return `${lines.join('\n')}\n`;
}

/** AnonHugePages: the THP-advised mappings' whole, aligned huge pages (none without THP). */
function smapsRollup(m: Machine, pid: number): string {
  const shift = BigInt(m.thpShift);
  let bytes = 0n;
  const p = m.sys.processes.get(pid);
  if (shift && p) {
    for (const map of p.mm.mappings) {
      if (map.kind !== 'thp') continue;
      const first = (map.start + (1n << shift) - 1n) >> shift;
      const last = map.end >> shift;
      if (last > first) bytes += (last - first) << shift;
    }
  }
  return `00000000-ffffffffffffffff ---p 00000000 00:00 0                          [rollup]\nAnonHugePages:  ${kB(bytes)}\n`;
}

export function procText(m: Machine, pid: number, file: ProcFile): string {
  switch (file) {
    case 'cpuinfo':
      return cpuinfo(m);
    case 'meminfo':
      return meminfo(m);
    case 'smaps_rollup':
      return smapsRollup(m, pid);
    case 'status':
      return m.sys.statusText(pid);
  }
}
