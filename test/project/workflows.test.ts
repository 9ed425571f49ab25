/**
 * The CI definitions, checked for what matters rather than only that they parse: GitHub runs
 * `bash .ci/run` on ubuntu-latest for Node 22 and 24 with current actions and least privilege;
 * .ci/run installs every system tool a test asks for and builds the oracles before `npm test`;
 * the conformance workflow runs N shards and a merge job that reads every shard's results.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/shared.js';

const dir = path.join(REPO_ROOT, '.github', 'workflows');
const files = readdirSync(dir).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines: { node: string };
};
const ciRun = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');

interface Step {
  name?: string;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
  if?: string;
}
interface Job {
  'runs-on': string;
  steps: Step[];
  needs?: string | string[];
  if?: string;
  strategy?: { matrix?: Record<string, unknown[]> };
  permissions?: Record<string, string>;
}
interface Workflow {
  permissions?: Record<string, string>;
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

const load = (f: string) => parse(readFileSync(path.join(dir, f), 'utf8')) as Workflow;

/** The oldest major of each action still on a supported runtime (Node 24), as of this writing. */
const MIN_MAJOR: Record<string, number> = {
  'actions/checkout': 5,
  'actions/setup-node': 5,
  'actions/upload-artifact': 6,
  'actions/download-artifact': 7,
  'actions/setup-go': 6,
};

/** Debian "Essential: yes" packages: on every Debian and Ubuntu system, never installed by CI. */
const ESSENTIAL = new Set(['gzip', 'mount', 'perl-base', 'tar']);

describe('GitHub workflows', () => {
  it('exist', () => {
    expect(files).toContain('ci.yml');
    expect(files).toContain('conformance.yml');
  });

  for (const file of files) {
    it(`${file}: parses, every npm script it runs exists, actions current, least privilege`, () => {
      const wf = load(file);
      expect(Object.keys(wf.jobs).length).toBeGreaterThan(0);
      for (const [name, job] of Object.entries(wf.jobs)) {
        expect(Array.isArray(job.steps), `job ${name} has steps`).toBe(true);
        expect(job['runs-on'], `${file} ${name}`).toBe('ubuntu-latest');
        for (const step of job.steps) {
          expect(step.run !== undefined || step.uses !== undefined, `step in ${name}`).toBe(true);
          for (const m of (step.run ?? '').matchAll(/\bnpm (?:run ([\w:-]+)|(test|start))\b/g)) {
            const script = m[1] ?? m[2];
            expect(pkg.scripts[script!], `${file}: npm script "${script}"`).toBeTruthy();
          }
          if (step.uses) {
            const [action, ref] = step.uses.split('@');
            const min = MIN_MAJOR[action!];
            expect(min, `${file}: ${step.uses} is an action this test knows`).toBeDefined();
            const major = /^v(\d+)/.exec(ref ?? '');
            expect(major, `${file}: ${step.uses} pinned to a major version`).not.toBeNull();
            expect(Number(major![1]), `${file}: ${step.uses} is current`).toBeGreaterThanOrEqual(min!);
          }
          if (step.uses?.startsWith('actions/setup-node@')) {
            expect(Number(String(step.with?.['node-version']).replace(/\D.*$/, '')) || 0).not.toBe(20);
          }
        }
      }
      // Least privilege: read-only by default; only the mirror may write packages.
      expect(wf.permissions?.contents, `${file}: top-level permissions`).toBe('read');
      const writes = Object.entries(wf.permissions ?? {}).filter(([, v]) => v === 'write');
      expect(writes.map(([k]) => k)).toEqual(file === 'mirror-fixtures.yml' ? ['packages'] : []);
    });
  }

  it('ci.yml runs bash .ci/run, and only that, for Node 22 and 24', () => {
    const wf = load('ci.yml');
    const jobs = Object.values(wf.jobs);
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(job.strategy?.matrix?.node).toEqual([22, 24]);
    const setup = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
    expect(setup?.with?.['node-version']).toBe('${{ matrix.node }}');
    const runs = job.steps.filter((s) => s.run !== undefined);
    expect(runs).toHaveLength(1);
    expect(runs[0]!.run).toMatch(/(^|\s)bash \.ci\/run$/);
    // No second list of packages or steps to drift from .ci/run.
    expect(runs[0]!.run).not.toMatch(/apt-get|npm /);
    // The Node lines tested here (and Node 20 on the project's own CI machine) satisfy `engines`.
    const min = /^>=\s*(\d+)/.exec(pkg.engines.node);
    expect(min, 'engines.node is a lower bound').not.toBeNull();
    expect(Number(min![1])).toBeLessThanOrEqual(22);
  });

  it('conformance.yml: N shard jobs (--shard I/N --json) and a merge job over all their results', () => {
    const wf = load('conformance.yml');
    const shards = Number(wf.env?.SHARDS);
    const shardJob = wf.jobs.shard!;
    expect(shardJob.strategy?.matrix?.shard).toEqual(Array.from({ length: shards }, (_, i) => i + 1));
    const run = shardJob.steps.map((s) => s.run ?? '').find((r) => r.includes('conformance'))!;
    expect(run).toMatch(/--shard "\$\{\{ matrix\.shard \}\}\/\$SHARDS"/);
    expect(run).toMatch(/--json/);
    expect(run).toMatch(/> "results-\$\{\{ matrix\.shard \}\}\.json"/);
    const upload = shardJob.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'))!;
    expect(upload.if).toBe('always()');
    const merge = wf.jobs.merge!;
    expect(merge.needs).toBe('shard');
    expect(merge.if).toBe('always()');
    expect(merge.steps.some((s) => s.uses?.startsWith('actions/download-artifact@'))).toBe(true);
    const m = merge.steps.map((s) => s.run ?? '').find((r) => r.includes('conformance merge'));
    expect(m).toMatch(/conformance merge .*--junit \S+.*results-\*\.json$/);
  });
});

