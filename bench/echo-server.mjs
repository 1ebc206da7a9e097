// The server side of the B6 socket floor: a node process that answers every chunk it receives
// with the same bytes, over a UNIX socket, as `tcelab serve` answers frames (with no model work),
// and polls after each answer as `tcelab serve` does (src/server/poll-window.ts).
//   node bench/echo-server.mjs SOCKET_PATH
import { createServer } from 'node:net';
import { AnswerPoller } from '../dist/src/server/poll-window.js';

const poll = new AnswerPoller();
createServer((c) =>
  c.on('data', (d) => {
    poll.arrived();
    c.write(d);
    poll.answered();
  }),
).listen(process.argv[2]);
