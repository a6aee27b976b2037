/**
 * One table of bad inputs, through the command line (in this process, or as a
 * real process where signals, permissions or a second run matter) and through
 * the API. Each case asserts the exit code (for the API: the code the command
 * line gives that error), a phrase of the message, and that the folders it
 * touched hold exactly what they held before.
 */
import { cli } from "./_cli.ts";
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Lens } from "../lens.ts";
import { ParamError } from "../core/params.ts";
import { decodeImage, readImage } from "../core/images/codecs.ts";
import { loadNet } from "../core/load.ts";
import { writeReport } from "../core/report.ts";
import { checkOutDir, OutDir, OutDirError } from "../core/out_dir.ts";
import { makeFixtures, startServer, tree } from "./_bad_input.ts";

await tf.setBackend("cpu");
Deno.env.set("CONVLENS_BACKEND", "cpu");

const fx = await makeFixtures();
const F = fx.files;
const server = startServer();

/** The exit code the command line gives an error (see scripts/cli.ts). */
function codeOf(e: unknown): number {
  return e instanceof RangeError || e instanceof ParamError || e instanceof OutDirError ? 2 : 1;
}

async function api(fn: () => Promise<unknown>): Promise<{ code: number; text: string }> {
  const error = console.error;
  const lines: string[] = [];
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    await fn();
    return { code: 0, text: lines.join("\n") };
  } catch (e) {
    return { code: codeOf(e), text: `${(e as Error).message}\n${lines.join("\n")}` };
  } finally {
    console.error = error;
  }
}

interface Case {
  /** What is wrong. */
  name: string;
  /** Command-line arguments; `OUT` is replaced by the case's output folder. */
  args?: string[];
  /** Or an API call, given the case's output folder. */
  call?: (out: string) => Promise<unknown>;
  code: number;
  message: RegExp;
  /** Prepares the case's folder (`OUT` is `${dir}/out`). */
  setup?: (dir: string) => Promise<void>;
  /** Files the case leaves under its folder when it succeeds. */
  leaves?: string[];
  /** Only where this holds (e.g. not as root, for file-system permissions). */
  when?: boolean;
}

const m = ["--model", fx.model];
const g = ["--input", F["gray.png"]];
const run = (plugin: string, ...rest: string[]) => [plugin, ...m, ...g, "--out", "OUT", ...rest];
const root = Deno.uid() === 0;

