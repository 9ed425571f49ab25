import { describe, it, expect } from 'vitest';
import { encodeOp, OpCode, OpReader, OP_NAMES } from '../../src/tardiff/ops.js';
import { isOdhError } from '../../src/util/errors.js';
import { chunked } from './fixtures.js';

const { Data, Open, Copy, AddData, Seek, ZstdDict } = OpCode;

describe('op codes (spec oci-delta §2.2, tar-diff protocol constants §8.3)', () => {
  it('Data 0, Open 1, Copy 2, AddData 3, Seek 4, ZstdDict 5', () => {
    expect([Data, Open, Copy, AddData, Seek, ZstdDict]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(OP_NAMES).toEqual(['Data', 'Open', 'Copy', 'AddData', 'Seek', 'ZstdDict']);
  });

  it('encodes payload ops with their length and Copy/Seek with the operand only', () => {
    expect(encodeOp(Data, Buffer.from('hi')).toString('hex')).toBe('00026869');
    expect(encodeOp(Copy, 300).toString('hex')).toBe('02ac02');
    expect(encodeOp(Seek, 0n).toString('hex')).toBe('0400');
    expect(() => encodeOp(Copy, Buffer.from('x'))).toThrow(TypeError);
    expect(() => encodeOp(Open, 3)).toThrow(TypeError);
  });
});

describe('OpReader', () => {
  const stream = Buffer.concat([
    encodeOp(Open, Buffer.from('a/b')),
    encodeOp(Copy, 1n << 40n),
    encodeOp(Data, Buffer.alloc(1000, 1)),
    encodeOp(AddData, Buffer.from([1, 2, 3])),
    encodeOp(Seek, 7),
    encodeOp(ZstdDict, Buffer.from('zz')),
  ]);

  for (const piece of [1, 2, 7, 4096]) {
    it(`decodes ops and payloads across ${piece}-byte chunks`, async () => {
      const r = new OpReader(chunked(stream, piece));
      const seen: string[] = [];
      for (let op = await r.next(); op; op = await r.next()) {
        let payload = '';
        if (op.name === 'Open' || op.name === 'ZstdDict') payload = (await r.readPayload()).toString();
        if (op.name === 'AddData') payload = (await r.readPayload()).toString('hex');
        if (op.name === 'Data') {
          let n = 0;
          for await (const c of r.payload()) n += c.length;
          payload = String(n);
        }
        seen.push(`${op.index}:${op.name}:${op.size}:${op.offset}:${payload}`);
      }
      expect(seen).toEqual(
        [
          '0:Open:3:0:a/b',
          '1:Copy:1099511627776:5',
          '2:Data:1000:12:1000',
          '3:AddData:3:1015:010203',
          '4:Seek:7:1020',
          '5:ZstdDict:2:1022:zz',
        ].map((x) => (x.split(':').length === 4 ? `${x}:` : x)),
      );
    });
  }

  it('skips payloads the caller did not read', async () => {
    const r = new OpReader(chunked(stream, 3));
    const names: string[] = [];
    for (let op = await r.next(); op; op = await r.next()) names.push(op.name);
    expect(names).toEqual(['Open', 'Copy', 'Data', 'AddData', 'Seek', 'ZstdDict']);
  });

  const failures: [string, Buffer, string, RegExp][] = [
    ['EOF inside the varint', Buffer.from([Copy, 0x80]), 'TRUNCATED', /varint/],
    ['EOF right after the op byte', Buffer.from([Seek]), 'TRUNCATED', /varint/],
    ['EOF inside a payload', Buffer.from([Data, 5, 1, 2]), 'TRUNCATED', /Data payload/],
    [
      'varint overflow',
      Buffer.concat([Buffer.from([Copy]), Buffer.alloc(9, 0xff), Buffer.from([2])]),
      'FORMAT',
      /varint/,
    ],
    ['unknown op', Buffer.from([6, 0]), 'FORMAT', /unexpected tar-diff op 6/],
  ];
  for (const [name, bytes, code, msg] of failures) {
    it(`${name} → ${code}`, async () => {
      const r = new OpReader(chunked(bytes, 1), { layer: 'L' });
      let err: unknown;
      try {
        for (let op = await r.next(); op; op = await r.next());
      } catch (e) {
        err = e;
      }
      expect(isOdhError(err)).toBe(true);
      expect(err).toMatchObject({ code });
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).toMatch(/layer L, op #0/);
    });
  }
});
