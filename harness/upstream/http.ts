import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { OdhError } from '../../src/util/errors.js';
import { sendGet } from './proxy.js';

/**
 * GET with redirects, bounded retries and exact-size downloads, for the GitHub releases API and
 * release assets (asset downloads answer with a 302 to a storage host).
 */
export interface HttpOptions {
  headers?: Record<string, string>;
  /** Tries per request, first one included. Default 4. */
  tries?: number;
  /** First back-off delay; doubles each retry. Default 500 ms. */
  backoffMs?: number;
  /** Idle socket timeout. Default 30 s. */
  timeoutMs?: number;
  /** Proxy environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM) for https origins. */
  ca?: string | Buffer;
  /** Called before each retry (progress on stderr). */
  onRetry?: (attempt: number, reason: string) => void;
}

const MAX_REDIRECTS = 8;

/** A failure worth retrying (connection error, 5xx, truncated body) vs a final one (4xx, mismatch). */
class Transient extends Error {}

function hostOf(u: URL): string {
  return u.host.toLowerCase();
}

/** Follows redirects; credentials (Authorization) are sent only to the host they were meant for. */
async function getFollowing(url: string, o: HttpOptions): Promise<{ res: http.IncomingMessage; url: URL }> {
  const origin = new URL(url);
  let current = origin;
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') {
      throw new OdhError('UNSUPPORTED', `cannot download ${current.href}: scheme ${current.protocol}`);
    }
    const headers: Record<string, string> = { 'user-agent': 'oci-delta-harness', ...(o.headers ?? {}) };
    if (hostOf(current) !== hostOf(origin)) delete headers.authorization;
    let res: http.IncomingMessage;
    try {
      res = await sendGet({ url: current, headers, timeoutMs: o.timeoutMs ?? 30_000, env: o.env, ca: o.ca });
    } catch (e) {
      if (e instanceof OdhError) throw e;
      throw new Transient(`${current.host}: ${(e as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      res.resume();
      const loc = res.headers.location;
      if (!loc) throw new OdhError('FORMAT', `HTTP ${status} without Location from ${current.href}`);
      if (hop >= MAX_REDIRECTS)
        throw new OdhError('LIMIT', `more than ${MAX_REDIRECTS} redirects from ${url}`);
      current = new URL(loc, current);
      continue;
    }
    if (status >= 500 || status === 429) {
      res.resume();
      throw new Transient(`HTTP ${status} from ${current.href}`);
    }
    if (status !== 200) {
      res.resume();
      const code = status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE';
      throw new OdhError(code, `HTTP ${status} from ${current.href}`);
    }
    return { res, url: current };
  }
}

async function withRetries<T>(what: string, o: HttpOptions, attempt: () => Promise<T>): Promise<T> {
  const tries = Math.max(1, o.tries ?? 4);
  let delay = o.backoffMs ?? 500;
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof Transient)) throw e;
      if (i >= tries)
        throw new OdhError('UNAVAILABLE', `${what}: ${e.message} (gave up after ${tries} tries)`);
      o.onRetry?.(i, e.message);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** GET a JSON document (bounded to 8 MiB: release listings are small). */
export function getJson(url: string, o: HttpOptions = {}): Promise<unknown> {
  const limit = 8 * 2 ** 20;
  return withRetries(`GET ${url}`, o, async () => {
    const { res } = await getFollowing(url, {
      ...o,
      headers: { accept: 'application/json', ...(o.headers ?? {}) },
    });
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > limit) {
          res.destroy();
          throw new OdhError('LIMIT', `response from ${url} larger than ${limit} bytes`);
        }
        chunks.push(c);
      }
    } catch (e) {
      if (e instanceof OdhError) throw e;
      throw new Transient(`reading ${url}: ${(e as Error).message}`);
    }
    if (!res.complete) throw new Transient(`truncated response from ${url}`);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    } catch (e) {
      throw new OdhError('FORMAT', `response from ${url} is not JSON: ${(e as Error).message}`);
    }
  });
}

/**
 * Streams `url` into `dest` (created or truncated) while hashing. A body shorter than its
 * Content-Length, or a connection dropped mid-body, is retried from scratch; a body longer than
 * `maxBytes` is refused. Returns the size and sha256 of what was written.
 */
export function downloadToFile(
  url: string,
  dest: string,
  o: HttpOptions & { maxBytes?: number } = {},
): Promise<{ size: number; sha256: string }> {
  return withRetries(`download ${url}`, o, async () => {
    const { res, url: final } = await getFollowing(url, {
      ...o,
      headers: { accept: 'application/octet-stream', ...(o.headers ?? {}) },
    });
    const declared =
      res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
    if (o.maxBytes !== undefined && declared !== undefined && declared > o.maxBytes) {
      res.resume();
      throw new OdhError(
        'LIMIT',
        `${final.href} declares ${declared} bytes, more than the expected ${o.maxBytes}`,
      );
    }
    const hash = createHash('sha256');
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (o.maxBytes !== undefined && size > o.maxBytes) {
          cb(new OdhError('LIMIT', `${final.href} sent more than the expected ${o.maxBytes} bytes`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, counter, createWriteStream(dest));
    } catch (e) {
      if (e instanceof OdhError) throw e;
      throw new Transient(`transfer of ${final.href} broke after ${size} bytes: ${(e as Error).message}`);
    }
    if (!res.complete || (declared !== undefined && size !== declared)) {
      throw new Transient(`truncated transfer of ${final.href}: ${size} of ${declared ?? '?'} bytes`);
    }
    return { size, sha256: hash.digest('hex') };
  });
}
