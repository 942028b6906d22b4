/**
 * The import graph between the folders of src/ (the layers of docs/DESIGN.md): which folder
 * imports which, and the groups of folders that import each other in a circle.
 */
import fs from 'node:fs';
import path from 'node:path';

export type Graph = Map<string, Set<string>>;

/** The .ts files below `dir`, at any depth. */
export function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

/** folder -> folders it imports from, read from the relative imports of src/FOLDER/**.ts */
export function folderGraph(srcRoot: string): Graph {
  const g: Graph = new Map();
  for (const file of tsFiles(srcRoot)) {
    const from = path.relative(srcRoot, file).split(path.sep)[0]!;
    if (!g.has(from)) g.set(from, new Set());
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      const to = path.relative(srcRoot, path.resolve(path.dirname(file), m[1]!)).split(path.sep)[0]!;
      if (to !== from && !to.startsWith('..') && !to.endsWith('.js')) g.get(from)!.add(to);
    }
  }
  return g;
}

/** The strongly connected components of more than one folder (Tarjan): each is a cycle. */
export function cycles(g: Graph): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}
