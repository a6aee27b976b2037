/**
 * A progress bar on stderr. On a terminal it redraws one line; elsewhere (CI,
 * pipes) it prints a line at each quarter so that logs stay short.
 *
 * @module
 */

/** Receives progress. */
export interface Progress {
  /** A new stage begins. */
  start(label: string): void;
  /** `done` of `total` units of the current stage are done. */
  update(done: number, total: number): void;
  /** The current stage is over. */
  end(note?: string): void;
}

/** A progress reporter that prints nothing. */
export const silentProgress: Progress = { start() {}, update() {}, end() {} };

/**
 * A progress bar on stderr.
 * @param width Bar width in characters.
 * @returns The reporter.
 */
export function progressBar(width = 30): Progress {
  const enc = new TextEncoder();
  const tty = Deno.stderr.isTerminal();
  const write = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  let label = "";
  let started = 0;
  let lastQuarter = -1;
  const draw = (frac: number) => {
    const n = Math.round(frac * width);
    return `[${"#".repeat(n)}${".".repeat(width - n)}] ${(frac * 100).toFixed(0).padStart(3)}%`;
  };
  return {
    start(l) {
      label = l;
      started = performance.now();
      lastQuarter = -1;
      if (tty) write(`\r\x1b[2K${draw(0)} ${label}`);
      else write(`${label} ...\n`);
    },
    update(done, total) {
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      // Once a step has run a few seconds, say how long the rest should take.
      const elapsed = (performance.now() - started) / 1000;
      const eta = frac > 0 && frac < 1 && elapsed > 3
        ? `, about ${Math.ceil((elapsed * (1 - frac)) / frac)} s left`
        : "";
      if (tty) write(`\r\x1b[2K${draw(frac)} ${label}${eta}`);
      else {
        const q = Math.floor(frac * 4);
        if (q > lastQuarter && q < 4) {
          lastQuarter = q;
          if (q > 0) write(`  ${label} ${draw(frac)}${eta}\n`);
        }
      }
    },
    end(note) {
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      const msg = `${draw(1)} ${label} (${secs} s${note ? `, ${note}` : ""})`;
      write(tty ? `\r\x1b[2K${msg}\n` : `  ${msg}\n`);
    },
  };
}
