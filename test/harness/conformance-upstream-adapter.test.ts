/**
 * The upstream adapters (creators upstream-bsdiff|zstd|auto, applier `upstream` over an extracted
 * rootfs whose output lacks reused layers) driven through a stand-in `oci-delta`: a shell script
 * speaking upstream's CLI (spec oci-delta §6) that runs our own odh create/apply. This checks the
 * adapters' plumbing (argv, capability probe, rootfs extraction, completion by diff_id, RSS
 * measurement), not upstream's behaviour — that needs the real binary (CI fetches it).
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { conformance } from '../../harness/conformance/index.js';
import { REPO_ROOT } from '../helpers/shared.js';

const ODH = path.join(REPO_ROOT, 'dist', 'bin', 'odh.js');
const cacheDir = path.join(os.tmpdir(), 'odh-test-fixture-cache');
const tmp = await mkdtemp(path.join(os.tmpdir(), 'odh-fake-upstream-'));
afterAll(() => rm(tmp, { recursive: true, force: true }));

// bsdiff has no TypeScript creator: the stand-in maps it to copy (tardf1), as upstream's bsdiff is tardf1.
const FAKE = `#!/bin/sh
odh() { exec "${process.execPath}" "${ODH}" "$@"; }
case "$1" in
  --version) echo "oci-delta version 0.6.0-standin"; exit 0 ;;
  create)
    shift
    if [ "$1" = --help ]; then echo "      --binary-diff string   bsdiff, zstd or auto"; exit 0; fi
    mode=zstd
    if [ "$1" = --binary-diff ]; then [ "$2" = bsdiff ] && mode=copy; shift 2; fi
    odh create -q --binary-diff "$mode" "$@" ;;
  apply)
    shift
    [ "$1" = --directory ] || { echo "Error: want --directory" >&2; exit 1; }
    dir="$2"; shift 2
    odh apply --source-dir "$dir" "$1" "$2" ;;
esac
echo "Error: unknown command" >&2
exit 1
`;

describe('upstream adapters with a stand-in oci-delta', () => {
  it('upstream-bsdiff|zstd|auto × ts-image|upstream: every cell ok, reused layers filled, RSS measured', async () => {
    const bin = path.join(tmp, 'oci-delta');
    await writeFile(bin, FAKE);
    await chmod(bin, 0o755);
    const r = await conformance({
      fixtures: ['layer-reuse-reorder'],
      creators: ['upstream'],
      appliers: ['ts-image', 'upstream'],
      ociDelta: bin,
      format: 'v1',
      hash: 'sha512',
      cacheDir,
    });
    expect(r.implementations.filter((i) => i.name.startsWith('upstream'))).toEqual([
      {
        role: 'creator',
        name: 'upstream-bsdiff',
        available: true,
        foreign: true,
        version: '0.6.0-standin',
        path: bin,
      },
      {
        role: 'creator',
        name: 'upstream-zstd',
        available: true,
        foreign: true,
        version: '0.6.0-standin',
        path: bin,
      },
      {
        role: 'creator',
        name: 'upstream-auto',
        available: true,
        foreign: true,
        version: '0.6.0-standin',
        path: bin,
      },
      {
        role: 'applier',
        name: 'upstream',
        available: true,
        foreign: true,
        version: '0.6.0-standin',
        path: bin,
      },
    ]);
    expect(r.cells).toHaveLength(6);
    for (const c of r.cells) {
      expect(c.status, `${c.creator} → ${c.applier}: ${c.reason}`).toBe('ok');
      expect(c.diffIds).toBe('ok');
      expect(c.createPeakRssKiB).toBeGreaterThan(1000);
      if (c.applier === 'upstream') expect(c.applyPeakRssKiB).toBeGreaterThan(1000);
    }
    expect(r.summary.passed).toBe(true);
  });
});
