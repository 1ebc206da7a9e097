#!/usr/bin/env node
/** The `tcelab` command. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isQuirkName, QUIRKS, type QuirkName, type Quirks } from '../kernel/quirks.js';
import { isPresetName, PRESETS } from '../machine/presets.js';
import { TopologyError, validateTopology } from '../machine/topology.js';
import type { MachineOptions } from '../machine/machine.js';
import { formatMismatch, replayFile } from '../conformance/run.js';
import { qemuSize } from '../conformance/environment.js';
import { HYPERVISOR_PROFILES } from '../firmware/papr/profile.js';
import { compareFiles, formatCompare } from '../conformance/compare-files.js';
import { runTour } from '../scenario/tour.js';
import { exec } from './exec.js';
import { formatBoot, formatTour } from './format.js';
import { Machine } from '../machine/machine.js';
import { machineReport } from '../scenario/report.js';
import { serve } from './serve.js';
import type { ExploreTarget } from '../explore/generator.js';
import { exploreCommand } from './explore.js';
import { runScenarioFile } from './run-scenario.js';
import { viewCommand } from './view.js';

const HELP = `tcelab — an executable model of the POWER (ppc64) IOMMU stack

Usage:
  tcelab run FILE.yaml [--quirk NAME]... [--fix NAME]... [--iommufd ppc64|rfc-2026] [--json] [--events OUT.jsonl]
      Run a scenario (see docs/scenarios.md): exit 0 when every expectation and invariant held,
      1 when one failed (with the step, the invariant and the events that led there), 2 on a
      bad file. --events saves the run's event log (every event, step and violation, and the
      machine after each step) for tcelab view.

  tcelab run FILE.yaml --view [--delay MS] [--host H] [--port P] [--quirk NAME]...
      Run a scenario live in the browser: print the page's URL, take one step every MS
      milliseconds (default 500) and keep serving until Ctrl-C.

  tcelab view [FILE] [--host H] [--port P] [--quirk NAME]... [machine options] [--json]
      Serve a web page of the machine (docs/view.md): topology, DMA windows, TCE tables and a
      timeline to step through. FILE is a scenario (.yaml), a recording (.jsonl, replayed, with
      the kernel's answers beside the model's) or an event log from run --events; without FILE
      the default machine, idle. Listens on 127.0.0.1 and a free port unless told otherwise,
      prints the URL (--json: as {"url":…}) and serves until Ctrl-C; exit 2 on a bad file.

  tcelab boot [machine options] [--json]
      Boot a machine and print what its kernel printed, then every PE with its windows.

  tcelab run [machine options] [--json]
      Boot the default machine (PowerNV POWER9, 64K pages) and run the built-in tour: kernel
      DMA through the 32-bit TCE window and the 64-bit bypass, device DMA moving real bytes,
      a bad DMA freezing a PE and EEH recovery. Prints the windows of every PE.

  tcelab explore [--machine powernv9|pseries] [--seconds N | --steps N] [--seed S] [--quirk NAME]...
                 [--out FILE] [--json]
      Generate random interleavings of kernel driver DMA, two VFIO users, driver binding,
      hotplug and EEH on both cores, check every invariant after every step, and shrink the first
      violation to a minimal scenario written to FILE (default explore-repro.yaml). Starts
      from a kernel with every modelled bug fixed; --quirk turns the ones to hunt on. Exit 1
      when a violation was found. --machine pseries explores the recorded LPAR (its two groups,
      kernel DMA with enable_ddw, VFIO through the hypervisor; no device DMA, EEH or hotplug).

  tcelab conformance RECORDING.jsonl... [--scenarios A,B] [--json]
      Replay recordings of the real kernel (the oracle kit's JSONL) through the model's binary
      ABI, on the machine each file's environment asks for, and compare ret, errno, the out
      fields, VmLck and the kernel log record by record. Prints one line per mismatch and ends
      with "N matched, M mismatched"; exits 0 only when nothing mismatched. IOMMUFD recordings
      (the iommufd oracle program) replay on the PPC64 IOMMUFD RFC kernel; a recording from a
      machine tcelab does not model (x86) replays its device-free scenarios on the generic core
      with that machine's page sizes. --scenarios replays only the named scenarios.

  tcelab conformance --compare KERNEL.jsonl MODEL.jsonl [--json]
      Hold the records a program printed against the model (its J: lines as JSONL) against a
      recording of the real kernel, record by record (seq, scn, op, case), with the same rules.

  tcelab serve --socket PATH [machine options]
      Keep one modelled machine (every endpoint bound to vfio-pci) and serve it to any number of
      VFIO programs running under the shim (docs/socket-protocol.md). The shim polls for each
      answer for TCELAB_POLL_US microseconds (default 50, 0 to sleep at once) before it sleeps.

  tcelab exec [machine options] [--socket PATH] [--view [--host H] [--port P]] -- PROG [ARGS...]
      Run an unmodified VFIO program against the model through the LD_PRELOAD shim: its
      /dev/vfio, /dev/kmsg, VmLck, page size, fork and exit go to the server at --socket if one
      runs there, else to a private one. Exits with the program's status. --view serves the
      page of the private machine as the program drives it (the URL goes to stderr), one step
      per VFIO ioctl or system call, and keeps it up after the program exits until Ctrl-C.

Machine options:
  --machine powernv8|powernv9|powernv10|pseries
                                          CPU/PHB generation (default powernv9), or a POWER9 LPAR
                                          guest of QEMU 7.2 (-machine pseries, docs/pseries.md)
  --page-size 4k|64k                      kernel page size (default 64k)
  --mmu radix|hash                        MMU mode (default: radix on POWER9/10, hash on POWER8)
  --quirk NAME / --fix NAME               turn a modelled kernel quirk on / off (see below)
  --ddw on|off                            pseries: dynamic DMA windows offered by the hypervisor
  --maxmem SIZE                           pseries: hot-pluggable memory top, as QEMU -m …,maxmem=SIZE
  --multi-tce on|off                      pseries: H_PUT_TCE_INDIRECT/H_STUFF_TCE offered (hcall-multi-tce)
  --hypervisor NAME                       pseries: hypervisor profile (default qemu-7.2)
  --iommufd ppc64|rfc-2026                a kernel with IOMMUFD: /dev/iommu and the VFIO device cdevs,
                                          with tcelab's PPC64 driver (both windows, several PEs) or
                                          the 2026 RFC's driver as posted (docs/iommufd-ppc64.md)
  --allow-unsafe-interrupts               iommufd.allow_unsafe_interrupts=1: the RFC's driver claims no MSI
                                          isolation, so every bind needs it (ppc64: PE-checked MSIs)
  --vfio-container legacy|iommufd         who provides /dev/vfio/vfio (default legacy); iommufd implies
                                          --iommufd ppc64 unless given: the sPAPR v1/v2 container kept in
                                          IOMMUFD objects (with rfc-2026: the type1 emulation only)
  --topology FILE.json                    PHBs and devices (docs/topology.md); default: the recorded
                                          QEMU machine (e1000e on PHB 0, virtio-net on PHB 1)

Quirks (default state as in Linux 6.12):
${Object.entries(QUIRKS)
  .map(([k, v]) => `  ${k.padEnd(Math.max(...Object.keys(QUIRKS).map((q) => q.length)) + 1)} ${v.default ? 'on ' : 'off'}  ${v.what}`)
  .join('\n')}
`;

class UsageError extends Error {}

/** explore runs on PowerNV POWER9 (the tour topology) or the recorded pSeries LPAR. */
function exploreTarget(machine: unknown): ExploreTarget {
  if (machine === undefined || machine === 'powernv9') return 'powernv9';
  if (machine === 'pseries') return 'pseries';
  throw new UsageError(`explore: --machine: expected powernv9 or pseries, got "${machine}"`);
}

