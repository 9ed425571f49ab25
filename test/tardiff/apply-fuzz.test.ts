import fc from 'fast-check';
import { compress } from 'zstd-napi';
import { describe, it, expect } from 'vitest';
import { encodeOp, OpCode } from '../../src/tardiff/ops.js';
import { isOdhError } from '../../src/util/errors.js';
import { applyToBuffer, MAGIC_V1, MAGIC_V2, MemorySource } from './fixtures.js';

const { Data, Open, Copy, AddData, Seek } = OpCode;

const FILES: Record<string, Buffer> = {
  a: Buffer.from('alpha-bravo-charlie'),
  'dir/b': Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 254, 255]),
  e: Buffer.alloc(0),
};

type ModelOp =
  | { kind: 'data'; bytes: Uint8Array }
  | { kind: 'open'; name: string }
  | { kind: 'copy'; n: number }
  | { kind: 'add'; bytes: Uint8Array }
  | { kind: 'seek'; pos: number };

const opArb: fc.Arbitrary<ModelOp> = fc.oneof(
  fc.record({ kind: fc.constant('data' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({
    kind: fc.constant('open' as const),
    name: fc.constantFrom('a', 'dir/b', 'e', '/a', 'dir//b', '../a', 'x'),
  }),
  fc.record({ kind: fc.constant('copy' as const), n: fc.nat(25) }),
  fc.record({ kind: fc.constant('add' as const), bytes: fc.uint8Array({ maxLength: 12 }) }),
  fc.record({ kind: fc.constant('seek' as const), pos: fc.nat(30) }),
);

/**
 * An independent, deliberately naive reading of spec oci-delta §2.4 (whole buffers, no streaming):
 * the expected output or the error code the applier must give.
 */
function model(ops: ModelOp[]): { out: Buffer } | { code: string } {
  const out: number[] = [];
  let cur: Buffer | null = null;
  let pos = 0;
  const clean = (n: string) =>
    n
      .split('/')
      .filter((p) => p && p !== '.' && p !== '..')
      .join('/');
  for (const op of ops) {
    if (op.kind === 'data') out.push(...op.bytes);
    else if (op.kind === 'open') {
      cur = FILES[clean(op.name)] ?? null;
      if (!cur) return { code: 'NOT_FOUND' };
      pos = 0;
    } else if (!cur) return { code: 'FORMAT' };
    else if (op.kind === 'seek') pos = op.pos;
    else {
      const n = op.kind === 'copy' ? op.n : op.bytes.length;
      if (n > 0 && pos + n > cur.length) return { code: 'TRUNCATED' }; // reading 0 bytes never fails
      for (let i = 0; i < n; i++)
        out.push(op.kind === 'copy' ? cur[pos + i]! : (cur[pos + i]! + op.bytes[i]!) & 0xff);
      pos += n;
    }
  }
  return { out: Buffer.from(out) };
}

function encode(op: ModelOp): Buffer {
  switch (op.kind) {
    case 'data':
      return encodeOp(Data, op.bytes);
    case 'open':
      return encodeOp(Open, Buffer.from(op.name));
    case 'copy':
      return encodeOp(Copy, op.n);
    case 'add':
      return encodeOp(AddData, op.bytes);
    case 'seek':
      return encodeOp(Seek, op.pos);
  }
}

describe('applier against a naive model of spec oci-delta §2.4 (property)', () => {
  it('same output or same error kind for random op sequences and chunkings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 25 }),
        fc.integer({ min: 1, max: 64 }),
        async (ops, piece) => {
          const delta = Buffer.concat([MAGIC_V1, compress(Buffer.concat(ops.map(encode)))]);
          const want = model(ops);
          const got = await applyToBuffer(delta, new MemorySource(FILES), { piece }).then(
            (r) => ({ out: r.out }),
            (e: unknown) => {
              if (!isOdhError(e)) throw e;
              return { code: e.code };
            },
          );
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('hostile input (property)', () => {
  it('random op-stream bytes either apply or fail with an OdhError (never crash or hang)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), async (bytes, v2) => {
        const delta = Buffer.concat([v2 ? MAGIC_V2 : MAGIC_V1, compress(bytes)]);
        await applyToBuffer(delta, new MemorySource(FILES)).catch((e: unknown) => {
          expect(isOdhError(e)).toBe(true);
          expect((e as Error).message).not.toMatch(/\n/);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes after the header (not zstd) fail with an OdhError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 100 }), async (bytes) => {
        await applyToBuffer(Buffer.concat([MAGIC_V2, bytes]), new MemorySource(FILES)).catch((e: unknown) => {
          expect(isOdhError(e)).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('ZstdDict payloads of a frame magic plus random bytes fail with an OdhError or decode', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 60 }), async (bytes) => {
        const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), bytes]);
        const ops = Buffer.concat([encodeOp(Open, Buffer.from('a')), encodeOp(OpCode.ZstdDict, frame)]);
        await applyToBuffer(Buffer.concat([MAGIC_V2, compress(ops)]), new MemorySource(FILES)).catch(
          (e: unknown) => {
            expect(isOdhError(e)).toBe(true);
          },
        );
      }),
      { numRuns: 300 },
    );
  });

  it('AddData of exactly 104857600 bytes passes the limit (then the short stream is TRUNCATED)', async () => {
    const { encodeUvarint } = await import('../../src/tardiff/varint.js');
    const ops = Buffer.concat([
      encodeOp(Open, Buffer.from('a')),
      Buffer.from([AddData]),
      encodeUvarint(104857600),
      Buffer.from([1]),
    ]);
    const err = await applyToBuffer(Buffer.concat([MAGIC_V1, compress(ops)]), new MemorySource(FILES)).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'TRUNCATED' });
  });
});
