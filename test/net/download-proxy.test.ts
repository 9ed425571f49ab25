/**
 * Downloads (src/net/download.ts: the upstream fetcher's) through HTTP(S)_PROXY against stand-ins: a local forward proxy (absolute-form GET and
 * CONNECT tunnels) in front of the stand-in release server, plus an https stand-in origin with a
 * throw-away certificate made by openssl for the CONNECT path.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadToFile } from '../../src/net/download.js';
import { startStandinProxy, type StandinProxy } from '../helpers/standin-proxy.js';
import { hasTool } from '../helpers/tools.js';
import { sha256, startStandinServer, type StandinServer } from '../harness/upstream-standin.js';

const BODY = Buffer.from('#!/bin/sh\n# stand-in oci-delta behind a proxy\nexit 0\n');

let work: string;
let origin: StandinServer;
let proxy: StandinProxy;
beforeEach(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'odh-upstream-proxy-'));
  origin = await startStandinServer({ version: '0.6.0', assets: [{ name: 'oci-delta-x86_64', body: BODY }] });
  proxy = await startStandinProxy();
});
afterEach(async () => {
  await proxy.close();
  await origin.close();
  rmSync(work, { recursive: true, force: true });
});

describe('downloads through a stand-in proxy', () => {
  it('stand-in: http URL via HTTP_PROXY is sent in absolute form, with proxy credentials, redirect followed', async () => {
    const dest = path.join(work, 'bin');
    const p = new URL(proxy.url);
    const env = { HTTP_PROXY: `http://user:p%40ss@${p.host}` };
    const got = await downloadToFile(`${origin.url}/download/v0.6.0/oci-delta-x86_64`, dest, {
      env,
      tries: 1,
    });
    expect(got).toEqual({ size: BODY.length, sha256: sha256(BODY) });
    expect(readFileSync(dest).equals(BODY)).toBe(true);
    const basic = `Basic ${Buffer.from('user:p@ss').toString('base64')}`;
    expect(proxy.seen).toEqual([
      { method: 'GET', target: `${origin.url}/download/v0.6.0/oci-delta-x86_64`, auth: basic },
      { method: 'GET', target: `http://localhost:${origin.port}/storage/oci-delta-x86_64`, auth: basic },
    ]);
  });

  it('stand-in: a proxy user without a password is still sent as Basic credentials', async () => {
    const p = new URL(proxy.url);
    const env = { http_proxy: `http://token@${p.host}` };
    await downloadToFile(`${origin.url}/storage/oci-delta-x86_64`, path.join(work, 'bin'), { env, tries: 1 });
    expect(proxy.seen).toEqual([
      {
        method: 'GET',
        target: `${origin.url}/storage/oci-delta-x86_64`,
        auth: `Basic ${Buffer.from('token:').toString('base64')}`,
      },
    ]);
  });

  it('stand-in: NO_PROXY bypasses the proxy', async () => {
    const env = { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1,localhost' };
    await downloadToFile(`${origin.url}/download/v0.6.0/oci-delta-x86_64`, path.join(work, 'bin'), {
      env,
      tries: 1,
    });
    expect(proxy.seen).toEqual([]);
    expect(origin.requests.length).toBe(2);
  });

  it('stand-in: an unreachable proxy is an UNAVAILABLE error naming it, after the bounded retries', async () => {
    const dead = await startStandinProxy();
    await dead.close();
    const env = { HTTP_PROXY: dead.url };
    await expect(
      downloadToFile(`${origin.url}/storage/oci-delta-x86_64`, path.join(work, 'bin'), {
        env,
        tries: 2,
        backoffMs: 5,
      }),
    ).rejects.toThrow(
      new RegExp(`failed after 2 tries: .*ECONNREFUSED \\(via proxy ${new URL(dead.url).host}\\)`),
    );
    expect(origin.requests).toEqual([]);
  });

  it.skipIf(!hasTool('openssl', 'openssl'))(
    'stand-in: https URL via HTTPS_PROXY goes through a CONNECT tunnel with TLS to the origin',
    async () => {
      const key = path.join(work, 'key.pem');
      const cert = path.join(work, 'cert.pem');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          key,
          '-out',
          cert,
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost,IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const tlsOrigin = https.createServer(
        { key: readFileSync(key), cert: readFileSync(cert) },
        (_req, res) => {
          res.writeHead(200, { 'content-length': String(BODY.length) }).end(BODY);
        },
      );
      await new Promise<void>((r) => tlsOrigin.listen(0, '127.0.0.1', r));
      const port = (tlsOrigin.address() as AddressInfo).port;
      try {
        const env = { HTTPS_PROXY: proxy.url };
        const got = await downloadToFile(`https://localhost:${port}/asset`, path.join(work, 'bin'), {
          env,
          ca: readFileSync(cert),
          tries: 1,
        });
        expect(got).toEqual({ size: BODY.length, sha256: sha256(BODY) });
        expect(proxy.seen).toEqual([{ method: 'CONNECT', target: `localhost:${port}`, auth: undefined }]);

        // The same tunnel without trusting the stand-in CA: the TLS check must fail, not pass silently.
        await expect(
          downloadToFile(`https://127.0.0.1:${port}/asset`, path.join(work, 'bin2'), { env, tries: 1 }),
        ).rejects.toThrow(/self-signed|certificate/);
      } finally {
        tlsOrigin.closeAllConnections();
        await new Promise<void>((r) => tlsOrigin.close(() => r()));
      }
    },
  );
});
