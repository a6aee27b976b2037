/**
 * Every registered plugin on every model of the zoo (tests/_zoo.ts), each as a
 * LayersModel and, where scripts/graph_export.ts can write it, as a GraphModel:
 * a declarative list of models x plugins, as Captum lists its methods. Each run
 * must finish without an exception and leak no tensors, and its figures must be
 * sane where there is a clear check. Where a plugin cannot run on a model, the list
 * says so with the clear error it must give.
 */
import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { Net, type Sidecar } from "../core/net.ts";
import { loadNet } from "../core/load.ts";
import { imagesFromPixels } from "../core/inputs.ts";
import type { InputImages } from "../core/plugin.ts";
import { Registry } from "../core/plugin.ts";
import { runPlugin } from "../core/runner.ts";
import type { Result } from "../core/result.ts";
import { encodePng } from "../core/images/codecs.ts";
import { builtinPlugins } from "../plugins/mod.ts";
import { exportGraphModel } from "../scripts/graph_export.ts";
import { nestedTransfer, resnetLike, twoOutput, xceptionLike } from "./_zoo.ts";

await tf.setBackend("cpu");

/** A model of the zoo, and how to wrap it. */
interface ZooModel {
  name: string;
  build: () => tf.LayersModel;
  sidecar?: Sidecar;
  /** Why there is no GraphModel form, if there is none. */
  noGraph?: string;
}

const MODELS: ZooModel[] = [
  { name: "mini-xception", build: xceptionLike },
  { name: "mini-resnet", build: resnetLike },
  {
    name: "nested-transfer",
    build: nestedTransfer,
  },
  {
    name: "two-output",
    build: twoOutput,
    sidecar: { output: "cls" },
  },
];

/** What a check sees. */
interface Seen {
  result: Result;
  net: Net;
  images: InputImages;
}

/** One plugin's entry: small parameters, and a check or the error it must give. */
interface PluginCase {
  params?: Record<string, unknown>;
  /** The clear error expected on every model (the plugin cannot run on it). */
  refuses?: RegExp;
  /** The clear error expected on the GraphModel forms only. */
  refusesGraph?: RegExp;
  check?: (seen: Seen) => void | Promise<void>;
  /**
   * Runs on the first model form only: the plugin trains and reads its own data
   * (Fashion-MNIST), so the model under study does not change what it does.
   */
  once?: true;
}

const ATTR = { methods: "saliency,grad-cam", methodParams: "{}" };

async function attributionNotZero({ result }: Seen): Promise<void> {
  const t = result.tensors.attribution ?? result.tensors.map ?? result.tensors.cam;
  assert.ok(t, `a map tensor among ${Object.keys(result.tensors)}`);
  const max = tf.tidy(() => t.abs().max());
  const peak = (await max.data())[0];
  max.dispose();
  assert.ok(peak > 0, "the attribution map is all zeros");
}

/** Where the transfer plugin caches its base across the zoo's models. */
const TRANSFER_CACHE = Deno.makeTempDirSync({ prefix: "convlens_zoo_transfer_" });