function machineOptions(v: Record<string, unknown>): Partial<MachineOptions> {
  const o: Partial<MachineOptions> = {};
  if (v.machine !== undefined) {
    if (!isPresetName(String(v.machine))) throw new UsageError(`--machine: expected powernv8, powernv9, powernv10 or pseries, got "${v.machine}"`);
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
  if (v.ddw !== undefined) {
    if (v.ddw !== 'on' && v.ddw !== 'off') throw new UsageError(`--ddw: expected on or off, got "${v.ddw}"`);
    o.ddw = v.ddw === 'on';
  }
  if (v['multi-tce'] !== undefined) {
    if (v['multi-tce'] !== 'on' && v['multi-tce'] !== 'off') throw new UsageError(`--multi-tce: expected on or off, got "${v['multi-tce']}"`);
    o.multiTce = v['multi-tce'] === 'on';
  }
  if (v.maxmem !== undefined) {
    try {
      o.maxmemBytes = qemuSize(String(v.maxmem));
    } catch (e) {
      throw new UsageError(`--maxmem: ${(e as Error).message}`);
    }
  }
  if (v.hypervisor !== undefined) {
    if (!(String(v.hypervisor) in HYPERVISOR_PROFILES))
      throw new UsageError(`--hypervisor: expected ${Object.keys(HYPERVISOR_PROFILES).join(', ')}, got "${v.hypervisor}"`);
    o.hypervisor = String(v.hypervisor);
  }
  if (v.iommufd !== undefined) {
    if (v.iommufd !== 'rfc-2026' && v.iommufd !== 'ppc64') throw new UsageError(`--iommufd: expected ppc64 or rfc-2026, got "${v.iommufd}"`);
    o.iommufd = v.iommufd;
    if (o.preset === 'pseries') throw new UsageError('--iommufd: tcelab models IOMMUFD on PowerNV machines only (powernv8, powernv9, powernv10)');
  }
  if (v['allow-unsafe-interrupts']) o.allowUnsafeInterrupts = true;
  if (v['vfio-container'] !== undefined) {
    if (v['vfio-container'] !== 'legacy' && v['vfio-container'] !== 'iommufd')
      throw new UsageError(`--vfio-container: expected legacy or iommufd, got "${v['vfio-container']}"`);
    if (v['vfio-container'] === 'iommufd' && o.preset === 'pseries')
      throw new UsageError('--vfio-container iommufd: tcelab models IOMMUFD on PowerNV machines only (powernv8, powernv9, powernv10)');
    // The kernel needs IOMMUFD: tcelab's design unless --iommufd says otherwise.
    if (v['vfio-container'] === 'iommufd') o.iommufd ??= 'ppc64';
    o.vfioContainer = v['vfio-container'];
  }
  const quirks: Partial<Quirks> = {};
  for (const [flag, on] of [
    ['quirk', true],
    ['fix', false],
  ] as const) {
    for (const q of (v[flag] as string[] | undefined) ?? []) {
      if (!isQuirkName(q)) throw new UsageError(`--${flag}: unknown quirk "${q}"; known: ${Object.keys(QUIRKS).join(', ')}`);
      quirks[q] = on;
    }
  }
  if (Object.keys(quirks).length) o.quirks = quirks;
  if (v.topology !== undefined) {
    const file = String(v.topology);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UsageError(`--topology ${file}: ${(e as Error).message}`);
    }
    try {
      o.topology = validateTopology(json, PRESETS[o.preset ?? 'powernv9'].phbs);
    } catch (e) {
      if (e instanceof TopologyError) throw new UsageError(`${file}: ${e.message}`);
      throw e;
    }
  }
  return o;
}

