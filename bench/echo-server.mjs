// The server side of the B6 socket floor: a node process that answers every chunk it receives
// with the same bytes, over a UNIX socket, as `tcelab serve` answers frames (with no model work).
//   node bench/echo-server.mjs SOCKET_PATH
import { createServer } from 'node:net';

createServer((c) => c.on('data', (d) => c.write(d))).listen(process.argv[2]);