const CASES: Record<string, PluginCase> = {
  summary: {
    check: ({ result, net }) =>
      assert.equal(
        result.figures.params,
        (net.model as tf.LayersModel).countParams?.() ?? result.figures.params,
      ),
  },
  "stack-compare": {
    params: { channels: 8, height: 6, width: 6 },
    check: ({ result }) => assert.equal(result.figures.weights3x3Stack, 27 * 64),
  },
  // Trains its own nets on Fashion-MNIST: the model under study does not matter.
  "stack-experiment": {
    params: { channels: 2, trainCount: 10, testCount: 10, epochs: 1, seeds: 1 },
    once: true,
  },
  activations: {},
  filters: { params: { maxFilters: 4, maxInputs: 2, scale: 2 } },
  "top-patches": { params: { count: 8, k: 2, maxChannels: 2, batchSize: 8, scale: 2 } },
  occlusion: { params: { size: 8, stride: 8, batchSize: 16, scale: 2 } },
  saliency: { check: attributionNotZero },
  deconvnet: { check: attributionNotZero },
  "guided-backprop": { check: attributionNotZero },
  smoothgrad: { params: { samples: 3, batchSize: 4 }, check: attributionNotZero },
  "grad-cam": {},
  "guided-grad-cam": {},
  "probe-layers": {
    params: { perClass: 2, valCount: 10, steps: 5, dims: 64 },
    check: ({ result, net }) => assert.ok(net.hasLayer(String(result.figures.bestLayer))),
  },
  // Trains its own base on Fashion-MNIST 0-4 and reads its own data: the model does not
  // matter. A training step costs ~0.5 s per image on the CPU backend, so the base is
  // trained once into a cache and only the probe strategies run.
  transfer: {
    params: {
      perClass: [2],
      steps: [1],
      seeds: 1,
      targets: "similar",
      strategies: "linear-top,stages",
      testCount: 10,
      baseCount: 10,
      baseEpochs: 1,
      probeSteps: 2,
      dims: 16,
      cache: TRANSFER_CACHE,
    },
    check: ({ result }) => assert.equal(result.tables[0].rows.length, 1),
  },
  "integrated-gradients": { params: { steps: 4, batchSize: 8 }, check: attributionNotZero },
  // Only the built-in canvas model has images with known digit boxes: a clear skip.
  "pointing-game": {
    check: ({ result }) => {
      assert.equal(result.figures.skipped, true);
      assert.match(result.notes.join(" "), /built-in canvas model.*--model canvas/);
    },
  },
  // Trains box heads on the built-in canvases, whose digit boxes are known: other models skip.
  localize: {
    check: ({ result }) => {
      assert.equal(result.figures.skipped, true);
      assert.match(result.notes.join(" "), /built-in canvas model.*--model canvas/);
    },
  },
  deletion: { params: { ...ATTR, count: 4, steps: 2, batchSize: 8 } },
  // Re-initializing weights needs the layers, which a GraphModel does not have.
  "sanity-check": {
    params: { methods: "saliency", methodParams: "{}", count: 1 },
    refusesGraph: /re-initializes layer weights, which needs a LayersModel/,
  },
  "class-model": {
    params: { classes: [1], steps: 15, start: "zero", scale: 2 },
    check: async ({ result, net }) => {
      const p0 = tf.tidy(() => net.probabilities(tf.zeros([1, 32, 32, 3])));
      const start = (await p0.data())[1];
      p0.dispose();
      assert.ok(
        Number(result.figures.minProbability) > start,
        `class 1 went from ${start} to ${result.figures.minProbability}`,
      );
    },
  },
  visualize: { params: { units: [0], steps: 5, scale: 2 } },
  augment: { params: { samples: 2, rgbImages: 8, rgbSize: 16 } },
  // Trains its own small net on Fashion-MNIST: the model does not matter.
  "augment-effect": {
    once: true,
    params: { images: 10, epochs: 1, seeds: 1, testImages: 20, batchSize: 10 },
    check: ({ result }) => {
      for (const k of ["accuracyWithout", "accuracyWith"]) {
        const a = Number(result.figures[k]);
        assert.ok(a >= 0 && a <= 1, `${k} ${a}`);
      }
    },
  },
  "augment-audit": {
    params: { images: 2, levels: 2 },
    check: ({ result }) =>
      assert.equal(result.figures["rotation.camWithImage"] !== undefined, true),
  },
  "deep-dream": { params: { octaves: 1, steps: 2, scale: 2 } },
  invert: { params: { starts: 1, steps: 2, scale: 2 } },
  adversarial: {
    params: { steps: 10, epsilon: 0.5, show: 2 },
    check: ({ result }) => {
      const rate = Number(result.figures.successRate ?? result.figures.fooled);
      assert.ok(rate > 0.5, `the attack flipped too few labels: ${JSON.stringify(result.figures)}`);
    },
  },
  "fooling-images": { params: { classes: [0], steps: 10 } },
  "shallow-fooling": { params: { count: 8, epsilons: [0, 0.1], epochs: 1, steps: 2, show: 1 } },
  tta: { params: { count: 4, scales: [1, 1.2], pad: 1, show: 2 } },
  // The zoo's models have no dropout layer (and a GraphModel has no layers to switch on).
  "mc-dropout": {
    params: { count: 4, passes: 2 },
    refuses: /no Dropout or DropConnect layer|needs a LayersModel/,
  },
  // Trains its own members on the run's data set: any model whose images are 8x8 or more.
  ensemble: {
    params: { members: 2, epochs: 1, trainCount: 8, count: 4, batchSize: 4 },
    check: ({ result }) => assert.ok(result.model, "the result carries the ensemble"),
  },
};

