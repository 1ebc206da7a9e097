/**
 * Random, truncated and oversized frames: the server answers or drops the connection, logs why,
 * releases whatever the broken clients held, and keeps answering well-formed requests correctly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { HostView } from '../../src/server/host.js';
import { decodeRequest, EPROTO, MAX_FRAME, Op, ProtocolError } from '../../src/server/protocol.js';
import { ModelServer } from '../../src/server/server.js';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import { RawClient } from './raw-client.js';

const dir = mkdtempSync(join(tmpdir(), 'tcelab-fuzz-'));
const sock = join(dir, 'model.sock');
const logged: string[] = [];
const server = new ModelServer({ preset: 'powernv9', pageSize: '64k', topology: 'qemu' }, (l) => logged.push(l));
before(() => server.listen(sock));
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** xorshift32: the test's own reproducible bytes. */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A well-formed client: the answers the kernel gives a fresh container and group. */
async function wellFormed(): Promise<void> {
  const c = await RawClient.connect(sock);
  const hello = await c.hello('after-fuzz');
  assert.ok(hello.ret >= 100, `HELLO gives a model pid, got ${hello.ret}`);
  assert.equal(hello.body.readUInt32LE(0), 65536);
  const cont = await c.open('/dev/vfio/vfio');
  assert.equal(cont.errno, 0);
  assert.deepEqual(await c.ioctlValue(cont.ret, V.VFIO_GET_API_VERSION, 0n), { ret: 0, errno: 0, body: Buffer.alloc(0) });
  assert.equal((await c.ioctlValue(cont.ret, V.VFIO_CHECK_EXTENSION, BigInt(V.VFIO_SPAPR_TCE_v2_IOMMU))).ret, 1);
  assert.equal((await c.ioctlValue(cont.ret, V.VFIO_SET_IOMMU, BigInt(V.VFIO_SPAPR_TCE_v2_IOMMU))).errno, 22, 'EINVAL: no group attached yet');
  const group = await c.open('/dev/vfio/0');
  assert.equal(group.errno, 0, 'group 0 is free again: no fuzz client kept it');
  await c.close();
}

test('decoding names the field and the limit', () => {
  assert.throws(() => decodeRequest(Buffer.from([Op.READ, 1, 0])), new ProtocolError('READ: field fd needs 4 bytes at offset 0, the frame has 2'));
  assert.throws(() => decodeRequest(Buffer.from([99])), /unknown op 99 \(expected 1 to 15\)/);
  assert.throws(
    () => decodeRequest(Buffer.from([Op.IOCTL, 3, 0, 0, 0, 0x64, 0x3b, 0, 0, 7])),
    /IOCTL: field arg_kind is 7, expected 0 \(value\), 1 \(bytes\) or 2 \(bytes and user memory\)/,
  );
  assert.throws(() => decodeRequest(Buffer.from([Op.EXIT, 0])), /EXIT: 1 bytes after the last field/);
});

test('random frames are answered (EPROTO with a reason when malformed) and logged', async () => {
  const rnd = prng(0x7ce1ab);
  for (let conn = 0; conn < 20; conn++) {
    const c = await RawClient.connect(sock);
    if (conn % 2) await c.hello(`fuzz${conn}`); // half of them get past HELLO, so ops reach the model
    for (let i = 0; i < 50; i++) {
      const len = Math.floor(rnd() * 40);
      const payload = Buffer.from(Array.from({ length: len }, () => Math.floor(rnd() * 256)));
      if (len && rnd() < 0.7) payload[0] = 1 + Math.floor(rnd() * 15); // mostly known ops
      const a = await c.request(payload);
      if (a.errno === EPROTO) assert.ok(a.body.length > 0, 'an EPROTO answer says why');
    }
    await c.close();
  }
  assert.ok(logged.some((l) => /bad request: /.test(l)));
  await wellFormed();
});

test('truncated and oversized frames: logged, the connection released, the server still serves', async () => {
  const a = await RawClient.connect(sock);
  await a.hello('truncated');
  assert.equal((await a.open('/dev/vfio/1')).errno, 0);
  a.sendRaw(Buffer.from([50, 0, 0, 0, Op.OPEN, 0x2f])); // promises 50 bytes, sends 2, hangs up
  await a.close();

  const b = await RawClient.connect(sock);
  b.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3]));
  await b.closed; // answered with EPROTO, then closed: a stream cannot be resynchronised

  const c = await RawClient.connect(sock);
  c.sendRaw(Buffer.from([3, 0])); // half a length prefix
  await c.close();

  await new Promise((r) => setImmediate(r));
  assert.ok(logged.some((l) => l.includes('closed in the middle of a frame (6 bytes received)')));
  assert.ok(logged.some((l) => l.includes(`frame length 2147483647 is over the limit of ${MAX_FRAME} bytes; closing it`)));
  const probe = await RawClient.connect(sock);
  const view = await probe.inspect<HostView>();
  await probe.close();
  assert.ok(
    view.groups.every((g) => !g.opened && g.owner === 'kernel'),
    JSON.stringify(view.groups),
  );
  assert.ok(view.processes.filter((p) => p.comm === 'truncated').every((p) => p.exited));
  await wellFormed();
});

test('a request sent a byte at a time, and one larger than a read, are answered', async () => {
  const c = await RawClient.connect(sock);
  const hello = Buffer.alloc(4 + 9 + 5);
  hello.writeUInt32LE(9 + 5, 0);
  hello.writeUInt8(Op.HELLO, 4);
  hello.writeUInt32LE(process.pid, 5);
  hello.writeInt32LE(-1, 9);
  hello.write('bytes', 13);
  const answered = new Promise<number>((resolve) => c.sock.once('data', (d: Buffer) => resolve(d.readInt32LE(4))));
  for (const b of hello) {
    c.sendRaw(Buffer.from([b]));
    await new Promise((r) => setTimeout(r, 1)); // each byte a read of its own
  }
  assert.ok((await answered) >= 100, 'HELLO answered with a model pid');

  // MEMORY with 10000 segments: 180 kB, more than one read of the connection.
  const count = 10000;
  const base = 0x1000_0000n;
  const m = Buffer.alloc(1 + 20 + 18 * count);
  m.writeUInt8(Op.MEMORY, 0);
  m.writeBigUInt64LE(base, 1);
  m.writeBigUInt64LE(base + BigInt(count) * 0x10000n, 9);
  m.writeUInt32LE(count, 17);
  for (let i = 0; i < count; i++) {
    m.writeBigUInt64LE(base + BigInt(i) * 0x10000n, 21 + 18 * i);
    m.writeBigUInt64LE(base + BigInt(i + 1) * 0x10000n - 0x1000n, 29 + 18 * i);
  }
  assert.deepEqual(await c.request(m), { ret: 0, errno: 0, body: Buffer.alloc(0) });
  const status = await c.request(Buffer.from([Op.PROC_TEXT, 3]));
  assert.match(status.body.toString(), /^Name:\tbytes$/m);
  await c.close();
});
