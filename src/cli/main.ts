#!/usr/bin/env node
/** The `tcelab` command. */
import { parseArgs } from 'node:util';
import { isQuirkName, QUIRKS, type Quirks } from '../kernel/quirks.js';
import { isPresetName } from '../machine/presets.js';
import type { MachineOptions } from '../machine/machine.js';
import { formatMismatch, replayFile } from '../conformance/run.js';
import { runTour } from '../scenario/tour.js';
import { formatTour } from './format.js';
import { runScenarioFile } from './run-scenario.js';

const HELP = `tcelab — an executable model of the POWER (ppc64) IOMMU stack

Usage:
  tcelab run FILE.yaml [--quirk NAME]... [--fix NAME]... [--json]
      Run a scenario (see docs/scenarios.md): exit 0 when every expectation and invariant held,
      1 when one failed (with the step, the invariant and the events that led there), 2 on a
      bad file.

  tcelab run [machine options] [--json]
      Boot the default machine (PowerNV POWER9, 64K pages) and run the built-in tour: kernel
      DMA through the 32-bit TCE window and the 64-bit bypass, device DMA moving real bytes,
      a bad DMA freezing a PE and EEH recovery. Prints the windows of every PE.

  tcelab conformance RECORDING.jsonl... [--json]
      Replay recordings of the real kernel (the oracle kit's JSONL) through the model's binary
      ABI, on the machine each file's environment asks for, and compare ret, errno, the out
      fields, VmLck and the kernel log record by record. Prints one line per mismatch and ends
      with "N matched, M mismatched"; exits 0 only when nothing mismatched.

Machine options:
  --machine powernv8|powernv9|powernv10   CPU/PHB generation (default powernv9)
  --page-size 4k|64k                      kernel page size (default 64k)
  --mmu radix|hash                        MMU mode (default: radix on POWER9/10, hash on POWER8)
  --quirk NAME / --fix NAME               turn a modelled kernel quirk on / off (see below)

Quirks (default state as in Linux 6.12):
${Object.entries(QUIRKS)
  .map(([k, v]) => `  ${k.padEnd(26)} ${v.default ? 'on ' : 'off'}  ${v.what}`)
  .join('\n')}
`;

class UsageError extends Error {}

function machineOptions(v: Record<string, unknown>): Partial<MachineOptions> {
  const o: Partial<MachineOptions> = {};
  if (v.machine !== undefined) {
    if (!isPresetName(String(v.machine))) throw new UsageError(`--machine: expected powernv8, powernv9 or powernv10, got "${v.machine}"`);
    o.preset = v.machine as MachineOptions['preset'];
  }
  if (v['page-size'] !== undefined) {
    if (v['page-size'] !== '4k' && v['page-size'] !== '64k') throw new UsageError(`--page-size: expected 4k or 64k, got "${v['page-size']}"`);
    o.pageSize = v['page-size'];
  }
  if (v.mmu !== undefined) {
    if (v.mmu !== 'radix' && v.mmu !== 'hash') throw new UsageError(`--mmu: expected radix or hash, got "${v.mmu}"`);
    o.mmu = v.mmu;
  }
  const quirks: Partial<Quirks> = {};
  for (const [flag, on] of [['quirk', true], ['fix', false]] as const) {
    for (const q of (v[flag] as string[] | undefined) ?? []) {
      if (!isQuirkName(q)) throw new UsageError(`--${flag}: unknown quirk "${q}"; known: ${Object.keys(QUIRKS).join(', ')}`);
      quirks[q] = on;
    }
  }
  if (Object.keys(quirks).length) o.quirks = quirks;
  return o;
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      machine: { type: 'string' },
      'page-size': { type: 'string' },
      mmu: { type: 'string' },
      quirk: { type: 'string', multiple: true },
      fix: { type: 'string', multiple: true },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(HELP);
    return cmd || values.help ? 0 : 2;
  }
  switch (cmd) {
    case 'run': {
      if (rest.length > 1) throw new UsageError('run: give at most one scenario file');
      if (rest.length === 1) return runScenarioFile(rest[0]!, machineOptions(values).quirks ?? {}, values.json === true);
      const t = runTour(machineOptions(values));
      process.stdout.write(values.json ? `${JSON.stringify(t, null, 2)}\n` : formatTour(t));
      return t.steps.every((s) => s.ok) ? 0 : 1;
    }
    case 'conformance': {
      if (!rest.length) throw new UsageError('conformance: give one or more recording files (JSONL)');
      let matched = 0;
      let total = 0;
      const files = [];
      for (const f of rest) {
        const tty = process.stderr.isTTY;
        const r = replayFile(f, tty ? (d, n) => process.stderr.write(`\r${f}: ${d}/${n}`) : undefined);
        if (tty) process.stderr.write('\n');
        matched += r.matched;
        total += r.records;
        files.push(r);
        if (!values.json) for (const m of r.mismatches) process.stdout.write(`${formatMismatch(r.file, m)}\n`);
      }
      if (values.json) process.stdout.write(`${JSON.stringify({ matched, mismatched: total - matched, files }, null, 2)}\n`);
      else process.stdout.write(`${matched} matched, ${total - matched} mismatched\n`);
      return total === matched ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${cmd}" (try --help)`);
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`tcelab: ${(e as Error).message}\n`);
    process.exitCode = 2;
  } else {
    throw e;
  }
}
