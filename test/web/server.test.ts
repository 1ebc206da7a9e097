/**
 * The view's server without a browser: the same line/column errors and exit code as `tcelab run`
 * on a malformed file, requests from other origins refused, a page that closes mid-stream, the
 * event log of `run --events` read back, and a program followed by `exec --view`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cMissing, EXAMPLES } from '../shim/env.js';
import { CLI, ROOT, startView, type View } from './env.js';

const dir = mkdtempSync(join(tmpdir(), 'tcelab-view-'));
const views: View[] = [];
after(async () => {
  for (const v of views) await v.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tcelab = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

async function view(args: string[]): Promise<View> {
  const v = await startView(args);
  views.push(v);
  return v;
}

function fetchRaw(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a malformed scenario: view prints the same file:line:col error as run and exits 2', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: bad\nmachine: { preset: powernv9, pageSize: 64k }\nactors: {}\nsteps:\n  - { op: bind, device: "0000:01:00.0", driver: nope }\n');
  const run = tcelab(['run', bad]);
  const v = tcelab(['view', bad, '--port', '0']);
  assert.equal(run.status, 2);
  assert.equal(v.status, 2);
  assert.match(run.stderr, /bad\.yaml:5:\d+: /);
  assert.equal(v.stderr, run.stderr);
  assert.equal(v.stdout, '');
  const yamlSyntax = join(dir, 'syntax.yaml');
  writeFileSync(yamlSyntax, 'name: [unclosed\n');
  assert.equal(tcelab(['view', yamlSyntax]).stderr, tcelab(['run', yamlSyntax]).stderr);
});

test('a malformed recording or event log names the line', () => {
  const rec = join(dir, 'bad.jsonl');
  writeFileSync(rec, '{"seq":0,"scn":"init","op":"note","case":"x","ret":0,"qemu_machine":"powernv9","kernel":"6.12"}\n{"seq":1,\n');
  const r = tcelab(['view', rec]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^tcelab: .*bad\.jsonl:2: not JSON/);
  const log = join(dir, 'bad-events.jsonl');
  writeFileSync(log, '{"format":"tcelab-events","version":1,"source":"x","kind":"scenario"}\n{"type":"step","index":3}\n');
  const e = tcelab(['view', log]);
  assert.equal(e.status, 2);
  assert.match(e.stderr, /bad-events\.jsonl:2:1: a "step" line needs "label"/);
});

test('requests from another origin or for another host are refused', async () => {
  const v = await view(['view']);
  const url = `${v.url}api/timeline`;
  const port = new URL(v.url).port;
  assert.equal((await fetchRaw(url)).status, 200);
  assert.equal((await fetchRaw(url, { origin: `http://127.0.0.1:${port}` })).status, 200);
  const evil = await fetchRaw(url, { origin: 'http://evil.example' });
  assert.equal(evil.status, 403);
  assert.match((JSON.parse(evil.body) as { error: string }).error, /^Origin "http:\/\/evil\.example" is not this server's/);
  // DNS rebinding: a foreign name that resolves to 127.0.0.1 still carries its own Host.
  assert.equal((await fetchRaw(url, { host: `evil.example:${port}` })).status, 403);
  assert.equal((await fetchRaw(`${v.url}api/events`, { origin: 'http://evil.example' })).status, 403);
  assert.equal((await fetchRaw(url, { 'sec-fetch-site': 'cross-site' })).status, 403);
  // The idle default machine: one step, its report, a table of PHB0's PE.
  const tl = JSON.parse((await fetchRaw(url)).body) as { kind: string; steps: unknown[] };
  assert.equal(tl.kind, 'idle');
  assert.equal(tl.steps.length, 1);
  const st = JSON.parse((await fetchRaw(`${v.url}api/state?step=0`)).body) as { report: { pes: { windows: { table?: number }[] }[] } };
  const table = st.report.pes[0]!.windows[0]!.table!;
  const t = JSON.parse((await fetchRaw(`${v.url}api/table?step=0&id=${table}`)).body) as { entries: number; heat: number[] };
  assert.ok(t.entries > 0 && t.heat.length <= 1024);
  const bad = await fetchRaw(`${v.url}api/state?step=9`);
  assert.equal(bad.status, 400);
  assert.equal((JSON.parse(bad.body) as { error: string }).error, 'step: expected an integer in 0..0, got "9"');
});

/** Open the event stream, read its first message, then drop the connection as a closed tab does. */
function openAndDrop(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res: IncomingMessage) => {
      res.once('data', (d: Buffer) => {
        req.destroy();
        resolve(d.toString());
      });
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

test('run --view streams a live run and survives a tab closed mid-stream', async () => {
  const v = await view(['run', join(ROOT, 'examples/tour.yaml'), '--view', '--delay', '40']);
  const first = await openAndDrop(`${v.url}api/events`);
  assert.match(first, /^event: hello\ndata: \{"steps":\d+,"done":false\}/);
  // A second tab keeps listening while the first is gone, and sees the run to its end.
  const updates = await new Promise<string>((resolve, reject) => {
    let text = '';
    const req = get(`${v.url}api/events`, (res) => {
      res.on('data', (d) => {
        text += d;
        if (text.includes('"done":true')) {
          req.destroy();
          resolve(text);
        }
      });
    });
    req.on('error', reject);
  });
  assert.match(updates, /event: update\ndata: \{"step":\{"index":\d+/);
  const tl = JSON.parse((await fetchRaw(`${v.url}api/timeline`)).body) as { done: boolean; steps: unknown[] };
  assert.equal(tl.done, true);
  assert.equal(tl.steps.length, 18);
  assert.equal(v.proc.exitCode, null);
});

test('run --events writes an event log that view reads back, state after every step included', async () => {
  const out = join(dir, 'stale.jsonl');
  const r = tcelab(['run', join(ROOT, 'examples/stale-table-pointer.yaml'), '--quirk', 'stale-table-pointer', '--events', out]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /invariant violated: device-table-pointer-current/);
  const lines = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines[0], { format: 'tcelab-events', version: 1, source: join(ROOT, 'examples/stale-table-pointer.yaml'), kind: 'scenario' });
  assert.equal(lines.filter((l) => l.type === 'step').length, 14);
  assert.equal(lines.filter((l) => l.type === 'violation').length, 1);
  const v = await view(['view', out]);
  const tl = JSON.parse((await fetchRaw(`${v.url}api/timeline`)).body) as {
    kind: string;
    tables: boolean;
    steps: unknown[];
    violations: { invariant: string }[];
  };
  assert.equal(tl.kind, 'events');
  assert.equal(tl.tables, false);
  assert.equal(tl.steps.length, 14);
  assert.equal(tl.violations[0]!.invariant, 'device-table-pointer-current');
  const st = JSON.parse((await fetchRaw(`${v.url}api/state?step=13`)).body) as { report: { topology: { functions: { name: string; tableFreed: boolean }[] } } };
  assert.equal(st.report.topology.functions.find((f) => f.name === '0002:02:00.0')!.tableFreed, true);
  assert.equal((await fetchRaw(`${v.url}api/table?step=13&id=1`)).status, 404);
});

test('the diff of a recording puts mismatched records first, kernel answer beside the model', async () => {
  // A copy of a real recording in which one answer was changed: the model cannot match it.
  const lines = readFileSync(join(ROOT, 'fixtures/oracle/p9-64k-edge.jsonl'), 'utf8').trim().split('\n');
  const i = lines.length - 3;
  const rec = JSON.parse(lines[i]!) as { seq: number; ret: number };
  lines[i] = JSON.stringify({ ...rec, ret: rec.ret + 7 });
  const file = join(dir, 'tampered.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const v = await view(['view', file]);
  const d = JSON.parse((await fetchRaw(`${v.url}api/diff`)).body) as {
    records: number;
    mismatched: number;
    rows: { seq: number; kernel: { ret: number }; model: { ret: number } | null; mismatches: { field: string }[] }[];
  };
  assert.equal(d.records, lines.length);
  assert.equal(d.mismatched, 1);
  assert.equal(d.rows[0]!.seq, rec.seq);
  assert.equal(d.rows[0]!.kernel.ret, rec.ret + 7);
  assert.equal(d.rows[0]!.model!.ret, rec.ret);
  assert.deepEqual(
    d.rows[0]!.mismatches.map((m) => m.field),
    ['ret'],
  );
  assert.ok(d.rows.slice(1).every((r) => r.mismatches.length === 0));
});

test('exec --view follows an unmodified VFIO program through the shim, one step per call', { skip: cMissing() ?? false }, async () => {
  const proc = spawn(process.execPath, [CLI, 'exec', '--view', '--port', '0', '--', join(EXAMPLES, 'spapr_v2_flow'), '0', '0000:01:00.0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      err += d;
      if (/exited with status 0; the view stays up/.test(err)) resolve();
    });
    proc.on('exit', () => reject(new Error(`exec exited early: ${err}`)));
  });
  const url = /view at (http:\S+)/.exec(err)![1]!;
  const tl = JSON.parse((await fetchRaw(`${url}api/timeline`)).body) as { kind: string; done: boolean; steps: { label: string }[] };
  assert.equal(tl.kind, 'program');
  assert.equal(tl.done, true);
  const map = tl.steps.findIndex((s) => /VFIO_IOMMU_MAP_DMA on \/dev\/vfio\/vfio$/.test(s.label));
  assert.ok(map > 0);
  const st = JSON.parse((await fetchRaw(`${url}api/state?step=${map}`)).body) as {
    report: { topology: { containers: { iommu: string; tables: number[] }[] } };
  };
  assert.equal(st.report.topology.containers[0]!.iommu, 'spapr-tce-v2');
  assert.equal(st.report.topology.containers[0]!.tables.length, 2);
  // A program cannot be rerun: tables exist for its last step only.
  const earlier = await fetchRaw(`${url}api/table?step=${map}&id=${st.report.topology.containers[0]!.tables[1]}`);
  assert.equal(earlier.status, 404);
  assert.match((JSON.parse(earlier.body) as { error: string }).error, /tables exist for its current step/);
  proc.kill('SIGTERM');
  assert.equal(await exited, 0);
});
