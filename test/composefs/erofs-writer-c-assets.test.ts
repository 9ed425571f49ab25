import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, it, expect } from 'vitest';
import { parseDumpfileSync } from '../../src/composefs/dumpfile/parse.js';
import { imageId, writeErofs } from '../../src/composefs/format/erofs/write.js';
import { vectorPath } from '../helpers/shared.js';

// spec composefs-v1 §13.1: every positive C 1.0.8 test asset (dumpfile + pinned image sha256).
const ASSETS = [
  'bigfile-xattr.dump',
  'bigfile.dump',
  'config-with-hard-link.dump.gz',
  'config.dump.gz',
  'cs9-x86_64-developer.dump.gz',
  'cs9-x86_64-minimal.dump.gz',
  'honggfuzz-bigfile-with-acl.dump',
  'honggfuzz-chardev-nonzero-size.dump',
  'honggfuzz-long-symlink.dump',
  'honggfuzz-longlink-unterminated.dump',
  'longlink.dump',
  'no-newline.dump',
  'special.dump',
  'special_v1.dump',
];
/** Upstream parses these without CFS_PARSE_STRICT. */
const LENIENT = new Set(['no-newline.dump', 'longlink.dump', 'honggfuzz-longlink-unterminated.dump']);

function readAsset(name: string): Buffer {
  const raw = readFileSync(vectorPath('composefs-c', name));
  return name.endsWith('.gz') ? gunzipSync(raw) : raw;
}

/** The image C wrote, for locating the first differing byte when a digest does not match. */
function firstDifference(name: string, ours: Buffer): string {
  const theirs = gunzipSync(readFileSync(vectorPath('composefs-c', `${name.replace(/\.gz$/, '')}.img.gz`)));
  const n = Math.min(ours.length, theirs.length);
  for (let i = 0; i < n; i++)
    if (ours[i] !== theirs[i]) return `first difference at byte ${i} (0x${i.toString(16)})`;
  return `lengths ${ours.length} vs ${theirs.length}`;
}

describe('V1 writer reproduces C mkcomposefs 1.0.8 on its test assets', () => {
  it.each(ASSETS)('%s', (name) => {
    const versionFile = vectorPath('composefs-c', `${name}.version`);
    const pinned = existsSync(versionFile) ? Number(readFileSync(versionFile, 'utf8').trim()) : undefined;
    const tree = parseDumpfileSync(readAsset(name), {
      rules: 'mkcomposefs',
      strict: !LENIENT.has(name),
      file: name,
    });
    const img = writeErofs(tree, { format: 'v1', minVersion: pinned, maxVersion: pinned });
    const expected = readFileSync(vectorPath('composefs-c', `${name}.sha256`), 'utf8')
      .trim()
      .split(/\s+/)[0];
    const actual = createHash('sha256').update(img).digest('hex');
    if (actual !== expected)
      expect.fail(`${name}: sha256 ${actual} ≠ ${expected}; ${firstDifference(name, img)}`);
    expect(actual).toBe(expected);
  });
});

describe('composefs-rs pinned special_v1.dump (spec composefs-v1 §13.3)', () => {
  it('special.dump without the inline-large* lines at --min-version=1 --max-version=1', () => {
    const lines = readAsset('special.dump')
      .toString('latin1')
      .split('\n')
      .filter((l) => !l.startsWith('/inline-large'));
    const tree = parseDumpfileSync(Buffer.from(lines.join('\n'), 'latin1'), {
      rules: 'mkcomposefs',
      strict: true,
    });
    const img = writeErofs(tree, { format: 'v1', minVersion: 1, maxVersion: 1 });
    expect(imageId(img).toString('hex')).toBe(
      'b1c78c25db8638be5b9b483472d32ee9624d8d32ded626a91cd536116e8df97c',
    );
  });
});
