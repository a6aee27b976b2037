/**
 * The `lens` command line: `deno task lens --help` lists every plugin;
 * `deno task lens <plugin> --help` lists its parameters; `deno task lens <plugin>
 * --model <folder|url> --input <png|jpg> --out <dir>` runs it and saves its PNGs
 * and JSON. Each plugin's parameters become `--flags` from its schema.
 *
 * Every flag and parameter, the inputs' headers and the `--out` folder are
 * checked before the model loads. A run writes its files into a staging folder
 * inside `--out`, under a lock, and moves them in as one set at the end; on an
 * error, SIGINT or SIGTERM the staging folder goes and nothing is left behind.
 * Booleans take `--x`, `--x=false` and `--no-x`.
 *
 * Exit codes: 0 on success, 2 on bad usage (a flag, parameter, input image,
 * `--out` folder or permission to fix), 1 on a failed run (the model cannot be
 * loaded or fetched, an image cannot be decoded, a write fails), 130 on SIGINT
 * and 143 on SIGTERM.
 *
 * @module
 */
import "./_preflight.ts";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Lens } from "../lens.ts";
import { type AnyPlugin, Registry } from "../core/plugin.ts";
import { describeParam, ParamError, type ParamSchema, resolveParams } from "../core/params.ts";
import { BACKENDS, resolveBackendName } from "../backends/mod.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { OutDir, OutDirError } from "../core/out_dir.ts";
import { checkImageSize, DEFAULT_MAX_PIXELS, readImageBytes } from "../core/images/codecs.ts";
import { DEFAULT_TIMEOUT_S } from "../core/load.ts";
import type { InputContract } from "../core/net.ts";
import { parseShard, type ShardSpec } from "../core/jobs/shard_spec.ts";
import {
  type AnyShardedJob,
  mergeParams,
  mergePlugin,
  shardPlugin,
} from "../core/jobs/sharded_job.ts";
import { findStateFiles, readState, type ShardState, writeState } from "../core/jobs/state_file.ts";
import { topPatchesJob } from "../plugins/inspect/top_patches.ts";
import { deletionJob } from "../plugins/attribute/eval/deletion.ts";
import { pointingGameJob } from "../plugins/attribute/eval/pointing_game.ts";
import { sanityCheckJob } from "../plugins/attribute/eval/sanity_check.ts";
import { ttaJob } from "../plugins/train/marginalize/test_time_crops.ts";
import { probeLayersJob } from "../plugins/train/transfer/probe_layers.ts";
import { transferJob } from "../plugins/train/transfer/transfer_table.ts";
import { stackExperimentJob } from "../plugins/design/stack_experiment.ts";

/** The plugins that run as sharded jobs (`--shard`, `--workers`, `merge`). */
const SHARDED_JOBS: readonly AnyShardedJob[] = [
  topPatchesJob,
  deletionJob,
  pointingGameJob,
  sanityCheckJob,
  ttaJob,
  probeLayersJob,
  transferJob,
  stackExperimentJob,
];

/** Error for bad usage (exit code 2). */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const GLOBAL_OPTIONS = {
  help: { type: "boolean", short: "h" },
  model: { type: "string" },
  input: { type: "string", multiple: true },
  label: { type: "string", multiple: true },
  out: { type: "string" },
  backend: { type: "string" },
  seed: { type: "string" },
  plugin: { type: "string", multiple: true },
  convert: { type: "boolean" },
  count: { type: "string" },
  data: { type: "string" },
  report: { type: "boolean" },
  force: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  timeout: { type: "string" },
  "max-pixels": { type: "string" },
  range: { type: "string" },
  mean: { type: "string" },
  std: { type: "string" },
  output: { type: "string" },
  shard: { type: "string" },
  workers: { type: "string" },
  in: { type: "string", multiple: true },
} as const satisfies ParseArgsConfig["options"];

