/**
 * Checks, before the rest of the command line loads, the permissions that its
 * modules need at import time: the image codecs read `IMAGESCRIPT_WASM_SIMD` as
 * they load, and TensorFlow.js reads its WASM files from the project folder.
 * Without them Deno would stop with an uncaught, coloured stack; this prints
 * one line naming the flag instead. It acts only when `scripts/cli.ts` is the
 * program being run, never when the CLI is imported as a library.
 *
 * @module
 */

/** The environment variables the command line reads. */
export const CLI_ENV = ["IMAGESCRIPT_WASM_SIMD", "CONVLENS_BACKEND"] as const;

/**
 * The missing permission that would stop the command line as it loads, as one
 * line naming the flag, or `undefined` when nothing is missing.
 *
 * @param projectDir The folder holding the project (its `node_modules` and models).
 * @returns The message, or `undefined`.
 */
export function missingStartupPermission(projectDir: string): string | undefined {
  const q = (d: Deno.PermissionDescriptor) => Deno.permissions.querySync(d).state === "granted";
  if (!q({ name: "env", variable: "IMAGESCRIPT_WASM_SIMD" })) {
    return `convlens needs to read the environment variables ${CLI_ENV.join(", ")}: ` +
      `run with --allow-env=${CLI_ENV.join(",")} (deno task lens does)`;
  }
  if (!q({ name: "read", path: projectDir })) {
    return `convlens needs to read its own files in ${projectDir} (models, WASM kernels): ` +
      `run with --allow-read=${projectDir} plus your inputs and --out (deno task lens does)`;
  }
  return undefined;
}

const cli = new URL("./cli.ts", import.meta.url).href;
if (Deno.mainModule === cli) {
  const projectDir = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(
    /\/$/,
    "",
  );
  const missing = missingStartupPermission(projectDir);
  if (missing) {
    console.error(`error: ${missing}`);
    Deno.exit(2);
  }
}
