/**
 * The main job: runs every plugin (each with its demo parameter sets) on the
 * built-in fashion model (Fashion-MNIST test images), or on `--model` with
 * `--input` or `--data`, and writes a self-contained
 * `out/report.html` plus PNGs and JSON, with a progress bar on stderr.
 *
 * `deno task demo [--model <folder|url>] [--input <png|jpg>] [--data <name|folder>] [--out <dir>]
 * [--backend <name>] [--only a,b] [--skip a,b] [--plugin <file.ts>] [--force]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Lens } from "../lens.ts";
import { Result } from "../core/result.ts";
import { ParamError } from "../core/params.ts";
import { loadPluginModule } from "./cli.ts";
import { OutDir } from "../core/out_dir.ts";
import { learningCurves } from "../core/plots/learning_curves.ts";
import type { EpochLog } from "../core/train/fit.ts";

/**
 * Plugins that study what the demo's model does not have run on another built-in
 * model too (or only there, where they cannot run on the demo's): MC-dropout needs
 * dropout layers, which the fashion model has none of.
 */
export const OTHER_MODEL_PLUGINS: Readonly<Record<string, string>> = { "mc-dropout": "mnist" };

/** Plugins the demo also runs on the built-in canvas model (digits at known places). */
export const WHERE_PLUGINS: readonly string[] = [
  "pointing-game",
  "localize",
  "occlusion",
  "grad-cam",
  "saliency",
];

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Model (folder, URL or built-in name). @default "fashion" */
  model?: string;
  /** Input images. @default the first images of the data */
  inputs?: string[];
  /** Data set (name or class-per-subfolder folder). @default the built-in model's own */
  data?: string;
  /** Output folder. @default "out" */
  out?: string;
  /** Backend. @default auto */
  backend?: string;
  /** Only these plugins. @default all */
  only?: string[];
  /** Not these plugins. @default none */
  skip?: string[];
  /** User plugin modules. @default [] */
  plugins?: string[];
  /** Seed. @default 0 */
  seed?: number;
  /** Progress bar on stderr. @default true */
  progress?: boolean;
  /** Remove the staging folder on SIGINT/SIGTERM and exit (for the command line). @default false */
  signals?: boolean;
  /** Replace files of another run (another command's) in the output folder. @default false */
  force?: boolean;
}

/** What the demo did. */
export interface DemoSummary {
  /** Report path. */
  report: string;
  /** Files written. */
  files: string[];
  /** Plugins that failed, with their messages. */
  failures: { plugin: string; message: string }[];
  /** Seconds each plugin run took, in order. */
  timings: { plugin: string; seconds: number }[];
}

/**
 * Runs every plugin and writes the report.
 * @param options Model, inputs, output folder, selection.
 * @returns What was written and what failed.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoSummary> {
  // The run's files go to a staging folder inside --out and move in as one set
  // at the end, so an interrupted demo never leaves a report that does not
  // match the files beside it.
  const dir = await OutDir.open(options.out ?? "out", {
    signals: options.signals ?? false,
    owner: "demo",
    force: options.force,
  });
  const out = dir.staging;
  const model = options.model ?? "fashion";
  let committed = false;
  let lens: Lens;
  try {
    lens = await Lens.open({
      model,
      inputs: options.inputs,
      data: options.data,
      backend: options.backend,
      seed: options.seed,
      progress: options.progress ?? true,
    });
  } catch (err) {
    await dir.abort();
    throw err;
  }
  const results: Result[] = [];
  const files: string[] = [];
  const failures: DemoSummary["failures"] = [];
  const timings: DemoSummary["timings"] = [];
  const timed = async <T>(plugin: string, run: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      timings.push({ plugin, seconds: (performance.now() - t0) / 1000 });
    }
  };
  try {
    for (const path of options.plugins ?? []) {
      for (const p of await loadPluginModule(path)) lens.use(p);
    }
    // The built-in models get the canvas pass too (questions of where).
    const canvasPass = !options.inputs?.length && (model === "fashion" || model === "mnist");
    for (const plugin of lens.registry.list()) {
      if (options.only && !options.only.includes(plugin.name)) continue;
      if (options.skip?.includes(plugin.name)) continue;
      // The pointing game and localization need known boxes: they run in the canvas pass below.
      if (canvasPass && (plugin.name === "pointing-game" || plugin.name === "localize")) continue;
      const elsewhere = OTHER_MODEL_PLUGINS[plugin.name];
      if (canvasPass && elsewhere && elsewhere !== model) continue;
      const sets = plugin.demo?.length ? plugin.demo : [{}];
      for (const [i, params] of sets.entries()) {
        try {
          const label = sets.length > 1 ? `${plugin.name} (${i + 1})` : plugin.name;
          const r = await timed(label, () => lens.run(plugin, params));
          if (sets.length > 1) {
            const tag = Object.entries(params).map(([k, v]) => `${k}=${v}`).join(" ");
            r.title = `${r.title} (${tag || "defaults"})`;
          }
          const saved = await saveAs(r, out, sets.length > 1 ? `${plugin.name}-${i + 1}` : "");
          files.push(...saved);
          results.push(r);
        } catch (err) {
          const message = (err as Error).message;
          failures.push({ plugin: plugin.name, message });
          const r = new Result(plugin.name, `${plugin.name}: failed`);
          r.note(`Failed: ${message}`);
          results.push(r);
          console.error(`error in ${plugin.name}: ${message}`);
        }
      }
    }
    // Questions of *where* need images whose answer is known: the built-in canvas
    // model's held-out canvases carry each digit's box.
    if (canvasPass) {
      const passes: [string, readonly string[]][] = [["canvas", WHERE_PLUGINS]];
      for (const [name, other] of Object.entries(OTHER_MODEL_PLUGINS)) {
        if (other !== model) passes.push([other, [name]]);
      }
      for (const [other, names] of passes) {
        const chosen = names.filter((n) =>
          (!options.only || options.only.includes(n)) && !options.skip?.includes(n)
        );
        if (!chosen.length) continue;
        const side = await Lens.open({
          model: other,
          backend: options.backend,
          seed: options.seed,
          progress: options.progress ?? true,
          quiet: true,
        });
        try {
          for (const name of chosen) {
            try {
              const params = side.registry.get(name).demo?.[0] ?? {};
              const r = await timed(`${name} (${other})`, () => side.run(name, params));
              r.title = `${r.title} (${other} model)`;
              files.push(...await saveAs(r, out, `${other}-${name}`));
              results.push(r);
            } catch (err) {
              const message = (err as Error).message;
              failures.push({ plugin: `${name} (${other})`, message });
              console.error(`error in ${name} (${other} model): ${message}`);
            }
          }
        } finally {
          side.dispose();
        }
      }
    }
    const training = trainingResult(lens);
    if (training) {
      files.push(...await training.save(out));
      results.unshift(training);
    }
    const times = timeTable(timings);
    results.push(times);
    files.push(...await times.save(out));
    console.error(
      times.tables[0].rows.map((row) => `  ${String(row[0]).padEnd(28)} ${row[1]} s`).join("\n"),
    );
    const report = `${out}/report.html`;
    await lens.report(report, results, {
      title: "convlens report",
      intro: `<p>Every plugin on ${lens.net.sidecar.name ?? lens.net.source}, ` +
        `${lens.images.names.length} input images: ${lens.images.names.join(", ")}.</p>`,
    });
    files.push(report);
    const moved = await dir.commit(files);
    committed = true;
    return { report: moved.at(-1)!, files: moved, failures, timings };
  } finally {
    for (const r of results) r.dispose();
    lens.dispose();
    if (!committed) await dir.abort();
  }
}

/** The time each plugin run took, slowest first, as the report's last section. */
function timeTable(timings: DemoSummary["timings"]): Result {
  const total = timings.reduce((s, t) => s + t.seconds, 0);
  const r = new Result("demo-times", "Time per plugin");
  r.family = "demo";
  r.figure("totalSeconds", Number(total.toFixed(1)));
  r.table(
    "Wall-clock seconds of each plugin run in this report (slowest first)",
    ["plugin", "seconds", "share"],
    [...timings].sort((a, b) => b.seconds - a.seconds).map((t) => [
      t.plugin,
      Number(t.seconds.toFixed(1)),
      `${(100 * t.seconds / Math.max(total, 1e-9)).toFixed(0)}%`,
    ]),
  );
  return r;
}

