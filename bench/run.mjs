#!/usr/bin/env node
// tcelab benchmarks: each workload runs the model (a fresh node child, importing dist/) and a C
// baseline of the same algorithm (bench/c/, built here with gcc -O2 into bench/build/) in the
// same invocation, alternating runs; medians, the ratio model time / C time for the same work,
// and peak RSS of each process. Progress goes to stderr, the table (or --json) to stdout.
//
//   node bench/run.mjs [--full] [--json] [--only B1,B3]   (B7: the view in Chromium)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { lineProcess, median } from './proc.mjs';
import { socketWorkload } from './socket.mjs';
import { viewWorkload } from './view.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const args = process.argv.slice(2);
const full = args.includes('--full');
const json = args.includes('--json');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : null;
const say = (s) => process.stderr.write(`${s}\n`);

const Q = (quick, fullValue) => (full ? fullValue : quick);
const GiB = 2 ** 30;

/**
 * name, what it measures, unit; model: [child module, options]; c: [binary, args]; rate: true
 * when model/c are work per second (else seconds per run); target: ratio or value to meet.
 */
const WORKLOADS = [
  {
    name: 'B1 DMA API map/unmap',
    id: 'B1',
    unit: 'map+unmap pairs/s',
    model: ['b1', { ops: Q(100000, 500000), seed: 12345 }],
    c: ['b1_dma_api', [Q(100000, 500000), 12345]],
    runs: Q(5, 11),
    target: { ratio: 2.0 },
  },
  {
    name: 'B2 bulk MAP_DMA 4 GiB + UNMAP',
    id: 'B2',
    unit: 'TCE writes/s',
    model: ['b2', { mapBytes: 4 * GiB }],
    c: ['b2_bulk_map', [4 * GiB]],
    runs: Q(5, 11),
    // V8 optimizes the map's passes over the first three or four runs: timed runs start after.
    warmup: 3,
    target: { ratio: 2.0 },
  },
  {
    name: 'B3 translation, TCE cache on',
    id: 'B3',
    unit: 'translations/s',
    model: ['b3', { reads: Q(200000, 1000000), seed: 777, cache: true }],
    c: ['b3_translate', [Q(200000, 1000000), 777, 1]],
    runs: Q(5, 11),
    target: { ratio: 2.0 },
  },
  {
    name: 'B3 translation, TCE cache off',
    id: 'B3',
    unit: 'translations/s',
    model: ['b3', { reads: Q(200000, 1000000), seed: 777, cache: false }],
    c: ['b3_translate', [Q(200000, 1000000), 777, 0]],
    runs: Q(5, 11),
    target: { ratio: 2.0 },
  },
  {
    name: 'B4 1 TiB DDW map + walk',
    id: 'B4',
    unit: 's per 2^24 TCEs',
    model: ['b4', { windowShift: 40 }, ['--expose-gc']],
    c: ['b4_scale', [40]],
    runs: Q(1, 3),
    warmup: 0,
    rate: false,
    target: { seconds: 10, bytesPerTce: 8 * 1.1 },
  },
  {
    name: 'B5 bus PE (8 devices) take/release',
    id: 'B5',
    unit: 'transitions/s',
    model: ['b5', { cycles: Q(1000, 5000) }],
    c: ['b5_ownership', [Q(1000, 5000)]],
    runs: Q(5, 11),
  },
  {
    name: 'B6 MAP+UNMAP 1 page, in process',
    id: 'B6',
    unit: 'ioctl calls/s',
    model: ['b6', { pairs: Q(20000, 100000) }],
    c: ['b6_ioctl', [Q(20000, 100000)]],
    runs: Q(5, 11),
  },
];

// ---- machine description ----------------------------------------------------------------------

function machineInfo() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? /^cpu\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const gcc = execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  return { cpu, cpus: cpus().length, memBytes: totalmem(), node: process.version, gcc, mode: full ? 'full' : 'quick' };
}

// ---- C baselines ------------------------------------------------------------------------------

function buildC(names) {
  const out = here('./build/');
  mkdirSync(out, { recursive: true });
  for (const n of new Set(names)) {
    say(`bench: gcc -O2 bench/c/${n}.c`);
    execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', `${out}${n}`, here(`./c/${n}.c`)], { stdio: 'inherit' });
  }
  return (n) => `${out}${n}`;
}

