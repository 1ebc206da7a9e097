/**
 * The server's poll window: closed until requests keep coming soon after answers, doubled by each
 * request a poll catches, halved by each poll that runs out; probes that never catch (a program
 * sharing the server's CPU) come ever more rarely.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_US, MIN_US, PollWindow, PROBE_AFTER, PROBE_AFTER_MAX } from '../../src/server/poll-window.js';

/** Quick requests while the server sleeps until the window opens; how many it took. */
function sleepsToOpen(w: PollWindow): number {
  let n = 0;
  while (!w.us) {
    w.slept(1);
    n++;
  }
  return n;
}

test('opens after PROBE_AFTER quick requests in a row, grows while polls catch them', () => {
  const w = new PollWindow();
  for (let i = 0; i < PROBE_AFTER - 1; i++) w.slept(5);
  assert.equal(w.us, 0);
  w.slept(MAX_US + 1); // a slow one starts the count again
  for (let i = 0; i < PROBE_AFTER - 1; i++) w.slept(5);
  assert.equal(w.us, 0);
  w.slept(5);
  assert.equal(w.us, MIN_US);
  w.caught();
  assert.equal(w.us, 2 * MIN_US);
  w.caught();
  assert.equal(w.us, MAX_US);
});

test('polls that run out close it; after a window that caught, the next probe comes as soon as at first', () => {
  const w = new PollWindow();
  sleepsToOpen(w);
  for (let i = 0; i < 3; i++) w.caught();
  assert.equal(w.us, MAX_US);
  w.ranOut();
  assert.equal(w.us, MAX_US / 2);
  w.ranOut();
  assert.equal(w.us, 0);
  assert.equal(sleepsToOpen(w), PROBE_AFTER);
});

test('a shared CPU: probes that run out come ever more rarely, and one that catches brings them back', () => {
  const w = new PollWindow();
  const gaps: number[] = [];
  for (let i = 0; i < 7; i++) {
    gaps.push(sleepsToOpen(w));
    w.ranOut(); // each request comes right after the probe ran out
  }
  assert.deepEqual(gaps, [PROBE_AFTER, 2 * PROBE_AFTER, 4 * PROBE_AFTER, 8 * PROBE_AFTER, PROBE_AFTER_MAX, PROBE_AFTER_MAX, PROBE_AFTER_MAX]);
  sleepsToOpen(w);
  w.caught();
  w.ranOut();
  w.ranOut();
  assert.equal(w.us, 0);
  assert.equal(sleepsToOpen(w), PROBE_AFTER);
});
