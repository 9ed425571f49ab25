import type { Readable, Writable } from 'node:stream';

type Stage = Readable | Writable;

/**
 * Pipes `streams` into each other and settles when the last one has finished writing, or at the
 * first error or abort. Unlike `stream/promises` pipeline it never waits for a destroyed stage to
 * report 'close': some Duplex.from(async generator) codecs never do once destroyed mid-stream, which
 * would leave the promise pending with an empty event loop (the process would exit 0 silently).
 */
export function flow(streams: Stage[], signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) return resolve();
      for (const s of streams) s.destroy();
      reject(err);
    };
    const onAbort = () => settle(signal!.reason ?? new Error('aborted'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    for (const s of streams) s.on('error', (e) => settle(e));
    for (let i = 0; i + 1 < streams.length; i++) (streams[i] as Readable).pipe(streams[i + 1] as Writable);
    streams[streams.length - 1]!.on('finish', () => settle());
  });
}
