/**
 * Proxies from the environment (src/net/proxy.ts): the selection rules, and a real registry pull by
 * the built `odh` through a stand-in HTTP proxy named by HTTP_PROXY, bypassed by NO_PROXY.
 *
 * Loopback is not special (as in undici and curl; Go's net/http differs and never proxies
 * loopback): the Debian `docker-registry` here listens on 127.0.0.1 over plain http, so HTTP_PROXY,
 * not HTTPS_PROXY, is the one that applies, and the proxy carries the requests in absolute form.
 * A second registry serves https (a throw-away certificate made by openssl, trusted through
 * NODE_EXTRA_CA_CERTS): HTTPS_PROXY then carries the pull through a CONNECT tunnel.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixture, type BuiltFixture } from '../../fixtures/build.js';
import { bypassesProxy, proxyFor } from '../../src/net/proxy.js';
import { openManifest } from '../../src/oci/image.js';
import { startStandinProxy, type StandinProxy } from '../helpers/standin-proxy.js';
import { hasTool } from '../helpers/tools.js';
import { fastClient, pushRef, SMALL_PAIR } from '../registry/helpers.js';
import { startRegistry, type TestRegistry } from '../registry/registry-process.js';
import { runOdh } from '../reliability/run.js';

describe('proxy selection', () => {
  it('NO_PROXY: exact host, subdomains, leading dot, port, wildcard', () => {
    const u = (s: string) => new URL(s);
    expect(bypassesProxy(u('https://github.com/x'), 'github.com')).toBe(true);
    expect(bypassesProxy(u('https://api.github.com/x'), 'github.com')).toBe(true);
    expect(bypassesProxy(u('https://api.github.com/x'), '.github.com')).toBe(true);
    expect(bypassesProxy(u('https://notgithub.com/x'), 'github.com')).toBe(false);
    expect(bypassesProxy(u('http://127.0.0.1:8080/x'), 'localhost, 127.0.0.1:8080')).toBe(true);
    expect(bypassesProxy(u('http://127.0.0.1:8081/x'), '127.0.0.1:8080')).toBe(false);
    expect(bypassesProxy(u('https://example.org/'), '*')).toBe(true);
    expect(bypassesProxy(u('https://example.org/'), undefined)).toBe(false);
  });

  it('HTTPS_PROXY for https, HTTP_PROXY for http, either case, scheme optional', () => {
    const env = {
      https_proxy: 'proxy.example:3128',
      HTTP_PROXY: 'http://p2.example:80',
      NO_PROXY: 'internal',
    };
    expect(proxyFor(new URL('https://github.com/'), env)?.href).toBe('http://proxy.example:3128/');
    expect(proxyFor(new URL('http://github.com/'), env)?.href).toBe('http://p2.example/');
    expect(proxyFor(new URL('https://a.internal/'), env)).toBeNull();
    expect(proxyFor(new URL('https://github.com/'), {})).toBeNull();
  });
});

const haveRegistry = hasTool('docker-registry', 'docker-registry');

/** `odh composefs id` of the local copy of an image: what every pull through a proxy must print too. */
async function localImageId(ref: string, tmp: string): Promise<string> {
  const r = await runOdh(['composefs', 'id', ref], { TMPDIR: tmp });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/** Stops what a suite started (each may be missing when its start failed). */
async function stopAll(proxy?: StandinProxy, reg?: TestRegistry, tmp?: string): Promise<void> {
  await proxy?.close();
  await reg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

describe.skipIf(!haveRegistry)(
  'odh pulls from a registry through HTTP_PROXY (docker-registry 2.8, stand-in proxy)',
  () => {
    let reg: TestRegistry;
    let proxy: StandinProxy;
    let pair: BuiltFixture;
    let tmp: string;
    /** Paths under /v2/ the pull must fetch: the manifest by tag, the config and every layer. */
    let wanted: string[];
    /** `odh composefs id` of the local copy of the image: what every pull must print too. */
    let localId: string;
    const repo = 'proxy/image';

    beforeAll(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'odh-proxy-'));
      reg = await startRegistry();
      proxy = await startStandinProxy();
      pair = await buildFixture(SMALL_PAIR);
      await pushRef(fastClient(reg.host), repo, pair.new.ref, 'new');
      const m = await openManifest(pair.new.ref);
      await m.reader.close();
      wanted = [
        `/v2/${repo}/manifests/new`,
        ...[m.manifest.config, ...m.manifest.layers].map((d) => `/v2/${repo}/blobs/${d.digest}`),
      ];
      localId = await localImageId(pair.new.ref, tmp);
    }, 300_000);
    afterAll(() => stopAll(proxy, reg, tmp));

    const pull = (env: Record<string, string>) =>
      runOdh(['composefs', 'id', `docker://${reg.host}/${repo}:new`], { TMPDIR: tmp, ...env });

    it('HTTP_PROXY: every request goes through the proxy (absolute form), the image ID is the local one', async () => {
      proxy.seen.length = 0;
      const r = await pull({ HTTP_PROXY: proxy.url });
      expect(r.code, r.stderr).toBe(0);
      // Progress only: no warning from the proxy machinery (undici's EnvHttpProxyAgent prints one).
      expect(r.stderr).not.toMatch(/warning|\(node:/i);
      expect(r.stdout).toBe(localId);
      const targets = proxy.seen.map((s) => `${s.method} ${s.target}`);
      for (const p of wanted) expect(targets).toContain(`GET http://${reg.host}${p}`);
      for (const s of proxy.seen) expect(s.target.startsWith(`http://${reg.host}/v2/`)).toBe(true);
    });

    it('NO_PROXY naming the registry host (or host:port) bypasses the proxy', async () => {
      for (const noProxy of ['127.0.0.1', `localhost,${reg.host}`]) {
        proxy.seen.length = 0;
        const r = await pull({ HTTP_PROXY: proxy.url, NO_PROXY: noProxy });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toBe(localId);
        expect(proxy.seen).toEqual([]);
      }
    });

    it('HTTPS_PROXY alone does not apply to a plain-http registry; a dead HTTP_PROXY fails, naming the proxy', async () => {
      proxy.seen.length = 0;
      const r = await pull({ HTTPS_PROXY: proxy.url });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(localId);
      expect(proxy.seen).toEqual([]);

      const dead = await startStandinProxy();
      await dead.close();
      const d = await pull({ HTTP_PROXY: dead.url });
      expect(d.code).toBe(1);
      expect(d.stderr.trim().split('\n')).toHaveLength(1);
      expect(d.stderr).toContain(`ECONNREFUSED (via proxy ${new URL(dead.url).host})`);
    });
  },
);

