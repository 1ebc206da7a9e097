/** Human-readable output of the CLI. */
import type { MachineReport } from '../scenario/report.js';
import type { TourResult } from '../scenario/tour.js';

function size(n: number): string {
  for (const [u, s] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 1024],
  ] as const)
    if (n >= s && n % s === 0) return `${n / s} ${u}`;
  return `${n} B`;
}

export function formatTour(t: TourResult): string {
  const r = t.report;
  const out: string[] = [];
  out.push(`tcelab tour — ${r.machine}, ${size(r.pageSize)} pages, ${r.mmu} MMU, ${size(r.ramBytes)} RAM`, '');
  for (const s of t.steps) out.push(`  [${s.ok ? 'ok' : 'FAILED'}] ${s.step}`, `         ${s.detail}`);
  return `${[...out, '', ...formatPes(r)].join('\n')}\n`;
}

export function formatBoot(dmesg: string[], r: MachineReport): string {
  const out = [`tcelab boot — ${r.machine}, ${size(r.pageSize)} pages, ${r.mmu} MMU, ${size(r.ramBytes)} RAM`, '', 'Kernel log:'];
  for (const l of dmesg) out.push(`  ${l}`);
  return `${[...out, '', ...formatPes(r)].join('\n')}\n`;
}

function formatPes(r: MachineReport): string[] {
  const out: string[] = ['DMA windows per PE:'];
  for (const pe of r.pes) {
    out.push(`  PHB${pe.phb} PE#${pe.pe}  group ${pe.group ?? '-'}  owner ${pe.owner}${pe.frozen ? '  FROZEN' : ''}  (${pe.devices.join(', ')})`);
    for (const w of pe.windows) {
      if (w.kind === 'bypass') out.push(`    window#${w.num} ${w.start}..${w.end}  64-bit bypass (no translation)`);
      else
        out.push(
          `    window#${w.num} ${w.start}..${w.end}  pg=${size(w.pageSize!)} levels=${w.levels} table=${size(w.tableBytes!)} TCEs in use ${w.entriesInUse}/${w.entries}`,
        );
    }
  }
  out.push('', 'Events:');
  for (const [k, v] of Object.entries(r.events)) out.push(`  ${k.padEnd(20)} ${v}`);
  return out;
}
