/**
 * The one whiteout classifier (src/oci/whiteout.ts). Expected values are the OCI image-spec
 * "Whiteouts" rules as spec oci-delta §5.2 and spec composefs-v2 §3.4 step 4 state them.
 */
import { describe, expect, it } from 'vitest';
import { whiteoutAt, whiteoutOf } from '../../src/oci/whiteout.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const str = (x: Buffer) => x.toString('latin1');

describe('whiteoutOf (one file name)', () => {
  it('opaque marker, plain whiteouts, ordinary names', () => {
    expect(whiteoutOf(b('.wh..wh..opq'))).toEqual({ kind: 'opaque' });
    expect(str((whiteoutOf(b('.wh.passwd')) as { name: Buffer }).name)).toBe('passwd');
    // `.wh..wh.plnk` and similar meta names are plain whiteouts of `.wh.…` names, not opaque
    expect(str((whiteoutOf(b('.wh..wh.plnk')) as { name: Buffer }).name)).toBe('.wh.plnk');
    expect(str((whiteoutOf(b('.wh..kernel')) as { name: Buffer }).name)).toBe('.kernel');
    for (const n of ['passwd', '.wh', 'wh.x', '..wh.x', 'x.wh.y', '', '.WH.x'])
      expect(whiteoutOf(b(n))).toBeNull();
  });
  it('a bare `.wh.` removes the empty name (composefs drops the entry)', () => {
    const w = whiteoutOf(b('.wh.'));
    expect(w?.kind).toBe('remove');
    expect((w as { name: Buffer }).name.length).toBe(0);
  });
  it('works on bytes that are not UTF-8', () => {
    expect((whiteoutOf(Buffer.from([0x2e, 0x77, 0x68, 0x2e, 0xff])) as { name: Buffer }).name).toEqual(
      Buffer.from([0xff]),
    );
  });
});

describe('whiteoutAt (a cleaned member path)', () => {
  it('opaque whiteouts name their directory (empty for the root)', () => {
    const a = whiteoutAt(b('usr/lib/.wh..wh..opq'));
    expect(a?.kind).toBe('opaque');
    expect(str(a!.dir)).toBe('usr/lib');
    const root = whiteoutAt(b('.wh..wh..opq'));
    expect(root?.kind).toBe('opaque');
    expect(root!.dir.length).toBe(0);
  });
  it('plain whiteouts name the path they remove', () => {
    const w = whiteoutAt(b('boot/.wh..kernel'));
    expect(w?.kind).toBe('remove');
    expect(str((w as { path: Buffer }).path)).toBe('boot/.kernel');
    expect(str(w!.dir)).toBe('boot');
    const top = whiteoutAt(b('.wh.etc'));
    expect(str((top as { path: Buffer }).path)).toBe('etc');
    expect(top!.dir.length).toBe(0);
  });
  it('ordinary paths and a bare `.wh.` are not whiteouts; only the last component counts', () => {
    for (const p of ['etc/passwd', 'a/.wh./b', '.wh.dir/file', 'a/.wh.', '.wh.'])
      expect(whiteoutAt(b(p))).toBeNull();
  });
});
