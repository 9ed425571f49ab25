import type { Command } from 'commander';

/** Registers `odh tar-diff` (filled in by its owner). */
export function register(_program: Command): void {}
