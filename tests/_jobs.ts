/**
 * Helpers of the sharded-job tests: run a plugin as the Lens does, run N
 * shards each through its state file and merge them, merge given states, and
 * everything a result holds as plain data (for exact comparisons).
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import type { Net } from "../core/net.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import type { Result } from "../core/result.ts";
import { type AnyShardedJob, mergePlugin, shardPlugin } from "../core/jobs/sharded_job.ts";
import { readState, type ShardState, writeState } from "../core/jobs/state_file.ts";
import { type AnyPlugin, Registry } from "../core/plugin.ts";
import { runPlugin } from "../core/runner.ts";
import { builtinPlugins } from "../plugins/mod.ts";

const REGISTRY = new Registry(builtinPlugins);

/**
 * Runs a plugin as the Lens does (a registry for nested runs; 28x28 nets read MNIST).
 *
 * @param net The model.
 * @param plugin The plugin.
 * @param raw Its raw parameters.
 * @param seed The run's seed.
 * @returns Its result.
 */
export async function runOn(
  net: Net,
  plugin: AnyPlugin,
  raw: Record<string, unknown>,
  seed = 0,
): Promise<Result> {
  const { height, width, channels } = net.input;
  const images = imagesFromPixels(net, tf.zeros([1, height, width, channels]) as tf.Tensor4D);
  try {
    return await runPlugin(net, images, plugin, raw, {
      registry: REGISTRY,
      seed,
      data: height === 28 && width === 28 ? "mnist" : undefined,
    });
  } finally {
    tf.dispose([images.x, images.pixels]);
  }
}

/**
 * Runs shard `i/n` and writes its state into `dir/shard<i>-of-<n>`.
 *
 * @returns The state as read back from its file, and the file's path.
 */
export async function runShard(
  net: Net,
  job: AnyShardedJob,
  raw: Record<string, unknown>,
  i: number,
  n: number,
  dir: string,
): Promise<ShardState<unknown> & { path: string }> {
  let got: ShardState<unknown> | undefined;
  const plugin = shardPlugin(job, { index: i, count: n }, (s) => (got = s));
  (await runOn(net, plugin, raw)).dispose();
  const shardDir = `${dir}/shard${i}-of-${n}`;
  await Deno.mkdir(shardDir, { recursive: true });
  const [path] = await writeState(shardDir, got!, job.state.encode(got!.value));
  const back = await readState(path);
  return { ...back, value: job.state.decode(back.payload) };
}

/**
 * Runs the N shards, each through its state file, and merges them.
 *
 * @returns The merged result and the states.
 */
export async function sharded(
  net: Net,
  job: AnyShardedJob,
  raw: Record<string, unknown>,
  n: number,
  dir: string,
): Promise<{ result: Result; states: (ShardState<unknown> & { path: string })[] }> {
  const states = [];
  for (let i = 0; i < n; i++) states.push(await runShard(net, job, raw, i, n, dir));
  return { result: await runOn(net, mergePlugin(job, states), raw), states };
}

/**
 * Merges states on a model (the result is thrown away).
 */
export async function mergeOn(
  net: Net,
  job: AnyShardedJob,
  states: ShardState<unknown>[],
  raw: Record<string, unknown>,
): Promise<void> {
  (await runOn(net, mergePlugin(job, states), raw)).dispose();
}

/**
 * Everything a result holds, tensors as flat arrays, images as bytes.
 *
 * @param r The result.
 * @returns Plain data.
 */
export async function contents(r: Result): Promise<unknown> {
  const tensors: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(r.tensors)) {
    tensors[k] = [t.shape, Array.from(await t.data())];
  }
  return {
    json: JSON.parse(JSON.stringify(r.toJSON())),
    tensors,
    images: r.images.map((i) => [i.name, Array.from(i.png)]),
  };
}

/**
 * Loads a built-in model.
 *
 * @param name `mnist`, `canvas` or `fashion`.
 * @returns The Net.
 */
export async function builtinNet(name: string): Promise<Net> {
  const { loadNet } = await import("../core/load.ts");
  return await loadNet(decodeURIComponent(new URL(`../models/${name}/`, import.meta.url).pathname));
}