describe.skipIf(!haveRegistry || !hasTool('openssl', 'openssl') || !hasTool('skopeo', 'skopeo'))(
  'odh pulls from an https registry through HTTPS_PROXY (CONNECT tunnel, TLS to the registry)',
  () => {
    let reg: TestRegistry;
    let proxy: StandinProxy;
    let tmp: string;
    let cert: string;
    let localId: string;
    const repo = 'proxy/tls';

    beforeAll(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'odh-proxy-tls-'));
      cert = path.join(tmp, 'cert.pem');
      const key = path.join(tmp, 'key.pem');
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat(
          ['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'],
          ['-addext', 'subjectAltName=IP:127.0.0.1'],
        ),
        { stdio: 'ignore' },
      );
      reg = await startRegistry({ tls: { certificate: cert, key } });
      proxy = await startStandinProxy();
      const pair = await buildFixture(SMALL_PAIR);
      // Pushed by skopeo, straight to the registry (no proxy variables, certificate not checked).
      execFileSync(
        'skopeo',
        ['copy', '-q', '--dest-tls-verify=false', pair.new.ref, `docker://${reg.host}/${repo}:new`],
        { env: { PATH: process.env.PATH ?? '', HOME: tmp }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      localId = await localImageId(pair.new.ref, tmp);
    }, 300_000);
    afterAll(() => stopAll(proxy, reg, tmp));

    const pull = (env: Record<string, string>) =>
      runOdh(['composefs', 'id', '--tls-verify', 'true', `docker://${reg.host}/${repo}:new`], {
        TMPDIR: tmp,
        ...env,
      });

    it('HTTPS_PROXY: only CONNECT tunnels to the registry reach the proxy; the image ID is the local one', async () => {
      proxy.seen.length = 0;
      const r = await pull({ HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: cert });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(localId);
      expect(proxy.seen.length).toBeGreaterThan(0);
      for (const s of proxy.seen) expect(s).toEqual({ method: 'CONNECT', target: reg.host, auth: undefined });
    });

    it('through the tunnel the registry certificate is still checked: untrusted, the pull fails', async () => {
      proxy.seen.length = 0;
      const r = await pull({ HTTPS_PROXY: proxy.url });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/certificate/i);
      expect(r.stderr).toContain(`(via proxy ${new URL(proxy.url).host})`);
      expect(proxy.seen.length).toBeGreaterThan(0);
    });
  },
);
