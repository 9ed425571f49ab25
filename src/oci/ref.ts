import { OdhError } from '../util/errors.js';
import { parseDockerRef, type DockerRef } from './registry/docker-ref.js';

/**
 * An image reference: a local OCI layout (`oci-archive:PATH[:NAME|:@N]`, `oci:DIR[:NAME|:@N]`, a
 * bare path) or a registry image (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, inputs only).
 */
export interface OciLayoutRef {
  transport: 'oci-archive' | 'oci' | 'docker';
  /** Layout path; for `docker` the text after `docker://` (for messages only). */
  path: string;
  /** `docker` only: registry host, repository and tag or digest. */
  docker?: DockerRef;
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

const UNSUPPORTED_TRANSPORTS = ['containers-storage:', 'docker-archive:', 'docker-daemon:', 'dir:'];

/**
 * Parses a layout reference (spec oci-delta §4.1, §5.1). After the transport prefix the text is
 * split at its **first** ':' into PATH and NAME (spec §9), so a path containing ':' cannot carry a
 * name. A suffix `@N` (decimal) selects by position. A bare path (no known transport) is an
 * oci-archive path taken verbatim. `docker://` names a registry image (inputs only: outputs are
 * USAGE); other transports are UNSUPPORTED.
 */
export function parseRef(s: string, opts: ParseRefOptions = {}): OciLayoutRef {
  if (s.startsWith('docker://')) {
    if (opts.output) {
      throw new OdhError(
        'USAGE',
        `a docker:// reference cannot be an output here (push with odh fixtures mirror): ${s}`,
      );
    }
    const docker = parseDockerRef(s);
    return { transport: 'docker', path: s.slice('docker://'.length), docker, raw: s };
  }
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
    refuseUnknownTransport(s);
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

/**
 * `oci-archve:x.tar` (a typo) must not silently become the bare path "oci-archve:x.tar". Text that
 * starts like a transport name (letters, digits, '-', then ':') is refused unless it is a known one;
 * a file whose name really starts that way is reachable as `./NAME` or `oci-archive:NAME`.
 */
function refuseUnknownTransport(s: string): void {
  const m = /^([A-Za-z][A-Za-z0-9-]*):/.exec(s);
  if (!m) return;
  throw new OdhError(
    'USAGE',
    `unknown transport ${JSON.stringify(m[1])} in ${JSON.stringify(s)} (known: oci-archive:, oci:, docker://; ` +
      `a file named like this: ./${s})`,
  );
}

/** Renders a reference back to its canonical string form. */
export function formatRef(r: OciLayoutRef): string {
  if (r.transport === 'docker') return `docker://${r.path}`;
  const suffix = r.name !== undefined ? `:${r.name}` : r.index !== undefined ? `:@${r.index}` : '';
  return `${r.transport}:${r.path}${suffix}`;
}
