// Reading JSON files with errors that name the file and say what is wrong (unreadable vs not JSON).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { KvlensInputError } from './errors.js';

export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new KvlensInputError(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, path);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new KvlensInputError(`not valid JSON (${(e as Error).message})`, path);
  }
}

/** An optional JSON object file (e.g. processor_config.json): undefined when absent. */
export async function readJsonFileIfExists(path: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) return undefined;
  return (await readJsonFile(path)) as Record<string, unknown>;
}
