/**
 * For tests that hold two implementations to the same result (the waiting and the blocking tar
 * readers, decoders and layer paths): what a run gives or how it fails, in a comparable form, and
 * input handed out the way a blocking decoder hands it out.
 */

/** What a run returned, or what it threw. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export async function outcomeOf<T>(run: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** An outcome as compared: the value, or how the failure shows to a user (code, message, context). */
export function shown<T>(o: Outcome<T>): T | { code: unknown; message: unknown; context: unknown } {
  if (o.ok) return o.value;
  const e = o.error as { code?: unknown; message?: unknown; context?: unknown };
  return { code: e.code, message: e.message, context: e.context };
}

/**
 * `chunks` cut into `size`-byte pieces, each copied into the same buffer before it is handed out
 * and overwritten after: a reader that keeps a view into it sees the overwrite.
 */
export function* reusedBuffer(chunks: Iterable<Buffer>, size: number): Generator<Buffer> {
  const scratch = Buffer.alloc(size);
  for (const c of chunks) {
    for (let o = 0; o < c.length; o += size) {
      const n = c.copy(scratch, 0, o, Math.min(c.length, o + size));
      yield scratch.subarray(0, n);
      scratch.fill(0xa5);
    }
  }
}
