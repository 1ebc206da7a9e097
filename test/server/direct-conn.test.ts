/**
 * The direct connection: reads land in its own buffer, an answer the socket cannot take at once
 * waits in the stream (later ones behind it) and everything arrives whole and in order once the
 * peer reads; a peer that hung up costs nothing; and the server's connection count forgets the
 * accepted socket whose handle moved.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DirectConn, READ_BYTES } from '../../src/server/direct-conn.js';

const dir = mkdtempSync(join(tmpdir(), 'tcelab-direct-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A server of direct connections and one client connected to it. */
async function pair(
  onBytes: (conn: DirectConn, bytes: Uint8Array, n: number) => void,
  direct = true,
): Promise<{ server: Server; conn: DirectConn; client: Socket }> {
  const path = join(dir, `${n++}.sock`);
  let accepted!: (c: DirectConn) => void;
  const connP = new Promise<DirectConn>((r) => {
    accepted = r;
  });
  const server = createServer({ pauseOnConnect: true }, (s) => {
    const onRead = (bytes: Uint8Array, _view: DataView, len: number) => onBytes(conn, bytes, len);
    const conn: DirectConn = direct ? new DirectConn(s, onRead) : new DirectConn(s, onRead, null);
    accepted(conn);
  });
  await new Promise<void>((r) => server.listen(path, r));
  const client = createConnection(path);
  await new Promise((r) => client.once('connect', r));
  return { server, conn: await connP, client };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

test('reads come in the connection buffer; the server stops counting the accepted socket', async () => {
  const seen: number[][] = [];
  const { server, conn, client } = await pair((c, bytes, len) => {
    seen.push([...bytes.subarray(0, len)]);
    assert.equal(bytes.length, READ_BYTES);
    c.send(bytes, len);
  });
  client.write(Buffer.from([1, 2, 3]));
  const echoed = await new Promise<Buffer>((r) => client.once('data', r));
  assert.deepEqual([...echoed], [1, 2, 3]);
  assert.deepEqual(seen, [[1, 2, 3]]);
  const count = await new Promise<number>((r) => server.getConnections((_e, k) => r(k)));
  assert.equal(count, 0);
  client.destroy();
  await new Promise((r) => conn.socket.once('close', r));
  await closeServer(server);
});

test('answers the socket cannot take wait in order behind each other until the peer reads', async () => {
  const { server, conn, client } = await pair(() => {});
  client.pause();
  const chunk = new Uint8Array(32 * 1024);
  const count = 200; // 6.4 MB: far more than the socket buffers hold
  let queuedAt = -1;
  for (let i = 0; i < count; i++) {
    chunk.fill(i);
    conn.send(chunk, chunk.length);
    if (queuedAt < 0 && conn.socket.writableLength > 0) queuedAt = i;
  }
  assert.ok(queuedAt > 0, 'the first answers went out at once, later ones waited in the stream');
  chunk.fill(0xff); // the sender reuses its buffer: what waited must be a copy
  const got: Buffer[] = [];
  let total = 0;
  client.on('data', (d: Buffer) => {
    got.push(d);
    total += d.length;
  });
  client.resume();
  while (total < count * chunk.length) await new Promise((r) => setTimeout(r, 5));
  const all = Buffer.concat(got);
  assert.equal(all.length, count * chunk.length);
  for (let i = 0; i < count; i++) assert.equal(all[i * chunk.length + 1000], i, `chunk ${i} in its place`);
  client.destroy();
  await new Promise((r) => conn.socket.once('close', r));
  await closeServer(server);
});

test('sending to a peer that hung up does not throw', async () => {
  const { server, conn, client } = await pair(() => {});
  client.destroy(); // closes the descriptor at once: the next write(2) meets EPIPE
  conn.send(new Uint8Array(8), 8);
  await new Promise((r) => (conn.socket.destroyed ? r(null) : conn.socket.once('close', r)));
  conn.send(new Uint8Array(8), 8);
  await closeServer(server);
});

test('without the handle a direct connection needs, the stream carries the same reads and answers', async () => {
  const seen: number[] = [];
  const { server, conn, client } = await pair((c, bytes, len) => {
    assert.equal(bytes.length, READ_BYTES, 'reads still come in the connection buffer');
    seen.push(len);
    c.send(bytes, len);
  }, false);
  const big = Buffer.alloc(3 * READ_BYTES + 5, 0);
  for (let i = 0; i < big.length; i++) big[i] = i & 0xff;
  client.write(big);
  const got: Buffer[] = [];
  let total = 0;
  client.on('data', (d: Buffer) => {
    got.push(d);
    total += d.length;
  });
  while (total < big.length) await new Promise((r) => setTimeout(r, 5));
  assert.ok(Buffer.concat(got).equals(big), 'every byte back, in order');
  assert.ok(Math.max(...seen) <= READ_BYTES);
  assert.equal(
    seen.reduce((a, b) => a + b, 0),
    big.length,
  );
  client.destroy();
  await new Promise((r) => conn.socket.once('close', r));
  await closeServer(server);
});
