import type { Command } from 'commander';

/** Registers `odh demo` (the built-in end-to-end run; filled in by the lead). */
export function register(_program: Command): void {}
