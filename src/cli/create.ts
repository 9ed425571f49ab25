import type { Command } from 'commander';

/** Registers `odh create` (filled in by its owner). */
export function register(_program: Command): void {}
