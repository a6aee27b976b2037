/**
 * Data-set-scale jobs: the shard spec (`--shard i/N`, `auto` under a
 * Kubernetes Indexed Job or a Slurm array), the mergeable-state contract,
 * state files with the job's identity, seeds from the global example index,
 * the model fingerprint and the sharded-job shape that every data-set-wide
 * plugin (top-patches, deletion) implements.
 *
 * @module
 */
export * from "./shard_spec.ts";
export * from "./mergeable.ts";
export * from "./state_file.ts";
export * from "./seeds.ts";
export * from "./fingerprint.ts";
export * from "./sharded_job.ts";
export * from "./model_state.ts";
