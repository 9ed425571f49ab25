import { describe, it, expect } from 'vitest';
import { writeErofs, type WriteErofsOptions } from '../../src/composefs/format/erofs/write.js';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG, newInode, type Inode } from '../../src/composefs/format/tree.js';
import { OdhError } from '../../src/util/errors.js';
import { dirWith, emptyTree } from './erofs-writer-trees.js';

const BOTH: WriteErofsOptions[] = [{ format: 'v1' }, { format: 'v2' }];

function rejects(tree: Inode, opts: WriteErofsOptions, code: string, message: RegExp): void {
  let err: unknown;
  try {
    writeErofs(tree, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(OdhError);
  expect((err as OdhError).code).toBe(code);
  expect((err as OdhError).message).toMatch(message);
}

const file = (init: Partial<Inode> = {}): Inode => newInode(S_IFREG | 0o644, init);

describe.each(BOTH)('writer rejects trees it cannot write ($format)', (opts) => {
  it.each([['a/b'], [''], ['.'], ['..'], ['x\0y'], ['n'.repeat(256)]])('entry name %j', (name) => {
    rejects(dirWith(emptyTree(), [[name, file()]]), opts, 'FORMAT', /invalid directory entry name/);
  });

  it('a root that is not a directory', () => {
    rejects(file(), opts, 'FORMAT', /root must be a directory/);
  });

  it('an xattr value over 65535 bytes', () => {
    const f = file({ xattrs: [{ key: Buffer.from('user.x'), value: Buffer.alloc(65536) }] });
    rejects(dirWith(emptyTree(), [['f', f]]), opts, 'LIMIT', /xattr "x" too large/);
  });

  it.each([[0], [4096]])('a symlink target of %d bytes', (n) => {
    const l = newInode(S_IFLNK | 0o777, { payload: Buffer.alloc(n, 0x61), size: BigInt(n) });
    rejects(dirWith(emptyTree(), [['l', l]]), opts, 'LIMIT', /symlink target/);
  });

  it('an external file whose digest is neither SHA-256 nor SHA-512 sized', () => {
    const f = file({ size: 10n, digest: Buffer.alloc(20), payload: Buffer.from('ab/cd') });
    rejects(dirWith(emptyTree(), [['f', f]]), opts, 'FORMAT', /digest of 20 bytes/);
  });

  it('a directory reachable twice through canonical entries', () => {
    const d = newInode(S_IFDIR | 0o755);
    rejects(
      dirWith(emptyTree(), [
        ['a', d],
        ['b', d],
      ]),
      opts,
      'FORMAT',
      /twice|two canonical/,
    );
  });

  it('an invalid file type', () => {
    rejects(dirWith(emptyTree(), [['f', newInode(0o644)]]), opts, 'FORMAT', /invalid file type/);
  });
});

describe('format-specific limits', () => {
  it('V2 cannot hard-link a directory; V1 (C) accepts it and points the dirent at the directory', () => {
    const d = newInode(S_IFDIR | 0o755);
    const tree = dirWith(emptyTree(), [
      ['d', d],
      ['link', d, true],
    ]);
    rejects(tree, { format: 'v2' }, 'UNSUPPORTED', /hard-link a directory/);
    expect(writeErofs(tree, { format: 'v1' }).length).toBe(16384);
  });

  it('V2 inline content must share one block with its inode', () => {
    rejects(
      dirWith(emptyTree(), [['f', file({ content: Buffer.alloc(4033), size: 4033n })]]),
      { format: 'v2' },
      'LIMIT',
      /inline content/,
    );
  });

  it('V1: a hardlink whose inode has no canonical entry in the tree', () => {
    const orphan = newInode(S_IFCHR | 0o644, { rdev: 5n });
    rejects(
      dirWith(emptyTree(), [['h', orphan, true]]),
      { format: 'v1' },
      'FORMAT',
      /hardlink target is not in the tree/,
    );
  });

  it('V1: cfs-version options other than 0 and 1', () => {
    rejects(emptyTree(), { format: 'v1', maxVersion: 2 }, 'USAGE', /version/);
    rejects(emptyTree(), { format: 'v1', minVersion: -1 }, 'USAGE', /version/);
  });
});

describe('V1 xattr budget quirk (spec composefs-v1 §5.1 step 4)', () => {
  // A directory whose escaped input `trusted.overlay.opaque` is long, holding a whiteout: at cfs-version 1
  // replacing it with `x` wraps C's per-node counter and the write fails (ERANGE); at 0 it is not replaced.
  const tree = (valueLength: number): Inode => {
    const d = newInode(S_IFDIR | 0o755, {
      xattrs: [{ key: Buffer.from('trusted.overlay.opaque'), value: Buffer.alloc(valueLength, 0x61) }],
    });
    return dirWith(emptyTree(), [['d', dirWith(d, [['w', newInode(S_IFCHR | 0o644)]])]]);
  };

  it('fails at cfs-version 1 with a 100-byte value', () => {
    rejects(tree(100), { format: 'v1', minVersion: 1, maxVersion: 1 }, 'LIMIT', /budget/);
  });

  it('works at cfs-version 0, and at 1 with a short value', () => {
    expect(writeErofs(tree(100), { format: 'v1', minVersion: 0, maxVersion: 0 }).length).toBe(16384);
    expect(writeErofs(tree(1), { format: 'v1', minVersion: 1, maxVersion: 1 }).length).toBe(16384);
  });
});
