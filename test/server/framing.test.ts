/**
 * Frames cut from reads however the bytes were split: in place when whole, carried over when a
 * read ends inside one (also inside its length prefix, and across many reads for a frame larger
 * than a read), and a length over the limit breaks the stream for good.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FrameReader } from '../../src/server/framing.js';
import { MAX_FRAME } from '../../src/server/protocol.js';

function frame(payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(4 + payload.length);
  new DataView(f.buffer).setUint32(0, payload.length, true);
  f.set(payload, 4);
  return f;
}

/** Feeds `stream` in reads of the given sizes through one reused read buffer, as a connection does. */
function feed(stream: Uint8Array, sizes: number[]): { frames: number[][]; reader: FrameReader } {
  const frames: number[][] = [];
  const reader = new FrameReader((bytes, view, start, end) => {
    assert.equal(view.byteLength, bytes.byteLength, 'the view covers the bytes the frame lies in');
    frames.push([...bytes.subarray(start, end)]);
  });
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  let off = 0;
  for (let i = 0; off < stream.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, stream.length - off, buf.length);
    buf.fill(0xee); // what a read leaves behind must not be taken for data
    buf.set(stream.subarray(off, off + n));
    reader.push(buf, view, n);
    off += n;
  }
  return { frames, reader };
}

test('frames come out whole and in order, however the reads split them', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 150 }), { maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
      (payloads, sizes) => {
        const stream = new Uint8Array(payloads.reduce((n, p) => n + 4 + p.length, 0));
        let at = 0;
        for (const p of payloads) {
          stream.set(frame(p), at);
          at += 4 + p.length;
        }
        const { frames, reader } = feed(stream, sizes);
        assert.deepEqual(
          frames,
          payloads.map((p) => [...p]),
        );
        assert.equal(reader.pending, 0);
        assert.equal(reader.broken, null);
      },
    ),
  );
});

test('bytes of an unfinished frame are counted as pending, its length prefix included', () => {
  const { frames, reader } = feed(frame(new Uint8Array(100)).subarray(0, 70), [3, 30]);
  assert.deepEqual(frames, []);
  assert.equal(reader.pending, 70);
});

test('a length over the limit breaks the stream: the frames before it are handed over, none after', () => {
  const bad = new Uint8Array(4);
  new DataView(bad.buffer).setUint32(0, MAX_FRAME + 1, true);
  for (const sizes of [[64], [1], [2, 5]]) {
    const { frames, reader } = feed(new Uint8Array([...frame(new Uint8Array([7])), ...bad, ...frame(new Uint8Array([8]))]), sizes);
    assert.deepEqual(frames, [[7]]);
    assert.equal(reader.broken, `frame length ${MAX_FRAME + 1} is over the limit of ${MAX_FRAME} bytes`);
    assert.equal(reader.pending, 0);
  }
});

test('a frame of the largest length is carried over many reads', () => {
  const payload = new Uint8Array(MAX_FRAME).map((_, i) => i * 7);
  const { frames } = feed(new Uint8Array([...frame(payload), ...frame(new Uint8Array([1, 2]))]), [64]);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0], [...payload]);
  assert.deepEqual(frames[1], [1, 2]);
});
