import { describe, expect, it } from 'vitest';

import { modelComposefsInfoDump } from '../../src/composefs/dumpfile/normalize.js';
import { printDumpfile } from '../../src/composefs/dumpfile/print.js';
import { readErofs } from '../../src/composefs/format/erofs/reader.js';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { randomTree } from './erofs-writer-random-tree.js';

/**
 * Writer → reader cross-check on seeded random trees. The writer is pinned to C and composefs-rs by
 * its own golden tests, the reader and the composefs-info model by the C images (reader.test.ts);
 * here the three must agree on trees no asset covers.
 */
function firstDifference(actual: string, expected: string): void {
  const a = actual.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.min(a.length, e.length); i++) if (a[i] !== e[i]) expect(a[i]).toBe(e[i]);
  expect(a.length).toBe(e.length);
}

describe('write → read round trip on random trees', () => {
  for (let seed = 1; seed <= 20; seed++) {
    it(`V1 seed ${seed}: the dump equals the composefs-info model of the tree`, () => {
      const tree = randomTree(seed, { format: 'v1' });
      const read = readErofs(writeErofs(tree, { format: 'v1' }), { file: `v1-seed-${seed}` });
      const model = modelComposefsInfoDump(tree, { cfsVersion: read.header.composefsVersion });
      firstDifference(printDumpfile(read.root).toString('latin1'), printDumpfile(model).toString('latin1'));
    });

    it(`V2 seed ${seed}: the tree reads back (composefs-rs dumpfile equal)`, () => {
      const tree = randomTree(seed, { format: 'v2' });
      const read = readErofs(writeErofs(tree, { format: 'v2' }), { file: `v2-seed-${seed}` });
      expect(read.header.composefsVersion).toBe(2);
      firstDifference(
        printDumpfile(read.root, { format: 'composefs-rs' }).toString('latin1'),
        printDumpfile(tree, { format: 'composefs-rs' }).toString('latin1'),
      );
    });
  }
});
