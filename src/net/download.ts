import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OdhError } from '../util/errors.js';
import { runSignal } from '../util/run.js';
import type { ConnectionOptions } from './proxy.js';
import {
  bodyChunks,
  discard,
  readBody,
  sendRequest,
  throwIfTransientStatus,
  type Response,
} from './request.js';
import { Deadline, TransientError, retrying } from './retry.js';

/**
 * Plain GETs of whole documents and files (the GitHub releases API and its assets, which answer
 * with a 302 to a storage host), on the shared request and retry layer.
 */
export interface DownloadOptions extends ConnectionOptions {
  headers?: Record<string, string>;
  /** Tries per request, first one included. Default 4. */
  tries?: number;
  /** First back-off delay; doubles each retry. Default 500 ms. */
  backoffMs?: number;
  /** Longest wait for response headers and for each body read. Default 30 s. */
  timeoutMs?: number;
  /** Called before each retry (progress on stderr). */
  onRetry?: (attempt: number, reason: string) => void;
  /** Cancels the transfer (default: the run's SIGINT/SIGTERM/SIGHUP signal). */
  signal?: AbortSignal;
}

/** Runs one GET per try; anything but 200 after redirects is final (404 NOT_FOUND, else UNAVAILABLE). */
async function getting<T>(
  url: string,
  o: DownloadOptions,
  kind: { what: string; accept: string },
  use: (res: Response, timeoutMs: number) => Promise<T>,
): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 30_000;
  const deadline = new Deadline(kind.what, undefined, o.signal ?? runSignal());
  return retrying(
    kind.what,
    async (signal) => {
      // identity: the bytes counted and hashed are the bytes served (Content-Length, pinned sha256).
      const headers = { accept: kind.accept, 'accept-encoding': 'identity', ...o.headers };
      const res = await sendRequest(
        { method: 'GET', url, headers, what: `GET ${url}` },
        { timeoutMs, signal, env: o.env, ca: o.ca },
      );
      await throwIfTransientStatus(res, `GET ${res.url}`);
      if (res.status !== 200) {
        await discard(res);
        const code = res.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE';
        throw new OdhError(code, `HTTP ${res.status} from ${res.url}`);
      }
      return use(res, timeoutMs);
    },
    { tries: o.tries ?? 4, backoffMs: o.backoffMs ?? 500, deadline, onRetry: o.onRetry },
  );
}

/** GET a JSON document (bounded to 8 MiB: release listings are small). */
export function getJson(url: string, o: DownloadOptions = {}): Promise<unknown> {
  return getting(url, o, { what: `GET ${url}`, accept: 'application/json' }, async (res, timeoutMs) => {
    const body = await readBody(res, 8 << 20, timeoutMs, `response from ${url}`);
    try {
      return JSON.parse(body.toString('utf8')) as unknown;
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
  o: DownloadOptions & { maxBytes?: number } = {},
): Promise<{ size: number; sha256: string }> {
  const kind = { what: `download ${url}`, accept: 'application/octet-stream' };
  return getting(url, o, kind, async (res, timeoutMs) => {
    const final = res.url;
    const header = res.headers.get('content-length');
    const declared = header !== null ? Number(header) : undefined;
    if (o.maxBytes !== undefined && declared !== undefined && declared > o.maxBytes) {
      await discard(res);
      throw new OdhError(
        'LIMIT',
        `${final} declares ${declared} bytes, more than the expected ${o.maxBytes}`,
      );
    }
    const hash = createHash('sha256');
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (o.maxBytes !== undefined && size > o.maxBytes) {
          cb(new OdhError('LIMIT', `${final} sent more than the expected ${o.maxBytes} bytes`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    const body = Readable.from(bodyChunks(res, timeoutMs, `transfer of ${final}`), { objectMode: false });
    await pipeline(body, counter, createWriteStream(dest));
    if (declared !== undefined && size !== declared) {
      throw new TransientError(`truncated transfer of ${final}: ${size} of ${declared} bytes`);
    }
    return { size, sha256: hash.digest('hex') };
  });
}
