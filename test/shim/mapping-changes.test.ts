/**
 * The shim keeps its reading of /proc/self/smaps between calls (docs/socket-protocol.md, Memory):
 * a program's munmap and mprotect, and libc's own munmap behind free(), must still reach the
 * model before the next REGISTER_MEMORY or v1 MAP_DMA pins the range. A v2 MAP_DMA maps what
 * REGISTER_MEMORY pinned, whatever is mapped there since.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cMissing, ROOT, run, tcelab } from './env.js';

const skip = cMissing() ?? false;
const dir = mkdtempSync(join(tmpdir(), 'tcelab-mappings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

for (const pageSize of ['64k', '4k']) {
  test(`mapping changes between calls reach the model (${pageSize} pages)`, { skip }, async () => {
    const bin = join(dir, 'mapping_changes');
    const cc = await run(process.env.CC || 'cc', ['-O2', '-Wall', '-I', join(ROOT, 'examples/c'), '-o', bin, join(ROOT, 'test/shim/c/mapping_changes.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    const r = await tcelab(['exec', '--machine', 'powernv9', '--page-size', pageSize, '--', bin]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      [
        'mapped: registered',
        'mapped, again: registered',
        'after munmap: EFAULT',
        'after mprotect read-only: EFAULT',
        'after mprotect read-write: registered',
        'malloc block: registered',
        'after free: EFAULT',
        '',
      ].join('\n'),
    );
  });
}

for (const pageSize of ['64k', '4k']) {
  test(`a v2 MAP_DMA maps the pages pinned at registration; a v1 MAP_DMA sees a munmap (${pageSize} pages)`, { skip }, async () => {
    const bin = join(dir, 'map_after_munmap');
    const cc = await run(process.env.CC || 'cc', ['-O2', '-Wall', '-I', join(ROOT, 'examples/c'), '-o', bin, join(ROOT, 'test/shim/c/map_after_munmap.c')]);
    assert.equal(cc.status, 0, cc.stderr);
    const r = await tcelab(['exec', '--machine', 'powernv9', '--page-size', pageSize, '--', bin]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, ['v2, registered: mapped', 'v2, registered then munmapped: mapped', 'v1, mapped: mapped', 'v1, munmapped: EFAULT', ''].join('\n'));
  });
}

test('registered hugetlb memory mapped again with small pages still maps the huge page (hash MMU)', { skip }, async () => {
  const bin = join(dir, 'hugetlb_remap');
  const cc = await run(process.env.CC || 'cc', ['-O2', '-Wall', '-I', join(ROOT, 'examples/c'), '-o', bin, join(ROOT, 'test/shim/c/hugetlb_remap.c')]);
  assert.equal(cc.status, 0, cc.stderr);
  const r = await tcelab(['exec', '--machine', 'powernv9', '--page-size', '64k', '--mmu', 'hash', '--', bin]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(
    r.stdout,
    [
      'register hugetlb: ok',
      '2M map of hugetlb: ok',
      '2M map of it, now small pages: ok',
      'register small pages: ok',
      '2M map of small pages: EINVAL',
      '',
    ].join('\n'),
  );
});