const GLOBAL_HELP: [string, string][] = [
  [
    "--model <folder|url|name>",
    "model folder, model.json, http(s) URL, or mnist | canvas | fashion (default mnist)",
  ],
  ["--input <png|jpg>", "input image (repeat for several); default: images of --data"],
  [
    "--data <name|folder>",
    "fashion | fashion-train | mnist | canvas, or a folder of class subfolders " +
    "(default: a built-in model's own test data)",
  ],
  ["--label <class>", "true class of each --input (repeat in order)"],
  ["--count <n>", "how many images of --data when no --input (default 4)"],
  ["--out <dir>", "output folder (default out/<plugin>)"],
  ["--force", "replace files of another run in --out"],
  ["--backend <name>", `${BACKENDS.join(" | ")} (default CONVLENS_BACKEND or auto)`],
  ["--seed <n>", "seed of the run (default 0)"],
  ["--plugin <file.ts>", "load your own plugin(s) from a module (repeat for several)"],
  ["--convert", "convert colour images for a grayscale model"],
  ["--report", "also write <out>/report.html"],
  ["--quiet", "print no progress"],
  ["--timeout <s>", `seconds an http(s) model may take to arrive (default ${DEFAULT_TIMEOUT_S})`],
  [
    "--max-pixels <n>",
    `refuse larger input images before decoding (default ${DEFAULT_MAX_PIXELS})`,
  ],
  [
    "--output <name|index>",
    "the output to explain, for a model with several outputs (by layer name or index)",
  ],
  [
    "--range <lo,hi>",
    "raw pixel values the model takes, e.g. --range=-1,1 or 0,255 " +
    "(default: convlens.json's, else 0,1)",
  ],
  ["--mean <m[,m,m]>", "per-channel mean subtracted after --range (default 0)"],
  ["--std <s[,s,s]>", "per-channel standard deviation divided by after --mean (default 1)"],
  ["--no-<flag>", "turn a boolean off (also --<flag>=false)"],
  [
    "--shard <i/N|auto/N|auto>",
    "run shard i of N of a data-set-wide plugin and write only its state file; auto: i from " +
    "JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID (Slurm)",
  ],
  ["--workers <K>", "run K shards as local processes and merge them"],
  ["--in <dir|file>", "merge: a shard's --out folder or state file (repeat for each)"],
];

/** Loads the plugins a user's module exports (default export or named exports). */
export async function loadPluginModule(path: string): Promise<AnyPlugin[]> {
  const url = /^[a-z]+:/i.test(path)
    ? path
    : new URL(path, `file://${Deno.cwd().replace(/\/?$/, "/")}`).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (err) {
    throw new UsageError(`Cannot load plugin module "${path}": ${(err as Error).message}`);
  }
  const found = Object.values(mod).filter((v): v is AnyPlugin =>
    !!v && typeof v === "object" && typeof (v as AnyPlugin).run === "function" &&
    typeof (v as AnyPlugin).name === "string" && typeof (v as AnyPlugin).params === "object"
  );
  if (found.length === 0) {
    throw new UsageError(
      `Plugin module "${path}" exports no plugin: export one made with definePlugin(...)`,
    );
  }
  return found;
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s}  ` : s + " ".repeat(n - s.length);
}

/** The text of `lens --help`. */
export function mainHelp(registry: Registry): string {
  const lines = [
    "convlens: see inside ConvNets",
    "",
    "Usage: deno task lens <plugin> [--model <folder|url>] [--input <png|jpg>] [--out <dir>] [plugin flags]",
    "       deno task lens <plugin> --help     parameters of one plugin",
    "       deno task lens merge <plugin> --in <dir> [--in <dir> ...] --out <dir>",
    "                                          merge the state files of --shard runs into the result",
    `       (sharded plugins: ${SHARDED_JOBS.map((j) => j.plugin.name).join(", ")})`,
    "",
    "Plugins:",
  ];
  const width = Math.max(...registry.list().map((p) => p.name.length)) + 2;
  const families = [...new Set(registry.list().map((p) => p.family))];
  for (const fam of families) {
    lines.push(`  ${fam}:`);
    for (const p of registry.list().filter((q) => q.family === fam)) {
      lines.push(`    ${pad(p.name, width)}${p.summary}`);
    }
  }
  lines.push("", "Options:");
  for (const [flag, help] of GLOBAL_HELP) lines.push(`  ${pad(flag, 28)}${help}`);
  return lines.join("\n");
}

/** The text of `lens <plugin> --help`. */
export function pluginHelp(plugin: AnyPlugin): string {
  const lines = [`${plugin.name} (${plugin.family}): ${plugin.summary}`, ""];
  const entries = Object.entries(plugin.params as ParamSchema);
  if (entries.length === 0) lines.push("Parameters: none");
  else {
    lines.push("Parameters:");
    for (const [name, spec] of entries) {
      lines.push(`  ${pad(`--${name}`, 24)}${spec.help} (${describeParam(spec)})`);
    }
  }
  lines.push(
    "",
    "Common options: --model --input --label --count --data --out --backend --seed --plugin",
  );
  return lines.join("\n");
}

function intFlag(
  name: string,
  v: string | undefined,
  min = -Infinity,
  max = Infinity,
): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === "" ? NaN : Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = min > -Infinity && max < Infinity
      ? ` from ${min} to ${max}`
      : min > -Infinity
      ? ` >= ${min}`
      : "";
    throw new UsageError(`--${name} must be an integer${range}, got "${v}"`);
  }
  return n;
}

/** `--output`: an index when it is a whole number, else an output's name. */
function outputFlag(v: string | undefined): string | number | undefined {
  if (v === undefined) return undefined;
  if (v.trim() === "") throw new UsageError("--output is empty: give an output's name or index");
  return /^\d+$/.test(v.trim()) ? Number(v.trim()) : v;
}

/** A comma list of finite numbers (`--range`, `--mean`, `--std`). */
function numberList(name: string, v: string | undefined, positive = false): number[] | undefined {
  if (v === undefined) return undefined;
  const ns = v.split(",").map((t) => (t.trim() === "" ? NaN : Number(t)));
  if (ns.some((n) => !Number.isFinite(n) || (positive && n <= 0))) {
    throw new UsageError(
      `--${name} must be a comma list of ${positive ? "positive " : ""}numbers, got "${v}"`,
    );
  }
  return ns;
}

/** The input contract given by `--range`, `--mean` and `--std`, if any. */
function contractFlags(v: Record<string, unknown>): Partial<InputContract> | undefined {
  const range = numberList("range", v.range as string | undefined);
  if (range && (range.length !== 2 || !(range[0] < range[1]))) {
    throw new UsageError(
      `--range must be LO,HI with LO < HI (e.g. --range=-1,1), got "${v.range}"`,
    );
  }
  const mean = numberList("mean", v.mean as string | undefined);
  const std = numberList("std", v.std as string | undefined, true);
  if (!range && !mean && !std) return undefined;
  return {
    ...(range ? { range: range as [number, number] } : {}),
    ...(mean ? { mean } : {}),
    ...(std ? { std } : {}),
  };
}

function numberFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === "" ? NaN : Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${name} must be a positive number, got "${v}"`);
  }
  return n;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);

