import http from 'node:http';
import { isIP } from 'node:net';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { OdhError } from '../../src/util/errors.js';

/**
 * Proxy support for the downloader. Node 20's built-in fetch ignores HTTPS_PROXY/HTTP_PROXY and
 * does not expose undici's ProxyAgent, and the project adds no npm dependency for it, so requests
 * go through node:http/node:https: plain http URLs are sent to the proxy in absolute form,
 * https URLs through a CONNECT tunnel with TLS to the origin on top of it.
 */

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function defaultPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/**
 * NO_PROXY (curl/Go convention): comma- or space-separated hosts; `*` matches all; an entry matches
 * the host itself and its subdomains (a leading `.` is optional); `host:port` also requires the port.
 */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = defaultPort(target);
  for (let entry of noProxy.split(/[\s,]+/)) {
    entry = entry.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    let entryPort: number | undefined;
    const m = /^(.*):(\d+)$/.exec(entry);
    if (m && !m[1].includes(':')) {
      entry = m[1];
      entryPort = Number(m[2]);
    }
    entry = entry.replace(/^\[|\]$/g, '').replace(/^\*?\./, '');
    if (entryPort !== undefined && entryPort !== port) continue;
    if (host === entry || host.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The proxy to use for `target` from HTTPS_PROXY/HTTP_PROXY/NO_PROXY (either case); null: direct. */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv = process.env): URL | null {
  if (bypassesProxy(target, envValue(env, 'no_proxy'))) return null;
  const raw = target.protocol === 'https:' ? envValue(env, 'https_proxy') : envValue(env, 'http_proxy');
  if (!raw) return null;
  try {
    const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`scheme ${u.protocol}`);
    return u;
  } catch (e) {
    throw new OdhError('USAGE', `invalid proxy setting ${JSON.stringify(raw)}: ${(e as Error).message}`);
  }
}

function proxyAuth(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** Opens a CONNECT tunnel through `proxy` to host:port; resolves with the raw tunnel socket. */
function openTunnel(proxy: URL, host: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const mod = proxy.protocol === 'https:' ? https : http;
    const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const req = mod.request({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: defaultPort(proxy),
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...proxyAuth(proxy) },
      timeout: timeoutMs,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} refused CONNECT ${authority}: HTTP ${res.statusCode}`));
        return;
      }
      resolve(socket);
    });
    req.on('timeout', () => req.destroy(new Error(`proxy ${proxy.host}: CONNECT timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Extra CAs are added to Node's bundled roots, not used instead of them. */
function tlsCa(ca: string | Buffer | undefined): { ca?: (string | Buffer)[] } {
  return ca === undefined ? {} : { ca: [...tls.rootCertificates, ca] };
}

export interface RequestTarget {
  url: URL;
  headers: Record<string, string>;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  /** Extra trusted CA certificates (PEM) for https origins, e.g. a mirror with a private CA. */
  ca?: string | Buffer;
}

/** Sends one GET (no redirect handling) directly or through the configured proxy. */
export async function sendGet(t: RequestTarget): Promise<http.IncomingMessage> {
  const proxy = proxyFor(t.url, t.env);
  const host = t.url.hostname.replace(/^\[|\]$/g, '');
  const port = defaultPort(t.url);
  let options: https.RequestOptions;
  let mod: typeof http | typeof https = t.url.protocol === 'https:' ? https : http;
  if (!proxy) {
    options = { host, port, path: `${t.url.pathname}${t.url.search}`, headers: t.headers, ...tlsCa(t.ca) };
  } else if (t.url.protocol === 'http:') {
    // Absolute-form request line to the proxy (RFC 9112 §3.2.2).
    mod = proxy.protocol === 'https:' ? https : http;
    options = {
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: defaultPort(proxy),
      path: t.url.href,
      headers: { ...t.headers, host: t.url.host, ...proxyAuth(proxy) },
    };
  } else {
    const tunnel = await openTunnel(proxy, host, port, t.timeoutMs);
    options = {
      host,
      port,
      path: `${t.url.pathname}${t.url.search}`,
      headers: t.headers,
      // `host` is what the certificate is checked against; SNI carries names only (RFC 6066 §3).
      createConnection: () =>
        tls.connect({ socket: tunnel, host, servername: isIP(host) ? undefined : host, ...tlsCa(t.ca) }),
    };
  }
  return new Promise((resolve, reject) => {
    const req = mod.request({ ...options, method: 'GET', timeout: t.timeoutMs }, resolve);
    req.on('timeout', () => req.destroy(new Error(`no data from ${t.url.host} for ${t.timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}
