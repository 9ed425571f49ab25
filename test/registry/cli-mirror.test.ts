import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../../fixtures/build.js';
import { REPO_ROOT } from '../helpers/shared.js';
import { hasTool } from '../helpers/tools.js';
import { built, fastClient, SMALL_PAIR } from './helpers.js';
import { freePort, startRegistry, type TestRegistry } from './registry-process.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');

describe.skipIf(!hasTool('docker-registry', 'docker-registry'))('odh fixtures mirror (built CLI)', () => {
  let reg: TestRegistry;
  let tmp: string;
  beforeAll(async () => {
    reg = await startRegistry();
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-climirror-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  const run = (args: string[]) =>
    execa('node', [ODH, 'fixtures', 'mirror', ...args], {
      reject: false,
      env: { TMPDIR: tmp },
      timeout: 120_000,
    });

  it('publishes the listed pairs, then re-runs without uploading a blob', async () => {
    const list = path.join(tmp, 'mirror.txt');
    await fs.writeFile(list, `# test list\n${SMALL_PAIR}\n`);
    const args = [
      '--registry',
      `${reg.host}/cli`,
      '--tls-verify=false',
      '--json',
      '--list',
      list,
      '--cache',
      defaultCacheDir(),
    ];
    const first = await run(args);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    const r1 = JSON.parse(String(first.stdout));
    expect(r1.blobsUploaded).toBeGreaterThan(0);
    expect(r1.manifestsPushed).toBe(4); // old, new, delta, referrers tag index

    const second = await run(args);
    expect(second.exitCode).toBe(0);
    const r2 = JSON.parse(String(second.stdout));
    expect(r2).toMatchObject({ blobsUploaded: 0, blobsMounted: 0, manifestsPushed: 0 });
    // Every blob the first run met (uploaded, or shared between old, new and delta) is now present.
    expect(r2.blobsSkipped).toBe(r1.blobsUploaded + r1.blobsSkipped);

    const f = await built();
    const served = await fastClient(reg.host).getManifest(`cli/${SMALL_PAIR}`, 'new');
    expect(served.digest).toBe(f.new.manifestDigest);
  });

  it('refuses a bad --registry and an unreachable registry with one-line errors', async () => {
    const bad = await run([
      '--registry',
      'Not A Host/x',
      '--list',
      path.join(REPO_ROOT, 'fixtures', 'mirror.txt'),
    ]);
    expect(bad.exitCode).toBe(2); // usage error (the CLI contract)
    expect(String(bad.stderr)).toMatch(
      /^odh: error: invalid --registry "Not A Host\/x" \(want HOST\[:PORT\]\/PREFIX\) \(odh fixtures mirror --help\)$/,
    );

    const list = path.join(tmp, 'one.txt');
    await fs.writeFile(list, `${SMALL_PAIR}\n`);
    const closed = await freePort(); // nothing listens there
    const down = await run([
      '--registry',
      `127.0.0.1:${closed}/x`,
      '--tls-verify=false',
      '--list',
      list,
      '--cache',
      defaultCacheDir(),
    ]);
    expect(down.exitCode).toBe(1);
    expect(String(down.stderr)).toMatch(
      /^odh: error: registry 127\.0\.0\.1:[0-9]+ repo x\/[a-z-]+ blob sha256:[0-9a-f]{64} HEAD failed after 5 tries: .*ECONNREFUSED$/,
    );
  });
});
