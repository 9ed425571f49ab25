import type { Command } from 'commander';

/** Registers `odh tar-patch` (filled in by its owner). */
export function register(_program: Command): void {}
