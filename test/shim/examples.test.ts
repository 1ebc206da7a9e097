import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, cMissing, EXAMPLES, tcelab } from './env.js';

const skip = cMissing() ?? false;

for (const pageSize of ['64k', '4k']) {
  test(`examples/c/spapr_v2_flow runs through the shim (${pageSize} pages)`, { skip }, async () => {
    const r = await tcelab(['exec', '--machine', 'powernv9', '--page-size', pageSize, '--', join(EXAMPLES, 'spapr_v2_flow'), '0', '0000:01:00.0']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp(`^1\\. group 0 attached to a v2 container \\(page size ${pageSize === '64k' ? 64 : 4}K\\)$`, 'm'));
    assert.match(r.stdout, /^2\. 32-bit window 0x0\.\.0x7fffffff, DDW page sizes 0x40211000, 2 windows, 5 levels$/m);
    assert.match(r.stdout, /^3\. registered 4 MiB, VmLck 4096 kB$/m);
    assert.match(r.stdout, /^4\. DDW created at 0x800000000000000,/m);
    assert.match(r.stdout, /^6\. device 0000:01:00\.0: 9 regions, 5 irqs, PCI$/m);
    assert.match(r.stdout, /^7\. unmapped, removed, unregistered, closed: VmLck 0 kB$/m);
  });
}

test('a missing group fails with the model errno, as the program reports it', { skip }, async () => {
  // Group 5 does not exist on the recorded machine: open fails with ENOENT from the model.
  const r = await tcelab(['exec', '--', join(EXAMPLES, 'spapr_v2_flow'), '5', '0000:06:00.0']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^\/dev\/vfio\/5 failed: No such file or directory \(ENOENT\)$/m);
});

test('tcelab exec relays the exit status and says when the program cannot run', { skip }, async () => {
  assert.equal((await tcelab(['exec', '--', '/bin/sh', '-c', 'exit 7'])).status, 7);
  const missing = await tcelab(['exec', '--', '/nonexistent/prog']);
  assert.equal(missing.status, 127);
  assert.match(missing.stderr, /tcelab exec: cannot run \/nonexistent\/prog: /);
  const usage = await tcelab(['exec']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /exec: give the program to run after --/);
});

test('tcelab serve: programs run with exec --socket share one machine; a held group is EBUSY', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcelab-serve-'));
  const sock = join(dir, 'model.sock');
  const server = spawn(process.execPath, [CLI, 'serve', '--socket', sock, '--page-size', '4k']);
  let log = '';
  server.stderr.on('data', (d) => (log += d));
  try {
    await new Promise<void>((resolve, reject) => {
      server.stderr.on('data', () => log.includes('listening') && resolve());
      server.on('exit', () => reject(new Error(`tcelab serve ended: ${log}`)));
    });
    assert.match(log, /^tcelab serve: powernv9, 4K pages, radix MMU; IOMMU groups 0 \(0000:01:00\.0\), 1 \(0001:01:00\.0\); listening on /);
    const holder = spawn(process.execPath, [CLI, 'exec', '--socket', sock, '--', join(EXAMPLES, 'map_loop'), '1', '1']);
    let held = '';
    holder.stdout.on('data', (d) => (held += d));
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', () => held.includes('ready') && resolve());
      holder.on('exit', () => reject(new Error(`map_loop ended before "ready": ${held}`)));
    });
    const second = await tcelab(['exec', '--socket', sock, '--', join(EXAMPLES, 'spapr_v2_flow'), '1', '0001:01:00.0']);
    assert.equal(second.status, 1);
    assert.match(second.stderr, /^\/dev\/vfio\/1 failed: Device or resource busy \(EBUSY\)$/m);
    holder.stdin.end('go\n');
    await new Promise((r) => holder.on('exit', r));
    assert.match(held, /^done mapped=1 /m);
    const third = await tcelab(['exec', '--socket', sock, '--', join(EXAMPLES, 'spapr_v2_flow'), '1', '0001:01:00.0']);
    assert.equal(third.status, 0, third.stderr);
    assert.match(third.stdout, /page size 4K/);
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(log, /SIGTERM: stopping/);
});

test('examples/c/big_window on pseries: the unchecked userspace view kills the mapping child with SIGSEGV', { skip }, async () => {
  const prog = join(EXAMPLES, 'big_window');
  const asIs = await tcelab(['exec', '--machine', 'pseries', '--', prog, '0', '12', '40']);
  assert.equal(asIs.status, 0, asIs.stderr);
  assert.equal(asIs.stdout, 'window of 2^28 TCEs created at 0x800000000000000\nchild killed by signal 11\n');
  const fixed = await tcelab(['exec', '--machine', 'pseries', '--fix', 'unchecked-userspace-view', '--', prog, '0', '12', '40']);
  assert.equal(fixed.stdout, 'child exited with 1\n');
  assert.match(fixed.stderr, /^VFIO_IOMMU_SPAPR_TCE_CREATE failed: Cannot allocate memory \(ENOMEM\)$/m);
  const small = await tcelab(['exec', '--machine', 'pseries', '--', prog, '0', '16', '32']);
  assert.equal(small.stdout, 'window of 2^16 TCEs created at 0x800000000000000\nmapped one page\nchild exited with 0\n');
});

for (const pageSize of ['64k', '4k']) {
  test(`examples/c/iommufd_two_windows through the shim: both windows on tcelab's PPC64 IOMMUFD driver (${pageSize})`, { skip }, async () => {
    const r = await tcelab([
      'exec',
      '--iommufd',
      'ppc64',
      '--allow-unsafe-interrupts',
      '--page-size',
      pageSize,
      '--',
      join(EXAMPLES, 'iommufd_two_windows'),
      '0',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^2\. PPC64 TCE: 32-bit window 0x0\.\.0x7fffffff, 64-bit window at 0x800000000000000,/m);
    const align = pageSize === '64k' ? '0x10000' : '0x1000';
    assert.match(r.stdout, new RegExp(`^4\\. 2 IOVA ranges: 0x0\\.\\.0x7fffffff 0x800000000000000\\.\\.0x8000000ffffffff, alignment ${align}$`, 'm'));
    assert.match(r.stdout, /^5\. mapped 1 MiB at 0x100000 and at 0x800000000000000; a map into the hole at 0x10000000000: EINVAL$/m);
    assert.match(r.stdout, /^6\. unmapped, detached, closed$/m);
  });
}

test('examples/c/iommufd_two_windows on the RFC driver: no PPC64 hw_info, and without the command-line option no bind', { skip }, async () => {
  const rfc = await tcelab(['exec', '--iommufd', 'rfc-2026', '--allow-unsafe-interrupts', '--', join(EXAMPLES, 'iommufd_two_windows'), '0']);
  assert.equal(rfc.status, 1);
  assert.match(rfc.stderr, /^GET_HW_INFO: type 0, not PPC64 TCE$/m);
  const strict = await tcelab(['exec', '--iommufd', 'rfc-2026', '--', join(EXAMPLES, 'iommufd_two_windows'), '0']);
  assert.equal(strict.status, 1);
  assert.match(strict.stderr, /^VFIO_DEVICE_BIND_IOMMUFD failed: Operation not permitted \(EPERM\)$/m);
});
