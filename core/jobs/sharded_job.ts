/**
 * A sharded job: a data-set-wide plugin split into `scan` (one shard's slice
 * of the data set reduced to a mergeable state) and `finish` (the merged
 * state turned into the plugin's result: figures, tables, images, report
 * section). The plugin's own `run` is `finish(scan(whole data set))`, so one
 * process and N merged shards go through the same code. `shardPlugin` and
 * `mergePlugin` wrap a job as plugins that a `Lens` runs like any other
 * (same name, parameters and context): the first hands back the state, the
 * second returns the final result from merged states.
 *
 * @module
 */
import type { Context, Plugin } from "../plugin.ts";
import type { ParamSchema, ParamValues } from "../params.ts";
import { Result } from "../result.ts";
import type { Mergeable } from "./mergeable.ts";
import { formatShard, type ShardSpec } from "./shard_spec.ts";
import {
  checkComplete,
  checkSameJob,
  type JobIdentity,
  mergeShardStates,
  type ShardState,
} from "./state_file.ts";
import { modelFingerprint } from "./fingerprint.ts";

/** What one shard's scan gives. */
export interface ScanResult<T> {
  /** The shard's state. */
  value: T;
  /** The whole data set the shards cut (not the shard's slice). */
  data: { name: string; size: number };
}

/** A data-set-wide plugin as scan, mergeable state and finish. */
export interface ShardedJob<S extends ParamSchema, T> {
  /** The plugin (its `run` is `finish` after a whole-data-set `scan`). */
  plugin: Plugin<S>;
  /** The state type. */
  state: Mergeable<T>;
  /**
   * Parameters that do not change the result (batch sizes): left out of the
   * identity, so shards may differ in them.
   * @default none
   */
  settings?: readonly (keyof S & string)[];
  /**
   * The data set these parameters read, without reading its images.
   * @param ctx The run's context.
   * @param params The plugin's parameters.
   * @returns Its name and size.
   */
  dataOf(ctx: Context, params: ParamValues<S>): Promise<{ name: string; size: number }>;
  /**
   * Reduces shard `shard` of the data set to a state.
   * @param ctx The run's context.
   * @param params The plugin's parameters.
   * @param shard Which slice.
   * @returns The state and the data set's identity.
   */
  scan(ctx: Context, params: ParamValues<S>, shard: ShardSpec): Promise<ScanResult<T>>;
  /**
   * The result of the merged state of all shards.
   * @param ctx The run's context (its net is the one the shards used).
   * @param params The plugin's parameters.
   * @param state The merged state.
   * @returns The plugin's result.
   */
  finish(ctx: Context, params: ParamValues<S>, state: T): Promise<Result>;
}

/**
 * A job of any schema and state, as lists hold them.
 */
// deno-lint-ignore no-explicit-any
export type AnyShardedJob = ShardedJob<any, any>;

/**
 * The identity of a job run on this context with these parameters.
 *
 * @param job The job.
 * @param ctx The context (model and seed).
 * @param params Resolved parameters.
 * @param data The data set the shards cut.
 * @param shards How many shards.
 * @returns The identity (the settings left out).
 */
export function jobIdentity<S extends ParamSchema, T>(
  job: ShardedJob<S, T>,
  ctx: Context,
  params: ParamValues<S>,
  data: { name: string; size: number },
  shards: number,
): JobIdentity {
  const kept: Record<string, unknown> = {};
  const skip = new Set<string>(job.settings ?? []);
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    if (!skip.has(k) && v !== undefined) kept[k] = v;
  }
  return {
    plugin: job.plugin.name,
    params: JSON.parse(JSON.stringify(kept)),
    model: modelFingerprint(ctx.net),
    data: { name: data.name, size: data.size },
    seed: ctx.seed,
    shards,
  };
}

function settingsOf<S extends ParamSchema>(
  job: ShardedJob<S, unknown>,
  params: ParamValues<S>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of job.settings ?? []) {
    const v = (params as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * The job as a plugin that scans one shard and hands its state to `sink`; its
 * result holds only a note (a shard writes its state and nothing else).
 *
 * @param job The job.
 * @param shard Which slice.
 * @param sink Receives the shard's state.
 * @returns The plugin (same name, family and parameters as the job's).
 */
export function shardPlugin<S extends ParamSchema, T>(
  job: ShardedJob<S, T>,
  shard: ShardSpec,
  sink: (state: ShardState<T>) => void,
): Plugin<S> {
  return {
    ...job.plugin,
    async run(ctx, params) {
      const { value, data } = await job.scan(ctx, params, shard);
      sink({
        identity: jobIdentity(job, ctx, params, data, shard.count),
        covered: [shard.index],
        settings: settingsOf(job, params),
        value,
      });
      return new Result(job.plugin.name, `${job.plugin.name}: shard ${formatShard(shard)}`)
        .note(`State of shard ${formatShard(shard)} of ${data.name} (${data.size} examples)`);
    },
  };
}

/**
 * The job as a plugin that merges shard states and returns the final result.
 * The parameters come from the states; the context's model must be theirs
 * (checked by fingerprint) and the data set the same (by `dataOf`).
 *
 * @param job The job.
 * @param states The shards' states (all of them, each once).
 * @returns The plugin.
 * @throws {RangeError} (when run) for states of different jobs, a missing or
 *   repeated shard, another model or other data.
 */
export function mergePlugin<S extends ParamSchema, T>(
  job: ShardedJob<S, T>,
  states: readonly (ShardState<T> & { path?: string })[],
): Plugin<S> {
  return {
    ...job.plugin,
    async run(ctx, params) {
      const merged = mergeShardStates(states, (a, b) => job.state.merge(a, b));
      checkComplete(merged);
      const data = await job.dataOf(ctx, params);
      const here = jobIdentity(job, ctx, params, data, merged.identity.shards);
      checkSameJob(merged.identity, here, [
        "the state files",
        "this merge (its --model, --seed and the states' parameters)",
      ]);
      return await job.finish(ctx, params, merged.value);
    },
  };
}

/**
 * The parameters a merge runs with: the states' (identity and settings).
 *
 * @param state Any of the states.
 * @returns Raw parameters for `Lens.run`.
 */
export function mergeParams(state: ShardState<unknown>): Record<string, unknown> {
  return { ...state.identity.params, ...state.settings };
}
