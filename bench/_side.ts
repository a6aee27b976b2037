/**
 * Runs one side of a side-by-side benchmark (a tfjs or PyTorch process) and
 * reads the JSON object it prints last; shared by `compare.ts` and `real_size.ts`.
 *
 * @module
 */

/**
 * Runs a command and parses the last line of its standard output as JSON.
 *
 * @param cmd The program.
 * @param args Its arguments.
 * @param env Extra environment variables.
 * @returns The parsed object.
 * @throws {Error} with the command's standard error when it fails or prints no JSON.
 */
export async function runJson<T>(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<T> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  if (!out.success || !text.startsWith("{")) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text) as T;
}
