import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file lives in test/helpers/). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The golden vectors, kept in the repository (test/vectors, provenance in its README) so a clone needs
 * nothing beside it.
 */
export const VECTORS = path.join(REPO_ROOT, 'test', 'vectors');

if (!existsSync(path.join(VECTORS, 'tardiff', 'index.json'))) {
  throw new Error(`golden vectors not found at ${VECTORS} (test/vectors is part of the repository)`);
}

export function vectorPath(...parts: string[]): string {
  return path.join(VECTORS, ...parts);
}
