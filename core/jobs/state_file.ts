/**
 * State files of a sharded job: what one shard writes and the merge reads. A
 * state carries the job's identity (plugin, the parameters that shape the
 * result, the model's fingerprint, the data set's name and size, the seed, the
 * number of shards) and the shards it covers, so that a merge refuses files of
 * another model, other parameters, other data or another split, naming the
 * difference. It is written as `<plugin>-shard-<i>-of-<N>.state.json`, with a
 * `.state.bin` beside it for its typed arrays (the JSON holds their SHA-256),
 * each written to a temporary name and renamed into place, so a shard killed
 * mid-way leaves no state file and its rerun writes the same bytes (a state
 * holds no time stamps).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { StateArray, StatePayload } from "./mergeable.ts";
import type { ShardSpec } from "./shard_spec.ts";

/** Version of the state-file layout. */
export const STATE_FORMAT = 1;

/** What a state was computed from: two states merge only when these agree. */
export interface JobIdentity {
  /** The plugin. */
  plugin: string;
  /** Resolved parameters that shape the result. */
  params: Record<string, unknown>;
  /** The model's fingerprint (`modelFingerprint`). */
  model: string;
  /** The data set the shards cut. */
  data: { name: string; size: number };
  /** The run's seed. */
  seed: number;
  /** How many shards the job has. */
  shards: number;
}

/** A state with its identity and the shards it covers. */
export interface ShardState<T> {
  /** What it was computed from. */
  identity: JobIdentity;
  /** The shards merged into it, ascending. */
  covered: number[];
  /** Parameters that do not change the result (batch sizes), as the shard ran. */
  settings: Record<string, unknown>;
  /** The state. */
  value: T;
}

/**
 * The file name of a shard's state (the merge of several shards is named
 * after its first and last shard).
 *
 * @param plugin The plugin.
 * @param spec The shard.
 * @returns E.g. `top-patches-shard-1-of-3.state.json`.
 */
export function stateFileName(plugin: string, spec: ShardSpec): string {
  return `${plugin}-shard-${spec.index}-of-${spec.count}.state.json`;
}

const DTYPES = { float32: Float32Array, float64: Float64Array, int32: Int32Array } as const;
type DType = keyof typeof DTYPES;

function dtypeOf(a: StateArray): DType {
  return a instanceof Float32Array ? "float32" : a instanceof Float64Array ? "float64" : "int32";
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Writes bytes to a temporary name beside `path`, then renames it into place. */
async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Writes a state into `dir` (the binary part first, the JSON last: the JSON
 * file is the one a merge looks for, so it appears only once both are whole).
 *
 * @param dir The folder (it must exist).
 * @param state The state, identity and coverage.
 * @param payload The state's encoding (`Mergeable.encode`).
 * @returns The paths written (JSON first).
 */
export async function writeState(
  dir: string,
  state: Omit<ShardState<unknown>, "value">,
  payload: StatePayload,
): Promise<string[]> {
  const { identity, covered } = state;
  const first = covered[0], last = covered[covered.length - 1];
  const name = stateFileName(identity.plugin, { index: first, count: identity.shards })
    .replace(`-shard-${first}-`, first === last ? `-shard-${first}-` : `-shard-${first}-${last}-`);
  const json = `${dir.replace(/\/+$/, "")}/${name}`;
  const bin = json.replace(/\.json$/, ".bin");
  const entries = Object.entries(payload.arrays);
  let offset = 0;
  const arrays = entries.map(([key, a]) => {
    const entry = { name: key, dtype: dtypeOf(a), offset, length: a.length };
    offset += a.byteLength;
    return entry;
  });
  const bytes = new Uint8Array(offset);
  entries.forEach(([, a], i) =>
    bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), arrays[i].offset)
  );
  const written: string[] = [json];
  if (entries.length) {
    await writeAtomic(bin, bytes);
    written.push(bin);
  }
  const doc = {
    convlens: "job-state",
    format: STATE_FORMAT,
    identity,
    covered,
    settings: state.settings,
    state: payload.json,
    arrays,
    ...(entries.length
      ? { binary: { file: bin.split("/").pop(), bytes: offset, sha256: sha256(bytes) } }
      : {}),
  };
  await writeAtomic(json, new TextEncoder().encode(JSON.stringify(doc, null, 1) + "\n"));
  return written;
}

/**
 * Reads a state file.
 *
 * @param path A `.state.json` file.
 * @returns The state's identity, coverage and settings, and its payload.
 * @throws {RangeError} when the file is missing, not a state file, of another
 *   format, or its binary part is missing or does not match.
 */
