/** `tcelab view [FILE]` and `tcelab run FILE --view`: serve the machine to a browser. */
import { RecordError } from '../conformance/records.js';
import type { Quirks } from '../kernel/quirks.js';
import { readInputFile } from './input.js';
import type { MachineOptions } from '../machine/machine.js';
import { ScenarioError } from '../scenario/schema.js';
import { EventLogError } from '../scenario/timeline.js';
import { startViewServer } from '../web/server.js';
import { ViewSession } from '../web/session.js';

export interface ViewOptions {
  machine: MachineOptions;
  quirks: Partial<Quirks>;
  host: string;
  port: number;
  /** Run live, one step every delayMs (tcelab run --view); otherwise run to the end first. */
  liveDelayMs: number | null;
  json: boolean;
}

export async function viewCommand(file: string | undefined, o: ViewOptions): Promise<number> {
  let session: ViewSession;
  if (file === undefined) session = ViewSession.idle(o.machine);
  else {
    const text = readInputFile(file);
    if (text === null) return 2;
    try {
      session = ViewSession.load(file, text, o.quirks);
    } catch (e) {
      if (!(e instanceof ScenarioError || e instanceof RecordError || e instanceof EventLogError)) throw e;
      process.stderr.write(`tcelab: ${e.message}\n`);
      return 2;
    }
  }
  if (o.liveDelayMs === null) session.runAll();
  let srv: Awaited<ReturnType<typeof startViewServer>>;
  try {
    srv = await startViewServer(session, { host: o.host, port: o.port });
  } catch (e) {
    process.stderr.write(`tcelab: view: cannot listen on ${o.host}:${o.port}: ${(e as Error).message}\n`);
    return 1;
  }
  const what = file ?? 'the default machine, idle';
  process.stdout.write(o.json ? `${JSON.stringify({ url: srv.url, source: what })}\n` : `tcelab view: ${what} at ${srv.url} (Ctrl-C to stop)\n`);
  if (o.liveDelayMs !== null) void session.runLive(o.liveDelayMs);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await srv.close();
  return 0;
}
