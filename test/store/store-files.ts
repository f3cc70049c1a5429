// Every file of a store (relative path -> bytes), for byte-identity comparisons.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function storeFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(join(root, r)).isDirectory()) walk(r);
      else out.set(r, readFileSync(join(root, r)));
    }
  };
  walk('');
  return out;
}
