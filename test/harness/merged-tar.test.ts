/**
 * The one old tar the Go tar-diff 0.1.2 gets (harness/implementations/merged-tar.ts) holds exactly
 * the Open-name sources of the old image's merged root filesystem (spec oci-delta §3.1). Checked
 * against umoci's unpack of the same image (whiteouts and opaque directories applied by umoci) and
 * read back by GNU tar: every entry's bytes equal the unpacked file at that path; every qualifying
 * file of the unpacked tree (regular, non-empty, world-readable, outside sysroot/ostree/) is in the
 * tar under its own path or under another name of the same inode (hardlinks give one Open name).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture } from '../../fixtures/build.js';
import { writeMergedSourcesTar } from '../../harness/implementations/merged-tar.js';
import { hasTool } from '../helpers/tools.js';

const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const ok = hasTool('umoci', 'umoci') && hasTool('skopeo', 'skopeo') && hasTool('tar', 'tar');
let work: string;

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-merged-tar-'));
});
afterAll(() => fs.rm(work, { recursive: true, force: true }));

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe.skipIf(!ok)('merged-rootfs sources tar for the Go tar-diff', () => {
  it.each(['whiteouts-opaque', 'bootc-chunked', 'rename-move'])(
    '%s: the tar equals the qualifying files of umoci’s unpacked old image',
    async (name) => {
      const built = await buildFixture(name, cacheDir);
      const dir = path.join(work, name);
      await fs.mkdir(dir);
      await execa('skopeo', ['copy', '-q', `oci-archive:${built.old.path}`, `oci:${dir}/layout:img`]);
      await execa('umoci', ['raw', 'unpack', '--rootless', '--image', `${dir}/layout:img`, `${dir}/umoci`]);
      const tarFile = path.join(dir, 'merged.tar');
      const { files } = await writeMergedSourcesTar(`oci-archive:${built.old.path}`, tarFile);
      await fs.mkdir(`${dir}/ours`);
      await execa('tar', ['-xf', tarFile, '-C', `${dir}/ours`]);
      const listed = (await execa('tar', ['-tf', tarFile])).stdout.split('\n');
      expect(listed).toHaveLength(files);
      expect(new Set(listed).size).toBe(files);
      const inodeOf = new Map<string, string>(); // "dev:ino" → a path in our tar
      for (const p of listed) {
        expect(p.startsWith('sysroot/ostree/'), p).toBe(false);
        const theirs = path.join(dir, 'umoci', p);
        expect(await fs.readFile(path.join(dir, 'ours', p)), p).toEqual(await fs.readFile(theirs));
        const st = await fs.stat(theirs);
        inodeOf.set(`${st.dev}:${st.ino}`, p);
      }
      let qualifying = 0;
      for (const p of await walk(path.join(dir, 'umoci'))) {
        const st = await fs.stat(path.join(dir, 'umoci', p));
        if (st.size === 0 || (st.mode & 0o004) === 0 || p.startsWith('sysroot/ostree/')) continue;
        qualifying++;
        expect(inodeOf.has(`${st.dev}:${st.ino}`), `${p} missing from the sources tar`).toBe(true);
      }
      expect(qualifying).toBeGreaterThan(0);
    },
    120_000,
  );
});
