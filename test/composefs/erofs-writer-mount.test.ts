import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeErofs } from '../../src/composefs/format/erofs/write.js';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../src/composefs/format/tree.js';
import { expectedView, randomTree, type Format, type ViewEntry } from './erofs-writer-random-tree.js';
import { compareView } from './erofs-writer-view.js';
import { hasTool, isRoot } from '../helpers/tools.js';

const work = mkdtempSync(path.join(tmpdir(), 'odh-mount-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Mount failures that mean "this machine cannot loop-mount EROFS", not "the image is bad". */
const NO_SUPPORT =
  /permission denied|not permitted|must be superuser|failed to setup loop|no free loop|could not find any free loop|unknown filesystem type|no such device|no such file or directory.*loop/i;

function kernelView(view: Map<string, ViewEntry>): Map<string, ViewEntry> {
  // The kernel lists only namespaces it has handlers for (no `lustre.`, no index-0 keys), and user.*
  // xattrs only on regular files and directories.
  const visible = (key: string, type: number): boolean => {
    const k = Buffer.from(key, 'hex').toString('latin1');
    if (k.startsWith('trusted.') || k.startsWith('security.')) return true;
    return k.startsWith('user.') && (type === S_IFREG || type === S_IFDIR);
  };
  for (const e of view.values()) {
    for (const k of [...e.xattrs.keys()]) if (!visible(k, e.type & S_IFMT)) e.xattrs.delete(k);
  }
  return view;
}

const CASES: [Format, number][] = [
  ['v1', 2],
  ['v1', 3],
  ['v1', 4],
  ['v2', 2],
  ['v2', 3],
  ['v2', 4],
];

describe('the kernel reads produced images as the tree says (loop mount)', () => {
  const haveTools = isRoot && hasTool('mount', 'mount') && hasTool('python3', 'python3');
  it.for(CASES)('%s image of random tree %d', ([format, seed], ctx) => {
    if (!haveTools) {
      process.stderr.write('\n*** SKIPPING loop-mount test: needs root, mount and python3 ***\n\n');
      ctx.skip();
      return;
    }
    const tree = randomTree(seed, { format, bigFiles: true });
    const img = path.join(work, `${format}-${seed}.img`);
    const mnt = path.join(work, `${format}-${seed}.mnt`);
    writeFileSync(img, writeErofs(tree, { format }));
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-o', 'loop,ro', '-t', 'erofs', img, mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      const why = `${m.stderr}${m.stdout}`.trim();
      if (NO_SUPPORT.test(why)) {
        process.stderr.write(`\n*** SKIPPING loop-mount test: the kernel refused (${why}) ***\n\n`);
        ctx.skip();
        return;
      }
      expect.fail(`mount of a produced ${format} image failed: ${why}`);
    }
    try {
      const errors = compareView(mnt, kernelView(expectedView(tree, format)), {
        owner: true,
        mtime: true,
        nlinkAndHardlinks: true,
        externalSizes: true,
        xattrs: true,
      });
      expect(errors).toEqual([]);
    } finally {
      const u = spawnSync('umount', [mnt], { encoding: 'utf8' });
      if (u.status !== 0) process.stderr.write(`umount ${mnt} failed: ${u.stderr}\n`);
    }
  });
});
