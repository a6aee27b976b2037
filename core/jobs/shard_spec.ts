/**
 * The shard spec: which slice `i/N` of a data set one process of a large job
 * takes. Written `--shard i/N` by hand, or `--shard auto` (`auto/N`) under a
 * job engine, which numbers its tasks itself: a Kubernetes Indexed Job sets
 * `JOB_COMPLETION_INDEX` in each pod (the count is the Job's `completions`,
 * which Kubernetes does not put in the environment, so it is given as
 * `auto/N`); a Slurm job array sets `SLURM_ARRAY_TASK_ID`,
 * `SLURM_ARRAY_TASK_MIN` and `SLURM_ARRAY_TASK_COUNT`. Slices are contiguous
 * ranges of the global example index (the same formula as `shard` of
 * `core/data`), so every machine cuts the data set the same way.
 *
 * @example Shard 1 of 3 of ten examples
 * ```ts
 * import { parseShard, shardRange } from "./shard_spec.ts";
 * const spec = parseShard("1/3");
 * const [lo, hi] = shardRange(10, spec);
 * if (lo !== 3 || hi !== 6) throw new Error(`${lo} ${hi}`);
 * ```
 *
 * @module
 */

/** One shard of a job: `index` of `count`, from 0. */
export interface ShardSpec {
  /** Which shard, in `[0, count)`. */
  readonly index: number;
  /** How many shards the job has. */
  readonly count: number;
}

/** The whole job as one shard. */
export const WHOLE: ShardSpec = { index: 0, count: 1 };

/** Reads an environment variable; undefined when unset or not permitted. */
export type EnvReader = (name: string) => string | undefined;

/** Deno's environment, where reading it is permitted (else nothing is set). */
export const denoEnv: EnvReader = (name) => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

/** The environment variables `--shard auto` reads. */
export const SHARD_ENV = [
  "JOB_COMPLETION_INDEX",
  "SLURM_ARRAY_TASK_ID",
  "SLURM_ARRAY_TASK_MIN",
  "SLURM_ARRAY_TASK_COUNT",
  "SLURM_ARRAY_TASK_STEP",
] as const;

function whole(name: string, v: string, min: number): number {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got "${v}"`);
  }
  return n;
}

/**
 * Checks a shard spec.
 *
 * @param spec The spec.
 * @returns The same spec.
 * @throws {RangeError} unless `0 <= index < count`.
 */
export function checkShard(spec: ShardSpec): ShardSpec {
  const { index, count } = spec;
  if (
    !Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(index) || index < 0 ||
    index >= count
  ) {
    throw new RangeError(`Shard ${index}/${count} is invalid: give i/N with 0 <= i < N, e.g. 0/4`);
  }
  return spec;
}

/**
 * Parses `--shard`: `i/N`, `auto/N` (the index from the job engine) or `auto`
 * (index and count from the engine: Slurm only).
 *
 * @param text The flag's value.
 * @param env Where the engine's variables are read (default: Deno's environment).
 * @returns The spec.
 * @throws {RangeError} for a malformed value, or `auto` without the engine's
 *   variables, naming what to set.
 */
export function parseShard(text: string, env: EnvReader = denoEnv): ShardSpec {
  const t = text.trim();
  const auto = /^auto(?:\/(.*))?$/.exec(t);
  if (auto) {
    const n = auto[1] === undefined ? undefined : whole("The N of --shard auto/N", auto[1], 1);
    return checkShard(fromEngine(env, n));
  }
  const m = /^(\d+)\/(\d+)$/.exec(t);
  if (!m) {
    throw new RangeError(
      `--shard must be i/N (e.g. 0/4), auto/N or auto, got "${text}"`,
    );
  }
  return checkShard({ index: Number(m[1]), count: Number(m[2]) });
}

/** The shard a job engine assigned to this process. */
function fromEngine(env: EnvReader, count: number | undefined): ShardSpec {
  const k8s = env("JOB_COMPLETION_INDEX");
  if (k8s !== undefined) {
    const index = whole("JOB_COMPLETION_INDEX", k8s, 0);
    if (count === undefined) {
      throw new RangeError(
        "--shard auto: JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but Kubernetes " +
          "does not give the number of completions: write --shard auto/N with N the Job's " +
          "spec.completions",
      );
    }
    return { index, count };
  }
  const slurm = env("SLURM_ARRAY_TASK_ID");
  if (slurm !== undefined) {
    const id = whole("SLURM_ARRAY_TASK_ID", slurm, 0);
    const min = whole("SLURM_ARRAY_TASK_MIN", env("SLURM_ARRAY_TASK_MIN") ?? "0", 0);
    const step = env("SLURM_ARRAY_TASK_STEP");
    if (step !== undefined && whole("SLURM_ARRAY_TASK_STEP", step, 1) !== 1) {
      throw new RangeError(
        `--shard auto: the Slurm array has step ${step}; submit it as --array=0-${"N-1"} ` +
          "(step 1) so that the task ids number the shards",
      );
    }
    const given = env("SLURM_ARRAY_TASK_COUNT");
    const n = given !== undefined ? whole("SLURM_ARRAY_TASK_COUNT", given, 1) : count;
    if (n === undefined) {
      throw new RangeError(
        "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: " +
          "write --shard auto/N with N the array's size",
      );
    }
    if (count !== undefined && given !== undefined && count !== n) {
      throw new RangeError(
        `--shard auto/${count} disagrees with SLURM_ARRAY_TASK_COUNT=${n}: drop the /N or fix it`,
      );
    }
    return { index: id - min, count: n };
  }
  throw new RangeError(
    "--shard auto needs a job engine's task index: JOB_COMPLETION_INDEX (a Kubernetes " +
      "Indexed Job) or SLURM_ARRAY_TASK_ID (a Slurm array) is not set (or not readable: " +
      "allow-env); outside an engine give --shard i/N",
  );
}

/**
 * The examples `[lo, hi)` of shard `spec` of `size` examples: contiguous,
 * disjoint, covering, as `shard` of `core/data` cuts them.
 *
 * @param size Examples in the whole job.
 * @param spec The shard.
 * @returns `[lo, hi)`.
 */
export function shardRange(size: number, spec: ShardSpec): [number, number] {
  checkShard(spec);
  return [
    Math.floor(spec.index * size / spec.count),
    Math.floor((spec.index + 1) * size / spec.count),
  ];
}

/**
 * The spec as written on the command line.
 *
 * @param spec The shard.
 * @returns E.g. `"1/3"`.
 */
export function formatShard(spec: ShardSpec): string {
  return `${spec.index}/${spec.count}`;
}
