import type { Command } from 'commander';

/** Registers `odh fixtures` (filled in by its owner). */
export function register(_program: Command): void {}