describe('.ci/run', () => {
  const need = /^need=\(([^)]*)\)/m.exec(ciRun)![1]!.split(/\s+/).filter(Boolean);

  it('runs the test command the README gives, after the oracles are built', () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    expect(ciRun).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^(npm ci && )?npm start$/m);
    const order = ['npm ci', 'npm run oracles', 'npm run lint', 'npm test'].map((l) =>
      ciRun.search(new RegExp(`^${l}$`, 'm')),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('installs every package a test asks for with hasTool()', () => {
    const wanted = new Set<string>();
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'vectors') walk(p);
        } else if (e.name.endsWith('.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/hasTool\('[^']+', '([^']+)'\)/g))
            wanted.add(m[1]!);
        }
      }
    };
    walk(path.join(REPO_ROOT, 'test'));
    expect(wanted.size).toBeGreaterThan(5);
    for (const p of wanted) {
      if (ESSENTIAL.has(p)) continue;
      if (p === 'chromium') continue; // the browser: checked below
      expect(need, `.ci/run installs ${p}`).toContain(p);
    }
  });

  it('finds a browser under any of its names and installs chromium only when none exists', () => {
    for (const b of ['chromium', 'chromium-browser', 'google-chrome']) expect(ciRun).toContain(b);
    expect(ciRun).toMatch(/if \[ -z "\$browser" \]; then need\+=\(chromium\); fi/);
  });

  it('uses sudo for apt-get only when not root, and installs only what is missing', () => {
    expect(ciRun).toMatch(/if \[ "\$\(id -u\)" -ne 0 \]; then sudo=\(sudo\); fi/);
    expect(ciRun).toMatch(/dpkg -s "\$p"/);
    expect(ciRun).toMatch(/"\$\{sudo\[@\]\}" apt-get install -y/);
  });
});
