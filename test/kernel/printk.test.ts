/**
 * printk's ring: how many records the 128 KiB text ring and its 4096 descriptors keep, and what
 * a /dev/kmsg reader sees when records it has not read are pushed out (EPIPE, then the oldest
 * record left), with the kernel's lseek rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLog } from '../../src/base/events.js';
import { errno } from '../../src/base/errno.js';
import { KernelLog, LOG_BUF_SHIFT } from '../../src/kernel/printk.js';
import { Machine } from '../../src/machine/machine.js';

const RING = 2 ** LOG_BUF_SHIFT;

test('short records: the 4096 descriptors are the limit', () => {
  const k = new KernelLog(new EventLog());
  for (let i = 0; i < 5000; i++) k.printk(`line ${i}`);
  assert.equal(k.nextSeq, 5000);
  assert.equal(k.firstSeq, 5000 - 4096);
  assert.equal(k.lines.length, 4096);
  assert.equal(k.record(k.firstSeq), `line ${5000 - 4096}`);
  assert.equal(k.record(k.firstSeq - 1), undefined);
  assert.equal(k.record(5000), undefined);
  assert.deepEqual(k.since(4998), ['line 4998', 'line 4999']);
  assert.deepEqual(k.since(0), k.lines, 'a position before the ring gives what is left');
});

test('long records: the text ring is the limit, blocks never wrap', () => {
  const k = new KernelLog(new EventLog());
  const text = (i: number) => `${String(i).padStart(6, '0')}${'x'.repeat(994)}`; // 1000 bytes: 1008-byte blocks
  for (let i = 0; i < 1000; i++) k.printk(text(i));
  // 130 blocks of 1008 bytes fit in one pass of the ring (32 bytes left unused at its end); the
  // newest block overwrites the oldest of the previous pass, so 130 records are readable.
  assert.equal(Math.floor(RING / 1008), 130);
  assert.equal(k.lines.length, 130);
  assert.equal(k.record(k.firstSeq), text(1000 - 130));
});

test('multi-byte text takes its UTF-8 length', () => {
  const k = new KernelLog(new EventLog());
  const text = 'é'.repeat(500); // 1000 bytes, 500 UTF-16 units
  for (let i = 0; i < 1000; i++) k.printk(text);
  assert.equal(k.lines.length, 130);
});

test('/dev/kmsg: open at the oldest record, EPIPE after an overrun, lseek as devkmsg_llseek', () => {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k' });
  const pid = m.sys.spawn('reader').pid;
  const fd = m.sys.open(pid, '/dev/kmsg').ret;
  assert.ok(fd >= 0);
  const boot = m.klog.lines;
  assert.ok(boot.length > 0);
  assert.equal(m.sys.read(pid, fd).text, `6,0,0,-;${boot[0]}\n`, 'a new reader starts at the oldest record');

  for (let i = 0; i < 5000; i++) m.klog.printk(`filler ${i}`);
  assert.deepEqual(m.sys.read(pid, fd), { ret: -1, errno: errno.EPIPE });
  const first = m.klog.firstSeq;
  assert.equal(m.sys.read(pid, fd).text, `6,${first},0,-;${m.klog.record(first)}\n`);

  assert.deepEqual(m.sys.lseek(pid, fd, 0n, 2), { ret: 0, errno: 0 }); // SEEK_END
  assert.equal(m.sys.read(pid, fd).errno, errno.EAGAIN);
  m.klog.printk('after the end');
  assert.equal(m.sys.read(pid, fd).text, `6,${m.klog.nextSeq - 1},0,-;after the end\n`);

  assert.equal(m.sys.lseek(pid, fd, 0n, 0).ret, 0); // SEEK_SET: the oldest record left
  assert.equal(m.sys.read(pid, fd).text, `6,${m.klog.firstSeq},0,-;${m.klog.record(m.klog.firstSeq)}\n`);
  assert.equal(m.sys.lseek(pid, fd, 0n, 3).ret, 0); // SEEK_DATA: record 0, long gone
  assert.equal(m.sys.read(pid, fd).errno, errno.EPIPE);

  assert.deepEqual(m.sys.lseek(pid, fd, 1n, 2), { ret: -1, errno: errno.ESPIPE });
  assert.deepEqual(m.sys.lseek(pid, fd, 0n, 1), { ret: -1, errno: errno.EINVAL }); // SEEK_CUR
  const status = m.sys.open(pid, '/proc/self/status').ret;
  assert.deepEqual(m.sys.lseek(pid, status, 0n, 0), { ret: -1, errno: errno.ESPIPE });
});
