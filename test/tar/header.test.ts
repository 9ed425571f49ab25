import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { indexTarFile } from '../../src/tar/index.js';
import {
  decodeHeader,
  decodeNumeric,
  encodeGoHeaders,
  encodePaxRecords,
  encodeUstarHeader,
  parsePaxRecords,
} from '../../src/tar/header.js';
import { hasTool } from '../helpers/tools.js';
import { nth } from '../helpers/must.js';

describe('numeric fields (spec composefs-v2 §3.2)', () => {
  it.each([
    ['0000644\0', 0o644n],
    ['  644 \0', 0o644n],
    ['644\0garbage', 0o644n],
    ['\0\0\0\0\0\0\0\0', 0n],
    ['        ', 0n],
  ])('octal %j', (text, want) => {
    expect(decodeNumeric(Buffer.from(text, 'latin1'), 'f', 0n)).toBe(want);
  });
  it('base-256 positive and negative', () => {
    expect(decodeNumeric(Buffer.from('80000000b2d05e00', 'hex'), 'uid', 0n)).toBe(3000000000n);
    expect(decodeNumeric(Buffer.from('fffffffffffffffffffffc18', 'hex'), 'mtime', 0n)).toBe(-1000n);
    expect(decodeNumeric(Buffer.from('800000000000000200000000', 'hex'), 'size', 0n)).toBe(1n << 33n);
  });
  it('rejects non-octal text with FORMAT naming the field and offset', () => {
    expect(() => decodeNumeric(Buffer.from('0009\0'), 'size', 1024n)).toThrow(
      expect.objectContaining({ code: 'FORMAT', context: { offset: 1024n } }),
    );
  });
});

describe('PAX records', () => {
  it('parses lengths that count their own digits, values as raw bytes', () => {
    const data = Buffer.concat([
      Buffer.from('30 mtime=1234567890.123456789\n'),
      Buffer.from('8 a=b\x00\xff\n', 'latin1'),
    ]);
    const recs = parsePaxRecords(data, 0n);
    expect(recs.map((r) => r.key)).toEqual(['mtime', 'a']);
    expect(nth(recs, 1).value.equals(Buffer.from([0x62, 0, 0xff]))).toBe(true);
    expect(encodePaxRecords(recs).equals(data)).toBe(true);
  });
  it('length crossing a digit boundary', () => {
    // "99 " + key=value + "\n" where the 2-digit length makes the total exactly 99 or 100.
    for (const n of [93, 94, 95, 96, 97]) {
      const rec = encodePaxRecords([{ key: 'k', value: Buffer.alloc(n, 0x61) }]);
      expect(Number(rec.toString().split(' ')[0])).toBe(rec.length);
      expect(nth(parsePaxRecords(rec, 0n), 0).value.length).toBe(n);
    }
  });
  it.each(['3 a=\n', '10 ab\n', 'x a=b\n', '06 a=b\n', '7 a=bc'])('rejects %j', (t) => {
    expect(() => parsePaxRecords(Buffer.from(t), 512n)).toThrow(expect.objectContaining({ code: 'FORMAT' }));
  });
});

describe('USTAR encoder', () => {
  it('splits long names into prefix and name and decodes back', () => {
    const name = `${'a'.repeat(120)}/${'b'.repeat(90)}`;
    const h = encodeUstarHeader({ name, mode: 0o644, size: 5, typeflag: '0' });
    expect(h.subarray(345, 465).toString('latin1').replace(/\0+$/, '')).toBe('a'.repeat(120));
    expect(decodeHeader(h, 0n).name.toString()).toBe(name);
    expect(() => encodeUstarHeader({ name: 'c'.repeat(101), mode: 0, size: 0, typeflag: '0' })).toThrow(
      expect.objectContaining({ code: 'LIMIT' }),
    );
  });

  it('blobs of 8 GiB and more get a Go-style PAX size record; index and GNU tar read them', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-big-'));
    try {
      const size = 1n << 33n; // one more than the octal field holds
      const name = `blobs/sha256/${'e'.repeat(64)}`;
      const hdr = encodeGoHeaders({ name, mode: 0o644, size, typeflag: '0' });
      expect(hdr.length).toBe(1536);
      expect(hdr.subarray(0, 100).toString('latin1').replace(/\0+$/, '')).toBe(
        `blobs/sha256/PaxHeaders.0/${'e'.repeat(64)}`,
      );
      expect(hdr.toString('latin1', 156, 157)).toBe('x');
      expect(hdr.subarray(512, 512 + 20).toString('latin1')).toBe('19 size=8589934592\n\0');
      expect(hdr.subarray(1024 + 124, 1024 + 136).toString('latin1')).toBe('00000000000\0');
      const file = path.join(tmp, 'big.tar');
      const fh = await fs.open(file, 'w');
      await fh.write(hdr, 0, hdr.length, 0);
      await fh.truncate(Number(1536n + size + 1024n)); // sparse: the content is holes
      await fh.close();
      const e = nth(await indexTarFile(file), 0);
      expect(e.path.toString()).toBe(name);
      expect(e.size).toBe(size);
      expect(e.dataOffset).toBe(1536n);
      expect(e.headerOffset).toBe(0n);
      if (hasTool('tar', 'tar')) {
        const listing = execFileSync('tar', ['-tvf', file]).toString();
        expect(listing).toContain('8589934592');
        expect(listing).toContain(name);
      }
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });

  it('smaller sizes keep plain USTAR', () => {
    const h = encodeGoHeaders({ name: 'x', mode: 0o644, size: (1n << 33n) - 1n, typeflag: '0' });
    expect(h.length).toBe(512);
    expect(h.subarray(124, 136).toString('latin1')).toBe('77777777777\0');
  });
});
