/**
 * The one CLI contract every `odh` command follows, applied centrally by bin/odh.ts:
 *  - usage errors (commander's and OdhError 'USAGE') exit 2 with one line
 *    `odh: error: … (odh CMD --help)`;
 *  - runtime failures exit 1 with one line; errors that are neither ours nor the system's are
 *    "internal error" (stack only with ODH_DEBUG=1);
 *  - with `--json`, a failure also prints `{"error":{"code","message","context"}}` on stdout;
 *  - stdout write errors: a closed pipe (EPIPE) ends quietly; any other (ENOSPC …) is one line on
 *    stderr, and never changes an outcome already committed (src/util/outcome.ts).
 */
import type { Command } from 'commander';
import { isOdhError, type ErrorContext } from '../util/errors.js';
import { committedOutputs } from '../util/outcome.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

interface CommanderLikeError extends Error {
  code: string;
  exitCode: number;
}

function isCommanderError(e: unknown): e is CommanderLikeError {
  return e instanceof Error && e.name === 'CommanderError';
}

/** Node's own system errors (ENOENT, EACCES, ENOSPC …): failures of the environment, not bugs. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return e instanceof Error && typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
}

/** `odh`, `odh apply`, `odh composefs mkfs`: the command a usage error belongs to. */
export function commandPath(cmd: Command | undefined): string {
  const names: string[] = [];
  for (let c: Command | null | undefined = cmd; c; c = c.parent) names.unshift(c.name());
  return names.length ? names.join(' ') : 'odh';
}

/**
 * The command the words of `argv` name (`odh composefs mkfs …` → mkfs), for usage errors raised
 * before commander reached an action (an option's own parser throwing, for instance).
 */
export function commandFromArgv(program: Command, argv: readonly string[]): Command {
  let cmd = program;
  for (const word of argv.slice(2)) {
    if (word.startsWith('-')) continue;
    const sub = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    cmd = sub;
  }
  return cmd;
}

/** True when the command line asks for JSON (`--json` before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  for (const a of argv.slice(2)) {
    if (a === '--') return false;
    if (a === '--json') return true;
  }
  return false;
}

export interface Failure {
  exitCode: number;
  code: string;
  message: string;
  context: ErrorContext;
  /** Shown only under ODH_DEBUG=1. */
  stack?: string;
}

/** Classifies anything thrown by a command into the contract's exit code and one-line message. */
export function classify(e: unknown, cmd: Command | undefined): Failure {
  const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim();
  if (isCommanderError(e)) {
    const message = oneLine(e.message.replace(/^error:\s*/, ''));
    return {
      exitCode: EXIT_USAGE,
      code: 'USAGE',
      message: `${message} (${commandPath(cmd)} --help)`,
      context: {},
    };
  }
  if (isOdhError(e)) {
    if (e.code === 'USAGE')
      return {
        exitCode: EXIT_USAGE,
        code: 'USAGE',
        message: `${e.message} (${commandPath(cmd)} --help)`,
        context: e.context,
      };
    return { exitCode: EXIT_FAILURE, code: e.code, message: e.message, context: e.context, stack: e.stack };
  }
  if (isSystemError(e)) {
    const context: ErrorContext = e.path !== undefined ? { path: e.path } : {};
    return { exitCode: EXIT_FAILURE, code: 'IO', message: oneLine(e.message), context, stack: e.stack };
  }
  const message = e instanceof Error ? e.message : String(e);
  return {
    exitCode: EXIT_FAILURE,
    code: 'INTERNAL',
    message: `internal error: ${oneLine(message)}${debug() ? '' : ' (ODH_DEBUG=1 shows the stack)'}`,
    context: {},
    stack: e instanceof Error ? e.stack : undefined,
  };
}

function debug(): boolean {
  return process.env.ODH_DEBUG === '1';
}

function jsonSafe(ctx: ErrorContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v;
  }
  return out;
}

/** Prints a failure the contract's way and sets the exit status (never throws). */
export function report(f: Failure, json: boolean): void {
  process.stderr.write(`odh: error: ${f.message}\n`);
  if (debug() && f.stack) process.stderr.write(`${f.stack}\n`);
  if (json) {
    const body = { error: { code: f.code, message: f.message, context: jsonSafe(f.context) } };
    safeStdoutWrite(`${JSON.stringify(body)}\n`);
  }
  process.exitCode = f.exitCode;
}

let stdoutBroken = false;

function safeStdoutWrite(text: string): void {
  if (stdoutBroken) return;
  try {
    process.stdout.write(text);
  } catch {
    // a synchronous write to a broken stdout: the 'error' listener below reports it
  }
}

/**
 * Wires commander into the contract: no help dump after an error, commander's own error line
 * suppressed (ours replaces it), and every exit turned into an exception bin/odh.ts classifies.
 * Subcommands registered later inherit these settings.
 */
export function configureProgram(program: Command, onCommand: (cmd: Command) => void): void {
  program.showHelpAfterError(false);
  // Options belong to the command they follow: `odh conformance merge --json` is merge's --json.
  program.enablePositionalOptions();
  program.configureOutput({ outputError: () => {} });
  program.exitOverride(function (this: Command, err) {
    onCommand(this);
    throw err;
  });
  program.hook('preAction', (_this, actionCommand) => onCommand(actionCommand));
}

/**
 * A write to a stdout whose reader has gone away: not a failure of the command (guardStdout). The
 * error may come wrapped (an OdhError naming the file being written, with the write error as cause).
 */
export function isClosedStdout(e: unknown): boolean {
  if (!stdoutBroken) return false;
  const closed = ['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END'];
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 8; x = x.cause, depth++) {
    if (closed.includes((x as NodeJS.ErrnoException).code ?? '')) return true;
  }
  return false;
}

/** Exit status for a CommanderError that is not a usage error (help, version), else undefined. */
export function benignExit(e: unknown): number | undefined {
  if (!isCommanderError(e)) return undefined;
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
  // `odh` / `odh composefs` alone: help was printed on stderr; that is a usage mistake.
  if (e.code === 'commander.help') return EXIT_USAGE;
  return undefined;
}

/**
 * stdout errors never end in an "Unhandled 'error' event" trace. A reader that closed the pipe
 * (`odh inspect … | head`) ends the run quietly with the command's own status; a full device is one
 * line and exit 1 at once, unless an output was already committed: then the status stays as it was.
 */
export function guardStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (stdoutBroken) return;
    stdoutBroken = true;
    // The reader is gone: later writes are dropped and the command finishes, so its own verdict
    // (conformance's exit 1 on a mismatch, say) is what the exit status says.
    if (err.code === 'EPIPE') return;
    const done = committedOutputs();
    if (done.length > 0) {
      process.stderr.write(
        `odh: warning: ${done[done.length - 1]} was written, but printing the result failed: ${err.code ?? err.message}\n`,
      );
      return;
    }
    process.stderr.write(`odh: error: cannot write to stdout: ${err.code ?? err.message}\n`);
    process.exit(EXIT_FAILURE);
  });
}