const cases: Case[] = [
  // The command and its flags.
  { name: "no plugin", args: [], code: 2, message: /Usage: deno task lens/ },
  { name: "unknown plugin", args: ["nosuch"], code: 2, message: /Unknown plugin "nosuch"/ },
  { name: "close plugin name", args: ["saliencyy"], code: 2, message: /did you mean saliency/ },
  { name: "unknown flag", args: run("summary", "--bogus", "1"), code: 2, message: /'--bogus'/ },
  {
    name: "extra positional",
    args: run("summary", "extra"),
    code: 2,
    message: /Unexpected argument "extra"/,
  },
  { name: "empty --out", args: run("summary", "--out="), code: 2, message: /--out is empty/ },
  { name: "blank --out", args: run("summary", "--out", "  "), code: 2, message: /--out is empty/ },
  { name: "root --out", args: run("summary", "--out", "/"), code: 2, message: /filesystem root/ },
  {
    name: "root --out by dots",
    args: run("summary", "--out", "/tmp/../"),
    code: 2,
    message: /filesystem root/,
  },
  {
    name: "--out is a file",
    args: run("summary", "--out", F["a_file"]),
    code: 2,
    message: /is a file/,
  },
  {
    name: "--out under a file",
    args: run("summary", "--out", `${F["a_file"]}/sub/dir`),
    code: 2,
    message: /which is a file/,
  },
  {
    name: "--out not writable",
    args: run("summary"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.chmod(`${d}/out`, 0o555);
    },
    code: 2,
    message: /permission denied by the file system/,
    when: !root,
  },
  {
    name: "--out under a folder that is not writable",
    args: run("summary", "--out", "OUT/deeper"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.chmod(`${d}/out`, 0o555);
    },
    code: 2,
    message: /permission denied/,
    when: !root,
  },
  {
    name: "--seed text",
    args: run("summary", "--seed", "abc"),
    code: 2,
    message: /--seed must be an integer/,
  },
  {
    name: "--seed fraction",
    args: run("summary", "--seed", "1.5"),
    code: 2,
    message: /--seed must/,
  },
  { name: "--seed NaN", args: run("summary", "--seed", "NaN"), code: 2, message: /--seed must/ },
  { name: "--seed empty", args: run("summary", "--seed="), code: 2, message: /--seed must/ },
  { name: "--seed huge", args: run("summary", "--seed", "1e30"), code: 2, message: /--seed must/ },
  {
    name: "--count 0",
    args: run("summary", "--count", "0"),
    code: 2,
    message: /--count must be an integer from 1/,
  },
  { name: "--count 1e7", args: run("summary", "--count", "1e7"), code: 2, message: /to 100000/ },
  {
    name: "--count negative",
    args: run("summary", "--count=-3"),
    code: 2,
    message: /--count must/,
  },
  {
    name: "--count with a dash value",
    args: run("summary", "--count", "-3"),
    code: 2,
    message: /'--count' argument is ambiguous/,
  },
  {
    name: "--count text",
    args: run("summary", "--count", "four"),
    code: 2,
    message: /--count must/,
  },
  {
    name: "--label text",
    args: run("summary", "--label", "cat"),
    code: 2,
    message: /--label must be an integer/,
  },
  {
    name: "--label fraction",
    args: run("summary", "--label", "0.5"),
    code: 2,
    message: /--label must/,
  },
  {
    name: "--label negative",
    args: run("summary", "--label=-1"),
    code: 2,
    message: /--label must be an integer >= 0/,
  },
  {
    name: "--label past the last class",
    args: run("summary", "--label", "5"),
    code: 2,
    message: /Label 5 is not a class of this model.*0 to 4/,
  },
  {
    name: "--label far past the last class",
    args: run("occlusion", "--label", "99"),
    code: 2,
    message: /Label 99 is not a class/,
  },
  {
    name: "two --label for one --input",
    args: run("summary", "--label", "1", "--label", "2"),
    code: 2,
    message: /2 --label values for 1 --input/,
  },
  {
    name: "--label without --input",
    args: ["summary", ...m, "--label", "1", "--out", "OUT"],
    code: 2,
    message: /give --input images with it/,
  },
  {
    name: "unknown --backend",
    args: run("summary", "--backend", "gpu"),
    code: 2,
    message: /Unknown backend "gpu"/,
  },
  {
    name: "--timeout 0",
    args: run("summary", "--timeout", "0"),
    code: 2,
    message: /--timeout must be a positive/,
  },
  {
    name: "--timeout text",
    args: run("summary", "--timeout", "soon"),
    code: 2,
    message: /--timeout must/,
  },
  {
    name: "--timeout negative",
    args: run("summary", "--timeout=-5"),
    code: 2,
    message: /--timeout must/,
  },
  {
    name: "--max-pixels 0",
    args: run("summary", "--max-pixels", "0"),
    code: 2,
    message: /--max-pixels must/,
  },
  {
    name: "--max-pixels text",
    args: run("summary", "--max-pixels", "lots"),
    code: 2,
    message: /--max-pixels/,
  },
  {
    name: "empty --model",
    args: ["summary", "--model=", ...g, "--out", "OUT"],
    code: 2,
    message: /--model is empty/,
  },
  {
    name: "empty --input",
    args: ["summary", ...m, "--input=", "--out", "OUT"],
    code: 2,
    message: /--input is empty/,
  },
  // Booleans.
  {
    name: "boolean with a bad value",
    args: run("saliency", "--render=maybe"),
    code: 2,
    message: /--render is a boolean: write --render, --render=false or --no-render/,
  },
  {
    name: "boolean with a separate false",
    args: run("saliency", "--render", "false"),
    code: 2,
    message: /write --render=false or --no-render/,
  },
  {
    name: "global boolean with a bad value",
    args: run("summary", "--quiet=perhaps"),
    code: 2,
    message: /--quiet is a boolean/,
  },
  {
    name: "--no- of a string flag",
    args: run("summary", "--no-model"),
    code: 2,
    message: /Unknown option '--no-model'/,
  },
  {
    name: "--no-x turns a boolean off",
    args: run("saliency", "--no-render", "--quiet"),
    code: 0,
    message: /wrote .*saliency\.json/,
    leaves: ["out/", "out/.convlens-run.json", "out/saliency.json"],
  },
  {
    name: "--x=false turns a boolean off",
    args: run("saliency", "--render=false", "--quiet"),
    code: 0,
    message: /wrote .*saliency\.json/,
    leaves: ["out/", "out/.convlens-run.json", "out/saliency.json"],
  },
  {
    name: "--x=true keeps a boolean on",
    args: run("saliency", "--render=true", "--quiet=true"),
    code: 0,
    message: /wrote .*saliency-saliency\.png/,
    leaves: [
      "out/",
      "out/.convlens-run.json",
      "out/saliency-saliency-colorbar.svg",
      "out/saliency-saliency.png",
      "out/saliency.json",
    ],
  },
  // Plugin parameters, all checked before the model loads.
  {
    name: "param out of range",
    args: run("activations", "--scale", "0"),
    code: 2,
    message: /--scale of activations must be an integer from 1 to 32/,
  },
  {
    name: "param not a number",
    args: run("activations", "--scale", "big"),
    code: 2,
    message: /--scale of activations must/,
  },
  {
    name: "param fraction",
    args: run("activations", "--scale", "1.5"),
    code: 2,
    message: /--scale of activations must/,
  },
  {
    name: "param empty",
    args: run("activations", "--scale="),
    code: 2,
    message: /--scale of activations must/,
  },
  {
    name: "param not a choice",
    args: run("activations", "--normalize", "all"),
    code: 2,
    message: /one of each, layer/,
  },
  {
    name: "unknown layer",
    args: run("activations", "--layer", "conv9"),
    code: 2,
    message: /no layer "conv9"/,
  },
  {
    name: "layer with no grid",
    args: run("activations", "--layer", "logits"),
    code: 2,
    message: /no spatial extent/,
  },
  {
    name: "smoothgrad of itself",
    args: run("smoothgrad", "--method", "smoothgrad"),
    code: 2,
    message: /would smooth itself/,
  },
  {
    name: "smoothgrad of a plugin that is no attribution",
    args: run("smoothgrad", "--method", "summary"),
    code: 2,
    message: /"summary" is not an attribution method/,
  },
  {
    name: "smoothgrad params not JSON",
    args: run("smoothgrad", "--params", "steps=3"),
    code: 2,
    message: /must be a JSON object/,
  },
  {
    name: "smoothgrad 0 samples",
    args: run("smoothgrad", "--samples", "0"),
    code: 2,
    message: /--samples of smoothgrad/,
  },
  {
    name: "smoothgrad NaN sigma",
    args: run("smoothgrad", "--sigma", "NaN"),
    code: 2,
    message: /--sigma of smoothgrad/,
  },
  // Input images.
  {
    name: "missing image",
    args: run("summary", "--input", `${fx.root}/none.png`),
    code: 1,
    message: /no such file/,
  },
  {
    name: "image is a folder",
    args: run("summary", "--input", F["a_folder.png"]),
    code: 1,
    message: /it is a folder/,
  },
  {
    name: "corrupt PNG",
    args: run("summary", "--input", F["corrupt.png"]),
    code: 1,
    message: /corrupt or truncated/,
  },
  {
    name: "empty image file",
    args: run("summary", "--input", F["empty.png"]),
    code: 1,
    message: /the file is empty/,
  },
  {
    name: "GIF image",
    args: run("summary", "--input", F["anim.gif"]),
    code: 1,
    message: /it is a GIF/,
  },
  {
    name: "text as image",
    args: run("summary", "--input", F["notes.txt"]),
    code: 1,
    message: /unknown file signature/,
  },
  {
    name: "huge PNG",
    args: run("summary", "--input", F["huge.png"]),
    code: 2,
    message: /too large: 40000x40000 is 1600\.0 megapixels/,
  },
  {
    name: "huge JPEG",
    args: run("summary", "--input", F["huge.jpg"]),
    code: 2,
    message: /too large: 20000x20000/,
  },
  {
    name: "image over a lowered limit",
    args: run("summary", "--input", F["mid.png"], "--max-pixels", "5000"),
    code: 2,
    message: /too large: 100x100.*--max-pixels/,
  },
  {
    name: "second image too large",
    args: run("summary", "--input", F["huge.png"]),
    code: 2,
    message: /huge\.png" is too large/,
  },
  {
    name: "colour image, gray model",
    args: run("summary", "--input", F["colour.png"]),
    code: 2,
    message: /--convert/,
  },
  {
    name: "image shrunk more than 8x",
    args: run("summary", "--input", F["large.png"]),
    code: 0,
    message: /warning: image ".*large\.png" \(200x200\) is shrunk 17x/,
    leaves: ["out/", "out/.convlens-run.json", "out/summary-effective_rf.png", "out/summary.json"],
  },
  // Models.
  {
    name: "missing model",
    args: ["summary", "--model", `${fx.root}/nomodel`, ...g, "--out", "OUT"],
    code: 1,
    message: /Model not found/,
  },
  {
    name: "folder without model.json",
    args: ["summary", "--model", F["empty_model"], ...g, "--out", "OUT"],
    code: 1,
    message: /no model\.json/,
  },
  {
    name: "broken model.json",
    args: ["summary", "--model", F["broken"], ...g, "--out", "OUT"],
    code: 1,
    message: /not valid JSON/,
  },
  {
    name: "missing weight shard",
    args: ["summary", "--model", F["no_shard"], ...g, "--out", "OUT"],
    code: 1,
    message: /Missing weight shard/,
  },
  {
    name: "truncated weights",
    args: ["summary", "--model", F["short"], ...g, "--out", "OUT"],
    code: 1,
    message: /hold 16 bytes/,
  },
  {
    name: "dense-only model",
    args: ["summary", "--model", F["dense"], "--out", "OUT"],
    code: 2,
    message: /flat vectors of 20 features.*not supported/,
  },
  {
    name: "Conv3D model",
    args: ["summary", "--model", F["conv3d"], "--out", "OUT"],
    code: 2,
    message: /5-D input.*Conv3D.*not supported/,
  },
  {
    name: "nothing listening",
    args: ["summary", "--model", `http://127.0.0.1:${server.closedPort}/m`, "--out", "OUT"],
    code: 1,
    message: /connection refused/,
  },
  {
    name: "server that never answers",
    args: ["summary", "--model", `${server.base}/slow/m`, "--timeout", "0.3", "--out", "OUT"],
    code: 1,
    message: /timeout: no complete answer within 0\.3 s/,
  },
  {
    name: "HTTP 500",
    args: ["summary", "--model", `${server.base}/500/m`, "--out", "OUT"],
    code: 1,
    message: /HTTP 500/,
  },
  {
    name: "HTTP 404",
    args: ["summary", "--model", `${server.base}/404/m`, "--out", "OUT"],
    code: 1,
    message: /HTTP 404/,
  },
  {
    name: "unknown data set",
    args: ["summary", ...m, "--data", `${fx.root}/nodata`, "--out", "OUT"],
    code: 2,
    message: /No input images/,
  },
  // Plugins from files.
  {
    name: "missing plugin module",
    args: ["x", "--plugin", `${fx.root}/none.ts`],
    code: 2,
    message: /Cannot load plugin module/,
  },
  {
    name: "module without plugins",
    args: ["x", "--plugin", F["no_plugin.ts"]],
    code: 2,
    message: /exports no plugin/,
  },
  // Failures after the output folder is open: nothing of the run stays.
  {
    name: "plugin fails",
    args: ["throw-save", "--plugin", F["throw_plugin.ts"], ...m, ...g, "--out", "OUT"],
    code: 1,
    message: /broke on purpose/,
  },
  {
    name: "write fails midway",
    args: ["fail-save", "--plugin", F["fail_plugin.ts"], ...m, ...g, "--out", "OUT"],
    code: 1,
    message: /disk is full/,
  },
  {
    name: "write fails midway with --report",
    args: ["fail-save", "--plugin", F["fail_plugin.ts"], ...m, ...g, "--out", "OUT", "--report"],
    code: 1,
    message: /disk is full/,
  },
  {
    name: "write fails into a folder with older files",
    args: ["fail-save", "--plugin", F["fail_plugin.ts"], ...m, ...g, "--out", "OUT"],
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/fail-save.json`, "{}\n");
    },
    code: 1,
    message: /disk is full/,
  },
  {
    name: "write fails into a new nested folder",
    args: ["fail-save", "--plugin", F["fail_plugin.ts"], ...m, ...g, "--out", "OUT/a/b"],
    code: 1,
    message: /disk is full/,
  },
  {
    name: "bad image with older files",
    args: run("summary", "--input", F["corrupt.png"]),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/summary.json`, "{}\n");
    },
    code: 1,
    message: /corrupt/,
  },
  {
    name: "another run holds the lock",
    args: run("summary"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/.convlens.lock`, `${Deno.pid}\n`);
    },
    code: 2,
    message: /Another convlens run \(process \d+\) is writing into --out/,
  },
  {
    name: "a folder another command wrote is refused before any work",
    args: run("summary"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/report.html`, "<html></html>\n");
      await Deno.writeTextFile(
        `${d}/out/.convlens-run.json`,
        JSON.stringify({ owner: "demo", files: ["report.html"] }),
      );
    },
    code: 2,
    message: /--out ".*" holds the files of another run \(demo: report\.html\).*--force/,
  },
  {
    name: "--force replaces another command's files",
    args: run("summary", "--force", "--no-latency", "--no-erf"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/summary.json`, "{}\n");
      await Deno.writeTextFile(
        `${d}/out/.convlens-run.json`,
        JSON.stringify({ owner: "demo", files: ["summary.json"] }),
      );
    },
    code: 0,
    message: /wrote .*summary\.json/,
  },
  {
    name: "a file of the same name that no run wrote is not replaced",
    args: run("summary", "--no-latency", "--no-erf"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/summary.json`, "my notes\n");
    },
    code: 2,
    message: /holds the files of another run \(not convlens: summary\.json\)/,
  },
  {
    name: "a lock left by a dead run is taken over",
    args: run("summary", "--quiet"),
    setup: async (d) => {
      await Deno.mkdir(`${d}/out`);
      await Deno.writeTextFile(`${d}/out/.convlens.lock`, "2147483646\n");
    },
    code: 0,
    message: /wrote .*summary\.json/,
    leaves: ["out/", "out/.convlens-run.json", "out/summary-effective_rf.png", "out/summary.json"],
  },
  // The API.
  {
    name: "API seed NaN",
    call: () => Lens.open({ model: fx.model, seed: NaN }),
    code: 2,
    message: /seed must be a whole number, got NaN/,
  },
  {
    name: "API seed fraction",
    call: () => Lens.open({ model: fx.model, seed: 0.5 }),
    code: 2,
    message: /seed must be a whole number/,
  },
  {
    name: "API count 1e7",
    call: () => Lens.open({ model: fx.model, count: 1e7 }),
    code: 2,
    message: /count must be a whole number from 1 to 100000/,
  },
  {
    name: "API count 0",
    call: () => Lens.open({ model: fx.model, count: 0 }),
    code: 2,
    message: /count must/,
  },
  {
    name: "API label 0.5",
    call: () => Lens.open({ model: fx.model, inputs: [F["gray.png"]], labels: [0.5] }),
    code: 2,
    message: /Label 0\.5 is not a class/,
  },
  {
    name: "API label 99",
    call: () => Lens.open({ model: fx.model, inputs: [F["gray.png"]], labels: [99] }),
    code: 2,
    message: /Label 99 is not a class.*5 classes/,
  },
  {
    name: "API two labels for one image",
    call: () => Lens.open({ model: fx.model, inputs: [F["gray.png"]], labels: [1, 2] }),
    code: 2,
    message: /2 labels given for 1 image/,
  },
  {
    name: "API maxPixels 0",
    call: () => Lens.open({ model: fx.model, inputs: [F["gray.png"]], maxPixels: 0 }),
    code: 2,
    message: /maxPixels must be a number >= 1/,
  },
  {
    name: "API timeout -1",
    call: () => Lens.open({ model: fx.model, timeout: -1 }),
    code: 2,
    message: /timeout must be a positive number/,
  },
  {
    name: "API NaN pixels",
    call: () => withLens((l) => l.imagesFromPixels(tf.fill([1, 12, 12, 1], NaN) as tf.Tensor4D)),
    code: 2,
    message: /NaN or infinite pixel values/,
  },
  {
    name: "API infinite pixels",
    call: () =>
      withLens((l) => l.imagesFromPixels(tf.fill([1, 12, 12, 1], Infinity) as tf.Tensor4D)),
    code: 2,
    message: /NaN or infinite/,
  },
  {
    name: "API pixels of the wrong size",
    call: () => withLens((l) => l.imagesFromPixels(tf.zeros([1, 10, 10, 1]) as tf.Tensor4D)),
    code: 2,
    message: /does not fit this model/,
  },
  {
    name: "API run() after dispose()",
    call: async () => {
      const lens = await Lens.open({ model: fx.model, inputs: [F["gray.png"]], quiet: true });
      lens.dispose();
      await lens.run("summary");
    },
    code: 1,
    message: /This Lens was disposed.*Lens\.open\(\)/,
  },
  {
    name: "API unknown plugin",
    call: () => withLens((l) => l.run("nosuch")),
    code: 2,
    message: /Unknown plugin/,
  },
  {
    name: "API unknown parameter",
    call: () => withLens((l) => l.run("activations", { bogus: 1 })),
    code: 2,
    message: /Unknown parameter --bogus for activations/,
  },
  {
    name: "API NaN parameter",
    call: () => withLens((l) => l.run("activations", { scale: NaN })),
    code: 2,
    message: /--scale of activations must/,
  },
  {
    name: "API smoothgrad of summary",
    call: () => withLens((l) => l.run("smoothgrad", { method: "summary" })),
    code: 2,
    message: /"summary" is not an attribution method/,
  },
  {
    name: "API report() into a folder",
    call: (out) =>
      withLens(async (l) => {
        await Deno.mkdir(out);
        try {
          await l.report(out, []);
        } finally {
          await Deno.remove(out);
        }
      }),
    code: 2,
    message: /is a folder: give a file in it, such as .*\/out\/report\.html/,
  },
  {
    name: "API report() to an empty path",
    call: () => writeReport("", []),
    code: 2,
    message: /not a file name/,
  },
  {
    name: "API report() to a folder path",
    call: (out) => writeReport(`${out}/`, []),
    code: 2,
    message: /not a file name/,
  },
  {
    name: "API decode of a huge PNG",
    call: () => decodeImage(Deno.readFileSync(F["huge.png"]), "x.png"),
    code: 2,
    message: /too large/,
  },
  {
    name: "API read of a missing image",
    call: () => readImage(`${fx.root}/none.png`),
    code: 1,
    message: /no such file/,
  },
  {
    name: "API model URL refused",
    call: () => loadNet(`http://127.0.0.1:${server.closedPort}/`),
    code: 1,
    message: /connection refused/,
  },
  {
    name: "API model URL too slow",
    call: () => loadNet(`${server.base}/slow/`, { timeout: 0.2 }),
    code: 1,
    message: /timeout/,
  },
  { name: "API empty out folder", call: () => OutDir.open(""), code: 2, message: /--out is empty/ },
  {
    name: "API out folder under a file",
    call: () => checkOutDir(`${F["a_file"]}/x`),
    code: 2,
    message: /which is a file/,
  },
];