/**
 * Takes the boolean flags written `--x=true|false` and `--no-x` out of `args`
 * (node:util's parseArgs knows neither), returning the rest and their values.
 */
function splitBooleans(
  args: readonly string[],
  booleans: ReadonlySet<string>,
): { rest: string[]; values: Record<string, boolean> } {
  const rest: string[] = [];
  const values: Record<string, boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const eq = /^--([^=]+)=(.*)$/.exec(a);
    if (eq && booleans.has(eq[1])) {
      const v = eq[2].toLowerCase();
      if (!TRUE.has(v) && !FALSE.has(v)) {
        throw new UsageError(
          `--${eq[1]} is a boolean: write --${eq[1]}, --${eq[1]}=false or --no-${eq[1]}, ` +
            `not --${eq[1]}=${eq[2]}`,
        );
      }
      values[eq[1]] = TRUE.has(v);
      continue;
    }
    const no = /^--no-(.+)$/.exec(a);
    if (no && booleans.has(no[1])) {
      values[no[1]] = false;
      continue;
    }
    rest.push(a);
  }
  return { rest, values };
}

/** Checks each input image exists, is readable and under the pixel limit (header only). */
async function checkInputs(paths: readonly string[], maxPixels: number): Promise<void> {
  for (const path of paths) {
    if (path.trim() === "") throw new UsageError("--input is empty: give a PNG or JPEG file");
    const bytes = await readImageBytes(path);
    checkImageSize(bytes, path, maxPixels);
  }
}

