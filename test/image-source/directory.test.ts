import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { DirectorySource } from '../../src/image-source/directory.js';
import { makeTempDir } from '../../src/util/atomic.js';
import type { OdhError } from '../../src/util/errors.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
let src: DirectorySource;

async function readAll(name: string | Buffer): Promise<string> {
  const f = await src.open(Buffer.isBuffer(name) ? name : Buffer.from(name));
  try {
    const buf = Buffer.alloc(f.size);
    expect(await f.readAt(buf, 0, f.size, 0)).toBe(f.size);
    return buf.toString();
  } finally {
    await f.close();
  }
}

async function openError(name: string | Buffer): Promise<OdhError> {
  try {
    const f = await src.open(Buffer.isBuffer(name) ? name : Buffer.from(name));
    await f.close();
  } catch (e) {
    return e as OdhError;
  }
  throw new Error(`expected opening ${String(name)} to fail`);
}

beforeAll(async () => {
  tmp = await makeTempDir('odh-dirsrc-');
  root = path.join(tmp.dir, 'root');
  const outside = path.join(tmp.dir, 'outside');
  await fs.mkdir(path.join(root, 'usr/lib64'), { recursive: true });
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'secret'), 'OUTSIDE');
  await fs.writeFile(path.join(root, 'usr/lib64/libz.so.1.3'), 'LIBZ');
  await fs.writeFile(path.join(root, 'etc/os-release'), 'ROOT-OS');
  const link = (target: string, at: string) => fs.symlink(target, path.join(root, at));
  await link('libz.so.1.3', 'usr/lib64/libz.so.1'); // relative, inside
  await link('usr/lib64', 'lib64'); // directory symlink
  await link('/etc/os-release', 'usr/lib64/abs-os'); // absolute: resolved inside the root
  await link('../../etc/os-release', 'usr/lib64/rel-os'); // relative with .., stays inside
  await link(outside, 'escape-abs'); // absolute path of a real outside dir → root + that path: missing
  await link('../outside/secret', 'escape-rel'); // climbs above the root
  await link('../../../../outside', 'usr/lib64/escape-deep');
  await link('loop-b', 'loop-a');
  await link('loop-a', 'loop-b');
  await link('/', 'rootlink');
  await link('/..', 'dotdot-root'); // ".." at the root (absolute) would climb out
  await fs.mkdir(path.join(root, 'dir'));
  execFileSync('mkfifo', [path.join(root, 'fifo')]);
  await fs.writeFile(Buffer.concat([Buffer.from(`${root}/`), Buffer.from([0x62, 0x69, 0x6e, 0xff])]), 'x');
  src = await DirectorySource.create(root);
});

afterAll(async () => {
  await tmp.cleanup();
});

describe('DirectorySource (spec oci-delta §3.2 --directory, confined)', () => {
  it('opens plain files and reads positionally', async () => {
    expect(await readAll('usr/lib64/libz.so.1.3')).toBe('LIBZ');
    const f = await src.open(Buffer.from('usr/lib64/libz.so.1.3'));
    const buf = Buffer.alloc(8);
    expect(await f.readAt(buf, 2, 3, 1)).toBe(3);
    expect(buf.subarray(2, 5).toString()).toBe('IBZ');
    expect(await f.readAt(buf, 0, 4, 4)).toBe(0);
    expect(f.name).toBe('usr/lib64/libz.so.1.3');
    expect(f.size).toBe(4);
    await f.close();
  });

  it('follows symlinks that stay inside the root', async () => {
    expect(await readAll('usr/lib64/libz.so.1')).toBe('LIBZ');
    expect(await readAll('lib64/libz.so.1')).toBe('LIBZ');
    expect(await readAll('usr/lib64/rel-os')).toBe('ROOT-OS');
  });

  it('resolves absolute symlink targets from the root, like a chroot', async () => {
    expect(await readAll('usr/lib64/abs-os')).toBe('ROOT-OS');
    expect(await readAll('rootlink/etc/os-release')).toBe('ROOT-OS');
    // the host path of a real outside directory means <root>/<that path>, which does not exist
    const e = await openError('escape-abs/secret');
    expect(e.code).toBe('NOT_FOUND');
  });

  it('refuses relative symlinks that climb out of the root', async () => {
    for (const name of ['escape-rel', 'usr/lib64/escape-deep/secret', 'dotdot-root/outside/secret']) {
      const e = await openError(name);
      expect(e.code).toBe('UNSAFE_PATH');
      expect(e.message).toContain(name);
    }
  });

  it('stops symlink loops', async () => {
    const e = await openError('loop-a');
    expect(e.code).toBe('UNSAFE_PATH');
    expect(e.message).toMatch(/too many levels of symbolic links/);
  });

  it('refuses non-regular files (directory, FIFO, the root itself)', async () => {
    for (const name of ['dir', 'fifo', 'rootlink', 'usr/lib64']) {
      const e = await openError(name);
      expect(e.code).toBe('UNSAFE_PATH');
      expect(e.message).toMatch(/not a regular file/);
    }
  });

  it('missing files and files used as directories are NOT_FOUND, naming the name', async () => {
    for (const name of ['nothere', 'etc/os-release/x', 'usr/nothere/x']) {
      const e = await openError(name);
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toContain(name);
    }
  });

  it('handles names that are not UTF-8', async () => {
    expect(await readAll(Buffer.from([0x62, 0x69, 0x6e, 0xff]))).toBe('x');
    const e = await openError(Buffer.from([0x6e, 0x6f, 0xfe]));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.context.path).toBe('no\\xfe');
  });

  it('refuses a NUL byte in a name', async () => {
    expect((await openError(Buffer.from('etc/os-release\0x'))).code).toBe('UNSAFE_PATH');
  });

  it('create() refuses a missing root', async () => {
    await expect(DirectorySource.create(path.join(tmp.dir, 'nope'))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
