/**
 * `datasetFor`: the one place that decides which labelled images a plugin
 * reads for a model. A data set named by the user (`--data fashion`, `mnist`,
 * `canvas`, or a folder with one subfolder per class) comes first; without
 * one, a built-in model reads its own test data; any other model is refused
 * with a message saying how to give data. A model is never handed a built-in
 * data set just because its input happens to have the same shape.
 *
 * @module
 */
import type { Net } from "../net.ts";
import type { DataSource } from "./source.ts";
import { fashionMnist } from "./fashion_mnist.ts";
import { imageFolder } from "./image_folder.ts";
import { canvasSource } from "../builtin/canvas.ts";
import { mnistSource } from "../builtin/mnist.ts";

/** Data sets known by name. */
export const NAMED_DATA: Readonly<
  Record<string, { summary: string; load: () => Promise<DataSource> }>
> = {
  fashion: {
    summary: "Fashion-MNIST test images (10,000, 28x28 grey)",
    load: () => fashionMnist("test"),
  },
  "fashion-train": {
    summary: "Fashion-MNIST training images (60,000, 28x28 grey)",
    load: () => fashionMnist("train"),
  },
  mnist: {
    summary: "the 2,000 held-out MNIST digits (28x28 grey)",
    load: () => mnistSource("heldOut"),
  },
  canvas: {
    summary: "2,000 held-out 64x64 canvases, one digit each",
    load: () => Promise.resolve(canvasSource("heldOut", 2000)),
  },
};

/** The data set each built-in model is measured on. */
const OWN_DATA: Readonly<Record<string, string>> = {
  mnist: "mnist",
  canvas: "canvas",
  fashion: "fashion",
};

/**
 * The labelled images a plugin should read for `net`.
 *
 * @param net The model.
 * @param data A data-set name (see {@linkcode NAMED_DATA}) or a folder with one
 *   subfolder per class; default: the built-in model's own data.
 * @returns The source (shared: treat as read-only).
 * @throws {Error} for a model that is not built in and no data, or data whose
 *   images do not fit the model, saying what to give instead.
 */
export async function datasetFor(net: Net, data?: string): Promise<DataSource> {
  const { height, width, channels } = net.input;
  const fitsModel = (s: DataSource) => {
    const [h, w, c] = s.shape;
    if (h !== height || w !== width || c !== channels) {
      throw new RangeError(
        `${s.name} holds ${h}x${w}x${c} images but the model takes ${height}x${width}x` +
          `${channels}; give --data with images of that size, or a folder (resized on reading)`,
      );
    }
    return s;
  };
  const name = data ?? OWN_DATA[net.sidecar.name ?? ""];
  if (name === undefined) {
    throw new Error(
      `this model (${net.sidecar.name ?? net.source}) has no built-in data: give --data ` +
        `${Object.keys(NAMED_DATA).join("|")}, or --data <folder> with one subfolder of ` +
        "images per class (Lens.open({ data }) in scripts)",
    );
  }
  const known = NAMED_DATA[name];
  if (known) return fitsModel(await known.load());
  return await imageFolder(name, { height, width, channels: channels === 1 ? 1 : 3 });
}
