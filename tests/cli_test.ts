import assert from "node:assert/strict";
import { cli } from "./_cli.ts";
import { tf } from "../core/tf.ts";
import { saveLayersModel } from "../core/load.ts";
import { encodePng } from "../core/images/codecs.ts";
import { mainHelp, pluginHelp } from "../scripts/cli.ts";
import { Registry } from "../core/plugin.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { sequentialNet } from "./_nets.ts";

await tf.setBackend("cpu");
Deno.env.set("CONVLENS_BACKEND", "cpu");

const work = await Deno.makeTempDir({ prefix: "convlens_cli_" });
const modelDir = `${work}/model`;
await saveLayersModel(sequentialNet(), modelDir, { name: "tiny" });

function png(w: number, h: number, colour: boolean): Promise<Uint8Array> {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const v = (i * 37) % 256;
    data.set([v, colour ? 255 - v : v, v, 255], i * 4);
  }
  return encodePng({ width: w, height: h, data });
}
await Deno.writeFile(`${work}/gray.png`, await png(12, 12, false));
await Deno.writeFile(`${work}/big.png`, await png(30, 20, false));
await Deno.writeFile(`${work}/colour.png`, await png(12, 12, true));
await Deno.writeFile(`${work}/corrupt.png`, (await png(12, 12, false)).slice(0, 40));

async function files(dir: string): Promise<string[]> {
  try {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    return names.sort();
  } catch {
    return [];
  }
}

Deno.test("lens --help lists every plugin with its summary", async () => {
  const r = await cli(["--help"]);
  assert.equal(r.code, 0);
  for (const p of builtinPlugins) {
    assert.match(
      r.out,
      new RegExp(`${p.name}\\s+${p.summary.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
  }
  assert.equal(mainHelp(new Registry(builtinPlugins)), r.out);
});

Deno.test("lens <plugin> --help lists parameters with types, defaults and ranges", async () => {
  const r = await cli(["activations", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.out, /--scale\s+upscaling of each map \(an integer from 1 to 32, default 4\)/);
  assert.match(r.out, /--normalize .*one of each \| layer, default layer/);
  assert.equal(r.out, pluginHelp(builtinPlugins.find((p) => p.name === "activations")!));
});

Deno.test("lens <plugin> --model <folder> --input <png> --out <dir> runs and saves", async () => {
  const out = `${work}/out_ok`;
  const r = await cli([
    "activations",
    "--model",
    modelDir,
    "--input",
    `${work}/big.png`,
    "--out",
    out,
    "--layer",
    "conv2",
    "--quiet",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(await files(out), [
    ".convlens-run.json",
    "activations-conv2-colorbar.svg",
    "activations-conv2.png",
    "activations.json",
  ]);
  const json = JSON.parse(await Deno.readTextFile(`${out}/activations.json`));
  assert.equal(json.figures.channels, 6);
  assert.deepEqual(json.tensors.activations, [4, 4, 6]);
  assert.match(r.out, /wrote .*activations-conv2\.png/);
});

Deno.test("lens exits 2 on bad usage and 1 on a failed run, leaving no partial output", async () => {
  const out = `${work}/out_bad`;
  const base = ["--model", modelDir, "--out", out, "--quiet"];
  const cases: [string[], number, RegExp][] = [
    [["nosuch", ...base], 2, /Unknown plugin "nosuch"/],
    [
      ["activations", "--scale", "0", ...base, "--input", `${work}/gray.png`],
      2,
      /--scale of activations must be an integer from 1 to 32, got "0"/,
    ],
    [
      ["activations", "--bogus", "1", ...base, "--input", `${work}/gray.png`],
      2,
      /Unknown option '--bogus'/,
    ],
    [
      ["activations", "--layer", "conv9", ...base, "--input", `${work}/gray.png`],
      2,
      /no layer "conv9"/,
    ],
    [
      ["activations", "--layer", "logits", ...base, "--input", `${work}/gray.png`],
      2,
      /no spatial extent/,
    ],
    [
      ["activations", ...base, "--input", `${work}/colour.png`],
      2,
      /has 3 colour channels but the model takes 1.*--convert/,
    ],
    [
      ["activations", ...base, "--input", `${work}/corrupt.png`],
      1,
      /Cannot decode image .*corrupt\.png/,
    ],
    [["activations", ...base, "--input", `${work}/missing.png`], 1, /missing\.png/],
    [
      [
        "activations",
        ...base.slice(2),
        "--model",
        `${work}/nomodel`,
        "--input",
        `${work}/gray.png`,
      ],
      1,
      /Model not found/,
    ],
  ];
  for (const [args, code, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message);
    assert.deepEqual(await files(out), [], `no output for ${args[0]} ${args[1]}`);
  }
  // --convert accepts the colour image.
  const ok = await cli(["activations", ...base, "--input", `${work}/colour.png`, "--convert"]);
  assert.equal(ok.code, 0, ok.err);
});

Deno.test("deno task lens runs as a real process with exit codes", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/cli.ts", ...args],
      stdout: "piped",
      stderr: "piped",
      env: { CONVLENS_BACKEND: "cpu" },
    }).output();
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /Plugins:/);
  const bad = await run(["nosuch"]);
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /Unknown plugin "nosuch"/);
});
