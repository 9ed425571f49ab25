import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

import { dumpfileLinesOf } from '../../src/composefs/dumpfile/print.js';
import { readErofs } from '../../src/composefs/format/erofs/reader.js';
import { OdhError } from '../../src/util/errors.js';
import { vectorPath } from '../helpers/shared.js';
import { xorByte } from '../helpers/must.js';

/** Deterministic PRNG (mulberry32) so a failure is reproducible from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function image(name: string): Buffer {
  return gunzipSync(readFileSync(vectorPath('composefs-c', `${name}.img.gz`)));
}

/**
 * Reads a damaged image: it must either succeed (and print) or throw an OdhError that was raised
 * where the fault was found — not the catch-all wrapper around an unexpected exception.
 */
function readDamaged(bytes: Buffer, label: string): 'ok' | 'rejected' {
  const t0 = performance.now();
  let outcome: 'ok' | 'rejected';
  try {
    const { root } = readErofs(bytes, { file: label });
    for (const line of dumpfileLinesOf(root)) expect(typeof line).toBe('string');
    outcome = 'ok';
  } catch (e) {
    if (!(e instanceof OdhError)) throw new Error(`${label}: non-OdhError ${String(e)}`, { cause: e });
    expect(e.code, label).toBe('FORMAT');
    expect(e.message, label).not.toMatch(/^corrupt EROFS image:/);
    outcome = 'rejected';
  }
  // No hang: a damaged image of at most a few MiB is decided quickly.
  expect(performance.now() - t0, label).toBeLessThan(5000);
  return outcome;
}

const SMALL = [
  'special.dump',
  'special_v1.dump',
  'bigfile-xattr.dump',
  'longlink.dump',
  'honggfuzz-bigfile-with-acl.dump',
];

describe('reader on damaged images only ever throws OdhError', () => {
  for (const name of SMALL) {
    it(`${name}: random byte flips in the metadata`, () => {
      const clean = image(name);
      const rand = prng(0x5eed ^ clean.length);
      const outcomes = { ok: 0, rejected: 0 };
      for (let round = 0; round < 400; round++) {
        const bytes = Buffer.from(clean);
        const flips = 1 + Math.floor(rand() * 8);
        for (let i = 0; i < flips; i++) {
          // Mostly hit the header, superblock and inode table, where a flip matters most.
          const span = rand() < 0.8 ? Math.min(bytes.length, 16384) : bytes.length;
          xorByte(bytes, Math.floor(rand() * span), 1 << Math.floor(rand() * 8));
        }
        outcomes[readDamaged(bytes, `${name} round ${round}`)]++;
      }
      expect(outcomes.rejected).toBeGreaterThan(0);
    });

    it(`${name}: truncations and random overwrites of structures`, () => {
      const clean = image(name);
      const rand = prng(0xc0ffee ^ clean.length);
      for (let round = 0; round < 150; round++) {
        const cut = Math.floor(rand() * clean.length);
        readDamaged(clean.subarray(0, cut), `${name} truncated at ${cut}`);
      }
      for (let round = 0; round < 150; round++) {
        const bytes = Buffer.from(clean);
        const at = 1024 + Math.floor(rand() * Math.min(bytes.length - 1024, 16384));
        const len = 1 + Math.floor(rand() * 64);
        for (let i = at; i < Math.min(bytes.length, at + len); i++) bytes[i] = Math.floor(rand() * 256);
        readDamaged(bytes, `${name} overwrite ${at}+${len}`);
      }
    });
  }

  it('rejects the obvious: short image, bad magics, root that is not a directory', () => {
    const clean = image('special.dump');
    const cases: [string, (b: Buffer) => Buffer][] = [
      ['short', (b) => b.subarray(0, 4095)],
      ['composefs magic', (b) => (b.writeUInt32LE(0, 0), b)],
      ['header version', (b) => (b.writeUInt32LE(2, 4), b)],
      ['erofs magic', (b) => (b.writeUInt32LE(0, 1024), b)],
      ['block size', (b) => ((b[1036] = 9), b)],
      ['root nid outside', (b) => (b.writeUInt16LE(0xffff, 1038), b)],
    ];
    for (const [label, damage] of cases) {
      expect(() => readErofs(damage(Buffer.from(clean)), { file: label }), label).toThrow(OdhError);
    }
  });

  it('turns a directory entry pointing at an ancestor into a hardlink, never a loop', () => {
    // Point every dirent of the root (except . and ..) at the root itself.
    const bytes = Buffer.from(image('special.dump'));
    const { header } = readErofs(bytes);
    const rootNid = BigInt(header.rootNid);
    let patched = 0;
    for (let off = 0; off + 12 <= bytes.length; off += 4) {
      // Dirent blocks start at a block boundary with nameoff[0] = 12·k; patch only those blocks.
      if (off % 4096 !== 0 || off < 8192) continue;
      const first = bytes.readUInt16LE(off + 8);
      if (first % 12 !== 0 || first === 0 || first > 4096) continue;
      for (let i = 0; i < first / 12; i++) bytes.writeBigUInt64LE(rootNid, off + 12 * i);
      patched++;
    }
    expect(patched).toBeGreaterThan(0);
    expect(readDamaged(bytes, 'self-referencing root')).toBe('ok');
  });

  it('caps directory nesting (maxDepth) with a FORMAT error', () => {
    const bytes = image('config.dump');
    expect(() => readErofs(bytes)).not.toThrow();
    const err = (() => {
      try {
        readErofs(bytes, { maxDepth: 2, file: 'config.img' });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(OdhError);
    expect((err as OdhError).message).toMatch(/nested deeper than 2/);
    expect((err as OdhError).context.offset).toBeGreaterThan(0);
  });
});
