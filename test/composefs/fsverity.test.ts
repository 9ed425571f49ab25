import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import {
  FsVerityHasher,
  fsverityDigest,
  fsverityDigestFile,
  type FsVerityAlgorithm,
} from '../../src/composefs/format/fsverity.js';
import { OdhError } from '../../src/util/errors.js';
import { vectorPath } from '../helpers/shared.js';
import { hasTool } from '../helpers/tools.js';

interface Vector {
  content: string;
  size: number;
  sha256: string;
  sha512: string;
}

const vectors = (JSON.parse(readFileSync(vectorPath('fsverity.json'), 'utf8')) as { vectors: Vector[] })
  .vectors;

/** Rebuilds the input a vector describes in words (see fsverity.json). */
function contentOf(v: Vector): Buffer {
  if (v.content === 'empty') return Buffer.alloc(0);
  if (v.content === 'hello' || v.content === 'hello world') return Buffer.from(v.content);
  if (/^\d+ zero bytes$/.test(v.content)) return Buffer.alloc(v.size);
  if (/^\d+ bytes, byte i = i % 251$/.test(v.content)) {
    const b = Buffer.alloc(v.size);
    for (let i = 0; i < v.size; i++) b[i] = i % 251;
    return b;
  }
  throw new Error(`unknown vector content description ${v.content}`);
}

const ALGS: FsVerityAlgorithm[] = ['sha256', 'sha512'];

describe('fs-verity digest: golden vectors (fsverity.json, fsverity-utils 1.5)', () => {
  it('covers the vector file', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(10);
  });
  for (const v of vectors) {
    for (const alg of ALGS) {
      it(`${alg} ${v.content} (${v.size} bytes)`, () => {
        const data = contentOf(v);
        expect(data.length).toBe(v.size);
        expect(fsverityDigest(data, alg).toString('hex')).toBe(v[alg]);
      });
    }
  }

  it('gives the same digest however the input is chunked', () => {
    const v = vectors.find((x) => x.size === 524289)!;
    const data = contentOf(v);
    for (const alg of ALGS) {
      const h = new FsVerityHasher(alg);
      let off = 0;
      let step = 1;
      while (off < data.length) {
        h.update(data.subarray(off, off + step));
        off += step;
        step = (step * 7 + 13) % 10007;
      }
      expect(h.digest().toString('hex')).toBe(v[alg]);
    }
  });

  it('pins composefs-rs hello world (spec composefs-v2 §8.1)', () => {
    expect(fsverityDigest(Buffer.from('hello world'), 'sha256').toString('hex')).toBe(
      '1e2eaa4202d750a41174ee454970b92c1bc2f925b1e35076d8c7d5f56362ba64',
    );
  });

  it('refuses use after digest()', () => {
    const h = new FsVerityHasher('sha256');
    h.digest();
    expect(() => h.update(Buffer.from('x'))).toThrow(OdhError);
  });
});

describe.skipIf(!hasTool('fsverity', 'fsverity'))('fs-verity digest equals the fsverity CLI', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'odh-fsverity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const B = 4096;
  const sizes = [
    0,
    1,
    4095,
    4096,
    4097,
    128 * B,
    128 * B + 1,
    64 * B,
    64 * B + 1,
    129 * 128 * B,
    3 * 1024 * 1024 + 17,
  ];
  for (const size of sizes) {
    it(`random file of ${size} bytes`, async () => {
      const file = path.join(dir, `f${size}`);
      writeFileSync(file, randomBytes(size));
      for (const alg of ALGS) {
        const out = execFileSync('fsverity', ['digest', `--hash-alg=${alg}`, '--block-size=4096', file], {
          encoding: 'utf8',
        });
        // Output: "<alg>:<hex> <file>"
        const expected = out.trim().split(' ')[0];
        expect(`${alg}:${(await fsverityDigestFile(file, alg)).toString('hex')}`).toBe(expected);
      }
    });
  }
});
