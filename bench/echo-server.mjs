// The server side of the B6 socket floor: a node process that answers every chunk it receives
// with the same bytes, over a UNIX socket, as `tcelab serve` answers frames (with no model work),
// and polls after each answer for the window `tcelab serve` would (src/server/poll-window.ts).
//   node bench/echo-server.mjs SOCKET_PATH
import { createServer } from 'node:net';
import { PollWindow } from '../dist/src/server/poll-window.js';

const poll = new PollWindow();
let answeredAt = 0;
let pollUntil = 0;
let polling = false;

function turn() {
  if (!pollUntil) polling = false;
  else if (performance.now() < pollUntil) setImmediate(turn);
  else {
    pollUntil = 0;
    polling = false;
    poll.ranOut();
  }
}

createServer((c) =>
  c.on('data', (d) => {
    if (polling) poll.caught();
    else poll.slept((performance.now() - answeredAt) * 1000);
    pollUntil = 0;
    c.write(d);
    answeredAt = performance.now();
    if (!poll.us) return;
    pollUntil = answeredAt + poll.us / 1000;
    if (!polling) {
      polling = true;
      setImmediate(turn);
    }
  }),
).listen(process.argv[2]);
