/**
 * The `lens` command line: `deno task lens --help` lists every plugin;
 * `deno task lens <plugin> --help` lists its parameters; `deno task lens <plugin>
 * --model <folder|url> --input <png|jpg> --out <dir>` runs it and saves its PNGs
 * and JSON. Each plugin's parameters become `--flags` from its schema.
 *
 * Exit codes: 0 on success, 2 on bad usage, 1 on a failed run.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { Lens } from "../lens.ts";
import { type AnyPlugin, Registry } from "../core/plugin.ts";
import { describeParam, ParamError, type ParamSchema } from "../core/params.ts";
import { BACKENDS } from "../backends/mod.ts";
import { builtinPlugins } from "../plugins/mod.ts";

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
  quiet: { type: "boolean", short: "q" },
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
  ["--out <dir>", "output folder (default out)"],
  ["--backend <name>", `${BACKENDS.join(" | ")} (default CONVLENS_BACKEND or auto)`],
  ["--seed <n>", "seed of the run (default 0)"],
  ["--plugin <file.ts>", "load your own plugin(s) from a module (repeat for several)"],
  ["--convert", "convert colour images for a grayscale model"],
  ["--report", "also write <out>/report.html"],
  ["--quiet", "print no progress"],
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

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got "${v}"`);
  return n;
}

/**
 * Runs the command line.
 * @param args Arguments (without the program name).
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let lens: Lens | undefined;
  try {
    // First pass: find the plugin name and user plugin modules.
    const first = parseArgs({
      args,
      options: GLOBAL_OPTIONS,
      strict: false,
      allowPositionals: true,
    });
    const registry = new Registry(builtinPlugins);
    for (const path of (first.values.plugin as string[] | undefined) ?? []) {
      for (const p of await loadPluginModule(path)) registry.add(p);
    }
    const name = first.positionals[0];
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
    for (const [k, spec] of Object.entries(plugin.params as ParamSchema)) {
      if (k in GLOBAL_OPTIONS) continue;
      pluginOptions[k] = { type: spec.type === "boolean" ? "boolean" : "string" };
    }
    let parsed;
    try {
      parsed = parseArgs({
        args,
        options: { ...GLOBAL_OPTIONS, ...pluginOptions },
        strict: true,
        allowPositionals: true,
      });
    } catch (err) {
      throw new UsageError(
        `${(err as Error).message}\nRun "deno task lens ${plugin.name} --help" for its parameters.`,
      );
    }
    const v = parsed.values as Record<string, unknown>;
    if (v.help) {
      console.log(pluginHelp(plugin));
      return 0;
    }
    if (parsed.positionals.length > 1) {
      throw new UsageError(`Unexpected argument "${parsed.positionals[1]}"`);
    }
    const raw: Record<string, unknown> = {};
    for (const k of Object.keys(plugin.params)) if (v[k] !== undefined) raw[k] = v[k];
    const labels = ((v.label as string[] | undefined) ?? []).map((s) => intFlag("label", s)!);
    const out = (v.out as string | undefined) ?? "out";
    lens = await Lens.open({
      model: v.model as string | undefined,
      backend: v.backend as string | undefined,
      seed: intFlag("seed", v.seed as string | undefined),
      inputs: v.input as string[] | undefined,
      labels: labels.length ? labels : undefined,
      count: intFlag("count", v.count as string | undefined),
      data: v.data as string | undefined,
      convert: v.convert as boolean | undefined,
      progress: !v.quiet,
      quiet: v.quiet as boolean | undefined,
    });
    for (const p of registry.list()) lens.use(p);
    const result = await lens.run(plugin, raw);
    try {
      const written = await result.save(out);
      if (v.report) {
        await lens.report(`${out}/report.html`, [result], { title: `convlens: ${plugin.name}` });
        written.push(`${out}/report.html`);
      }
      for (const [k, val] of Object.entries(result.figures)) console.log(`${k}: ${val}`);
      for (const w of written) console.log(`wrote ${w}`);
    } finally {
      result.dispose();
    }
    return 0;
  } catch (err) {
    const e = err as Error;
    // RangeErrors name a bad argument (layer, class, image shape): usage, not a crash.
    const usage = e instanceof UsageError || e instanceof ParamError || e instanceof RangeError;
    console.error(`error: ${e.message}`);
    if (!usage && Deno.env.get("CONVLENS_DEBUG")) console.error(e.stack);
    return usage ? 2 : 1;
  } finally {
    lens?.dispose();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
