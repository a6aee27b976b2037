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

Deno.test("every shipped example image is one its model gets right, with a margin", async () => {
  const { Lens } = await import("../lens.ts");
  const dir = new URL("../scripts/examples/images/", import.meta.url).pathname;
  const shipped = (await names(dir)).filter((f) => f.endsWith(".png"));
  assert.ok(shipped.length >= 5, `${shipped}`);
  for (const f of shipped) {
    // digit_<class>.png is for the mnist model, canvas_<class>.png for the canvas model.
    const [, kind, label] = /^(digit|canvas)_(\d)\.png$/.exec(f) ?? [];
    assert.ok(kind, `${f}: name it digit_<class>.png or canvas_<class>.png`);
    const lens = await Lens.open({
      model: kind === "digit" ? "mnist" : "canvas",
      inputs: [`${dir}${f}`],
      backend: "wasm",
      quiet: true,
    });
    try {
      const p = lens.net.probabilities(lens.images.x);
      const v = Array.from(await p.data());
      p.dispose();
      const best = v.indexOf(Math.max(...v));
      assert.equal(best, Number(label), `${f}: the model predicts ${best} (p ${v[best]})`);
      assert.ok(v[best] > 0.95, `${f}: p(${label}) = ${v[best]}`);
    } finally {
      lens.dispose();
    }
  }
});
