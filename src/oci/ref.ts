import { OdhError } from '../util/errors.js';

/** A local OCI layout reference: `oci-archive:PATH[:NAME|:@N]`, `oci:DIR[:NAME|:@N]` or a bare path. */
export interface OciLayoutRef {
  transport: 'oci-archive' | 'oci';
  path: string;
  /** `:NAME` — select / write the index entry with this `org.opencontainers.image.ref.name`. */
  name?: string;
  /** `:@N` — select index entry N (inputs only). */
  index?: number;
  /** The string as given, for messages. */
  raw: string;
}

export interface ParseRefOptions {
  /** Output references: `:@N` is refused (it only selects). */
  output?: boolean;
}

const UNSUPPORTED_TRANSPORTS = [
  'docker://',
  'containers-storage:',
  'docker-archive:',
  'docker-daemon:',
  'dir:',
];

/**
 * Parses a layout reference (spec oci-delta §4.1, §5.1). After the transport prefix the text is
 * split at its **first** ':' into PATH and NAME (spec §9), so a path containing ':' cannot carry a
 * name. A suffix `@N` (decimal) selects by position. A bare path (no known transport) is an
 * oci-archive path taken verbatim. `docker://` and other transports are UNSUPPORTED.
 */
export function parseRef(s: string, opts: ParseRefOptions = {}): OciLayoutRef {
  for (const t of UNSUPPORTED_TRANSPORTS) {
    if (s.startsWith(t)) {
      throw new OdhError(
        'UNSUPPORTED',
        `transport ${JSON.stringify(t.replace(/:\/\/$|:$/, ''))} is not supported yet: ${s}`,
      );
    }
  }
  let transport: OciLayoutRef['transport'];
  let rest: string;
  if (s.startsWith('oci-archive:')) {
    transport = 'oci-archive';
    rest = s.slice('oci-archive:'.length);
  } else if (s.startsWith('oci:')) {
    transport = 'oci';
    rest = s.slice('oci:'.length);
  } else {
    if (s === '') throw new OdhError('USAGE', 'empty image reference');
    return { transport: 'oci-archive', path: s, raw: s };
  }
  const colon = rest.indexOf(':');
  const p = colon < 0 ? rest : rest.slice(0, colon);
  if (p === '') throw new OdhError('USAGE', `reference has an empty path: ${s}`);
  const ref: OciLayoutRef = { transport, path: p, raw: s };
  if (colon < 0) return ref;
  const suffix = rest.slice(colon + 1);
  if (suffix.startsWith('@')) {
    if (opts.output) throw new OdhError('USAGE', `an output reference cannot select by index (@N): ${s}`);
    if (!/^@(0|[1-9][0-9]{0,8})$/.test(suffix)) {
      throw new OdhError('USAGE', `invalid manifest index ${JSON.stringify(suffix)} in reference: ${s}`);
    }
    ref.index = Number(suffix.slice(1));
  } else {
    if (suffix === '') throw new OdhError('USAGE', `reference has an empty name after ':': ${s}`);
    ref.name = suffix;
  }
  return ref;
}

/** Renders a reference back to its canonical string form. */
export function formatRef(r: OciLayoutRef): string {
  const suffix = r.name !== undefined ? `:${r.name}` : r.index !== undefined ? `:@${r.index}` : '';
  return `${r.transport}:${r.path}${suffix}`;
}
