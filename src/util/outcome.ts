/**
 * What this process has already made permanent. A failure that happens afterwards (typically printing
 * the result to a stdout that is full or closed) must not turn a committed outcome into a reported
 * failure: the output exists and is correct, so the exit status stays what the command decided.
 */
const committed: string[] = [];

/** Called once an output is at its final path (AtomicOutput.commit). */
export function noteCommitted(finalPath: string): void {
  committed.push(finalPath);
}

/** Final paths committed so far, in order. */
export function committedOutputs(): readonly string[] {
  return committed;
}