async function measure(w, bin) {
  const [mod, opts, nodeFlags = []] = w.model;
  const model = lineProcess(process.execPath, [...nodeFlags, here('./model/child.mjs'), mod, JSON.stringify(opts)]);
  const c = lineProcess(bin(w.c[0]), w.c[1].map(String));
  const [mReady, cReady] = [await model.ready(), await c.ready()];
  const mt = [];
  const ct = [];
  let mLast;
  let cLast;
  const warm = w.warmup ?? 1;
  for (let i = 0; i < warm + w.runs; i++) {
    const label = i < warm ? 'warm-up' : `run ${i - warm + 1}/${w.runs}`;
    mLast = await model.run();
    cLast = await c.run();
    say(`  ${w.id} ${label}: model ${mLast.t.toFixed(3)} s, C ${cLast.t.toFixed(4)} s`);
    if (mLast.work !== cLast.work || mLast.check !== cLast.check) {
      throw new Error(`${w.name}: model and C did different work (model ${mLast.work}/${mLast.check}, C ${cLast.work}/${cLast.check})`);
    }
    if (i >= warm) {
      mt.push(mLast.t);
      ct.push(cLast.t);
    }
  }
  const [mq, cq] = [await model.quit(), await c.quit()];
  const mMed = median(mt);
  const cMed = median(ct);
  const rate = w.rate !== false;
  const r = {
    name: w.name,
    unit: w.unit,
    model: rate ? mLast.work / mMed : mMed,
    c: rate ? cLast.work / cMed : cMed,
    ratio: mMed / cMed,
    peakRssBytes: mq.peakRssBytes,
    cPeakRssBytes: cq.peakRssBytes,
    runs: w.runs,
  };
  if (w.id === 'B4') {
    r.bytesPerTce = mq.bytesPerTce;
    r.peakBytesPerTce = mq.peakBytesPerTce;
    r.cBytesPerTce = (cq.peakRssBytes - cReady.rssBefore) / mLast.work;
    r.mapSeconds = mLast.mapS;
    r.walkSeconds = mLast.walkS;
  }
  r.met = met(w, r);
  void mReady;
  return r;
}

function met(w, r) {
  const t = w.target;
  if (!t) return null;
  if (t.ratio) return r.ratio <= t.ratio;
  return r.model <= t.seconds && r.bytesPerTce <= t.bytesPerTce;
}

// ---- output -----------------------------------------------------------------------------------

const si = (x) => {
  if (x === null || x === undefined) return '—';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x < 10 ? x.toFixed(3) : x.toFixed(1);
};
const mib = (b) => (b ? `${(b / 2 ** 20).toFixed(0)} MiB` : '—');

function table(machine, rows) {
  const head = ['workload', 'unit', 'model', 'C', 'model/C', 'RSS model', 'RSS C', 'target'];
  const body = rows.map((r) => [
    r.name,
    r.unit,
    si(r.model),
    si(r.c),
    r.ratio ? `${r.ratio.toFixed(1)}×` : '—',
    mib(r.peakRssBytes),
    mib(r.cPeakRssBytes),
    r.met === null || r.met === undefined ? (r.target ?? '') : r.met ? 'met' : 'missed',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(width[i])).join(' | ')} |`;
  const out = [
    `machine: ${machine.cpu} (${machine.cpus} CPUs, ${(machine.memBytes / GiB).toFixed(0)} GiB), node ${machine.node}, ${machine.gcc}; ${machine.mode} run`,
    '',
    line(head),
    `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...body.map(line),
  ];
  for (const r of rows) {
    if (r.bytesPerTce !== undefined) {
      out.push(
        '',
        `B4 memory: model ${r.bytesPerTce.toFixed(2)} bytes/TCE (${(r.bytesPerTce / 8).toFixed(3)}× the 8 the hardware table needs; ${r.peakBytesPerTce.toFixed(2)} at the peak over all runs), C ${r.cBytesPerTce.toFixed(2)}; model time: map ${r.mapSeconds.toFixed(1)} s + walk ${r.walkSeconds.toFixed(1)} s`,
      );
    }
    if (r.notes) out.push('', `${r.name}: ${r.notes}`);
  }
  return out.join('\n');
}

// ---- main -------------------------------------------------------------------------------------

if (!existsSync(here('../dist/src/machine/machine.js'))) {
  say('bench: dist/ is missing; run `npm run build` first (`npm run bench` does)');
  process.exit(1);
}
const machine = machineInfo();
const chosen = WORKLOADS.filter((w) => !only || only.includes(w.id));
const bin = buildC(chosen.map((w) => w.c[0]));
const t0 = Date.now();
const workloads = [];
for (const w of chosen) {
  say(`bench: ${w.name} (${w.runs} runs${full ? ', full' : ''})`);
  workloads.push(await measure(w, bin));
}
if (!only || only.includes('B6')) {
  say('bench: B6 MAP+UNMAP 1 page through the shim socket');
  workloads.push(await socketWorkload({ pairs: Q(5000, 10000), runs: Q(3, 5), say, buildDir: here('./build/') }));
}
if (!only || only.includes('B7')) {
  say('bench: B7 tcelab view of a table with 2^24 valid TCEs, in Chromium');
  workloads.push(await viewWorkload({ runs: Q(3, 5), say }));
}
say(`bench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
process.stdout.write(json ? `${JSON.stringify({ machine, workloads }, null, 2)}\n` : `${table(machine, workloads)}\n`);