export async function readState(
  path: string,
): Promise<Omit<ShardState<unknown>, "value"> & { payload: StatePayload; path: string }> {
  let doc;
  try {
    doc = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new RangeError(
      `Cannot read the state file "${path}" (${(err as Error).message}); give the --out folder ` +
        "of a finished shard (a shard that did not finish writes none: run it again)",
    );
  }
  if (doc?.convlens !== "job-state") {
    throw new RangeError(
      `"${path}" is not a convlens state file (it has no "convlens": "job-state")`,
    );
  }
  if (doc.format !== STATE_FORMAT) {
    throw new RangeError(
      `The state file "${path}" has format ${doc.format}; this convlens reads format ` +
        `${STATE_FORMAT}: rerun the shard with this version`,
    );
  }
  const arrays: Record<string, StateArray> = {};
  if (doc.binary) {
    const bin = `${path.replace(/[^/]*$/, "")}${doc.binary.file}`;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(bin);
    } catch (err) {
      throw new RangeError(
        `The state file "${path}" needs its binary part "${bin}" (${(err as Error).message}); ` +
          "copy both files, or rerun the shard",
      );
    }
    if (bytes.length !== doc.binary.bytes || sha256(bytes) !== doc.binary.sha256) {
      throw new RangeError(
        `The binary part "${bin}" does not match "${path}" (another run's, or truncated); ` +
          "rerun the shard",
      );
    }
    for (
      const a of doc.arrays as { name: string; dtype: DType; offset: number; length: number }[]
    ) {
      const T = DTYPES[a.dtype];
      // A copy, aligned for its type whatever the offset.
      arrays[a.name] = new T(
        bytes.slice(a.offset, a.offset + a.length * T.BYTES_PER_ELEMENT).buffer,
      );
    }
  }
  return {
    path,
    identity: doc.identity,
    covered: doc.covered,
    settings: doc.settings ?? {},
    payload: { json: doc.state, arrays },
  };
}

/**
 * The state files of `plugin` in a folder, or the file itself.
 *
 * @param path A folder of state files or one `.state.json`.
 * @param plugin The plugin whose files to take.
 * @returns Their paths, sorted.
 * @throws {RangeError} when there are none, saying what was looked for.
 */
export async function findStateFiles(path: string, plugin: string): Promise<string[]> {
  let stat;
  try {
    stat = await Deno.stat(path);
  } catch (err) {
    throw new RangeError(`--in "${path}" cannot be read (${(err as Error).message})`);
  }
  if (stat.isFile) return [path];
  const found: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (e.isFile && e.name.startsWith(`${plugin}-shard-`) && e.name.endsWith(".state.json")) {
      found.push(`${path.replace(/\/+$/, "")}/${e.name}`);
    }
  }
  if (found.length === 0) {
    throw new RangeError(
      `--in "${path}" holds no state file of ${plugin} (${plugin}-shard-*.state.json): ` +
        `give the --out folder of a run with --shard`,
    );
  }
  return found.sort();
}

/** Canonical JSON: object keys sorted, so equal values compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** The first field in which two identities differ, as `[path, a, b]`. */
function difference(a: unknown, b: unknown, path: string): [string, string, string] | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b as object)])].sort();
    for (const k of keys) {
      const d = difference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      );
      if (d) return d;
    }
  }
  return [path, canonical(a), canonical(b)];
}

/**
 * Checks that two identities agree.
 *
 * @param a One state's identity.
 * @param b The other's.
 * @param where Names of the two, for the message (e.g. their files).
 * @throws {RangeError} naming the first field that differs and both values.
 */
export function checkSameJob(
  a: JobIdentity,
  b: JobIdentity,
  where: [string, string] = ["one state", "the other"],
): void {
  const d = difference(a, b, "");
  if (!d) return;
  const [field, va, vb] = d;
  const what = field === "model"
    ? "were computed with different models (weights or layers differ)"
    : field.startsWith("params")
    ? `were computed with different parameters (${field.slice(7)})`
    : field.startsWith("data")
    ? "were computed on different data"
    : field === "shards"
    ? "belong to different splits (numbers of shards)"
    : `differ in ${field}`;
  throw new RangeError(
    `Cannot merge: ${where[0]} and ${where[1]} ${what}: ${field} is ${va} in the first and ` +
      `${vb} in the second; merge only the shards of one job`,
  );
}

/**
 * Merges shard states of one job: identities checked, coverage disjoint.
 *
 * @param states The states, with where each came from.
 * @param merge The state type's merge.
 * @returns The merged state (covering the union of the shards).
 * @throws {RangeError} for states of different jobs or a shard given twice.
 */
export function mergeShardStates<T>(
  states: readonly (ShardState<T> & { path?: string })[],
  merge: (a: T, b: T) => T,
): ShardState<T> {
  if (states.length === 0) throw new RangeError("Nothing to merge: give at least one --in");
  const sorted = [...states].sort((a, b) => a.covered[0] - b.covered[0]);
  const seen = new Map<number, string>();
  for (const s of sorted) {
    checkSameJob(sorted[0].identity, s.identity, [
      sorted[0].path ?? "the first state",
      s.path ?? "another",
    ]);
    for (const i of s.covered) {
      if (seen.has(i)) {
        throw new RangeError(
          `Cannot merge: shard ${i}/${s.identity.shards} is given twice (${seen.get(i)} and ` +
            `${s.path ?? "another state"}); give each shard once`,
        );
      }
      seen.set(i, s.path ?? "a state");
    }
  }
  return {
    identity: sorted[0].identity,
    covered: [...seen.keys()].sort((a, b) => a - b),
    settings: sorted[0].settings,
    value: sorted.slice(1).reduce((acc, s) => merge(acc, s.value), sorted[0].value),
  };
}

/**
 * Checks that a state covers every shard of its job.
 *
 * @param state The merged state.
 * @throws {RangeError} naming the missing shards.
 */
export function checkComplete(state: ShardState<unknown>): void {
  const n = state.identity.shards;
  const have = new Set(state.covered);
  const missing = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(i));
  if (missing.length) {
    throw new RangeError(
      `Cannot finish ${state.identity.plugin}: shard${missing.length > 1 ? "s" : ""} ` +
        `${missing.map((i) => `${i}/${n}`).join(", ")} missing; run ${
          missing.length > 1 ? "them and give their --out folders" : "it and give its --out folder"
        } with --in`,
    );
  }
}