function viewOptions(v: Record<string, unknown>, live: boolean): Parameters<typeof viewCommand>[1] {
  const port = Number(v.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: expected an integer in 0..65535, got "${v.port}"`);
  const delay = Number(v.delay ?? 500);
  if (v.delay !== undefined && !live) throw new UsageError('--delay: only with run --view');
  if (!Number.isInteger(delay) || delay < 0 || delay > 60_000) throw new UsageError(`--delay: expected milliseconds in 0..60000, got "${v.delay}"`);
  const m = machineOptions(v);
  return {
    machine: { preset: 'powernv9', pageSize: '64k', ...m },
    quirks: m.quirks ?? {},
    host: String(v.host ?? '127.0.0.1'),
    port,
    liveDelayMs: live ? delay : null,
    json: v.json === true,
  };
}

function main(argv: string[]): number | Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      machine: { type: 'string' },
      'page-size': { type: 'string' },
      topology: { type: 'string' },
      mmu: { type: 'string' },
      ddw: { type: 'string' },
      maxmem: { type: 'string' },
      'multi-tce': { type: 'string' },
      hypervisor: { type: 'string' },
      quirk: { type: 'string', multiple: true },
      fix: { type: 'string', multiple: true },
      socket: { type: 'string' },
      compare: { type: 'boolean' },
      seconds: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      workers: { type: 'string' },
      iommufd: { type: 'string' },
      'allow-unsafe-interrupts': { type: 'boolean' },
      'vfio-container': { type: 'string' },
      scenarios: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      view: { type: 'boolean' },
      events: { type: 'string' },
      delay: { type: 'string' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(HELP);
    return cmd || values.help ? 0 : 2;
  }
  switch (cmd) {
    case 'boot': {
      const m = new Machine({ preset: 'powernv9', pageSize: '64k', ...machineOptions(values) });
      const report = machineReport(m);
      process.stdout.write(values.json ? `${JSON.stringify({ dmesg: m.klog.lines, report }, null, 2)}\n` : formatBoot(m.klog.lines, report));
      return 0;
    }
    case 'run': {
      if (values.topology !== undefined) throw new UsageError('run: the tour uses its own topology; use --topology with boot, serve or exec');
      if (rest.length > 1) throw new UsageError('run: give at most one scenario file');
      if ((values.view || values.events !== undefined) && rest.length !== 1) throw new UsageError('run: --view and --events need a scenario file');
      if (values.view && values.events !== undefined) throw new UsageError('run: give --view or --events, not both');
      if (values.view) return viewCommand(rest[0], viewOptions(values, true));
      if (rest.length === 1) {
        const mo = machineOptions(values);
        return runScenarioFile(rest[0]!, mo.quirks ?? {}, values.json === true, values.events, mo.iommufd);
      }
      const t = runTour(machineOptions(values));
      process.stdout.write(values.json ? `${JSON.stringify(t, null, 2)}\n` : formatTour(t));
      return t.steps.every((s) => s.ok) ? 0 : 1;
    }
    case 'view':
      if (rest.length > 1) throw new UsageError('view: give at most one file');
      for (const k of ['machine', 'page-size', 'mmu', 'topology', 'ddw', 'maxmem', 'hypervisor'] as const)
        if (rest.length && values[k] !== undefined) throw new UsageError(`view: --${k} is for the idle machine; a scenario or recording names its own machine`);
      return viewCommand(rest[0], viewOptions(values, false));
    case 'serve':
      if (!values.socket) throw new UsageError('serve: give --socket PATH');
      return serve(values.socket, machineOptions(values));
    case 'exec': {
      if (!rest.length) throw new UsageError('exec: give the program to run after --');
      if (!values.view && (values.host !== undefined || values.port !== undefined)) throw new UsageError('exec: --host and --port go with --view');
      const view = values.view ? viewOptions(values, false) : undefined;
      return exec(rest, machineOptions(values), values.socket, view && { host: view.host, port: view.port });
    }
    case 'conformance': {
      if (values.compare) {
        if (rest.length !== 2) throw new UsageError('conformance --compare: give KERNEL.jsonl and MODEL.jsonl');
        const c = compareFiles(rest[0]!, rest[1]!);
        process.stdout.write(values.json ? `${JSON.stringify(c, null, 2)}\n` : formatCompare(c, rest[1]!));
        return c.mismatched ? 1 : 0;
      }
      if (!rest.length) throw new UsageError('conformance: give one or more recording files (JSONL)');
      let matched = 0;
      let total = 0;
      let skipped = 0;
      const files = [];
      const scenarios = values.scenarios === undefined ? undefined : new Set(String(values.scenarios).split(',').filter(Boolean));
      if (scenarios && !scenarios.size) throw new UsageError('--scenarios: give scenario names separated by commas, e.g. ioas_basic,abi_rules');
      for (const f of rest) {
        const tty = process.stderr.isTTY;
        const r = replayFile(f, { scenarios, onProgress: tty ? (d, n) => process.stderr.write(`\r${f}: ${d}/${n}`) : undefined });
        if (tty) process.stderr.write('\n');
        matched += r.matched;
        total += r.records;
        skipped += r.skipped;
        files.push(r);
        if (!values.json) {
          for (const m of r.mismatches) process.stdout.write(`${formatMismatch(r.file, m)}\n`);
          if (r.skipped) process.stdout.write(`${r.file}: ${r.skipped} records not replayed (${r.skipReason})\n`);
        }
      }
      if (values.json) process.stdout.write(`${JSON.stringify({ matched, mismatched: total - matched, skipped, files }, null, 2)}\n`);
      else process.stdout.write(`${matched} matched, ${total - matched} mismatched${skipped ? `, ${skipped} not replayed` : ''}\n`);
      return total === matched ? 0 : 1;
    }
    case 'explore': {
      const num = (k: 'seconds' | 'steps' | 'seed' | 'workers', min: number) => {
        const v = values[k];
        if (v === undefined) return null;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min) throw new UsageError(`--${k}: expected an integer ≥ ${min}, got "${v}"`);
        return n;
      };
      const seconds = num('seconds', 1);
      const steps = num('steps', 1);
      if (seconds !== null && steps !== null) throw new UsageError('explore: give --seconds or --steps, not both');
      const quirks = Object.entries(machineOptions(values).quirks ?? {})
        .filter(([, on]) => on)
        .map(([k]) => k as QuirkName);
      return exploreCommand({
        seconds: seconds ?? (steps === null ? 30 : null),
        steps,
        seed: num('seed', 0) ?? 1,
        quirks,
        target: exploreTarget(values.machine),
        out: values.out ?? 'explore-repro.yaml',
        json: values.json === true,
        ...(num('workers', 1) ? { workers: num('workers', 1)! } : {}),
      });
    }
    default:
      throw new UsageError(`unknown command "${cmd}" (try --help)`);
  }
}

// A reader that goes away (`tcelab conformance … | head`) ends the output, not the process with a trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

Promise.resolve()
  .then(() => main(process.argv.slice(2)))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`tcelab: ${(e as Error).message}\n`);
        process.exitCode = 2;
      } else {
        throw e;
      }
    },
  );