/**
 * Runs the command line.
 * @param args Arguments (without the program name).
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let lens: Lens | undefined;
  let out: OutDir | undefined;
  try {
    const globalBooleans = new Set(
      Object.entries(GLOBAL_OPTIONS).filter(([, o]) => o.type === "boolean").map(([k]) => k),
    );
    // First pass: find the plugin name and user plugin modules.
    const first = parseArgs({
      args: splitBooleans(args, globalBooleans).rest,
      options: GLOBAL_OPTIONS,
      strict: false,
      allowPositionals: true,
    });
    const registry = new Registry(builtinPlugins);
    for (const path of (first.values.plugin as string[] | undefined) ?? []) {
      for (const p of await loadPluginModule(path)) registry.add(p);
    }
    // `merge <plugin>`: the plugin is the second word.
    const merging = first.positionals[0] === "merge" && !registry.has("merge");
    const name = merging ? first.positionals[1] : first.positionals[0];
    if (merging && !name) {
      throw new UsageError(
        "merge needs the plugin: deno task lens merge <plugin> --in <dir> --in <dir> --out <dir>",
      );
    }
    if (!name) {
      console.log(mainHelp(registry));
      return first.values.help ? 0 : 2;
    }
    let plugin: AnyPlugin;
    try {
      plugin = registry.get(name);
    } catch (err) {
      throw new UsageError((err as Error).message + '\nRun "deno task lens --help" for the list.');
    }
    const pluginOptions: ParseArgsConfig["options"] = {};
    const booleans = new Set(globalBooleans);
    for (const [k, spec] of Object.entries(plugin.params as ParamSchema)) {
      if (k in GLOBAL_OPTIONS) continue;
      pluginOptions[k] = { type: spec.type === "boolean" ? "boolean" : "string" };
      if (spec.type === "boolean") booleans.add(k);
    }
    const split = splitBooleans(args, booleans);
    let parsed;
    try {
      parsed = parseArgs({
        args: split.rest,
        options: { ...GLOBAL_OPTIONS, ...pluginOptions },
        strict: true,
        allowPositionals: true,
      });
    } catch (err) {
      throw new UsageError(
        `${(err as Error).message}\nRun "deno task lens ${plugin.name} --help" for its parameters.`,
      );
    }
    const v = { ...parsed.values, ...split.values } as Record<string, unknown>;
    if (v.help) {
      console.log(pluginHelp(plugin));
      return 0;
    }
    if (parsed.positionals.length > (merging ? 2 : 1)) {
      const extra = parsed.positionals[merging ? 2 : 1];
      const i = split.rest.indexOf(extra);
      const before = i > 0 ? /^--(.+)$/.exec(split.rest[i - 1])?.[1] : undefined;
      if (before && booleans.has(before) && (TRUE.has(extra) || FALSE.has(extra))) {
        throw new UsageError(
          `--${before} is a boolean and takes no separate value: write --${before}=${extra}` +
            (FALSE.has(extra) ? ` or --no-${before}` : ""),
        );
      }
      throw new UsageError(`Unexpected argument "${extra}"`);
    }
    // Every flag and parameter is checked before the model and images load.
    const raw: Record<string, unknown> = {};
    for (const k of Object.keys(plugin.params)) if (v[k] !== undefined) raw[k] = v[k];
    resolveParams(plugin.name, plugin.params as ParamSchema, raw);
    const labels = ((v.label as string[] | undefined) ?? []).map((s) => intFlag("label", s, 0)!);
    const inputs = v.input as string[] | undefined;
    if (labels.length && !inputs?.length) {
      throw new UsageError(
        "--label gives the true class of each --input: give --input images with it",
      );
    }
    if (labels.length && inputs && labels.length !== inputs.length) {
      throw new UsageError(
        `${labels.length} --label values for ${inputs.length} --input images: give one ` +
          "--label per --input, in the same order",
      );
    }
    const jobs = await jobFlags(plugin, v, merging);
    if (jobs.states) Object.assign(raw, { ...mergeParams(jobs.states[0]), ...raw });
    const seed = intFlag("seed", v.seed as string | undefined) ?? jobs.states?.[0].identity.seed;
    const count = intFlag("count", v.count as string | undefined, 1, 100_000);
    const timeout = numberFlag("timeout", v.timeout as string | undefined);
    const contract = contractFlags(v);
    const maxPixels = intFlag("max-pixels", v["max-pixels"] as string | undefined, 1) ??
      DEFAULT_MAX_PIXELS;
    const backend = v.backend as string | undefined;
    if (backend !== undefined) resolveBackendName(backend);
    if (v.model !== undefined && (v.model as string).trim() === "") {
      throw new UsageError("--model is empty: give a folder, a model.json, a URL or a name");
    }
    if (inputs) await checkInputs(inputs, maxPixels);
    // Each command writes its own folder by default, so that no run replaces
    // another's files (the demo's report included) unless told to.
    const outPath = (v.out as string | undefined) ?? `out/${name}`;
    // Shards of one job may share one --out (a volume every pod mounts): each
    // writes only its own state file, atomically, so they take no folder lock.
    if (jobs.shard) await stateFolder(outPath);
    else {
      out = await OutDir.open(outPath, {
        signals: true,
        owner: `lens ${name}`,
        force: v.force as boolean | undefined,
      });
    }
    // The workers run before this process loads the model and data, so that
    // while they run it holds only their states.
    if (jobs.job && jobs.workers) {
      jobs.states = await runWorkers(jobs.job, args, jobs.workers, !v.quiet);
    }
    lens = await Lens.open({
      model: v.model as string | undefined,
      backend,
      seed,
      inputs,
      labels: labels.length ? labels : undefined,
      // A sharded job streams its data set itself (its --count is the plugin's),
      // also when run whole: the Lens's input images would hold the whole set in
      // memory (they are the first --count of the same data set).
      count: jobs.job || SHARDED_JOBS.some((j) => j.plugin.name === plugin.name) ? 1 : count,
      data: v.data as string | undefined,
      convert: v.convert as boolean | undefined,
      progress: !v.quiet,
      quiet: v.quiet as boolean | undefined,
      timeout,
      maxPixels,
      ...(contract ? { sidecar: { input: contract } } : {}),
      output: outputFlag(v.output as string | undefined),
    });
    for (const p of registry.list()) lens.use(p);
    if (jobs.job && jobs.shard) {
      let state: ShardState<unknown> | undefined;
      const run = shardPlugin(jobs.job, jobs.shard, (s) => (state = s));
      (await lens.run(run, raw)).dispose();
      const files = await writeState(outPath, state!, jobs.job.state.encode(state!.value));
      for (const w of files) console.log(`wrote ${w}`);
      return 0;
    }
    if (!out) throw new Error("unreachable: no output folder");
    const result = jobs.job && jobs.states
      ? await lens.run(mergePlugin(jobs.job, jobs.states), raw)
      : await lens.run(plugin, raw);
    try {
      const staged = await result.save(out.staging);
      if (v.report) {
        await lens.report(`${out.staging}/report.html`, [result], {
          title: `convlens: ${plugin.name}`,
        });
        staged.push(`${out.staging}/report.html`);
      }
      const written = await out.commit(staged);
      for (const [k, val] of Object.entries(result.figures)) console.log(`${k}: ${val}`);
      for (const w of written) console.log(`wrote ${w}`);
    } finally {
      result.dispose();
    }
    return 0;
  } catch (err) {
    await out?.abort();
    const e = err as Error;
    // RangeErrors name a bad argument (layer, class, image shape): usage, not a crash.
    const usage = e instanceof UsageError || e instanceof ParamError ||
      e instanceof RangeError || e instanceof OutDirError;
    const permission = e instanceof Deno.errors.NotCapable ||
      /no (read|write|network) permission; run with --allow-/.test(e.message);
    const line = e instanceof Deno.errors.NotCapable ? permissionLine(e) : e.message;
    console.error(`error: ${line}`);
    if (!usage && !permission && debug()) console.error(e.stack);
    return usage || permission ? 2 : 1;
  } finally {
    lens?.dispose();
  }
}

/** Makes the `--out` folder of a shard, checking early that it can be written. */
async function stateFolder(path: string): Promise<void> {
  if (path.trim() === "") throw new UsageError("--out is empty: give a folder for the state file");
  try {
    await Deno.mkdir(path, { recursive: true });
    const probe = `${path.replace(/\/+$/, "")}/.convlens-write-test-${Deno.pid}`;
    await Deno.writeTextFile(probe, "");
    await Deno.remove(probe);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) throw err;
    throw new UsageError(
      `--out "${path}" cannot hold the state file (${
        (err as Error).message
      }); give a writable folder`,
    );
  }
}

