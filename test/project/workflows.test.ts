import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/shared.js';

const dir = path.join(REPO_ROOT, '.github', 'workflows');
const files = readdirSync(dir).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));
const scripts: Record<string, string> = JSON.parse(
  readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'),
).scripts;

interface Step {
  run?: string;
  uses?: string;
}

describe('GitHub workflows', () => {
  it('exist', () => {
    expect(files).toContain('ci.yml');
  });

  for (const file of files) {
    it(`${file} parses and every npm script it runs exists`, () => {
      const wf = parse(readFileSync(path.join(dir, file), 'utf8'));
      expect(wf.on ?? wf[true as unknown as string]).toBeTruthy();
      expect(Object.keys(wf.jobs).length).toBeGreaterThan(0);
      for (const [name, job] of Object.entries<{ steps: Step[] }>(wf.jobs)) {
        expect(Array.isArray(job.steps), `job ${name} has steps`).toBe(true);
        for (const step of job.steps) {
          expect(step.run !== undefined || step.uses !== undefined, `step in ${name}`).toBe(true);
          for (const m of (step.run ?? '').matchAll(/\bnpm (?:run ([\w:-]+)|(test|start))\b/g)) {
            const script = m[1] ?? m[2];
            expect(scripts[script], `${file}: npm script "${script}"`).toBeTruthy();
          }
        }
      }
    });
  }

  it('.ci/run runs the test command the README gives', () => {
    const ci = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    expect(ci).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^(npm ci && )?npm start$/m);
  });
});
