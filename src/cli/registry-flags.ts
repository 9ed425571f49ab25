import type { RegistryOptions } from '../oci/registry/http.js';
import { OdhError } from '../util/errors.js';

/** Help text of `--timeout`, shared by every command that reads `docker://` references. */
export const REGISTRY_TIMEOUT_HELP =
  'deadline of each registry request in seconds, plus the time its known size takes at 64 KiB/s ' +
  '(default 120; retries never extend it)';

/** `--tls-verify` and `--timeout` as registry options (USAGE errors for bad values). */
export function registryFlags(f: { tlsVerify?: string; timeout?: string }): RegistryOptions {
  const o: RegistryOptions = {};
  if (f.tlsVerify !== undefined) {
    if (f.tlsVerify !== 'true' && f.tlsVerify !== 'false') {
      throw new OdhError('USAGE', `invalid --tls-verify ${JSON.stringify(f.tlsVerify)} (want true or false)`);
    }
    o.tlsVerify = f.tlsVerify === 'true';
  }
  if (f.timeout !== undefined) {
    const s = /^[0-9]+(\.[0-9]+)?$/.test(f.timeout) ? Number(f.timeout) : NaN;
    if (!(s > 0 && s <= 86_400)) {
      throw new OdhError(
        'USAGE',
        `invalid --timeout ${JSON.stringify(f.timeout)} (want seconds, 0 < s ≤ 86400)`,
      );
    }
    o.deadlineMs = Math.round(s * 1000);
  }
  return o;
}
