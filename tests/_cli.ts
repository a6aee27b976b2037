/**
 * The tests' way into the command line: runs `main()` of `scripts/cli.ts` in
 * this process and captures what it printed.
 *
 * @module
 */
import { main } from "../scripts/cli.ts";

/** What one run printed: stdout, stderr, and both in the order printed. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
  text: string;
}

/** Runs the CLI with `args`, capturing console.log and console.error. */
export async function cli(args: string[]): Promise<CliRun> {
  const out: string[] = [], err: string[] = [], all: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => {
    out.push(a.join(" "));
    all.push(a.join(" "));
  };
  console.error = (...a: unknown[]) => {
    err.push(a.join(" "));
    all.push(a.join(" "));
  };
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n"), text: all.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}
