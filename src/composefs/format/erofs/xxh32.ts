/**
 * 32-bit xxHash (XXH32), used by the EROFS xattr name filter (spec composefs-v2 §4.3, §8.5).
 * Implemented from the published algorithm description; all arithmetic is mod 2^32.
 */
import { u8 } from '../column.js';

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

function round(acc: number, lane: number): number {
  acc = (acc + Math.imul(lane, P2)) >>> 0;
  return Math.imul(rotl(acc, 13), P1) >>> 0;
}

/** Little-endian u32 at `p` (no DataView: this runs for every xattr of every inode). */
function u32(d: Uint8Array, p: number): number {
  return (u8(d, p) | (u8(d, p + 1) << 8) | (u8(d, p + 2) << 16) | (u8(d, p + 3) << 24)) >>> 0;
}

export function xxh32(data: Uint8Array, seed: number): number {
  const len = data.length;
  let p = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P1 + P2) >>> 0;
    let v2 = (seed + P2) >>> 0;
    let v3 = seed >>> 0;
    let v4 = (seed - P1) >>> 0;
    for (; p + 16 <= len; p += 16) {
      v1 = round(v1, u32(data, p));
      v2 = round(v2, u32(data, p + 4));
      v3 = round(v3, u32(data, p + 8));
      v4 = round(v4, u32(data, p + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (seed + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  for (; p + 4 <= len; p += 4) {
    h = (h + Math.imul(u32(data, p), P3)) >>> 0;
    h = Math.imul(rotl(h, 17), P4) >>> 0;
  }
  for (; p < len; p++) {
    h = (h + Math.imul(u8(data, p), P5)) >>> 0;
    h = Math.imul(rotl(h, 11), P1) >>> 0;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, P3) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
