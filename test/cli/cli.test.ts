import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '../../..');
const tcelab = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), ...args], { encoding: 'utf8' });

test('tcelab run: the tour succeeds and reports the windows of every PE', () => {
  const r = tcelab('run');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\[ok\] 32-bit DMA through the TCE window/);
  assert.match(r.stdout, /\[ok\] EEH recovery/);
  assert.match(r.stdout, /PHB0 PE#1fd .*\n {4}window#0 0x0\.\.0x7fffffff {2}pg=64 KiB levels=2/);
});

test('tcelab run --json gives the same report as data', () => {
  const r = tcelab('run', '--json', '--machine', 'powernv8');
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.report.machine, 'powernv8');
  assert.equal(j.report.pes[0].pe, 'fd');
  assert.ok(j.steps.every((s: { ok: boolean }) => s.ok));
});

test('bad options name the option and the accepted values', () => {
  const r = tcelab('run', '--page-size', '16k');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--page-size: expected 4k or 64k, got "16k"/);
  assert.match(tcelab('run', '--fix', 'nope').stderr, /--fix: unknown quirk "nope"/);
  assert.match(tcelab('boot', '--machine', 'pseries', '--multi-tce', 'maybe').stderr, /--multi-tce: expected on or off, got "maybe"/);
  assert.match(tcelab('explore', '--machine', 'powernv8', '--steps', '1').stderr, /explore: --machine: expected powernv9 or pseries, got "powernv8"/);
});

test('tcelab conformance exits 0 with the closing count', () => {
  const r = tcelab('conformance', join(ROOT, 'fixtures/oracle/p9-64k-edge.jsonl'));
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /^28 matched, 0 mismatched$/m);
});

test('tcelab run FILE: 0 when the scenario holds, 1 with the invariant, 2 on a bad file', () => {
  const ex = (f: string) => join(ROOT, 'examples', f);
  assert.equal(tcelab('run', ex('stale-table-pointer.yaml')).status, 0);
  const bad = tcelab('run', ex('stale-table-pointer.yaml'), '--quirk', 'stale-table-pointer');
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /invariant violated: device-table-pointer-current/);
  assert.match(bad.stdout, /events that led there:/);
  const missing = tcelab('run', join(ROOT, 'no-such.yaml'));
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /no-such\.yaml/);
});

test('tcelab conformance --scenarios replays the named scenarios; x86 device records are not replayed, and the output says why', () => {
  const r = tcelab('conformance', '--scenarios', 'ioas_basic,abi_rules', join(ROOT, 'fixtures/oracle-iommufd/x86-q35.jsonl'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /x86-q35\.jsonl: \d+ records not replayed \(not in --scenarios; needs the recorded machine's devices/);
  assert.match(r.stdout, /^215 matched, 0 mismatched, \d+ not replayed$/m);
  const bad = tcelab('conformance', '--scenarios', ',', join(ROOT, 'fixtures/oracle-iommufd/x86-q35.jsonl'));
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--scenarios: give scenario names/);
});
