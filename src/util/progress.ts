/**
 * Progress on stderr: a redrawn bar when stderr is a TTY, plain lines otherwise (at most one line per
 * step and per ~2 s for byte counters). Results never go here; they go to stdout.
 */
export interface Progress {
  /** A new phase, e.g. "layer 3/7 sha256:ab12…: tar-diff". */
  step(label: string): void;
  /** Bytes done of total (total may be unknown). */
  bytes(done: number | bigint, total?: number | bigint): void;
  done(): void;
}

export interface ProgressOptions {
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { step() {}, bytes() {}, done() {} };
  const tty = stream.isTTY === true;
  let label = '';
  let lastPlain = 0;
  let lastDraw = 0;
  const fmt = (n: number | bigint) => {
    const v = Number(n);
    if (v >= 1 << 30) return `${(v / (1 << 30)).toFixed(2)} GiB`;
    if (v >= 1 << 20) return `${(v / (1 << 20)).toFixed(1)} MiB`;
    if (v >= 1 << 10) return `${(v / (1 << 10)).toFixed(1)} KiB`;
    return `${v} B`;
  };
  return {
    step(l) {
      label = l;
      if (tty) {
        stream.write(`\r\x1b[K${label}`);
      } else {
        stream.write(`${label}\n`);
        lastPlain = Date.now();
      }
    },
    bytes(done, total) {
      const now = Date.now();
      if (tty) {
        if (now - lastDraw < 100) return;
        lastDraw = now;
        let bar = '';
        if (total !== undefined && Number(total) > 0) {
          const frac = Math.min(1, Number(done) / Number(total));
          const w = 24;
          const filled = Math.round(frac * w);
          bar = ` [${'#'.repeat(filled)}${'.'.repeat(w - filled)}] ${(frac * 100).toFixed(0)}%`;
        }
        stream.write(`\r\x1b[K${label}${bar} ${fmt(done)}${total !== undefined ? ` / ${fmt(total)}` : ''}`);
      } else if (now - lastPlain >= 2000) {
        lastPlain = now;
        stream.write(`${label}: ${fmt(done)}${total !== undefined ? ` / ${fmt(total)}` : ''}\n`);
      }
    },
    done() {
      if (tty) stream.write('\r\x1b[K');
    },
  };
}