Deno.test("the zoo's list names every registered plugin, and only those", () => {
  assert.deepEqual(Object.keys(CASES).sort(), builtinPlugins.map((p) => p.name).sort());
});

const registry = new Registry(builtinPlugins);
const work = await Deno.makeTempDir({ prefix: "convlens_zoo_" });

/** A class-per-subfolder folder of 32x32 RGB PNGs, for the plugins that read a data set. */
async function writeDataFolder(dir: string, classes: number): Promise<void> {
  for (let c = 0; c < classes; c++) {
    await Deno.mkdir(`${dir}/class_${c}`, { recursive: true });
    for (let i = 0; i < 3; i++) {
      const data = new Uint8ClampedArray(32 * 32 * 4).map((_, k) =>
        k % 4 === 3 ? 255 : (k * (7 + c * 5 + i * 3) + 31 * c) % 256
      );
      await Deno.writeFile(
        `${dir}/class_${c}/${i}.png`,
        await encodePng({ width: 32, height: 32, data }),
      );
    }
  }
}

async function runAll(net: Net, data: string, first: boolean): Promise<void> {
  const pixels = tf.randomUniform([3, 32, 32, 3], 0, 1, "float32", 7) as tf.Tensor4D;
  const images = imagesFromPixels(net, pixels);
  try {
    for (const plugin of builtinPlugins) {
      const c = CASES[plugin.name];
      if (c.once && !first) continue;
      const before = tf.memory().numTensors;
      const go = () => runPlugin(net, images, plugin, c.params ?? {}, { registry, seed: 1, data });
      const refuses = c.refuses ?? (net.kind === "graph" ? c.refusesGraph : undefined);
      if (refuses) {
        await assert.rejects(go(), refuses, `${plugin.name} on ${net.source}`);
      } else {
        let result: Result;
        try {
          result = await go();
        } catch (err) {
          throw new Error(`${plugin.name} on ${net.source}: ${(err as Error).message}`, {
            cause: err,
          });
        }
        try {
          await c.check?.({ result, net, images });
        } finally {
          result.dispose();
        }
      }
      assert.equal(tf.memory().numTensors, before, `${plugin.name} on ${net.source} leaks tensors`);
    }
  } finally {
    tf.dispose([images.pixels, images.x]);
  }
}

for (const m of MODELS) {
  Deno.test(`every plugin runs on ${m.name} (LayersModel)`, async () => {
    const model = m.build();
    const net = Net.fromModel(model, m.sidecar, m.name);
    const dir = `${work}/${m.name}_data`;
    await writeDataFolder(dir, Math.max(2, net.numClasses));
    try {
      await runAll(net, dir, m === MODELS[0]);
    } finally {
      net.dispose();
    }
  });
  if (m.noGraph) continue;
  Deno.test(`every plugin runs on ${m.name} (GraphModel)`, async () => {
    const model = m.build();
    const dir = `${work}/${m.name}_graph`;
    await exportGraphModel(model, dir, {
      fuse: true,
      prefix: "StatefulPartitionedCall/model_1/",
      sidecar: m.sidecar,
    });
    model.dispose();
    const net = await loadNet(dir);
    const data = `${work}/${m.name}_gdata`;
    await writeDataFolder(data, net.numClasses);
    try {
      await runAll(net, data, false);
    } finally {
      net.dispose();
    }
  });
}
