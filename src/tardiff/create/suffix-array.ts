/**
 * Suffix arrays for the bsdiff matcher (spec oci-delta §5.5), built with SA-IS (Nong, Zhang & Chan,
 * "Two efficient algorithms for linear time suffix array construction", 2009): linear time, all
 * state in typed arrays. The reduced problem of each recursion level lives inside the caller's
 * output array, so the memory is the 4-byte-per-position result plus a type bitmap and bucket
 * tables: at most about 4.2 bytes per input byte on top of the 4 bytes of the result.
 */

/** Text of one SA-IS level: the input bytes, or a reduced string of names (a view into a parent SA). */
type Text = Uint8Array | Int32Array;

/**
 * The suffix array of `text` including the empty suffix, as bsdiff searches it: result[0] = n (the
 * empty suffix sorts first), then the start of every non-empty suffix in increasing order.
 */
export function suffixArray(text: Uint8Array): Int32Array {
  const n = text.length;
  if (n >= 0x7fffffff) throw new RangeError(`suffix array: input of ${n} bytes is too large`);
  const sa = new Int32Array(n + 1);
  sa[0] = n;
  sais(text, sa.subarray(1), n, 256);
  return sa;
}

/** Bit i set ⇔ suffix i is S-type (smaller than suffix i+1); the virtual sentinel at n is S. */
class Types {
  private readonly bits: Uint8Array;
  constructor(n: number) {
    this.bits = new Uint8Array((n >>> 3) + 1);
  }
  isS(i: number): boolean {
    return (this.bits[i >>> 3]! & (1 << (i & 7))) !== 0;
  }
  setS(i: number): void {
    this.bits[i >>> 3]! |= 1 << (i & 7);
  }
  /** Leftmost S: S-type with an L-type left neighbour (position 0 never is). */
  isLms(i: number): boolean {
    return i > 0 && this.isS(i) && !this.isS(i - 1);
  }
}

function classify(s: Text, n: number): Types {
  const t = new Types(n);
  // s[n-1] is L: the virtual sentinel after it is smaller than every character
  for (let i = n - 2; i >= 0; i--) {
    const a = s[i]!;
    const b = s[i + 1]!;
    if (a < b || (a === b && t.isS(i + 1))) t.setS(i);
  }
  return t;
}

/** One SA-IS level: its text, length, suffix types and the bucket tables (alphabet-sized). */
interface Level {
  s: Text;
  n: number;
  t: Types;
  counts: Int32Array;
  bkt: Int32Array;
}

/** Bucket boundaries per character into `lv.bkt`: starts (`end` false) or one-past-ends (`end` true). */
function buckets(lv: Level, end: boolean): void {
  const { s, n, counts, bkt: out } = lv;
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[s[i]!]!++;
  let sum = 0;
  for (let c = 0; c < counts.length; c++) {
    sum += counts[c]!;
    out[c] = end ? sum : sum - counts[c]!;
  }
}

/** Induces L-type then S-type suffixes from the seeds placed in `sa` (SA-IS steps 2 and 3). */
function induce(lv: Level, sa: Int32Array): void {
  const { s, n, t, bkt } = lv;
  buckets(lv, false);
  // the virtual sentinel comes first, and the suffix just left of it is L-type
  sa[bkt[s[n - 1]!]!++] = n - 1;
  for (let i = 0; i < n; i++) {
    const j = sa[i]! - 1;
    if (j >= 0 && !t.isS(j)) sa[bkt[s[j]!]!++] = j;
  }
  buckets(lv, true);
  for (let i = n - 1; i >= 0; i--) {
    const j = sa[i]! - 1;
    if (j >= 0 && t.isS(j)) sa[--bkt[s[j]!]!] = j;
  }
}

/** True when the LMS substrings starting at a and b are equal (characters and types). */
function lmsEqual(lv: Level, a: number, b: number): boolean {
  const { s, n, t } = lv;
  for (let d = 0; ; d++) {
    // the substring reaching the sentinel is unique
    if (a + d === n || b + d === n) return false;
    if (s[a + d] !== s[b + d] || t.isS(a + d) !== t.isS(b + d)) return false;
    if (d > 0) {
      const ea = t.isLms(a + d);
      const eb = t.isLms(b + d);
      if (ea || eb) return ea && eb;
    }
  }
}

/** Writes the suffix array of s[0..n) (alphabet [0, k), sentinel implicit) into sa[0..n). */
function sais(s: Text, sa: Int32Array, n: number, k: number): void {
  if (n === 0) return;
  if (n === 1) {
    sa[0] = 0;
    return;
  }
  const t = classify(s, n);
  const bkt = new Int32Array(k);
  const lv: Level = { s, n, t, counts: new Int32Array(k), bkt };

  // 1. LMS positions at their bucket ends, then induce: LMS substrings come out sorted
  sa.fill(-1);
  buckets(lv, true);
  for (let i = 1; i < n; i++) if (t.isLms(i)) sa[--bkt[s[i]!]!] = i;
  induce(lv, sa);

  // 2. the sorted LMS positions to the front, then name the substrings
  let m = 0;
  for (let i = 0; i < n; i++) if (t.isLms(sa[i]!)) sa[m++] = sa[i]!;
  sa.fill(-1, m);
  let names = 0;
  let prev = -1;
  for (let i = 0; i < m; i++) {
    const p = sa[i]!;
    if (prev < 0 || !lmsEqual(lv, prev, p)) names++;
    prev = p;
    // LMS positions are ≥ 2 apart, so p >> 1 gives each its own slot after the first m
    sa[m + (p >>> 1)] = names - 1;
  }
  // the names in text order, packed at the end: the reduced string
  for (let i = n - 1, j = n - 1; i >= m; i--) if (sa[i]! >= 0) sa[j--] = sa[i]!;
  const reduced = sa.subarray(n - m, n);
  const sa1 = sa.subarray(0, m);

  // 3. sort the reduced string's suffixes: directly when the names are unique, else recurse
  if (names < m) sais(reduced, sa1, m, names);
  else for (let i = 0; i < m; i++) sa1[reduced[i]!] = i;

  // 4. the reduced order gives the LMS suffixes' order; seed them and induce the rest
  for (let i = 1, j = 0; i < n; i++) if (t.isLms(i)) reduced[j++] = i;
  for (let i = 0; i < m; i++) sa1[i] = reduced[sa1[i]!]!;
  sa.fill(-1, m);
  buckets(lv, true);
  for (let i = m - 1; i >= 0; i--) {
    const p = sa[i]!;
    sa[i] = -1;
    sa[--bkt[s[p]!]!] = p;
  }
  induce(lv, sa);
}
