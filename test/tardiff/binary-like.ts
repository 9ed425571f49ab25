/**
 * Synthetic but realistic executables for creator tests and the bench: code made of 5-byte
 * "instructions" (an opcode from a small set plus a 32-bit little-endian absolute address into the
 * file), string tables and zero padding. An update inserts and changes a few pieces, which shifts
 * every later address: the case bsdiff's AddData exists for (most bytes differ by a small amount).
 */
import { createHash } from 'node:crypto';

function lcg(seed: string): () => number {
  let s = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

const OPCODES = [0xe8, 0xe9, 0x8b, 0x89, 0x48, 0x0f, 0x74, 0x75];

/** Old version: `size` bytes of code, strings and padding, deterministic in `seed`. */
export function binaryLike(seed: string, size: number): Buffer {
  const rnd = lcg(seed);
  const out = Buffer.alloc(size);
  let p = 0;
  while (p + 5 <= size) {
    const kind = rnd() % 100;
    if (kind < 80) {
      out[p] = OPCODES[rnd() % OPCODES.length]!;
      out.writeUInt32LE(rnd() % size, p + 1);
      p += 5;
    } else if (kind < 95) {
      const word = `sym_${(rnd() % 5000).toString(36)}_${seed.length}\0`;
      p += out.write(word, p, 'latin1');
    } else {
      p += 16 + (rnd() % 48); // zero padding
    }
  }
  return out;
}

/**
 * New version of `old`: `edits` insertions of 1–200 new bytes, then every address in a code
 * instruction moved by the total inserted before its target (as a relinked binary would).
 */
export function relinked(old: Buffer, seed: string, edits: number): Buffer {
  const rnd = lcg(`${seed}/edit`);
  const at = Array.from({ length: edits }, () => rnd() % old.length).sort((a, b) => a - b);
  const parts: Buffer[] = [];
  const shiftAt: Array<[number, number]> = [];
  let from = 0;
  let shift = 0;
  for (const a of at) {
    parts.push(old.subarray(from, a));
    const ins = Buffer.alloc(1 + (rnd() % 200));
    for (let i = 0; i < ins.length; i++) ins[i] = rnd() & 0xff;
    parts.push(ins);
    shift += ins.length;
    shiftAt.push([a, shift]);
    from = a;
  }
  parts.push(old.subarray(from));
  const neu = Buffer.concat(parts);
  const shiftFor = (addr: number) => {
    let s = 0;
    for (const [a, sh] of shiftAt) if (a <= addr) s = sh;
    return s;
  };
  // rewrite addresses where the old code had instructions (found again at their moved offsets)
  for (let p = 0; p + 5 <= old.length;) {
    if (OPCODES.includes(old[p]!) && neu[p + shiftFor(p)] === old[p]) {
      const q = p + shiftFor(p);
      const addr = old.readUInt32LE(p + 1);
      if (q + 5 <= neu.length) neu.writeUInt32LE((addr + shiftFor(addr)) >>> 0, q + 1);
      p += 5;
    } else p++;
  }
  return neu;
}
