import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { gunzipSync, createGunzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';

import { parseDumpfile } from '../../src/composefs/dumpfile/parse.js';
import { modelComposefsInfoDump } from '../../src/composefs/dumpfile/normalize.js';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { readErofs } from '../../src/composefs/format/erofs/reader.js';
import { vectorPath } from '../helpers/shared.js';

const ASSETS = vectorPath('composefs-c');
const LENIENT = new Set(['no-newline.dump', 'longlink.dump', 'honggfuzz-longlink-unterminated.dump']);
const positives = readdirSync(ASSETS).filter(
  (f) => /\.dump(\.gz)?$/.test(f) && !f.startsWith('should-fail-'),
);

/** spec composefs-v1 §13.1: header composefs_version and flags of each pinned image. */
const HEADER: Record<string, [number, number]> = {
  'honggfuzz-bigfile-with-acl.dump': [0, 1],
  'honggfuzz-chardev-nonzero-size.dump': [1, 0],
  'special_v1.dump': [1, 0],
};

/** `<name>.img.gz` beside each asset (`x.dump.gz` → `x.dump.img.gz`). */
function imagePath(f: string): string {
  return `${ASSETS}/${f.replace(/\.gz$/, '')}.img.gz`;
}

function lines(b: Buffer): string[] {
  return b.toString('latin1').split('\n');
}

describe('reader on images written by C mkcomposefs 1.0.8 (composefs-c/*.img.gz)', () => {
  it('has an image for every positive asset', () => {
    expect(positives.length).toBe(14);
    for (const f of positives) expect(existsSync(imagePath(f))).toBe(true);
  });

  for (const f of positives) {
    it(`${f}: dump of the image equals the modelled dump of the asset`, async () => {
      const image = gunzipSync(readFileSync(imagePath(f)));
      const read = readErofs(image, { file: `${f}.img` });
      expect([read.header.composefsVersion, read.header.flags]).toEqual(HEADER[f] ?? [0, 0]);
      expect(read.rules).toBe('composefs-info');

      const src = createReadStream(`${ASSETS}/${f}`);
      const parsed = await parseDumpfile(f.endsWith('.gz') ? src.pipe(createGunzip()) : src, {
        rules: 'mkcomposefs',
        strict: !LENIENT.has(f),
        file: f,
      });
      const expected = lines(
        printDumpfile(modelComposefsInfoDump(parsed, { cfsVersion: read.header.composefsVersion })),
      );
      const actual = lines(printDumpfile(read.root));
      // Compare line by line first so a failure names the first differing line.
      const n = Math.min(expected.length, actual.length);
      for (let i = 0; i < n; i++) if (expected[i] !== actual[i]) expect(actual[i]).toBe(expected[i]);
      expect(actual.length).toBe(expected.length);
    });
  }
});
