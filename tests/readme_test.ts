/**
 * README claims only what runs: every command in its `sh` code blocks is run
 * here, from the project folder, with its output sent to a scratch folder and
 * light parameters where the default takes minutes (named in `LIGHT`, each
 * with why). A command that cannot be run by a test (the suite itself, a
 * template) is named in `NOT_RUN` with the reason; any other command must
 * exit 0. A README command that names a plugin or task that does not exist
 * fails here.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Commands not run, by pattern, and why. */
const NOT_RUN: [RegExp, string][] = [
  [/^deno task (test|ok)\b/, "the test suite itself"],
  [/^deno task (bench|mutants|fuzz-conv)\b/, "benchmarks and long checks, run by hand"],
  [/\bIN\b.*\bOUT\b|\.\.\.$/, "a template with placeholders"],
  [
    /^(kubectl|jid=\$\(sbatch|sbatch)\b/,
    "needs a cluster: tests/jobs_engines_test.ts runs its shards",
  ],
];

/** Extra arguments for commands whose defaults take minutes, by pattern, and why. */
const LIGHT: [RegExp, string[], string][] = [
  [/^deno task demo\b/, ["--only", "summary,activations,saliency"], "the whole demo takes minutes"],
  [/^deno task train\b/, ["--epochs", "1", "--limit", "300"], "a full training takes minutes"],
  [/^deno task lens tta\b/, ["--count", "300"], "10,000 test images"],
  [/^deno task lens top-patches .*--workers\b/, ["--count", "200"], "60,000 images"],
  [
    /^deno task lens augment-effect\b/,
    ["--images", "100", "--epochs", "2", "--seeds", "1", "--testImages", "100"],
    "trains 6 nets for 200 epochs",
  ],
  [/^deno task lens augment-audit\b/, ["--images", "10"], "200 images at every strength"],
  [/^deno task lens mc-dropout\b/, ["--count", "200", "--passes", "4"], "2,000 images x 30 passes"],
  [
    /^deno task lens ensemble\b/,
    ["--members", "2", "--epochs", "1", "--trainCount", "300", "--count", "200", "--no-batchNorm"],
    "trains 5 members",
  ],
  [
    /^deno task lens probe-layers\b/,
    ["--perClass", "10", "--valCount", "100", "--steps", "30"],
    "probes every layer on 5,000 images",
  ],
  [
    /^deno task lens transfer\b/,
    [
      "--perClass",
      "5",
      "--steps",
      "5",
      "--seeds",
      "1",
      "--targets",
      "similar",
      "--testCount",
      "50",
      "--baseCount",
      "200",
      "--baseEpochs",
      "1",
      "--probeSteps",
      "10",
      "--dims",
      "32",
      "--cache",
      "none",
    ],
    "trains a base and 90 cells",
  ],
  [
    /^deno task lens localize\b/,
    [
      "--train",
      "200",
      "--sweepTrain",
      "100",
      "--epochs",
      "2",
      "--sweepEpochs",
      "1",
      "--layers",
      "conv4,gap",
      "--count",
      "50",
      "--mapCount",
      "5",
    ],
    "a sweep of 20 heads",
  ],
  [
    /^deno task lens stack-experiment\b/,
    [
      "--channels",
      "4",
      "--trainCount",
      "100",
      "--testCount",
      "100",
      "--epochs",
      "1",
      "--seeds",
      "1",
    ],
    "trains 12 nets",
  ],
];

/** Splits a command line as a shell would (words, '...' and "..." quotes, no expansions). */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (const m of line.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** The commands of README's sh blocks: continuations joined, comments dropped. */
function readmeCommands(text: string): string[] {
  const commands: string[] = [];
  for (const [, body] of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const joined = body.replace(/\\\n\s*/g, " ");
    for (const raw of joined.split("\n")) {
      const line = raw.replace(/\s+#.*$/, "").trim();
      if (line && !line.startsWith("#")) commands.push(line.replace(/^npx deno@[\d.]+ /, "deno "));
    }
  }
  return commands;
}

const commands = readmeCommands(await Deno.readTextFile(`${ROOT}/README.md`));

Deno.test("README has commands to run", () => {
  assert.ok(commands.length >= 5, `${commands.length} commands`);
});

for (const [i, command] of commands.entries()) {
  const skip = NOT_RUN.find(([re]) => re.test(command));
  Deno.test({
    name: `README command ${i}: ${command}${skip ? ` (not run: ${skip[1]})` : ""}`,
    ignore: skip !== undefined,
    async fn() {
      const args = words(command);
      assert.equal(args[0], "deno", "README commands start with deno (or npx deno@...)");
      const out = await Deno.makeTempDir({ prefix: "convlens-readme-" });
      try {
        const light = LIGHT.find(([re]) => re.test(command))?.[1] ?? [];
        const writes = /^deno task (lens|demo|train)\b/.test(command) &&
          !args.includes("--help");
        const extra = writes ? [...light, "--out", `${out}/out`] : light;
        const task = args[1] === "task" ? ["task", "-q", ...args.slice(2)] : args.slice(1);
        const r = await new Deno.Command(Deno.execPath(), {
          args: [...task, ...extra],
          cwd: ROOT,
          stdout: "piped",
          stderr: "piped",
          env: { OMP_WAIT_POLICY: "passive", CONVLENS_BACKEND: "wasm" },
        }).output();
        const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assert.equal(r.code, 0, `${command} exited ${r.code}:\n${text.slice(-3000)}`);
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}
