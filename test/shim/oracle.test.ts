/**
 * The recording program of the real-kernel oracle (../shared/oracle/vfio_spapr_oracle.c),
 * compiled natively and run unmodified through the shim, must print the records the real kernel
 * printed: `tcelab conformance --compare` holds them against the recordings.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cMissing, ROOT, run, tcelab } from './env.js';

const ORACLE = join(ROOT, '../shared/oracle');
const skip =
  cMissing() ??
  (!existsSync(join(ORACLE, 'vfio_spapr_oracle.c')) ? `skipped: the oracle kit is not at ${ORACLE} (CI checks out ../shared beside the repo)` : null) ??
  (process.getuid?.() !== 0 ? 'skipped: the oracle program drops to uid 65534 with setresuid(), which needs root' : null) ??
  false;

const dir = mkdtempSync(join(tmpdir(), 'tcelab-oracle-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function oracleBinary(): Promise<string> {
  const bin = join(dir, 'vfio_spapr_oracle');
  if (!existsSync(bin)) {
    const cc = await run(process.env.CC || 'cc', ['-O2', '-o', bin, join(ORACLE, 'vfio_spapr_oracle.c')]);
    assert.equal(cc.status, 0, cc.stderr);
  }
  return bin;
}

/** The J: lines of a run, as the kit's extract.py writes them. */
function records(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('J:{'))
    .map((l) => `${l.slice(2)}\n`)
    .join('');
}

const POWERNV_ARGS = ['0', '0000:01:00.0', '1', '0001:01:00.0'];
const VARIANTS = [
  { recording: 'p9-64k', opts: ['--machine', 'powernv9', '--page-size', '64k'], args: POWERNV_ARGS, kernel: join(ORACLE, 'recordings/p9-64k.jsonl') },
  { recording: 'p9-4k', opts: ['--machine', 'powernv9', '--page-size', '4k'], args: POWERNV_ARGS, kernel: join(ORACLE, 'recordings/p9-4k.jsonl') },
  {
    recording: 'p9-64k-hash',
    opts: ['--machine', 'powernv9', '--page-size', '64k', '--mmu', 'hash'],
    args: POWERNV_ARGS,
    kernel: join(ORACLE, 'recordings/p9-64k-hash.jsonl'),
  },
  {
    recording: 'pseries-4k',
    opts: ['--machine', 'pseries', '--page-size', '4k'],
    args: ['0', '0000:00:01.0', '1', '0001:00:01.0', '--max-entries-log2=24'],
    kernel: join(ROOT, 'fixtures/oracle-pseries/pseries-4k.jsonl'),
  },
];

for (const v of VARIANTS) {
  test(`vfio_spapr_oracle through the shim matches recordings/${v.recording}.jsonl`, { skip }, async () => {
    const bin = await oracleBinary();
    const r = await tcelab(['exec', ...v.opts, '--', bin, ...v.args], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'the server logged nothing');
    const model = join(dir, `${v.recording}.model.jsonl`);
    writeFileSync(model, records(r.stdout));
    const kernel = v.kernel;
    const c = await tcelab(['conformance', '--compare', kernel, model]);
    const expected = readFileSync(kernel, 'utf8')
      .split('\n')
      .filter((l) => l && !l.includes('"op":"bind_vfio_pci"')).length;
    assert.equal(c.stdout.trim().split('\n').at(-1), `${expected} matched, 0 mismatched`, c.stdout);
    assert.equal(c.status, 0);
  });
}

/**
 * The same program on an IOMMUFD kernel whose /dev/vfio/vfio is IOMMUFD's (tcelab's PPC64 design,
 * docs/iommufd-ppc64.md): the sPAPR container kept in IOMMUFD objects answers as the real VFIO
 * container did, record by record, but for the one line the kernel prints when IOMMUFD provides
 * /dev/vfio/vfio (listed in the docs).
 */
const COMPAT_DIFFERENCES = ['#2 v2_basic open "container": dmesg[0]: kernel (absent) vs model "iommufd: IOMMUFD is providing /dev/vfio/vfio, not VFIO."'];
for (const v of VARIANTS.filter((x) => x.opts.includes('powernv9'))) {
  test(`vfio_spapr_oracle on the sPAPR container over IOMMUFD matches recordings/${v.recording}.jsonl but for the documented line`, { skip }, async () => {
    const bin = await oracleBinary();
    const r = await tcelab(['exec', ...v.opts, '--vfio-container', 'iommufd', '--', bin, ...v.args], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'the server logged nothing');
    const model = join(dir, `${v.recording}.compat.jsonl`);
    writeFileSync(model, records(r.stdout));
    const c = await tcelab(['conformance', '--compare', v.kernel, model]);
    const lines = c.stdout.trim().split('\n');
    const expected = readFileSync(v.kernel, 'utf8')
      .split('\n')
      .filter((l) => l && !l.includes('"op":"bind_vfio_pci"')).length;
    assert.equal(lines.at(-1), `${expected - COMPAT_DIFFERENCES.length} matched, ${COMPAT_DIFFERENCES.length} mismatched`, c.stdout);
    assert.deepEqual(
      lines.slice(0, -1).map((l) => l.slice(l.indexOf(' ') + 1)),
      COMPAT_DIFFERENCES,
    );
  });
}

test('--compare names a differing field, a missing and an extra record', async () => {
  const kernel = join(ROOT, 'fixtures/oracle/p9-64k-edge.jsonl');
  const lines = readFileSync(kernel, 'utf8')
    .split('\n')
    .filter((l) => l && !l.includes('"op":"bind_vfio_pci"'));
  const recs = lines.map((l) => JSON.parse(l));
  recs[3].ret = 99;
  const dropped = recs.splice(5, 1)[0];
  recs.push({ ...recs[0], seq: 9999 });
  const model = join(dir, 'tampered.jsonl');
  writeFileSync(model, recs.map((r) => JSON.stringify(r)).join('\n'));
  const c = await tcelab(['conformance', '--compare', kernel, model]);
  assert.equal(c.status, 1);
  assert.match(c.stdout, new RegExp(`tampered\\.jsonl #${recs[3].seq} .*: ret: kernel \\d+ vs model 99`));
  assert.match(c.stdout, new RegExp(`#${dropped.seq} .*: record: kernel recorded vs model \\(absent\\)`));
  assert.match(c.stdout, /#9999 .*: record: kernel \(absent\) vs model produced/);
  assert.match(c.stdout, new RegExp(`^${lines.length - 2} matched, 3 mismatched$`, 'm'));
});
