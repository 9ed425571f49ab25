/**
 * The conformance result model: one cell per fixture × creator × applier × composefs flavour, the
 * availability of every implementation, and a summary. `--json` prints a ConformanceResult as is.
 */
import type { ComposefsFormat } from '../../src/composefs/image-id.js';
import type { FsVerityAlgorithm } from '../../src/composefs/fsverity.js';
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
}

export interface ImplementationStatus {
  role: 'creator' | 'applier';
  name: string;
  available: boolean;
  version?: string;
  reason?: string;
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
  /** true iff no mismatch, no error and no fixture problem (skipped cells are not passes either). */
  passed: boolean;
  seconds: number;
}

export interface ConformanceResult {
  cells: Cell[];
  implementations: ImplementationStatus[];
  fixtureProblems: FixtureProblem[];
  summary: Summary;
}
