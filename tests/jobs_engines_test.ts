/**
 * Large jobs on the command line and under job engines (issue 18): the
 * Kubernetes Indexed Job manifest and the Slurm array scripts of
 * `scripts/examples/jobs/` are parsed and their fields checked; the engines
 * are simulated by running the manifest's own shard command as local
 * processes with `JOB_COMPLETION_INDEX` (and the Slurm script's with
 * `SLURM_ARRAY_TASK_*`) set, and merging; `--workers` and the merge's errors.
 * Every merged result must be byte-identical to the single run's files.
 */
import assert from "node:assert/strict";
import { cli } from "./_cli.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const JOBS = `${ROOT}scripts/examples/jobs/`;
const CLI = `${ROOT}scripts/cli.ts`;

interface Container {
  command: string[];
  volumeMounts: { name: string; mountPath: string }[];
}
interface JobSpec {
  completionMode?: string;
  completions: number;
  parallelism: number;
  template: {
    spec: {
      restartPolicy: string;
      containers: Container[];
      volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
    };
  };
}
interface Item {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: JobSpec;
}

async function manifest(): Promise<Item[]> {
  const doc = JSON.parse(await Deno.readTextFile(`${JOBS}top_patches_indexed_job.json`));
  assert.equal(doc.kind, "List");
  return doc.items as Item[];
}

/** The value after `flag` in a command. */
function flag(command: readonly string[], name: string): string | undefined {
  const i = command.indexOf(name);
  return i >= 0 ? command[i + 1] : undefined;
}

/** A command with `--flag value` pairs replaced (or added). */
function withFlags(command: readonly string[], set: Record<string, string>): string[] {
  const out = [...command];
  for (const [k, v] of Object.entries(set)) {
    const i = out.indexOf(k);
    if (i >= 0) out[i + 1] = v;
    else out.push(k, v);
  }
  return out;
}

/** Runs the CLI in a process of its own, with `env` added. */
async function process(args: string[], env: Record<string, string>): Promise<void> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { OMP_WAIT_POLICY: "passive", ...env },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** The files of a folder (the run manifest aside), name to bytes. */
async function files(dir: string): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && !e.name.startsWith(".")) out[e.name] = await Deno.readFile(`${dir}/${e.name}`);
  }
  return out;
}

// Small but real: the built-in MNIST model over 40 held-out digits.
const SMALL = { "--model": "mnist", "--count": "40", "--maxChannels": "3", "--k": "4" };

Deno.test("the Kubernetes manifest is an Indexed Job of N shards on a shared volume, then a merge", async () => {
  const items = await manifest();
  const jobs = items.filter((i) => i.kind === "Job");
  const claim = items.find((i) => i.kind === "PersistentVolumeClaim");
  assert.ok(claim, "a volume claim for the state files");
  assert.equal(jobs.length, 2);
  const [shards, merge] = jobs;
  for (const j of jobs) assert.equal(j.apiVersion, "batch/v1");
  assert.equal(shards.spec.completionMode, "Indexed");
  const n = shards.spec.completions;
  assert.ok(n > 1);
  assert.equal(shards.spec.parallelism, n);
  const [c] = shards.spec.template.spec.containers;
  assert.equal(shards.spec.template.spec.restartPolicy, "Never");
  assert.deepEqual(c.command.slice(0, 4), ["deno", "task", "lens", "top-patches"]);
  // Kubernetes gives the index, not the count: auto/N with N = completions.
  assert.equal(flag(c.command, "--shard"), `auto/${n}`);
  const out = flag(c.command, "--out")!;
  const mount = c.volumeMounts.find((m) => out.startsWith(m.mountPath));
  assert.ok(mount, `--out ${out} lies on a mounted volume`);
  const volume = shards.spec.template.spec.volumes.find((v) => v.name === mount!.name);
  assert.equal(volume?.persistentVolumeClaim?.claimName, claim!.metadata.name);
  // The merge reads that volume, with the same model and data.
  const [m] = merge.spec.template.spec.containers;
  assert.deepEqual(m.command.slice(0, 5), ["deno", "task", "lens", "merge", "top-patches"]);
  assert.equal(flag(m.command, "--in"), out);
  assert.ok(m.volumeMounts.some((v) => v.mountPath === mount!.mountPath));
  for (const f of ["--model", "--data"]) assert.equal(flag(m.command, f), flag(c.command, f));
  assert.equal(merge.spec.completionMode, undefined);
  // Applied together with the shards, the merge retries until every state is there.
  assert.ok((merge.spec as { backoffLimit?: number }).backoffLimit! >= 10);
});

