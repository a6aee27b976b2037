/**
 * Light parameters for plugins whose defaults take long: the conformance suite
 * and the WebGPU suite run every plugin with these.
 *
 * @module
 */

/** Parameters by plugin name; plugins not listed run with their defaults. */
export const QUICK: Record<string, Record<string, unknown>> = {
  // Measured latencies differ from run to run; the rest of summary is deterministic.
  summary: { latency: false },
  "stack-experiment": { channels: 2, trainCount: 10, testCount: 10, epochs: 1, seeds: 1 },
  "top-patches": { count: 40, k: 3, maxChannels: 2 },
  occlusion: { stride: 4 },
  "probe-layers": { perClass: 5, valCount: 40, steps: 20 },
  // The transfer table trains its own base on Fashion-MNIST 0-4: a tiny one here.
  transfer: {
    perClass: [2],
    steps: [2],
    seeds: 1,
    targets: "similar",
    testCount: 20,
    baseCount: 60,
    baseEpochs: 1,
    probeSteps: 5,
    dims: 32,
    cache: "none",
  },
  smoothgrad: { samples: 4 },
  "integrated-gradients": { steps: 8 },
  "pointing-game": { count: 10 },
  // Skips on the MNIST model (no known boxes); tiny where it runs (the canvas model).
  localize: {
    train: 32,
    validation: 8,
    count: 8,
    epochs: 1,
    hidden: 4,
    layers: "conv5",
    mapCount: 2,
  },
  deletion: { count: 6, steps: 4 },
  "sanity-check": { count: 2 },
  augment: { samples: 2, rgbImages: 16, rgbSize: 16 },
  "augment-effect": { images: 20, epochs: 1, seeds: 1, testImages: 40, batchSize: 10 },
  "augment-audit": { images: 4, levels: 2 },
  "class-model": { steps: 3, classes: [0, 1] },
  visualize: { steps: 3, units: [0, 1] },
  "deep-dream": { steps: 2, octaves: 2 },
  invert: { steps: 3, starts: 1, layers: "conv1,fc1" },
  adversarial: { steps: 3, batchSize: 2 },
  "fooling-images": { steps: 3, generations: 3, classes: [0, 1] },
  "shallow-fooling": { count: 20, epochs: 1, epsilons: [0, 0.1] },
  tta: { count: 16, scales: [1, 1.15] },
  "mc-dropout": { count: 16, passes: 3 },
  ensemble: { members: 2, epochs: 1, trainCount: 32, count: 16, batchSize: 16 },
};
