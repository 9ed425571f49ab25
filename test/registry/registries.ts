/**
 * Every registry the registry tests can run against here: Debian's `docker-registry` (distribution
 * 2.8, no Referrers API) as a local process, and, where a Docker engine is reachable (GitHub's
 * runners), zot and distribution v3 through testcontainers (both serve the OCI Referrers API, so
 * discovery is tested for real, not via the tag-schema fallback alone). An unavailable registry is a
 * loud skip with its reason, never a pass; in CI the local one must exist, the Docker ones need not
 * (Docker is not part of .ci/run's machine).
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { recordSkip } from '../helpers/skip-log.js';
import { hasTool } from '../helpers/tools.js';
import { startRegistry } from './registry-process.js';

export interface RunningRegistry {
  /** HOST:PORT, plain HTTP. */
  host: string;
  stop(): Promise<void>;
}

export interface RegistryKind {
  name: string;
  /**
   * Whether GET /v2/<repo>/referrers/<digest> is served (else the sha256-<hex> tag schema is used):
   * true/false when known for certain, 'probe' to take the registry's own answer to that request.
   */
  referrersApi: boolean | 'probe';
  /** Why it cannot run here; undefined when it can. */
  unavailable: string | undefined;
  start(): Promise<RunningRegistry>;
}

/** Container images; pinned so a run is repeatable. */
export const ZOT_IMAGE = 'ghcr.io/project-zot/zot-linux-amd64:v2.1.5';
export const DISTRIBUTION_V3_IMAGE = 'registry:3.0.0';

/** The Docker engine's socket path, when one answers GET /_ping. */
async function dockerEngine(): Promise<string | undefined> {
  const host = process.env.DOCKER_HOST;
  let socketPath = '/var/run/docker.sock';
  if (host?.startsWith('unix://')) socketPath = host.slice('unix://'.length);
  else if (host) return host; // tcp:// and the like: let testcontainers try it
  if (!existsSync(socketPath)) return undefined;
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? socketPath : undefined);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
  });
}

interface TestcontainersApi {
  GenericContainer: new (image: string) => {
    withExposedPorts(...ports: number[]): unknown;
  };
  Wait: { forHttp(path: string, port: number): { forStatusCode(code: number): unknown } };
}

interface StartedContainer {
  getHost(): string;
  getMappedPort(port: number): number;
  stop(): Promise<unknown>;
}

/** testcontainers, loaded only where Docker answers (a module name in a variable: optional at build). */
async function testcontainers(): Promise<TestcontainersApi | string> {
  const name = 'testcontainers';
  try {
    return (await import(name)) as TestcontainersApi;
  } catch (e) {
    return `the testcontainers package is not installed (npm ci installs it): ${(e as Error).message.split('\n')[0]}`;
  }
}

function containerKind(
  name: string,
  referrersApi: boolean | 'probe',
  image: string,
  engine: string | undefined,
  tc: TestcontainersApi | string | undefined,
): RegistryKind {
  let unavailable: string | undefined;
  if (!engine) {
    unavailable =
      'no Docker engine reachable (DOCKER_HOST unset, /var/run/docker.sock absent or not answering); ' +
      "it runs where Docker is, e.g. GitHub's runners";
  } else if (typeof tc === 'string') unavailable = tc;
  return {
    name,
    referrersApi,
    unavailable,
    async start() {
      const api = tc as TestcontainersApi;
      // The builder methods return the builder; typed loosely here to keep the package optional.
      const builder = new api.GenericContainer(image).withExposedPorts(5000) as {
        withWaitStrategy(w: unknown): {
          withStartupTimeout(ms: number): { start(): Promise<StartedContainer> };
        };
      };
      const c = await builder
        .withWaitStrategy(api.Wait.forHttp('/v2/', 5000).forStatusCode(200))
        .withStartupTimeout(120_000)
        .start();
      return { host: `${c.getHost()}:${c.getMappedPort(5000)}`, stop: async () => void (await c.stop()) };
    },
  };
}

/** The registries of this machine, each with whether it can run and why not. */
export async function registryKinds(): Promise<RegistryKind[]> {
  const engine = await dockerEngine();
  const tc = engine ? await testcontainers() : undefined;
  if (typeof tc === 'string' && process.env.CI === 'true') {
    throw new Error(`a Docker engine is reachable but ${tc}`);
  }
  const kinds: RegistryKind[] = [
    {
      name: 'docker-registry 2.8 (local process)',
      referrersApi: false,
      unavailable: hasTool('docker-registry', 'docker-registry') ? undefined : 'docker-registry not on PATH',
      start: () => startRegistry(),
    },
    containerKind(`zot ${ZOT_IMAGE.split(':')[1]} (testcontainers)`, true, ZOT_IMAGE, engine, tc),
    containerKind(
      `distribution v3 ${DISTRIBUTION_V3_IMAGE.split(':')[1]} (testcontainers)`,
      // Not verified here (no Docker on this machine): the test follows what the registry answers.
      'probe',
      DISTRIBUTION_V3_IMAGE,
      engine,
      tc,
    ),
  ];
  for (const k of kinds.filter((x) => x.unavailable)) {
    process.stderr.write(`\n*** SKIPPING registry tests against ${k.name}: ${k.unavailable} ***\n\n`);
    recordSkip(`${k.name}: ${k.unavailable}`);
  }
  return kinds;
}
