// The server side of the B6 socket floor: a node process that answers every read with the same
// bytes over a UNIX socket, through the transport `tcelab serve` answers frames with (reads into
// one kept buffer, one write(2) per answer: src/server/direct-conn.ts) but with no decoding and no
// model, and polls after each answer as `tcelab serve` does (src/server/poll-window.ts).
//   node bench/echo-server.mjs SOCKET_PATH
import { createServer } from 'node:net';
import { DirectConn } from '../dist/src/server/direct-conn.js';
import { AnswerPoller } from '../dist/src/server/poll-window.js';

const poll = new AnswerPoller();
createServer({ pauseOnConnect: true }, (accepted) => {
  const conn = new DirectConn(accepted, (bytes, _view, n) => {
    poll.arrived();
    conn.send(bytes, n);
    poll.answered();
  });
  conn.socket.on('error', () => {});
}).listen(process.argv[2]);
