/** The example scripts of scripts/examples run as written and produce their files. */
import assert from "node:assert/strict";

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { CONVLENS_BACKEND: "wasm" },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("scripts/examples/builtin_plugins.ts runs built-in plugins and writes a report", async () => {
  const out = await Deno.makeTempDir({ prefix: "convlens_ex1_" });
  const r = await run(["scripts/examples/builtin_plugins.ts", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /parameters: \d+/);
  assert.match(r.out, /conv1 channels: 16/);
  const files = await names(out);
  for (const f of ["report.html", "summary.json", "activations.json", "filters.json"]) {
    assert.ok(files.includes(f), `${f} in ${files}`);
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("scripts/examples/custom_plugin.ts composes two built-in plugins", async () => {
  const out = await Deno.makeTempDir({ prefix: "convlens_ex2_" });
  const r = await run(["scripts/examples/custom_plugin.ts", out]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /silent channels of conv2: \d+ of 16/);
  const json = JSON.parse(await Deno.readTextFile(`${out}/layer-portrait.json`));
  assert.equal(json.images.length, 2);
  await Deno.remove(out, { recursive: true });
});

Deno.test("the CLI loads a user's plugin module with --plugin", async () => {
  const out = await Deno.makeTempDir({ prefix: "convlens_ex3_" });
  const r = await run([
    "scripts/cli.ts",
    "mean-activation",
    "--plugin",
    "scripts/examples/mean_activation.ts",
    "--layer",
    "conv2",
    "--out",
    out,
    "--quiet",
  ]);
  assert.equal(r.code, 0, r.err);
  const json = JSON.parse(await Deno.readTextFile(`${out}/mean-activation.json`));
  assert.equal(json.tables[0].rows.length, 16);
  await Deno.remove(out, { recursive: true });
});