Deno.test("the Slurm array script runs --shard auto over an array 0..N-1, the merge after it", async () => {
  const array = await Deno.readTextFile(`${JOBS}top_patches_array.slurm`);
  const merge = await Deno.readTextFile(`${JOBS}top_patches_merge.slurm`);
  assert.match(array, /^#SBATCH --array=0-\d+$/m);
  assert.match(array, /deno task lens top-patches .*--shard auto --out "\$STATES"/s);
  assert.match(merge, /deno task lens merge top-patches .*--in "\$STATES"/s);
  assert.match(array, /--dependency=afterok:\$jid .*top_patches_merge\.slurm/);
});

Deno.test("simulated engines: the manifest's shard command under JOB_COMPLETION_INDEX, the Slurm one under SLURM_ARRAY_TASK_*, --workers: all merge to the single run's files", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "convlens-engines-" });
  try {
    const [shards] = (await manifest()).filter((i) => i.kind === "Job");
    const n = shards.spec.completions;
    const command = shards.spec.template.spec.containers[0].command.slice(3);
    const shardArgs = withFlags(command, { ...SMALL, "--data": "mnist", "--out": `${tmp}/k8s` });
    // Each pod: the same command, its own JOB_COMPLETION_INDEX.
    await Promise.all(
      Array.from({ length: n }, (_, i) => process(shardArgs, { JOB_COMPLETION_INDEX: String(i) })),
    );
    // Slurm: an array 5-6 (any start), --shard auto.
    const slurmArgs = withFlags(shardArgs, { "--shard": "auto", "--out": `${tmp}/slurm` });
    await Promise.all([5, 6].map((id) =>
      process(slurmArgs, {
        SLURM_ARRAY_TASK_ID: String(id),
        SLURM_ARRAY_TASK_MIN: "5",
        SLURM_ARRAY_TASK_COUNT: "2",
      })
    ));
    // A pod killed mid-way (SIGKILL, no chance to clean up) leaves no state
    // file; its rerun writes the same bytes as the shard that was not killed.
    const killedDir = `${tmp}/killed`;
    const victim = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, ...withFlags(shardArgs, { "--out": killedDir })],
      env: { OMP_WAIT_POLICY: "passive", JOB_COMPLETION_INDEX: "1" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    await new Promise((r) => setTimeout(r, 300));
    victim.kill("SIGKILL");
    await victim.status;
    const left = await Array.fromAsync(Deno.readDir(killedDir)).catch(() => []);
    const name = `top-patches-shard-1-of-${n}.state.json`;
    // (A shard run takes over a second, Deno, the model and the data loading first:
    // at 300 ms it is mid-way.)
    assert.ok(!left.some((e) => e.name.startsWith("top-patches-shard-")), "a killed shard's state");
    await process(withFlags(shardArgs, { "--out": killedDir }), { JOB_COMPLETION_INDEX: "1" });
    assert.deepEqual(
      await Deno.readFile(`${killedDir}/${name}`),
      await Deno.readFile(`${tmp}/k8s/${name}`),
    );
    const common = ["--model", "mnist", "--data", "mnist", "--quiet"];
    const single = await cli(["top-patches", ...withFlags(common, SMALL), "--out", `${tmp}/one`]);
    assert.equal(single.code, 0, single.text);
    const want = await files(`${tmp}/one`);
    assert.ok(Object.keys(want).length >= 2);
    for (const engine of ["k8s", "slurm"]) {
      const r = await cli([
        "merge",
        "top-patches",
        "--model",
        "mnist",
        "--data",
        "mnist",
        "--in",
        `${tmp}/${engine}`,
        "--out",
        `${tmp}/${engine}-merged`,
        "--quiet",
      ]);
      assert.equal(r.code, 0, r.text);
      assert.deepEqual(await files(`${tmp}/${engine}-merged`), want, engine);
    }
    const w = await cli([
      "top-patches",
      ...withFlags(common, SMALL),
      "--workers",
      "2",
      "--out",
      `${tmp}/workers`,
    ]);
    assert.equal(w.code, 0, w.text);
    assert.deepEqual(await files(`${tmp}/workers`), want, "--workers 2");
    // A merge of states of another k names the parameter.
    const k3 = await cli([
      "top-patches",
      ...withFlags(common, { ...SMALL, "--k": "3" }),
      "--shard",
      "1/3",
      "--out",
      `${tmp}/k3`,
    ]);
    assert.equal(k3.code, 0, k3.text);
    const bad = await cli([
      "merge",
      "top-patches",
      "--model",
      "mnist",
      "--data",
      "mnist",
      "--in",
      `${tmp}/k8s/top-patches-shard-0-of-${n}.state.json`,
      "--in",
      `${tmp}/k3`,
      "--out",
      `${tmp}/bad`,
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /different (parameters \(k\)|splits)/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the CLI lists merge in --help and refuses job flags it cannot honour", async () => {
  const help = await cli(["--help"]);
  assert.match(help.out, /deno task lens merge <plugin> --in <dir>/);
  assert.match(help.out, /--shard <i\/N\|auto\/N\|auto>/);
  const cases: [string[], RegExp][] = [
    [["summary", "--shard", "0/2"], /summary does not run as a sharded job; these do: top-patches/],
    [["top-patches", "--shard", "2/2"], /Shard 2\/2 is invalid/],
    [["top-patches", "--shard", "half"], /--shard must be i\/N/],
    [["top-patches", "--shard", "0/2", "--workers", "2"], /Give one of --shard and --workers/],
    [["merge"], /merge needs the plugin/],
    [["merge", "top-patches"], /needs the shards' folders: --in/],
    [["merge", "top-patches", "--in", "/nonexistent/x"], /--in "\/nonexistent\/x" cannot be read/],
    [["top-patches", "--in", "x"], /--in belongs to merge/],
  ];
  for (const [args, want] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, want, args.join(" "));
  }
});
