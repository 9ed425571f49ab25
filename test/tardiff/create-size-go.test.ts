import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture } from '../../fixtures/build.js';
import { listFixtures } from '../../fixtures/catalog.js';
import { compareWithGo, pairTars } from '../../scripts/bench/go-tardiff.js';
import { hasOracle } from '../helpers/oracles.js';

// Size proof against Go containers/tar-diff 0.1.2 (its default: bsdiff) on every catalog pair (the
// big one only with ODH_BIG=1): per pair, the sum over its new-only layers of the tar-diff sizes,
// made from the same tars. Every delta of ours is applied back by our applier, tardf1 also by Go
// tar-patch (inside compareWithGo).

/**
 * Pairs whose new bytes are mostly absent from every readable old file (random new content, tar
 * headers, metadata-only changes, unreadable sources): both creators store them literally, so the
 * 0.85× goal for zstd is out of reach there (in several of them even below the
 * `zstd -19 --long --patch-from` floor printed beside); zstd must still be ≤ Go.
 */
const LITERAL_BOUND = new Set([
  'unreadable-files',
  'small-files-edges',
  'many-small-files',
  'whiteouts-opaque',
  'special-files',
  'xattrs',
  'layer-reuse-reorder',
  'mixed-compression',
]);
/**
 * Go tar-diff 0.1.2 predates the rule "never diff `.xz`/`.bz2` files" (spec oci-delta §5.3) that
 * today's upstream and we follow; this pair's `.xz`-named files are plain text edited in place, so
 * 0.1.2 wins by breaking the rule.
 */
const XZ_RULE = 'compressed-files';

const pairs = listFixtures().filter((f) => !f.big || process.env.ODH_BIG === '1');
const haveGo = hasOracle('tar-diff') && hasOracle('tar-patch');
const rows: string[] = [];
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(tmpdir(), 'odh-size-go-'));
});
afterAll(async () => {
  process.stderr.write(
    `\npair: Go tar-diff B | ours bsdiff B (ratio) | ours zstd B (ratio) | zstd -19 --long --patch-from B\n${rows.join('\n')}\n`,
  );
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe.skipIf(!haveGo)('tar-diff sizes vs Go tar-diff 0.1.2 on the fixture catalog', () => {
  for (const pair of pairs) {
    const goal =
      pair.name === XZ_RULE ? '.xz rule' : LITERAL_BOUND.has(pair.name) ? 'zstd ≤ Go' : 'zstd ≤ 0.85 × Go';
    it(`${pair.name}: bsdiff ≤ Go, ${goal}`, { timeout: 600_000 }, async () => {
      const fx = await buildFixture(pair.name);
      const dir = path.join(work, pair.name);
      const set = await pairTars(fx.old.ref, fx.new.ref, dir);
      const layers = await compareWithGo(set, ['bsdiff', 'zstd'], dir);
      await fs.rm(dir, { recursive: true, force: true });
      const go = layers.reduce((n, l) => n + l.go.bytes, 0);
      const bsd = layers.reduce((n, l) => n + l.ours.bsdiff!.bytes, 0);
      const zst = layers.reduce((n, l) => n + l.ours.zstd!.bytes, 0);
      const floor = layers.reduce((n, l) => n + l.patchFrom, 0);
      rows.push(
        `${pair.name}: ${go} | ${bsd} (${(bsd / go).toFixed(3)}) | ${zst} (${(zst / go).toFixed(3)}) | ` +
          `patch-from ${floor} [${layers.length} layer(s)]`,
      );
      if (layers.length === 0) return; // nothing new to diff (identical, reused layers only)
      if (pair.name === XZ_RULE) {
        expect(bsd).toBeGreaterThan(go);
        return;
      }
      expect(bsd).toBeLessThanOrEqual(go);
      expect(zst).toBeLessThanOrEqual(LITERAL_BOUND.has(pair.name) ? go : 0.85 * go);
    });
  }
});
