/**
 * The server's poll window: closed until requests keep coming soon after answers, doubled by each
 * request a poll catches, halved by each poll that runs out (a program sharing the server's CPU).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_US, PollWindow } from '../../src/server/poll-window.js';

test('opens after eight quick requests in a row, grows while polls catch them', () => {
  const w = new PollWindow();
  for (let i = 0; i < 7; i++) w.slept(5);
  assert.equal(w.us, 0);
  w.slept(MAX_US + 1); // a slow one starts the count again
  for (let i = 0; i < 7; i++) w.slept(5);
  assert.equal(w.us, 0);
  w.slept(5);
  assert.equal(w.us, 10);
  w.caught();
  w.caught();
  assert.equal(w.us, 40);
  w.caught();
  assert.equal(w.us, MAX_US);
});

test('polls that run out close it, and it stays closed until eight quick sleeps again', () => {
  const w = new PollWindow();
  for (let i = 0; i < 8; i++) w.slept(1);
  for (let i = 0; i < 3; i++) w.caught();
  assert.equal(w.us, MAX_US);
  w.ranOut();
  assert.equal(w.us, 25);
  w.ranOut();
  assert.equal(w.us, 12.5);
  w.ranOut();
  assert.equal(w.us, 0);
  // A shared CPU: each request comes right after the poll ran out; the window opens one time in eight.
  let opened = 0;
  for (let i = 0; i < 80; i++) {
    w.slept(1);
    if (w.us) {
      opened++;
      w.ranOut();
    }
  }
  assert.equal(opened, 10);
});
