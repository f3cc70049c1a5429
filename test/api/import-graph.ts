// Static scan of the repository's TypeScript imports (relative specifiers only): module -> modules it imports, as
// repository-relative .ts paths. Used by the import-graph tests.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/test/api or test/api). */
export const repoRoot = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) d = dirname(d);
  return d;
})();

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

// import/export ... from './x.js'   and   import('./x.js')
const STATIC = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+['"](\.[^'"]+)['"]/g;
const BARE = /(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"`](\.[^'"`]+)['"`]\s*\)/g;

export function importGraph(dirs: readonly string[], root: string = repoRoot): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const d of dirs) {
    for (const file of tsFiles(join(root, d))) {
      const text = readFileSync(file, 'utf8');
      const deps = new Set<string>();
      for (const re of [STATIC, BARE, DYNAMIC]) {
        for (const m of text.matchAll(re)) {
          const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
          deps.add(relative(root, target).split('\\').join('/'));
        }
      }
      graph.set(relative(root, file).split('\\').join('/'), [...deps]);
    }
  }
  return graph;
}

/** Strongly connected components of more than one module (or a module importing itself): each is a cycle. */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.reverse());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}
