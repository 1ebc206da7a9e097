// The server side of the B6 socket floor: a node process that answers every chunk it receives
// with the same bytes, over a UNIX socket, as `tcelab serve` answers frames (with no model work),
// and like it keeps polling for 50 us after each answer before it sleeps.
//   node bench/echo-server.mjs SOCKET_PATH
import { createServer } from 'node:net';

let until = 0;
let polling = false;
const turn = () => {
  if (performance.now() < until) setImmediate(turn);
  else polling = false;
};
createServer((c) =>
  c.on('data', (d) => {
    c.write(d);
    until = performance.now() + 0.05;
    if (!polling) {
      polling = true;
      setImmediate(turn);
    }
  }),
).listen(process.argv[2]);
