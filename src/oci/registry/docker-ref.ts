import { OdhError } from '../../util/errors.js';
import { parseDigest } from '../digest.js';

/** A registry image: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (no implicit docker.io). */
export interface DockerRef {
  /** `HOST` or `HOST:PORT`, as given. */
  host: string;
  /** Repository path inside the registry, e.g. `org/fixtures/pair`. */
  repository: string;
  /** Tag, when the reference names one (default `latest` when neither tag nor digest is given). */
  tag?: string;
  digest?: string;
}

// OCI distribution spec "Pulling manifests": repository components and tag grammar.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;

/** Parses `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`; USAGE naming the bad part otherwise. */
export function parseDockerRef(s: string): DockerRef {
  if (!s.startsWith('docker://')) throw new OdhError('USAGE', `not a docker:// reference: ${s}`);
  let rest = s.slice('docker://'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new OdhError('USAGE', `docker reference needs HOST/REPOSITORY: ${s}`);
  const host = rest.slice(0, slash);
  if (!HOST.test(host)) throw new OdhError('USAGE', `invalid registry host ${JSON.stringify(host)}: ${s}`);
  rest = rest.slice(slash + 1);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1), `digest of ${s}`).digest;
    rest = rest.slice(0, at);
  }
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new OdhError('USAGE', `invalid tag ${JSON.stringify(tag)}: ${s}`);
  }
  if (rest === '' || !rest.split('/').every((c) => COMPONENT.test(c))) {
    throw new OdhError(
      'USAGE',
      `invalid repository ${JSON.stringify(rest)} (lowercase path components): ${s}`,
    );
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  const ref: DockerRef = { host, repository: rest };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The manifest reference to request: the digest when given (it pins the bytes), else the tag. */
export function manifestReference(r: DockerRef): string {
  return r.digest ?? r.tag ?? 'latest';
}

/** `docker://HOST/REPO[:TAG][@DIGEST]`. */
export function formatDockerRef(r: DockerRef): string {
  return `docker://${r.host}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}
