/** `tcelab serve --socket PATH`: keep one modelled machine and serve it to VFIO programs. */
import type { MachineOptions } from '../machine/machine.js';
import { ModelServer } from '../server/server.js';

export function machineFor(opts: Partial<MachineOptions>): MachineOptions {
  return { preset: 'powernv9', pageSize: '64k', topology: 'qemu', ...opts };
}

/** One line that tells a user what the programs will find: the machine and its groups. */
export function describe(server: ModelServer): string {
  const v = server.host.view();
  const groups = v.groups.map((g) => `${g.id} (${g.devices.join(', ')})`).join(', ');
  return `${v.machine}, ${v.pageSize / 1024}K pages, ${v.mmu} MMU; IOMMU groups ${groups}`;
}

/** Serves until SIGINT or SIGTERM; resolves to 0 then, or 1 when the socket cannot be served. */
export async function serve(path: string, opts: Partial<MachineOptions>): Promise<number> {
  const server = new ModelServer(machineFor(opts));
  try {
    await server.listen(path);
  } catch (e) {
    process.stderr.write(`tcelab serve: ${(e as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`tcelab serve: ${describe(server)}; listening on ${path}\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write(`tcelab serve: ${signal}: stopping\n`);
  await server.close();
  return 0;
}
