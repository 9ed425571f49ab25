/**
 * The compiled core under AddressSanitizer and UndefinedBehaviorSanitizer: native/core built natively
 * (gcc, tools/core-cli.c) runs every dumpfile of C composefs's test assets and seeded mutations of
 * them (truncations, byte flips, spliced lines, huge numbers, escapes), and each result must equal
 * the WebAssembly build's (what odh runs): the same image bytes, or the same error (code, message,
 * tree path, line). The two builds differ in word size (wasm32 has a 32-bit size_t), so an overflow
 * check that holds in only one shows here. Any sanitizer report fails the test.
 *
 * This checks the core against itself under another compiler and word size; the images themselves
 * are graded by C mkcomposefs in erofs-writer-c-assets and cli-composefs-c-agreement.
 */
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Core } from '../../src/composefs/format/core.js';
import { OdhError } from '../../src/util/errors.js';
import { REPO_ROOT, vectorPath } from '../helpers/shared.js';
import { hasTool } from '../helpers/tools.js';

const CORE = path.join(REPO_ROOT, 'native', 'core');
const work = mkdtempSync(path.join(tmpdir(), 'odh-core-native-'));
const driver = path.join(work, 'core-cli');
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Options {
  strict: boolean;
  digestBytes: 32 | 64;
  minVersion?: number;
  maxVersion?: number;
}

/** Seeded xorshift32: the same mutations on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const NASTY = [
  '18446744073709551615',
  '18446744073709551616',
  '-1',
  '9999999999999999999999',
  '\\x00',
  '\\xff',
  '\\',
  '=',
  '-',
  '/',
  '//',
  '/.',
  '/..',
  '@120000',
  '0.4294967296',
  ' ',
  '\t',
  '\0',
  'a'.repeat(300),
];

/** One mutation of a dumpfile. */
function mutate(text: Buffer, r: () => number): Buffer {
  const pick = (n: number): number => Math.floor(r() * n);
  const lines = text.toString('latin1').split('\n');
  const k = pick(lines.length);
  switch (pick(6)) {
    case 0:
      return text.subarray(0, pick(text.length + 1));
    case 1: {
      const b = Buffer.from(text);
      for (let i = 0; i < 1 + pick(4); i++) if (b.length > 0) b[pick(b.length)] = pick(256);
      return b;
    }
    case 2: {
      const fields = (lines[k] ?? '').split(' ');
      fields[pick(fields.length)] = NASTY[pick(NASTY.length)]!;
      lines[k] = fields.join(' ');
      break;
    }
    case 3:
      lines.splice(pick(lines.length), 0, lines[k] ?? '');
      break;
    case 4:
      lines.splice(k, 1);
      break;
    default: {
      const fields = (lines[k] ?? '').split(' ');
      fields.splice(pick(fields.length + 1), 0, NASTY[pick(NASTY.length)]!);
      lines[k] = fields.join(' ');
    }
  }
  return Buffer.from(lines.join('\n'), 'latin1');
}

/** The result of the WebAssembly core, as text comparable with the native driver's. */
function viaWasm(input: Buffer, o: Options): { image?: Buffer; error?: string } {
  const core = new Core();
  try {
    const tree = core.parseBytes(input, { strict: o.strict, digestBytes: o.digestBytes });
    const chunks: Buffer[] = [];
    core.writeV1(tree, { minVersion: o.minVersion, maxVersion: o.maxVersion }, (c) =>
      chunks.push(Buffer.from(c)),
    );
    return { image: Buffer.concat(chunks) };
  } catch (e) {
    if (!(e instanceof OdhError)) throw e;
    return { error: `${e.code}: ${e.message}` };
  }
}

