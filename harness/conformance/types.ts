/**
 * The conformance result model: one cell per fixture × creator × applier × composefs flavour, the
 * availability of every implementation, and a summary. `--json` prints a ConformanceResult as is.
 */
import type { ComposefsFormat } from '../../src/composefs/oci/image-id.js';
import type { FsVerityAlgorithm } from '../../src/composefs/format/fsverity.js';
import type { FlavourKey } from '../implementations/types.js';

export type CellStatus = 'ok' | 'mismatch' | 'error' | 'skipped';

export interface Flavour {
  format: ComposefsFormat;
  hash: FsVerityAlgorithm;
}

export function flavourKey(f: Flavour): FlavourKey {
  return `${f.format}-${f.hash}`;
}

/** Default flavours (fixtures/expected.json pins all three): cfsctl, C mkcomposefs, composefs-rs V2. */
export const DEFAULT_FLAVOURS: readonly Flavour[] = [
  { format: 'v1', hash: 'sha512' },
  { format: 'v1', hash: 'sha256' },
  { format: 'v2', hash: 'sha512' },
];

export interface Cell {
  fixture: string;
  creator: string;
  applier: string;
  format: ComposefsFormat;
  hash: FsVerityAlgorithm;
  status: CellStatus;
  /** Why the cell is not ok (one line); empty when ok. */
  reason: string;
  /** Size of the delta artifact file (absent when no delta was made). */
  deltaBytes?: number;
  /** Sum of the new image's compressed layer sizes (what a full pull would move). */
  fullBytes: number;
  createSeconds?: number;
  applySeconds?: number;
  createPeakRssKiB?: number;
  applyPeakRssKiB?: number;
  /** Layer diff_ids recomputed from the output's blobs vs the new image's: 'ok', 'mismatch' or not checked. */
  diffIds?: 'ok' | 'mismatch' | 'not checked';
  expectedId?: string;
  actualId?: string;
  /** A foreign implementation made or applied the delta (creator or applier not ours). */
  foreign?: boolean;
  /** The foreign checkers that independently agreed on this cell's ID (e.g. `mkcomposefs`). */
  checkedBy?: string[];
  /**
   * The cell counts for the verdict: its implementations are available and the applier can read
   * the delta and yields this flavour. Only such cells (all of them) must be ok for a pass.
   */
  required?: boolean;
}

export interface ImplementationStatus {
  role: 'creator' | 'applier' | 'checker';
  name: string;
  available: boolean;
  version?: string;
  /** Executable of a foreign implementation. */
  path?: string;
  reason?: string;
  foreign?: boolean;
}

/** A problem with a fixture's ground truth itself (its new image disagrees with the pins). */
export interface FixtureProblem {
  fixture: string;
  reason: string;
}

export interface Summary {
  fixtures: number;
  cells: number;
  ok: number;
  mismatch: number;
  error: number;
  skipped: number;
  /** Cells that must be ok (see Cell.required) and how many of them are. */
  required: number;
  requiredOk: number;
  /** Ok required cells made or applied by a foreign implementation; cells a foreign checker agreed on. */
  foreign: number;
  checked: number;
  /**
   * true iff every required cell is ok, there is at least one, and no fixture problem (skipped
   * cells are never passes; only a skip for a capability reason is not required).
   */
  passed: boolean;
  seconds: number;
}

export interface ConformanceResult {
  cells: Cell[];
  implementations: ImplementationStatus[];
  fixtureProblems: FixtureProblem[];
  summary: Summary;
}
