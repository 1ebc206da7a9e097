/** Reading the file a command was given. */
import { readFileSync } from 'node:fs';

/** The file's text, or null after telling stderr why it cannot be read (the command exits 2). */
export function readInputFile(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`tcelab: ${file}: ${(e as Error).message}\n`);
    return null;
  }
}