/** The native driver's result; a sanitizer report or a crash fails. */
async function viaNative(
  input: Buffer,
  o: Options,
  name: string,
): Promise<{ image?: Buffer; error?: string }> {
  const dump = path.join(work, `${name}.dump`);
  const out = path.join(work, `${name}.img`);
  writeFileSync(dump, input);
  const args = [...(o.strict ? ['--strict'] : []), '--digest-bytes', String(o.digestBytes)];
  if (o.minVersion !== undefined) args.push('--min-version', String(o.minVersion));
  if (o.maxVersion !== undefined) args.push('--max-version', String(o.maxVersion));
  const r = await execa(driver, [...args, dump, out], {
    reject: false,
    env: { ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' },
  });
  expect(r.stderr, `${name}: sanitizer report`).not.toMatch(/Sanitizer|runtime error/);
  if (r.exitCode === 0) return { image: readFileSync(out) };
  expect(r.exitCode, `${name}: ${r.stderr}`).toBe(1);
  // `CODE: message (path P) (line N)` → the OdhError message the host builds from the same facts.
  const m = /^([A-Z]+): (.*?)(?: \(path (.*?)\))?(?: \(line (\d+)\))?$/s.exec(r.stderr.trimEnd());
  expect(m, `${name}: ${r.stderr}`).not.toBeNull();
  const [, code, message, p, line] = m!;
  const err = new OdhError(code as 'FORMAT', message!, {
    ...(p !== undefined && { path: p }),
    ...(line !== undefined && { line: Number(line) }),
  });
  return { error: `${code}: ${err.message}` };
}

describe('the compiled core, native under sanitizers against WebAssembly', () => {
  const tools = hasTool('gcc', 'gcc');
  const dir = vectorPath('composefs-c');
  const inputs: { name: string; bytes: Buffer }[] = [];

  beforeAll(async () => {
    if (!tools) return;
    const sources = readdirSync(CORE).filter(
      (f) => f.endsWith('.c') && f !== 'core-wasm.c' && f !== 'core-exports.c',
    );
    await execa('gcc', [
      '-std=c11',
      '-O1',
      '-g',
      '-fsanitize=address,undefined',
      '-fno-sanitize-recover=all',
      '-I',
      CORE,
      ...sources.map((f) => path.join(CORE, f)),
      path.join(CORE, 'tools', 'core-cli.c'),
      '-o',
      driver,
    ]);
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith('.dump')) inputs.push({ name: f, bytes: readFileSync(path.join(dir, f)) });
      else if (f.endsWith('.dump.gz') && !f.startsWith('cs9')) {
        inputs.push({ name: f, bytes: gunzipSync(readFileSync(path.join(dir, f))) });
      }
    }
  }, 120_000);

  it.skipIf(!tools)(
    'gives the same image or the same error on every C test asset, both rule sets',
    async () => {
      expect(inputs.length).toBeGreaterThan(20);
      let images = 0;
      for (const { name, bytes } of inputs) {
        for (const strict of [false, true]) {
          const o: Options = { strict, digestBytes: 32 };
          const [w, n] = [viaWasm(bytes, o), await viaNative(bytes, o, 'asset')];
          expect(n, `${name} strict=${strict}`).toEqual(w);
          if (w.image) images++;
        }
      }
      expect(images).toBeGreaterThan(20);
    },
    300_000,
  );

  it.skipIf(!tools)(
    'gives the same result on 400 seeded mutations of them',
    async () => {
      const r = rng(0x0dd5eed);
      const small = inputs.filter((i) => i.bytes.length < 200_000);
      let errors = 0;
      for (let k = 0; k < 400; k++) {
        const base = small[Math.floor(r() * small.length)]!;
        const bytes = mutate(base.bytes, r);
        const o: Options = {
          strict: r() < 0.3,
          digestBytes: r() < 0.2 ? 64 : 32,
          ...(r() < 0.3 && { minVersion: Math.floor(r() * 2), maxVersion: 1 }),
        };
        const [w, n] = [viaWasm(bytes, o), await viaNative(bytes, o, 'mut')];
        expect(n, `mutation ${k} of ${base.name} (${JSON.stringify(o)})`).toEqual(w);
        if (w.error) errors++;
      }
      // Both outcomes occur: the mutations reach past the first parse error.
      expect(errors).toBeGreaterThan(50);
      expect(errors).toBeLessThan(390);
    },
    600_000,
  );
});
