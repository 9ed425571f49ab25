/**
 * The one tool probe (harness/tool-path.ts) against the shell's own `command -v` (dash, POSIX):
 * same answer for programs on PATH, for names on no PATH entry, and for entries that are a
 * directory or a file without the execute bit, which `command -v` does not report.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findTool } from '../../harness/tool-path.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'odh-tool-path-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** What `command -v NAME` prints with PATH=dirs, or undefined when it fails. */
function commandV(name: string, dirs: string[]): string | undefined {
  try {
    const out = execFileSync('/bin/sh', ['-c', 'command -v "$1"', 'sh', name], {
      env: { PATH: dirs.join(path.delimiter) },
      encoding: 'utf8',
    });
    return out.trim();
  } catch {
    return undefined;
  }
}

describe('findTool agrees with command -v', () => {
  const shadow = path.join(work, 'shadow');
  const exe = path.join(work, 'exe');
  mkdirSync(path.join(shadow, 'tar'), { recursive: true }); // a directory named like a program
  mkdirSync(exe);
  writeFileSync(path.join(shadow, 'plain'), 'not executable\n');
  writeFileSync(path.join(exe, 'plain'), '#!/bin/sh\n');
  chmodSync(path.join(exe, 'plain'), 0o755);
  const system = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);

  for (const name of ['sh', 'tar', 'plain', 'no-such-tool-odh', 'skopeo']) {
    it(`${name}`, () => {
      const dirs = [shadow, exe, ...system];
      expect(findTool(name, dirs)).toBe(commandV(name, dirs));
    });
  }

  it('a file without the execute bit, alone on PATH, is not found', () => {
    expect(commandV('plain', [shadow])).toBeUndefined();
    expect(findTool('plain', [shadow])).toBeUndefined();
  });
});
