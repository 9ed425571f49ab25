/**
 * The WebAssembly core the package carries (native/core/odh-core.wasm) is what its C sources build
 * to: clang rebuilds it here and the bytes must be the committed ones. The committed module was built
 * with the clang named below (Debian bookworm's); another clang version produces other bytes, so then
 * the rebuilt module is only checked to load and export the same functions.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';
import { hasTool } from '../helpers/tools.js';

const BUILT_WITH = /^Debian clang version 14\.0\.6\b/;
const CORE = path.join(REPO_ROOT, 'native', 'core');
const work = mkdtempSync(path.join(tmpdir(), 'odh-core-build-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const exportsOf = (bytes: Buffer): string[] =>
  WebAssembly.Module.exports(new WebAssembly.Module(bytes))
    .map((e) => `${e.kind} ${e.name}`)
    .sort();

describe('the WebAssembly core', () => {
  const tools = hasTool('clang', 'clang') && hasTool('wasm-ld', 'lld');

  it.skipIf(!tools)('rebuilds from native/core/*.c to the committed module', async () => {
    const out = path.join(work, 'odh-core.wasm');
    await execa('sh', [path.join(CORE, 'build.sh'), out]);
    const committed = readFileSync(path.join(CORE, 'odh-core.wasm'));
    const rebuilt = readFileSync(out);
    const version = (await execa('clang', ['--version'])).stdout;
    if (BUILT_WITH.test(version)) {
      expect(rebuilt.equals(committed), 'rebuilt module differs: run `npm run core` and commit').toBe(true);
    } else {
      process.stderr.write(
        `\n*** core: ${version.split('\n')[0]} is not the committing clang; exports compared only ***\n`,
      );
      expect(exportsOf(rebuilt)).toEqual(exportsOf(committed));
    }
  });
});
