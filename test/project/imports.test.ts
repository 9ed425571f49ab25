import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';

/**
 * The import graph of the shipped code: src/, harness/, fixtures/, scripts/ and bin/. An edge is any static
 * `import … from`, `export … from`, side-effect `import '…'` or dynamic `import('…')` with a relative
 * specifier; TypeScript's own pre-processor finds them, so comments and strings do not fool it.
 */
const ROOTS = ['src', 'harness', 'fixtures', 'scripts', 'bin'];

/**
 * guide.md "The pipeline is the layout": imports in src/ only point down this list (a folder imports
 * only folders before it). Where the code says more than the guide's list: `tar/` is "used by
 * everything above" it, the OCI layout reader included, so it sits below `oci/`; `net/` is the HTTP
 * layer the registry client (oci/) stands on; and `image-source/` (the guide's `source/`: the old
 * image an apply reads from) is what `delta/` applies against, so it sits below `delta/`.
 */
const SRC_LAYERS = ['util', 'tar', 'net', 'oci', 'tardiff', 'image-source', 'delta', 'composefs', 'cli'];

/**
 * Inside src/composefs/, composefs-rs's crate split: the format core (EROFS V1/V2, fs-verity, the
 * tree model), dumpfiles (text ⇄ tree) and OCI glue (OCI image → tree → image ID). The format core
 * imports neither of the others; dumpfiles and OCI glue import only the format core.
 */
const COMPOSEFS_PARTS: Record<string, readonly string[]> = {
  format: ['format'],
  dumpfile: ['format', 'dumpfile'],
  oci: ['format', 'oci'],
};

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) out.push(...tsFiles(p));
    else if (d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative file name → the relative files it imports (NodeNext: `./x.js` names `./x.ts`). */
function importGraph(root: string, dirs: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const dir of dirs) {
    for (const file of tsFiles(path.join(root, dir))) {
      const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      const targets = info.importedFiles
        .map((f) => f.fileName)
        .filter((s) => s.startsWith('.'))
        .map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts'))
        .filter((p) => p.endsWith('.ts'))
        .map((p) => path.relative(root, p));
      graph.set(path.relative(root, file), [...new Set(targets)].sort());
    }
  }
  return graph;
}

/**
 * Every strongly connected component with a circle in it, each as one concrete circle through its
 * first node (Tarjan's algorithm, then a breadth-first walk back to that node).
 */
function importCircles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  let next = 0;
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
    const scc = new Set<string>();
    for (;;) {
      const w = stack.pop()!;
      onStack.delete(w);
      scc.add(w);
      if (w === v) break;
    }
    if (scc.size > 1 || (graph.get(v) ?? []).includes(v)) circles.push(circleWithin(graph, scc, v));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return circles;
}

/** One concrete circle through `start` inside its component (breadth-first back to `start`). */
function circleWithin(graph: Map<string, string[]>, scc: Set<string>, start: string): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!scc.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(from.get(path[0]!)!);
        return [...path, start];
      }
      if (!from.has(w)) {
        from.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

function srcLayer(file: string): number {
  const parts = file.split(path.sep);
  return parts[0] === 'src' && parts.length > 2 ? SRC_LAYERS.indexOf(parts[1]!) : -1;
}

describe('import graph', () => {
  const graph = importGraph(REPO_ROOT, ROOTS);

  it('reads the whole tree', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get(path.join('src', 'cli', 'apply.ts'))).toBeDefined();
  });

  it('has no circle', () => {
    const circles = importCircles(graph).map((c) => c.join(' → '));
    // one circle per tangle is named; breaking it may reveal the next one in the same tangle
    expect(circles).toEqual([]);
  });

  it('finds a circle when there is one (the check can fail)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(importCircles(g)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });

  it('src/ never imports harness/, fixtures/ or scripts/', () => {
    const bad = [...graph]
      .filter(([f]) => f.startsWith(`src${path.sep}`))
      .flatMap(([f, to]) => to.filter((t) => !t.startsWith(`src${path.sep}`)).map((t) => `${f} → ${t}`));
    expect(bad).toEqual([]);
  });

  it('src/ imports only point down the pipeline (guide.md)', () => {
    for (const f of graph.keys()) {
      const dir = f.split(path.sep);
      if (dir[0] === 'src' && dir.length > 2) expect(SRC_LAYERS, f).toContain(dir[1]);
    }
    const upward = [...graph].flatMap(([f, to]) =>
      to.filter((t) => srcLayer(t) > srcLayer(f) && srcLayer(f) >= 0).map((t) => `${f} → ${t}`),
    );
    expect(upward).toEqual([]);
  });

  it('src/composefs/ is the format core, dumpfiles and OCI glue, each importing only what it may', () => {
    const cfs = ['src', 'composefs'];
    const part = (f: string): string | undefined => {
      const p = f.split(path.sep);
      return p[0] === cfs[0] && p[1] === cfs[1] ? p[2] : undefined;
    };
    const loose = [...graph.keys()].filter((f) => part(f) !== undefined && !(part(f)! in COMPOSEFS_PARTS));
    expect(loose).toEqual([]);
    const crossing = [...graph].flatMap(([f, to]) => {
      const from = part(f);
      if (from === undefined) return [];
      return to
        .filter((t) => part(t) !== undefined && !COMPOSEFS_PARTS[from]!.includes(part(t)!))
        .map((t) => `${f} → ${t}`);
    });
    expect(crossing).toEqual([]);
  });
});
