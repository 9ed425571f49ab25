import { describe, expect, it } from 'vitest';
import { formatRef, parseRef } from '../../src/oci/ref.js';

describe('parseRef (spec oci-delta §4.1, §9)', () => {
  it.each([
    ['oci-archive:/a/b.tar', { transport: 'oci-archive', path: '/a/b.tar' }],
    ['oci-archive:/a/b.tar:v1', { transport: 'oci-archive', path: '/a/b.tar', name: 'v1' }],
    // NAME is split at the first ':' after the transport: the rest, colons included, is the name.
    ['oci-archive:x.tar:reg.io/img:tag', { transport: 'oci-archive', path: 'x.tar', name: 'reg.io/img:tag' }],
    ['oci-archive:x.tar:@3', { transport: 'oci-archive', path: 'x.tar', index: 3 }],
    ['oci:dir', { transport: 'oci', path: 'dir' }],
    ['oci:dir:latest', { transport: 'oci', path: 'dir', name: 'latest' }],
    ['oci:dir:@0', { transport: 'oci', path: 'dir', index: 0 }],
    // A bare path is an oci-archive path, taken verbatim.
    ['delta.tar', { transport: 'oci-archive', path: 'delta.tar' }],
    ['/x/with:colon.tar', { transport: 'oci-archive', path: '/x/with:colon.tar' }],
    // A file whose name starts like a transport is reachable as ./NAME.
    ['./notes:v1.tar', { transport: 'oci-archive', path: './notes:v1.tar' }],
  ])('%s', (s, want) => {
    expect(parseRef(s)).toEqual({ ...want, raw: s });
  });

  it.each([
    ['docker-daemon:x', 'UNSUPPORTED'],
    ['containers-storage:foo', 'UNSUPPORTED'],
    ['oci-archive:', 'USAGE'],
    ['oci::name', 'USAGE'],
    ['oci:dir:', 'USAGE'],
    ['oci:dir:@x', 'USAGE'],
    ['oci:dir:@-1', 'USAGE'],
    ['oci:dir:@01', 'USAGE'],
    ['', 'USAGE'],
    // Unknown transports are named as such, never taken as a bare path (issue: oci-archve: typo).
    ['oci-archve:x.tar', 'USAGE'],
    ['docker:host/repo', 'USAGE'],
    ['notes:v1.tar', 'USAGE'],
  ])('%s is refused with %s', (s, code) => {
    expect(() => parseRef(s)).toThrow(expect.objectContaining({ code }));
  });

  it('an unknown transport is named in the message', () => {
    expect(() => parseRef('oci-archve:x.tar')).toThrow(/unknown transport "oci-archve"/);
  });

  it('output references cannot select by index', () => {
    expect(() => parseRef('oci:out:@1', { output: true })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
    expect(parseRef('oci:out:name', { output: true }).name).toBe('name');
  });

  it('formatRef round-trips', () => {
    for (const s of ['oci-archive:a.tar', 'oci:d:n:x', 'oci:d:@2']) expect(formatRef(parseRef(s))).toBe(s);
  });
});
