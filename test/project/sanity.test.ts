import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/shared.js';
import { OdhError } from '../../src/util/errors.js';

describe('OdhError', () => {
  it('keeps the code and names where the fault is, on one line', () => {
    const e = new OdhError('FORMAT', 'bad\nthing', { layer: 'sha256:ab', op: 3, offset: 10n });
    expect(e.code).toBe('FORMAT');
    expect(e.message).toBe('bad thing (layer sha256:ab, op #3, offset 10)');
  });
});

describe('package', () => {
  it('declares the odh bin and the scripts the README names', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin.odh).toBe('dist/bin/odh.js');
    for (const s of ['build', 'prepare', 'test', 'lint', 'bench', 'start'])
      expect(pkg.scripts[s]).toBeTruthy();
  });
});
