import { describe, it, expect } from 'vitest';
import { cleanSourceName, displayName } from '../../src/tardiff/path.js';
import { isOdhError } from '../../src/util/errors.js';

describe('cleanSourceName = Go CleanPath on Linux (spec oci-delta §2.3 upstream vectors)', () => {
  const good: [string, string][] = [
    ['dir/file', 'dir/file'],
    ['/dir/file', 'dir/file'],
    ['dir//file', 'dir/file'],
    ['dir/../file', 'file'],
    ['../file', 'file'],
    ['../../file', 'file'],
    // further lexical cases of Go's filepath.Clean("/" + p)
    ['./a/./b/', 'a/b'],
    ['a/b/../../../c', 'c'],
    ['/../etc/passwd', 'etc/passwd'],
  ];
  for (const [input, output] of good) {
    it(`'${input}' → '${output}'`, () => {
      expect(cleanSourceName(Buffer.from(input)).toString()).toBe(output);
    });
  }

  for (const input of ['', '/', '.', '..', '//', 'a/..', '../..']) {
    it(`'${input}' is invalid`, () => {
      let err: unknown;
      try {
        cleanSourceName(Buffer.from(input));
      } catch (e) {
        err = e;
      }
      expect(isOdhError(err)).toBe(true);
      expect((err as Error).message).toContain(`invalid source name '${input}' in tar-diff`);
    });
  }

  it('keeps non-UTF-8 bytes as they are', () => {
    const name = Buffer.from([0x2f, 0x61, 0xff, 0x2f, 0x2e, 0x2f, 0x62]); // "/a\xff/./b"
    expect(cleanSourceName(name).equals(Buffer.from([0x61, 0xff, 0x2f, 0x62]))).toBe(true);
  });
});

describe('displayName', () => {
  it('shows UTF-8 as text and other bytes as \\xNN', () => {
    expect(displayName(Buffer.from('usr/bin/é'))).toBe('usr/bin/é');
    expect(displayName(Buffer.from([0x61, 0xff, 0x62]))).toBe('a\\xffb');
    expect(displayName(Buffer.from([0xc3]))).toBe('\\xc3');
  });
});
