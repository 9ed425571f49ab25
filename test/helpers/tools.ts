import { findTool } from '../../harness/tool-path.js';
import { recordSkip } from './skip-log.js';

const seen = new Map<string, boolean>();

function onPath(tool: string): boolean {
  let ok = seen.get(tool);
  if (ok === undefined) {
    ok = findTool(tool) !== undefined;
    seen.set(tool, ok);
  }
  return ok;
}

/**
 * Whether a system tool can be used by a test. In CI (CI=true) a missing tool is a failure, never a
 * skip; locally the test may skip, with a loud message naming the install command.
 * Use as: `it.skipIf(!hasTool('fsck.erofs', 'erofs-utils'))(...)`.
 */
export function hasTool(tool: string, debianPackage: string): boolean {
  if (onPath(tool)) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${tool} is required in CI but missing: apt-get install -y ${debianPackage}`);
  }
  process.stderr.write(
    `\n*** SKIPPING tests that need ${tool}: not on PATH. Install with: apt-get install -y ${debianPackage} ***\n\n`,
  );
  recordSkip(`${tool} not on PATH (apt-get install -y ${debianPackage})`);
  return false;
}

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Headless-capable browsers by the names Debian, Ubuntu and GitHub's runners give them. */
const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

/**
 * The first browser on PATH (Debian: chromium; GitHub's ubuntu-latest: google-chrome), or
 * undefined, with hasTool's rules: missing in CI is a failure, locally a loud skip.
 */
export function findBrowser(): string | undefined {
  const found = BROWSERS.find(onPath);
  if (found) return found;
  return hasTool('chromium', 'chromium') ? 'chromium' : undefined;
}
