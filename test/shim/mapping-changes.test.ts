/**
 * The shim keeps its reading of /proc/self/smaps between calls (docs/socket-protocol.md, Memory):
 * a program's munmap and mprotect, and libc's own munmap behind free(), must still reach the
 * model before the next REGISTER_MEMORY pins the range.
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