/**
 * The model's learning curves, from the training history its convlens.json
 * records (the built-in models' do), as the report's first section.
 */
function trainingResult(lens: Lens): Result | undefined {
  const sidecar = lens.net.sidecar as Record<string, unknown>;
  const history = sidecar.history as EpochLog[] | undefined;
  if (!Array.isArray(history) || history.length === 0) return undefined;
  const name = lens.net.sidecar.name ?? lens.net.source;
  const r = new Result("training", `How ${name} was trained`);
  r.family = "train";
  const last = history.at(-1)!;
  if (typeof sidecar.heldOutAccuracy === "number") {
    r.figure("testAccuracy", sidecar.heldOutAccuracy);
  }
  if (typeof sidecar.trainSeconds === "number") r.figure("trainSeconds", sidecar.trainSeconds);
  r.figure("epochs", history.length).figure("finalLoss", last.loss);
  if (typeof sidecar.command === "string") r.note(`Trained by: ${sidecar.command}`);
  const plots = learningCurves(history, name);
  r.addPlot("loss", plots.loss, "Cross-entropy per epoch: training (augmented) and test data");
  if (plots.accuracy) {
    r.addPlot("accuracy", plots.accuracy, "Accuracy per epoch: training (augmented) and test data");
  }
  return r;
}

// Saves a result under another plugin name, so several runs of one plugin keep
// their own files.
async function saveAs(r: Result, out: string, name: string): Promise<string[]> {
  if (!name) return await r.save(out);
  const copy = Object.assign(Object.create(Object.getPrototypeOf(r)), r, { plugin: name });
  return await (copy as Result).save(out);
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        model: { type: "string" },
        input: { type: "string", multiple: true },
        data: { type: "string" },
        out: { type: "string" },
        backend: { type: "string" },
        only: { type: "string" },
        skip: { type: "string" },
        plugin: { type: "string", multiple: true },
        seed: { type: "string" },
        force: { type: "boolean" },
      },
      strict: true,
    });
    const list = (s?: string) => s?.split(",").map((x) => x.trim()).filter(Boolean);
    const summary = await runDemo({
      model: values.model,
      inputs: values.input,
      data: values.data,
      out: values.out,
      backend: values.backend,
      only: list(values.only),
      skip: list(values.skip),
      plugins: values.plugin,
      seed: values.seed === undefined ? undefined : Number(values.seed),
      signals: true,
      force: values.force,
    });
    console.log(`wrote ${summary.report} and ${summary.files.length - 1} other files`);
    if (summary.failures.length) {
      console.error(`${summary.failures.length} plugin run(s) failed`);
      Deno.exit(1);
    }
  } catch (err) {
    const e = err as Error;
    console.error(`error: ${e.message}`);
    Deno.exit(e instanceof ParamError || e instanceof RangeError || e instanceof TypeError ? 2 : 1);
  }
}