/** What `--shard`, `--workers` and `merge --in` ask of a run. */
interface JobFlags {
  /** The plugin's sharded job (when any of them is given). */
  job?: AnyShardedJob;
  /** `--shard`. */
  shard?: ShardSpec;
  /** `--workers`. */
  workers?: number;
  /** The states to merge (`merge --in`, or the workers'). */
  states?: (ShardState<unknown> & { path: string })[];
}

/** Checks the job flags and reads the states a merge is given (before the model loads). */
async function jobFlags(
  plugin: AnyPlugin,
  v: Record<string, unknown>,
  merging: boolean,
): Promise<JobFlags> {
  const ins = (v.in as string[] | undefined) ?? [];
  const asked = v.shard !== undefined || v.workers !== undefined || merging;
  if (!asked) {
    if (ins.length) {
      throw new UsageError("--in belongs to merge: deno task lens merge <plugin> --in <dir>");
    }
    return {};
  }
  const job = SHARDED_JOBS.find((j) => j.plugin.name === plugin.name);
  if (!job) {
    throw new UsageError(
      `${plugin.name} does not run as a sharded job; these do: ` +
        SHARDED_JOBS.map((j) => j.plugin.name).join(", "),
    );
  }
  const given = [
    v.shard !== undefined && "--shard",
    v.workers !== undefined && "--workers",
    merging && "merge",
  ]
    .filter(Boolean);
  if (given.length > 1) throw new UsageError(`Give one of ${given.join(" and ")}, not both`);
  if (v.shard !== undefined) return { job, shard: parseShard(v.shard as string) };
  if (v.workers !== undefined) {
    return { job, workers: intFlag("workers", v.workers as string, 1, 64) };
  }
  if (ins.length === 0) {
    throw new UsageError(
      `merge ${plugin.name} needs the shards' folders: --in <dir> for each (their --out)`,
    );
  }
  const states: (ShardState<unknown> & { path: string })[] = [];
  for (const dir of ins) {
    for (const path of await findStateFiles(dir, plugin.name)) {
      const s = await readState(path);
      if (s.identity.plugin !== plugin.name) {
        throw new UsageError(`"${path}" is a state of ${s.identity.plugin}, not of ${plugin.name}`);
      }
      states.push({ ...s, value: job.state.decode(s.payload) });
    }
  }
  return { job, states };
}

