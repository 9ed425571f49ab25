/** `odh upstream pin|fetch|status` through the built CLI, against the stand-in release server. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';
import {
  standinBinaryScript,
  startStandinServer,
  writeStandinBinary,
  type StandinServer,
} from './upstream-standin.js';

/** The built CLI (`npm test` runs `tsc` first; run `npx tsc -p .` before running this file alone). */
const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const BIN = Buffer.from(standinBinaryScript({ version: 'oci-delta version 0.6.0' }));

let server: StandinServer;
let work: string;
/** A clean environment: no proxies, no ODH_OCI_DELTA, a private HOME (cache default). */
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  if (!existsSync(ODH)) throw new Error(`${ODH} missing: build first with npx tsc -p .`);
  server = await startStandinServer({
    version: '0.6.0',
    assets: [
      { name: 'oci-delta-0.6.0-x86_64-static', body: BIN },
      { name: 'oci-delta-0.6.0-aarch64-static', body: BIN },
    ],
  });
  work = mkdtempSync(path.join(os.tmpdir(), 'odh-upstream-cli-'));
  env = { PATH: process.env.PATH, HOME: work };
});

afterAll(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

const odh = (...args: string[]) =>
  execa('node', [ODH, 'upstream', ...args], { reject: false, env, extendEnv: false, timeout: 60_000 });

describe('odh upstream (stand-in release server)', () => {
  it('unpinned committed manifest: status says why (exit 0), fetch fails with exit 1', async () => {
    const status = await odh('status', '--json');
    expect(status.exitCode).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({
      status: 'unavailable',
      reason: 'not built or pinned (run odh upstream build; upstream publishes no binaries)',
    });
    const fetch = await odh('fetch');
    expect(fetch.exitCode).toBe(1);
    expect(fetch.stderr).toBe(
      'odh: error: upstream unavailable: not built or pinned (run odh upstream build; upstream publishes no binaries)',
    );
    const ifPinned = await odh('fetch', '--if-pinned');
    expect(ifPinned.exitCode).toBe(0);
    expect(ifPinned.stdout).toBe(
      'upstream unavailable: not built or pinned (run odh upstream build; upstream publishes no binaries): nothing to fetch',
    );
  });

  it('stand-in: pin, then fetch into the cache, then status reuses it', async () => {
    const manifest = path.join(work, 'manifest.json');
    const pin = await odh('pin', '--api-url', server.url, '--manifest', manifest);
    expect(pin.stderr).toMatch(
      /asking http:\/\/127\.0\.0\.1:\d+\/repos\/containers\/oci-delta\/releases\/latest/,
    );
    expect(pin.stdout).toBe('pinned oci-delta 0.6.0 (v0.6.0) for x86_64, aarch64');
    expect(pin.exitCode).toBe(0);
    // --json: the same pin as one object, the assets as the manifest now records them.
    const pinJson = await odh('pin', '--json', '--api-url', server.url, '--manifest', manifest);
    expect(pinJson.exitCode, pinJson.stderr).toBe(0);
    const pinned = JSON.parse(pinJson.stdout) as { version: string; tag: string; assets: object };
    expect(pinned).toMatchObject({ version: '0.6.0', tag: 'v0.6.0' });
    expect(pinned.assets).toEqual(JSON.parse(readFileSync(manifest, 'utf8')).assets);
    expect(Object.keys(pinned.assets)).toEqual(['x86_64', 'aarch64']);

    const cache = path.join(work, 'cache');
    const fetch = await odh(
      'fetch',
      '--if-pinned',
      '--manifest',
      manifest,
      '--cache',
      cache,
      '--arch',
      'x86_64',
      '--json',
    );
    expect(fetch.exitCode).toBe(0);
    const cached = path.join(cache, '0.6.0', 'x86_64', 'oci-delta');
    expect(JSON.parse(fetch.stdout)).toEqual({
      status: 'available',
      path: cached,
      version: '0.6.0',
      source: 'download',
      capabilities: { binaryDiff: true },
    });
    const status = await odh(
      'status',
      '--manifest',
      manifest,
      '--cache',
      cache,
      '--arch',
      'x86_64',
      '--offline',
    );
    expect(status.stdout).toBe(`oci-delta 0.6.0 (cache) ${cached} binary-diff: yes`);
  });

  it('stand-in: --oci-delta uses a local binary; a bad --arch is a usage error', async () => {
    const bin = writeStandinBinary(work, 'local-oci-delta', {
      version: 'oci-delta version 0.5.0',
      binaryDiff: false,
    });
    const status = await odh('status', '--oci-delta', bin);
    expect(status.stdout).toBe(`oci-delta 0.5.0 (local) ${bin} binary-diff: no (older than 0.6.0)`);
    const bad = await odh('fetch', '--arch', 'riscv64');
    expect(bad.exitCode).toBe(2); // usage error (the CLI contract)
    expect(bad.stderr).toMatch(/invalid --arch "riscv64" \(want x86_64 or aarch64\)/);
  });
});
