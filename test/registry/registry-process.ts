import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A Debian `docker-registry` (distribution 2.8) serving on loopback from a temp directory (http or https). */
export interface TestRegistry {
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RegistryConfig {
  /** An htpasswd file: the registry then demands Basic auth. */
  htpasswd?: string;
  /** PEM files: the registry then serves https only, with this certificate. */
  tls?: { certificate: string; key: string };
}

/** Status of GET /v2/ (http, or https trusting the registry's own certificate), or undefined. */
async function probe(host: string, tls: RegistryConfig['tls']): Promise<number | undefined> {
  if (!tls) {
    const res = await fetch(`http://${host}/v2/`);
    await res.body?.cancel();
    return res.status;
  }
  const ca = await fs.readFile(tls.certificate);
  return new Promise((resolve, reject) => {
    https
      .get(`https://${host}/v2/`, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode);
      })
      .on('error', reject);
  });
}

/** Starts `/usr/bin/docker-registry serve CONFIG.yml` and waits until `/v2/` answers. */
export async function startRegistry(cfg: RegistryConfig = {}): Promise<TestRegistry> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'odh-registry-'));
  const port = await freePort();
  const tls = cfg.tls ? `  tls:\n    certificate: ${cfg.tls.certificate}\n    key: ${cfg.tls.key}\n` : '';
  const auth = cfg.htpasswd ? `auth:\n  htpasswd:\n    realm: odh-test\n    path: ${cfg.htpasswd}\n` : '';
  const config =
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\n` +
    `http:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`;
  const file = path.join(dir, 'config.yml');
  await fs.writeFile(file, config);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', file], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    try {
      const status = await probe(host, cfg.tls);
      if (status === 200 || status === 401) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    port,
    dir,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}