/**
 * Runs shards `0/K .. K-1/K` as processes of this command line (each with
 * `--shard k/K` and its own folder) and reads their states back.
 */
async function runWorkers(
  job: AnyShardedJob,
  args: readonly string[],
  k: number,
  progress: boolean,
): Promise<(ShardState<unknown> & { path: string })[]> {
  // The same arguments without --workers and --out (each worker has its own folder).
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--workers" || args[i] === "--out") i++;
    else if (!/^--(workers|out)=/.test(args[i])) rest.push(args[i]);
  }
  const tmp = await Deno.makeTempDir({ prefix: "convlens-workers-" });
  try {
    const cli = decodeURIComponent(new URL(import.meta.url).pathname);
    const children = Array.from({ length: k }, (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-net",
          "--allow-ffi",
          "--allow-env",
          cli,
          ...rest,
          "--shard",
          `${i}/${k}`,
          "--out",
          `${tmp}/${i}`,
          "--quiet",
        ],
        stdout: "null",
        stderr: "inherit",
      }).spawn());
    if (progress) console.error(`${job.plugin.name}: ${k} workers running`);
    const codes = await Promise.all(children.map((c) => c.status));
    const failed = codes.findIndex((c) => c.code !== 0);
    if (failed >= 0) {
      throw new Error(
        `Worker ${failed}/${k} failed (exit code ${codes[failed].code}); see its error above`,
      );
    }
    const states: (ShardState<unknown> & { path: string })[] = [];
    for (let i = 0; i < k; i++) {
      for (const path of await findStateFiles(`${tmp}/${i}`, job.plugin.name)) {
        const s = await readState(path);
        states.push({ ...s, value: job.state.decode(s.payload) });
      }
    }
    return states;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/** Whether CONVLENS_DEBUG asks for stacks (without permission to read it: no). */
function debug(): boolean {
  try {
    return !!Deno.env.get("CONVLENS_DEBUG");
  } catch {
    return false;
  }
}

/** Deno's permission error as one line naming the flag to add. */
function permissionLine(e: Error): string {
  const m = /Requires (\w+) access to ([^,]+), run again with the (--allow-\w+) flag/.exec(
    e.message,
  );
  if (!m) return `${e.message.split("\n")[0]} (see "Permissions" in the README)`;
  const target = m[2].replace(/^"|"$/g, "");
  return `convlens needs ${m[1]} access to ${target}: run with ${m[3]}=${target} ` +
    '(see "Permissions" in the README)';
}

if (import.meta.main) Deno.exit(await main(Deno.args));
