// A child process speaking the bench line protocol: a ready line, then one JSON line per "run",
// and {"peakRssBytes":n} for "quit" (bench/model/child.mjs and bench/c/common.h serve()).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export function lineProcess(cmd, argv, opts = {}) {
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], ...opts });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`${cmd} ${argv.join(' ')}: exited early`);
    return JSON.parse(r.value);
  };
  return {
    ready: next,
    async run() {
      child.stdin.write('run\n');
      return next();
    },
    async quit() {
      child.stdin.write('quit\n');
      const r = await next();
      child.stdin.end();
      return r;
    },
  };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