async function withLens(fn: (lens: Lens) => unknown): Promise<void> {
  const lens = await Lens.open({ model: fx.model, inputs: [F["gray.png"]], quiet: true });
  try {
    const r = await fn(lens);
    if (r && typeof (r as { dispose?: () => void }).dispose === "function") {
      (r as { dispose: () => void }).dispose();
    }
  } finally {
    lens.dispose();
  }
}

let n = 0;
for (const c of cases) {
  if (c.when === false) continue;
  const i = n++;
  Deno.test(`bad input ${i}: ${c.name}`, async () => {
    const dir = `${fx.root}/case_${i}`;
    await Deno.mkdir(dir);
    await c.setup?.(dir);
    const out = `${dir}/out`;
    const before = await tree(fx.root);
    const tensors = tf.memory().numTensors;
    const r = c.args
      ? await cli(c.args.map((a) => a.replaceAll("OUT", out)))
      : await api(() => c.call!(out));
    assert.equal(r.code, c.code, `${c.name}: exit ${r.code}:\n${r.text}`);
    assert.match(r.text, c.message, c.name);
    const left = (await tree(fx.root)).filter((p) => !before.includes(p));
    const want = (c.leaves ?? []).map((p) => `case_${i}/${p}`).filter((p) => !before.includes(p));
    assert.deepEqual(left, want, `${c.name}: files left behind`);
    if (c.code !== 0) {
      assert.deepEqual((await tree(fx.root)).filter((p) => before.includes(p)), before, "removed");
    }
    assert.equal(tf.memory().numTensors, tensors, `${c.name}: tensors leaked`);
    await Deno.chmod(dir, 0o755);
    if (await Deno.stat(out).then(() => true, () => false)) await Deno.chmod(out, 0o755);
  });
}

