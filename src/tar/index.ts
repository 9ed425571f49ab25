import { open } from 'node:fs/promises';
import { OdhError } from '../util/errors.js';
import { FileByteSource } from './bytesource.js';
import type { TarEntry } from './entry.js';
import { readTarFrom } from './reader.js';

export type { TarEntry, TarEntryType, TarXattr } from './entry.js';
export {
  readTar,
  readTarBlocking,
  readTarFrom,
  type BlockingTarItem,
  type TarItem,
  type ReadTarOptions,
} from './reader.js';

/**
 * Scans a tar file once with positional reads (content is skipped, never read) and returns every
 * entry with its `dataOffset` and `size`, so callers can later read any member by position.
 */
export async function indexTarFile(path: string): Promise<TarEntry[]> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OdhError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot open tar: ${(e as Error).message}`, {
      file: path,
    });
  }
  try {
    const st = await fh.stat();
    const out: TarEntry[] = [];
    for await (const { entry } of readTarFrom(new FileByteSource(fh, BigInt(st.size)), {
      where: { file: path },
    })) {
      out.push(entry);
    }
    return out;
  } finally {
    await fh.close();
  }
}
