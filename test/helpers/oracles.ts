import { findOracle, type OracleName } from '../../harness/oracles.js';
import { recordSkip } from './skip-log.js';

/**
 * Whether a foreign reference implementation (C composefs, Go tar-diff) can be used by a test.
 * In CI (CI=true) a missing oracle is a failure, never a skip; locally the test may skip, with a
 * loud message naming the build command. Use as: `it.skipIf(!hasOracle('mkcomposefs'))(...)`.
 */
export function hasOracle(name: OracleName): boolean {
  const o = findOracle(name);
  if (o.available) return true;
  if (process.env.CI === 'true') throw new Error(`${name} is required in CI but missing: ${o.reason}`);
  process.stderr.write(`\n*** SKIPPING tests that need ${name}: ${o.reason} ***\n\n`);
  recordSkip(`${name}: ${o.reason}`);
  return false;
}

/** Path of an oracle known to be available (call after hasOracle). */
export function oraclePath(name: OracleName): string {
  const o = findOracle(name);
  if (!o.available) throw new Error(o.reason);
  return o.path;
}
