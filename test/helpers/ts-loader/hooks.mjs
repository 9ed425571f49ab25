/**
 * Module hooks for TypeScript sources, for worker threads under vitest only (built code never needs
 * them): `./x.js` imports resolve to `./x.ts` when only the source exists, and `.ts` files are
 * stripped of their types one by one with the transform vitest itself uses (oxc, through rolldown);
 * no type checking (tsc does that).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'rolldown/experimental';

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    const fromTs = context.parentURL?.endsWith('.ts') === true;
    if (fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw e;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const file = fileURLToPath(url);
  const out = transformSync(file, await readFile(file, 'utf8'), { sourcemap: false });
  if (out.errors.length > 0) throw new Error(`${file}: ${out.errors[0].message}`);
  return { format: 'module', source: out.code, shortCircuit: true };
}
