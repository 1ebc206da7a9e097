/**
 * The ioctl event: built (with the request's name) for a listener, only counted without one; the
 * count is the same either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TcelabEvent } from '../../src/base/events.js';
import { VFIO_CHECK_EXTENSION, VFIO_GET_API_VERSION } from '../../src/kernel/include/uapi/linux/vfio.js';
import { Machine } from '../../src/machine/machine.js';

test('ioctls are counted without a listener and reported to one, with the same count', () => {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k' });
  const p = m.sys.spawn('t');
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const before = m.log.counts.get('vfio.ioctl') ?? 0;
  for (let i = 0; i < 3; i++) m.sys.ioctl(p.pid, c, VFIO_GET_API_VERSION, 0n);
  assert.equal(m.log.counts.get('vfio.ioctl'), before + 3);
  const seen: TcelabEvent[] = [];
  const off = m.log.subscribe((e) => seen.push(e));
  m.sys.ioctl(p.pid, c, VFIO_CHECK_EXTENSION, 7n);
  m.sys.ioctl(p.pid, 99, VFIO_GET_API_VERSION, 0n);
  off();
  m.sys.ioctl(p.pid, c, VFIO_GET_API_VERSION, 0n);
  assert.equal(m.log.counts.get('vfio.ioctl'), before + 5);
  const ioctls = seen.filter((e) => e.kind === 'ioctl');
  assert.equal(ioctls.length, 1);
  assert.deepEqual(
    { ...ioctls[0], seq: 0 },
    { seq: 0, layer: 'vfio', kind: 'ioctl', pid: p.pid, file: '/dev/vfio/vfio', request: 'VFIO_CHECK_EXTENSION', ret: 1, errno: 0 },
  );
});
