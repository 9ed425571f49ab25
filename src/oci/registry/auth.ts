import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OdhError } from '../../util/errors.js';

/** A user name and password (or token) for one registry host. */
export interface Credentials {
  username: string;
  password: string;
}

/** A parsed `WWW-Authenticate` challenge (RFC 7235 auth-scheme + auth-params). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header value: `Bearer realm="…",service="…",scope="…"` or
 * `Basic realm="…"`. Parameter names are lower-cased; quoted values unescaped. Only the first
 * challenge is used (registries send one).
 */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header);
  const [, scheme, rest] = m ?? [];
  if (scheme === undefined || rest === undefined) return undefined;
  const params: Record<string, string> = {};
  const re = /\s*([A-Za-z][A-Za-z0-9._-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)/gy;
  let p: RegExpExecArray | null;
  while ((p = re.exec(rest)) !== null && p[0] !== '') {
    const [, name = '', quoted, bare] = p;
    params[name.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? '');
  }
  return { scheme: scheme.toLowerCase(), params };
}

/** `Authorization: Basic …` value. */
export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

/**
 * The auth files consulted, in order (containers-auth.json(5) and Docker's config): the first one
 * holding an entry for the host wins.
 */
export function authFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(path.join(env.HOME || os.homedir(), '.docker', 'config.json'));
  return files;
}

/** Host part of an `auths` key: `https://HOST/v1/`, `HOST`, `HOST/namespace` all name HOST. */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/', 1)[0] ?? '';
}

/**
 * Looks up credentials for `host` (`HOST[:PORT]`) in the auth files: `auths.<host>.auth` is
 * base64 `user:password`. A present but unreadable/ill-formed file is a FORMAT error naming it.
 */
export function findCredentials(host: string, files: string[] = authFiles()): Credentials | undefined {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    let auths: Record<string, { auth?: unknown }>;
    try {
      const o = JSON.parse(text) as { auths?: Record<string, { auth?: unknown }> };
      auths = o.auths ?? {};
    } catch (e) {
      throw new OdhError('FORMAT', `auth file is not JSON: ${(e as Error).message}`, { file });
    }
    for (const [key, entry] of Object.entries(auths)) {
      if (keyHost(key) !== host || typeof entry?.auth !== 'string') continue;
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new OdhError('FORMAT', `auths.${key}.auth is not base64 user:password`, { file });
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}
