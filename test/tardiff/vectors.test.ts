import { createReadStream, readFileSync, existsSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import { applyTarDiff } from '../../src/tardiff/apply.js';
import { DirectorySource } from '../../src/image-source/directory.js';
import { isOdhError } from '../../src/util/errors.js';
import { vectorPath } from '../helpers/shared.js';

/** Golden vectors from test/vectors/tardiff (made with the zstd 1.5.4 CLI, checked upstream-style). */
interface Vector {
  name: string;
  note: string;
  expect: 'output' | 'error';
  error_hint?: string;
}

const index = JSON.parse(readFileSync(vectorPath('tardiff', 'index.json'), 'utf8')) as Vector[];

async function applyVector(name: string): Promise<Buffer> {
  const dir = vectorPath('tardiff', name);
  const chunks: Buffer[] = [];
  // A source dir that does not exist means "no source needed"; opening anything then fails NOT_FOUND.
  const source = new DirectorySource(`${dir}/source`);
  await applyTarDiff(
    createReadStream(`${dir}/delta.tardiff`),
    source,
    async (c) => {
      chunks.push(Buffer.from(c));
    },
    { where: name },
  );
  return Buffer.concat(chunks);
}

describe('tar-diff golden vectors', () => {
  it('index lists 28 vectors, each with its folder', () => {
    expect(index).toHaveLength(28);
    for (const v of index) expect(existsSync(vectorPath('tardiff', v.name, 'delta.tardiff'))).toBe(true);
  });

  for (const v of index.filter((x) => x.expect === 'output')) {
    it(`${v.name}: ${v.note}`, async () => {
      const expected = readFileSync(vectorPath('tardiff', v.name, 'expected.bin'));
      const got = await applyVector(v.name);
      expect(got.equals(expected)).toBe(true);
    });
  }

  for (const v of index.filter((x) => x.expect === 'error')) {
    it(`${v.name} fails: ${v.note}`, async () => {
      const hint = readFileSync(vectorPath('tardiff', v.name, 'error.txt'), 'utf8').trim();
      expect(hint).toBe(v.error_hint);
      const err = await applyVector(v.name).then(
        () => null,
        (e: unknown) => e,
      );
      expect(isOdhError(err)).toBe(true);
      const msg = (err as Error).message;
      expect(msg).not.toMatch(/\n/);
      expect(msg.toLowerCase()).toContain(hint.toLowerCase());
      expect(msg).toContain(v.name); // the layer/where is named
    });
  }
});