// Real processes: signals, permissions, and two runs into one folder.
const decoder = new TextDecoder();
const project = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const ENV_FLAG = "--allow-env=IMAGESCRIPT_WASM_SIMD,CONVLENS_BACKEND,XDG_RUNTIME_DIR";

function lens(flags: string[], args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, `${project}/scripts/cli.ts`, ...args],
    cwd: project,
    stdout: "piped",
    stderr: "piped",
    env: { CONVLENS_BACKEND: "cpu", NO_COLOR: "1", ...env },
  });
}

interface ProcessCase {
  name: string;
  flags: (dir: string) => string[];
  args: (out: string) => string[];
  env?: Record<string, string>;
  code: number;
  message: RegExp;
  leaves?: string[];
}

const readAll = `--allow-read=${project},${fx.root}`;
const processCases: ProcessCase[] = [
  {
    name: "without --allow-env",
    flags: () => [readAll, `--allow-write=${fx.root}`],
    args: (o) => ["summary", ...m, ...g, "--out", o],
    code: 2,
    message: /^error: convlens needs to read the environment variables .*--allow-env=/,
  },
  {
    name: "without --allow-read",
    flags: () => [ENV_FLAG, `--allow-write=${fx.root}`],
    args: (o) => ["summary", ...m, ...g, "--out", o],
    code: 2,
    message: /^error: convlens needs to read its own files .*--allow-read=/,
  },
  {
    name: "without read access to the model",
    flags: (d) => [ENV_FLAG, `--allow-read=${project},${d}`, `--allow-write=${fx.root}`],
    args: (o) => ["summary", "--model", fx.model, "--out", o],
    code: 2,
    message: /no read permission; run with --allow-read=/,
  },
  {
    name: "without --allow-write",
    flags: () => [ENV_FLAG, readAll],
    args: (o) => ["summary", ...m, ...g, "--out", o],
    code: 2,
    message: /no write permission; run with --allow-write=/,
  },
  {
    name: "without --allow-net for a model URL",
    flags: () => [ENV_FLAG, readAll, `--allow-write=${fx.root}`],
    args: (o) => ["summary", "--model", `${server.base}/404/m`, "--out", o],
    code: 2,
    message: /no network permission; run with --allow-net=127\.0\.0\.1/,
  },
  {
    name: "without --allow-ffi the backend line says so",
    flags: () => [ENV_FLAG, readAll, `--allow-write=${fx.root}`],
    args: (o) => ["summary", ...m, ...g, "--out", o],
    env: { CONVLENS_BACKEND: "wasm" },
    code: 0,
    message:
      /backend wasm without oneDNN \(about 10x slower on convolutions at 224x224: run with --allow-ffi to use it\)/,
    leaves: ["out/", "out/.convlens-run.json", "out/summary-effective_rf.png", "out/summary.json"],
  },
];

