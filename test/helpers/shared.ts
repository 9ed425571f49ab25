import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file lives in test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The read-only golden data beside the repository (../shared), as CI lays it out. */
export const SHARED = path.resolve(REPO_ROOT, '..', 'shared');
export const VECTORS = path.join(SHARED, 'vectors');

if (!existsSync(VECTORS)) {
  throw new Error(`golden vectors not found at ${VECTORS}: tests expect ../shared beside the repository`);
}

export function vectorPath(...parts: string[]): string {
  return path.join(VECTORS, ...parts);
}
