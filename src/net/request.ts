import type { Response } from 'undici';
import { OdhError, isOdhError } from '../util/errors.js';
import { dispatcherFor, loadUndici, type ConnectionOptions } from './proxy.js';
import { TransientError } from './retry.js';

/**
 * One HTTP request through undici (proxies from the environment, see proxy.ts), with a timeout on
 * the response headers and on every body read, and network failures turned into TransientError.
 * Redirects are followed by fetch, which drops Authorization when a redirect leaves the origin.
 */

export type { Response } from 'undici';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** How messages name the request, e.g. `registry HOST: GET /v2/…`. */
  what: string;
}

export interface SendOptions extends ConnectionOptions {
  /** Longest wait for the response headers, ms. */
  timeoutMs: number;
  /** Aborts the request and its body reads (a deadline, the run's signal). */
  signal: AbortSignal;
}

/** The abort controller of each response's own request: a stalled body read aborts it. */
const aborters = new WeakMap<Response, AbortController>();
/** The caller's signal of each response: body reads after it aborted fail with its reason. */
const outerSignals = new WeakMap<Response, AbortSignal>();

/**
 * Sends one request; resolves when the response headers have arrived. The caller must consume or
 * cancel the body (`bodyChunks`, `readBody`, `discard`). A cancelled `signal` rejects with its reason.
 */
export async function sendRequest(req: HttpRequest, opts: SendOptions): Promise<Response> {
  opts.signal.throwIfAborted();
  const url = new URL(req.url);
  const [{ fetch }, { dispatcher, proxy }] = await Promise.all([loadUndici(), dispatcherFor(url, opts)]);
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.timeoutMs);
  try {
    const res = await fetch(url, {
      method: req.method,
      headers: { 'user-agent': 'oci-delta-harness', ...req.headers },
      body: req.body,
      redirect: 'follow',
      signal: AbortSignal.any([ac.signal, opts.signal]),
      dispatcher,
    });
    aborters.set(res, ac);
    outerSignals.set(res, opts.signal);
    return res;
  } catch (e) {
    if (opts.signal.aborted) throw opts.signal.reason;
    const why = ac.signal.aborted ? `no response within ${opts.timeoutMs} ms` : describeNetError(e);
    throw new TransientError(`${req.what}: ${why}${proxy ? ` (via proxy ${proxy.host})` : ''}`);
  } finally {
    clearTimeout(timer);
  }
}

/** 429 and 5xx are worth another try (with the server's Retry-After): throws after dropping the body. */
export async function throwIfTransientStatus(res: Response, what: string): Promise<void> {
  if (res.status !== 429 && res.status < 500) return;
  const retryAfter = Number(res.headers.get('retry-after'));
  await discard(res);
  throw new TransientError(
    `${what} answered HTTP ${res.status}`,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
  );
}

/**
 * The reason of a failed fetch, from the socket/TLS error underneath: its code where the message
 * only repeats it (`ECONNREFUSED`), else the message with the code (`self-signed certificate
 * (DEPTH_ZERO_SELF_SIGNED_CERT)`).
 */
export function describeNetError(e: unknown): string {
  if (isOdhError(e)) return e.message;
  const err = e as Error & { cause?: Error & { code?: string } };
  const cause = err.cause;
  if (!cause) return err.message;
  if (cause.code === undefined) return cause.message;
  return cause.message.includes(cause.code) ? cause.code : `${cause.message} (${cause.code})`;
}

/**
 * The body as chunks; each read must deliver within `timeoutMs` or the transfer is aborted
 * (TransientError), as is a connection reset mid-body.
 */
export async function* bodyChunks(
  res: Response,
  timeoutMs: number,
  what: string,
): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  const reader = res.body.getReader();
  const ac = aborters.get(res);
  const outer = outerSignals.get(res);
  let stalled = false;
  let finished = false;
  try {
    for (;;) {
      const timer = setTimeout(() => {
        stalled = true;
        ac?.abort();
        void reader.cancel().catch(() => {});
      }, timeoutMs);
      let r: { done: boolean; value?: Uint8Array };
      try {
        r = (await reader.read()) as { done: boolean; value?: Uint8Array };
      } catch (e) {
        if (outer?.aborted) throw outer.reason;
        throw new TransientError(
          `${what}: ${stalled ? `transfer stalled for ${timeoutMs} ms` : `transfer broken (${describeNetError(e)})`}`,
        );
      } finally {
        clearTimeout(timer);
      }
      if (stalled) throw new TransientError(`${what}: transfer stalled for ${timeoutMs} ms`);
      if (r.done || r.value === undefined) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    // A consumer that stops early (or an error) must not leave the connection half-read.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Whole body, at most `limit` bytes (LIMIT beyond). */
export async function readBody(
  res: Response,
  limit: number,
  timeoutMs: number,
  what: string,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of bodyChunks(res, timeoutMs, what)) {
    n += c.length;
    if (n > limit) {
      aborters.get(res)?.abort();
      throw new OdhError('LIMIT', `${what} is larger than ${limit} bytes`);
    }
    parts.push(Buffer.from(c.buffer, c.byteOffset, c.length));
  }
  return Buffer.concat(parts);
}

/** Drops a body we do not need (frees the connection). */
export async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}
