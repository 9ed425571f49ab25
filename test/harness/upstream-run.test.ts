/**
 * The adapters' contract with the upstream binary, checked against stand-in `oci-delta`
 * executables (shell scripts that record argv and exit with a chosen code): capability probe,
 * exact argument vectors of spec oci-delta §6, exit-code handling, timeout and peak RSS.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { helpMentionsBinaryDiff, parseVersionOutput, probeBinary } from '../../harness/upstream/probe.js';
import { upstreamApply, upstreamCreate } from '../../harness/upstream/run.js';
import { OdhError } from '../../src/util/errors.js';
import { writeStandinBinary } from './upstream-standin.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'odh-upstream-run-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function recordedArgv(file: string): string[] {
  const raw = readFileSync(file, 'utf8');
  return raw.split('\0').slice(0, -1);
}

async function failure(p: Promise<unknown>): Promise<OdhError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OdhError);
  return e as OdhError;
}

describe('capability probe (stand-in oci-delta)', () => {
  it('stand-in 0.6.0: version parsed, create --help mentions --binary-diff', async () => {
    const bin = writeStandinBinary(work, 'oci-delta', { version: 'oci-delta version 0.6.0' });
    const p = await probeBinary(bin);
    expect(p).toMatchObject({ ok: true, version: '0.6.0', capabilities: { binaryDiff: true } });
  });

  it('stand-in 0.5.0: no --binary-diff in create --help', async () => {
    const bin = writeStandinBinary(work, 'oci-delta', {
      version: 'oci-delta version 0.5.0',
      binaryDiff: false,
    });
    expect(await probeBinary(bin)).toMatchObject({
      ok: true,
      version: '0.5.0',
      capabilities: { binaryDiff: false },
    });
  });

  it('stand-in with odd --version output: falls back to the text, does not fail', async () => {
    const bin = writeStandinBinary(work, 'oci-delta', { version: 'built from git checkout abcdef' });
    expect(await probeBinary(bin)).toMatchObject({ ok: true, version: 'built from git checkout abcdef' });
  });

  it('version and help parsing tolerate decorations', () => {
    expect(parseVersionOutput('oci-delta version v0.6.0-3-gabc1234\n')).toBe('0.6.0-3-gabc1234');
    expect(parseVersionOutput('oci-delta 0.2.1')).toBe('0.2.1');
    expect(parseVersionOutput('oci-delta version 0.6.0+git.20260901')).toBe('0.6.0+git.20260901');
    expect(parseVersionOutput('no numbers here')).toBeNull();
    expect(helpMentionsBinaryDiff('      --binary-diff string   method')).toBe(true);
    expect(helpMentionsBinaryDiff('      --binary-diffs string')).toBe(false);
    expect(helpMentionsBinaryDiff('see tar-diff -binary-diff')).toBe(false);
  });

  it('stand-in that is not executable, missing, crashing or hanging: not ok, with a reason', async () => {
    const noExec = path.join(work, 'noexec');
    writeFileSync(noExec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    expect(await probeBinary(noExec)).toEqual({ ok: false, reason: `${noExec}: not executable` });

    expect(await probeBinary(path.join(work, 'missing'))).toEqual({
      ok: false,
      reason: `${path.join(work, 'missing')}: no such file`,
    });

    const crash = path.join(work, 'crash');
    writeFileSync(crash, '#!/bin/sh\nkill -SEGV $$\n', { mode: 0o755 });
    expect(await probeBinary(crash)).toEqual({ ok: false, reason: `${crash} --version: killed by SIGSEGV` });

    const garbage = path.join(work, 'garbage');
    writeFileSync(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
    chmodSync(garbage, 0o755);
    const g = await probeBinary(garbage);
    expect(g.ok).toBe(false);
    // execvp hands a file the kernel refuses (ENOEXEC) to /bin/sh, which cannot run it either.
    if (!g.ok) expect(g.reason).toMatch(/garbage --version: exit status 127 \(.*garbage: .*not found\)$/);

    const hang = path.join(work, 'hang');
    writeFileSync(hang, '#!/bin/sh\nexec sleep 30\n', { mode: 0o755 });
    const started = Date.now();
    expect(await probeBinary(hang, { timeoutMs: 300 })).toEqual({
      ok: false,
      reason: `${hang} --version: no answer within 0.3 s`,
    });
    expect(Date.now() - started).toBeLessThan(5000);

    const failing = writeStandinBinary(work, 'help-fails', { binaryDiff: true });
    writeFileSync(
      failing,
      readFileSync(failing, 'utf8').replace(
        'echo "Usage',
        'echo "Error: unknown command" >&2; exit 1; echo "',
      ),
    );
    expect(await probeBinary(failing)).toEqual({
      ok: false,
      reason: `${failing} create --help: exit status 1 (Error: unknown command)`,
    });
  });
});

describe('create/apply argument and exit-code contract (stand-in oci-delta)', () => {
  it('stand-in: create builds `create [--binary-diff X] [--jobs N] OLD NEW OUT` exactly', async () => {
    const argvFile = path.join(work, 'argv');
    const bin = writeStandinBinary(work, 'oci-delta', { argvFile });
    const r = await upstreamCreate(
      bin,
      { old: '/i/old.oci-archive', new: '/i/new.oci-archive', out: '/o/delta.oci-archive' },
      {
        binaryDiff: 'zstd',
        jobs: 2,
      },
    );
    expect(recordedArgv(argvFile)).toEqual([
      'create',
      '--binary-diff',
      'zstd',
      '--jobs',
      '2',
      '/i/old.oci-archive',
      '/i/new.oci-archive',
      '/o/delta.oci-archive',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.argv).toEqual(recordedArgv(argvFile));
    expect(r.seconds).toBeGreaterThan(0);
    // Measured by GNU time or /proc VmHWM: a shell's peak RSS is at least a few hundred KiB.
    expect(r.peakRssKiB).toBeGreaterThan(100);

    await upstreamCreate(bin, { old: 'old', new: 'new', out: 'out' });
    expect(recordedArgv(argvFile)).toEqual(['create', 'old', 'new', 'out']);
  });

  it('stand-in: apply builds `apply --directory DIR DELTA OUT` exactly', async () => {
    const argvFile = path.join(work, 'argv');
    const bin = writeStandinBinary(work, 'oci-delta', { argvFile });
    await upstreamApply(bin, '/d/delta.oci-archive', '/o/out.oci-archive', {
      directory: '/rootfs with space',
    });
    expect(recordedArgv(argvFile)).toEqual([
      'apply',
      '--directory',
      '/rootfs with space',
      '/d/delta.oci-archive',
      '/o/out.oci-archive',
    ]);
  });

  it('stand-in: non-zero exit is UPSTREAM_FAILED quoting the last stderr line', async () => {
    const bin = writeStandinBinary(work, 'oci-delta', {
      exitCode: 1,
      stderr:
        'Processing layers...\nError: diff_id mismatch: expected 0123456789abcdef, got fedcba9876543210',
    });
    const e = await failure(upstreamApply(bin, 'delta', 'out', { directory: '/r' }));
    expect(e.code).toBe('UPSTREAM_FAILED');
    expect(e.message).toBe(
      `oci-delta apply failed with exit status 1: Error: diff_id mismatch: expected 0123456789abcdef, got fedcba9876543210 (file ${bin})`,
    );
  });

  it('stand-in: exit 3 without stderr, a signal and a timeout are UPSTREAM_FAILED too', async () => {
    const three = writeStandinBinary(work, 'three', { exitCode: 3 });
    expect((await failure(upstreamCreate(three, { old: 'a', new: 'b', out: 'c' }))).message).toBe(
      `oci-delta create failed with exit status 3 (file ${three})`,
    );

    const killed = writeStandinBinary(work, 'killed', { extra: 'kill -KILL $$' });
    const k = await failure(upstreamCreate(killed, { old: 'a', new: 'b', out: 'c' }));
    expect(k.code).toBe('UPSTREAM_FAILED');
    expect(k.message).toBe(`oci-delta create killed by SIGKILL (file ${killed})`);

    const slow = writeStandinBinary(work, 'slow', { extra: 'sleep 30' });
    const started = Date.now();
    const t = await failure(upstreamCreate(slow, { old: 'a', new: 'b', out: 'c' }, { timeoutMs: 300 }));
    expect(t.code).toBe('UPSTREAM_FAILED');
    expect(t.message).toBe(`oci-delta create timed out after 0.3 s (file ${slow})`);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stand-in that cannot be executed: UNAVAILABLE, and invalid options are USAGE', async () => {
    const noExec = path.join(work, 'oci-delta');
    writeFileSync(noExec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const e = await failure(upstreamCreate(noExec, { old: 'a', new: 'b', out: 'c' }));
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toBe(`oci-delta create: cannot execute upstream binary (EACCES) (file ${noExec})`);

    const ok = writeStandinBinary(work, 'ok');
    const bad = await failure(
      upstreamCreate(ok, { old: 'a', new: 'b', out: 'c' }, { binaryDiff: 'gzip' as never }),
    );
    expect(bad.code).toBe('USAGE');
    expect((await failure(upstreamApply(ok, 'd', 'o', { directory: '' }))).code).toBe('USAGE');
  });
});
