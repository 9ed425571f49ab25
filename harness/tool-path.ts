import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The one way the harness and the tests find an external program (the job `command -v` did in three
 * places): the first of `dirs` holding an executable regular file of that name, as an absolute
 * path. No shell is started, so a name is never interpreted, and a directory is never "found".
 */

/** The PATH entries, in order (empty entries, which mean the current directory, are skipped). */
export function pathDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
}

/** Whether `file` is a regular file this process may execute. */
export function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Where `name` is: searched in `dirs` (default: PATH). A name with a slash is a path, checked as
 * it is (like `command -v ./x`).
 */
export function findTool(name: string, dirs: string[] = pathDirs()): string | undefined {
  if (name.includes('/')) return isExecutableFile(name) ? path.resolve(name) : undefined;
  for (const dir of dirs) {
    const p = path.resolve(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}