Deno.test("bad input: missing permissions are each named in one line", async () => {
  await Promise.all(processCases.map(async (c, i) => {
    const dir = `${fx.root}/process_${i}`;
    await Deno.mkdir(dir);
    const r = await lens(c.flags(dir), c.args(`${dir}/out`), c.env).output();
    const err = decoder.decode(r.stderr);
    assert.equal(r.code, c.code, `${c.name}: ${err}`);
    assert.match(err, c.message, c.name);
    assert.ok(!err.includes("\u001b[") && !/\n\s+at /.test(err), `${c.name}: a stack or colours`);
    assert.deepEqual(await tree(dir), c.leaves ?? [], `${c.name}: files left behind`);
  }));
  n += processCases.length;
});

async function stalledRun(out: string): Promise<Deno.ChildProcess> {
  const child = lens(["-A"], [
    "stall-save",
    "--plugin",
    F["stall_plugin.ts"],
    ...m,
    ...g,
    "--out",
    out,
    "--quiet",
  ]).spawn();
  // Wait until it is writing (it prints "saving"), at most 20 s.
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 20_000;
  while (!seen.includes("saving") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += value;
  }
  reader.releaseLock();
  assert.match(seen, /saving/, "the run never reached its write");
  return child;
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  Deno.test(`bad input: ${signal} during a write leaves nothing behind`, async () => {
    const dir = await Deno.makeTempDir({ dir: fx.root });
    const child = await stalledRun(`${dir}/out/run`);
    // While it holds the lock a second run into the same folder is refused.
    const second = await cli(run("summary").map((a) => a === "OUT" ? `${dir}/out/run` : a));
    assert.equal(second.code, 2);
    assert.match(second.text, /Another convlens run \(process \d+\) is writing into --out/);
    assert.ok((await tree(dir)).some((p) => p.includes(".convlens-staging-")), "staged");
    child.kill(signal);
    const status = await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel().catch(() => {});
    assert.equal(status.code, code);
    assert.deepEqual(await tree(dir), [], "files left behind");
  });
  n += 2;
}

Deno.test("bad input: the suite has at least 90 cases", () => {
  assert.ok(n >= 90, `${n} cases`);
});

Deno.test("bad input: clean up", async () => {
  await server.close();
  await Deno.remove(fx.root, { recursive: true });
});
