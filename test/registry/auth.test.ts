import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authFiles, findCredentials, parseChallenge } from '../../src/oci/registry/auth.js';
import { RegistryClient } from '../../src/oci/registry/client.js';
import { hasTool } from '../helpers/tools.js';
import { startFront } from './front.js';
import { built, pushRef } from './helpers.js';
import { startRegistry, type TestRegistry } from './registry-process.js';
import { nth } from '../helpers/must.js';

const haveRegistry = hasTool('docker-registry', 'docker-registry');

/** A bcrypt htpasswd line from the system crypt(3) (libxcrypt `$2b$`), through perl. */
function htpasswdLine(user: string, password: string): string {
  const salt = '$2b$05$' + 'odhtestsaltodhtestsalt'.slice(0, 22);
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, salt], {
    encoding: 'utf8',
  });
  if (!hash.startsWith('$2b$05$')) throw new Error(`crypt(3) has no bcrypt here: ${hash}`);
  return `${user}:${hash}\n`;
}

describe('WWW-Authenticate challenges and auth files', () => {
  it('parses Bearer and Basic challenges', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example/token',
        service: 'registry.example',
        scope: 'repository:a/b:pull,push',
      },
    });
    expect(parseChallenge('Basic realm="odh \\"test\\""')).toEqual({
      scheme: 'basic',
      params: { realm: 'odh "test"' },
    });
    expect(parseChallenge('')).toBeUndefined();
  });

  it('reads auths.<host>.auth from REGISTRY_AUTH_FILE first, then the other files', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-authfile-'));
    try {
      const a = path.join(dir, 'a.json');
      const b = path.join(dir, 'b.json');
      const enc = (s: string) => Buffer.from(s).toString('base64');
      await fs.writeFile(
        a,
        JSON.stringify({ auths: { 'reg.example:5000': { auth: enc('alice:pw:with:colons') } } }),
      );
      await fs.writeFile(
        b,
        JSON.stringify({ auths: { 'https://other.example/v1/': { auth: enc('bob:x') } } }),
      );
      const files = authFiles({ REGISTRY_AUTH_FILE: a, XDG_RUNTIME_DIR: '/nonexistent', HOME: dir });
      expect(files).toEqual([
        a,
        '/nonexistent/containers/auth.json',
        path.join(dir, '.docker', 'config.json'),
      ]);
      expect(findCredentials('reg.example:5000', [a, b])).toEqual({
        username: 'alice',
        password: 'pw:with:colons',
      });
      expect(findCredentials('other.example', [a, b])).toEqual({ username: 'bob', password: 'x' });
      expect(findCredentials('nowhere.example', [a, b])).toBeUndefined();
      await fs.writeFile(a, '{not json');
      expect(() => findCredentials('x', [a])).toThrow(/^auth file is not JSON: .*\(file .*a\.json\)$/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!haveRegistry || !hasTool('perl', 'perl-base'))('registry authentication (loopback)', () => {
  let basicReg: TestRegistry;
  let openReg: TestRegistry;
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-regauth-'));
    const htpasswd = path.join(dir, 'htpasswd');
    await fs.writeFile(htpasswd, htpasswdLine('odh', 's3cret'));
    basicReg = await startRegistry({ htpasswd });
    openReg = await startRegistry();
  });
  afterAll(async () => {
    await basicReg?.stop();
    await openReg?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('Basic (htpasswd): right credentials push and pull, wrong or none get a clear 401 message', async () => {
    const f = await built();
    const good = new RegistryClient(basicReg.host, {
      tlsVerify: false,
      credentials: { username: 'odh', password: 's3cret' },
    });
    expect((await pushRef(good, 'auth/basic', f.new.ref, 'new')).digest).toBe(f.new.manifestDigest);
    expect((await good.getManifest('auth/basic', 'new')).digest).toBe(f.new.manifestDigest);

    const msg = `authentication failed for ${basicReg.host} (check credentials)`;
    const wrong = new RegistryClient(basicReg.host, {
      tlsVerify: false,
      credentials: { username: 'odh', password: 'nope' },
    });
    await expect(wrong.getManifest('auth/basic', 'new')).rejects.toThrow(msg);
    const anonymous = new RegistryClient(basicReg.host, { tlsVerify: false, credentials: null });
    await expect(anonymous.getManifest('auth/basic', 'new')).rejects.toThrow(msg);

    // Credentials from REGISTRY_AUTH_FILE when none are given.
    const authFile = path.join(dir, 'auth.json');
    await fs.writeFile(
      authFile,
      JSON.stringify({ auths: { [basicReg.host]: { auth: Buffer.from('odh:s3cret').toString('base64') } } }),
    );
    const saved = process.env.REGISTRY_AUTH_FILE;
    process.env.REGISTRY_AUTH_FILE = authFile;
    try {
      const fromFile = new RegistryClient(basicReg.host, { tlsVerify: false });
      expect((await fromFile.getManifest('auth/basic', 'new')).digest).toBe(f.new.manifestDigest);
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
      else process.env.REGISTRY_AUTH_FILE = saved;
    }
  });

  it('Bearer: the challenge leads to a token fetched with Basic credentials; wrong ones get a clear 401', async () => {
    const f = await built();
    const tokenRequests: URLSearchParams[] = [];
    const issued = 'tok-' + Math.random().toString(36).slice(2);
    const front = await startFront(openReg.host, (req, res, forward) => {
      const url = new URL(req.url!, 'http://front');
      if (url.pathname === '/token') {
        tokenRequests.push(url.searchParams);
        const ok = req.headers.authorization === `Basic ${Buffer.from('odh:s3cret').toString('base64')}`;
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
        res.end(ok ? JSON.stringify({ token: issued, expires_in: 300 }) : '{}');
        return;
      }
      if (req.headers.authorization !== `Bearer ${issued}`) {
        const repo = /^\/v2\/(.+?)\/(?:blobs|manifests|referrers)\//.exec(url.pathname)?.[1] ?? '';
        const scope = repo
          ? `,scope="repository:${repo}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}"`
          : '';
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="odh-test"${scope}`,
        });
        res.end();
        return;
      }
      forward();
    });
    try {
      const good = new RegistryClient(front.host, {
        tlsVerify: false,
        credentials: { username: 'odh', password: 's3cret' },
      });
      expect((await pushRef(good, 'auth/bearer', f.new.ref, 'new')).digest).toBe(f.new.manifestDigest);
      expect((await good.getManifest('auth/bearer', 'new')).digest).toBe(f.new.manifestDigest);
      expect(tokenRequests.length).toBeGreaterThan(0);
      expect(nth(tokenRequests, 0).get('service')).toBe('odh-test');
      expect(tokenRequests.flatMap((p) => p.getAll('scope'))).toContain('repository:auth/bearer:pull,push');

      const wrong = new RegistryClient(front.host, {
        tlsVerify: false,
        credentials: { username: 'odh', password: 'bad' },
      });
      await expect(wrong.getManifest('auth/bearer', 'new')).rejects.toThrow(
        `authentication failed for ${front.host} (check credentials)`,
      );
    } finally {
      await front.stop();
    }
  });
});
