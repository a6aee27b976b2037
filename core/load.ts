/**
 * Loading a model into a {@linkcode Net}: from a folder, a `model.json` path or an
 * http(s) URL, LayersModel or GraphModel, with its `convlens.json` sidecar. The
 * weights manifest is checked before any weight is read: a path that leaves the
 * model's folder (or origin), a missing shard or a size that does not add up is
 * refused with a message that says what to fix.
 *
 * @module
 */
import { tf } from "./tf.ts";
import { Net, type Sidecar } from "./net.ts";
import { writeFileAtomic } from "./files.ts";

/** Options of {@linkcode loadNet}. */
export interface LoadOptions {
  /** Overrides of the sidecar (input contract, labels, logits layer). @default {} */
  sidecar?: Sidecar;
  /**
   * Seconds an http(s) model may take to arrive (each file: connection, headers
   * and body) before loading is given up.
   * @default {DEFAULT_TIMEOUT_S}
   */
  timeout?: number;
  /**
   * Called with a warning, such as that the model's input contract (value range,
   * mean, std) is stated nowhere and [0, 1] is assumed.
   * @default {undefined}
   */
  onWarning?: (message: string) => void;
}

/**
 * The warning given when neither `convlens.json` nor the caller states the value
 * range, mean or std of the model's input.
 */
export const UNSTATED_CONTRACT_WARNING: string =
  "the model's input contract is stated nowhere, so raw pixels are assumed in [0, 1] " +
  "(mean 0, std 1); if the model takes other values, give them with --range LO,HI, " +
  '--mean and --std (or "input": {"range", "mean", "std"} in convlens.json)';

/** Seconds an http(s) model file may take by default. */
export const DEFAULT_TIMEOUT_S = 30;

/**
 * Fetches a URL within `timeout` seconds (body included) and names the cause of
 * a failure: connection refused, host not found, timeout, or the HTTP status.
 */
async function fetchBytes(
  url: URL,
  timeout: number,
): Promise<{ status: number; bytes?: Uint8Array }> {
  const signal = AbortSignal.timeout(timeout * 1000);
  try {
    const res = await fetch(url, { signal });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      return { status: res.status };
    }
    return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
  } catch (err) {
    throw new Error(`Cannot fetch ${url.href}: ${fetchCause(err, timeout, url)}`);
  }
}

function fetchCause(err: unknown, timeout: number, url: URL): string {
  const e = err as Error & { cause?: unknown };
  const text = `${e?.message ?? err} ${(e?.cause as Error | undefined)?.message ?? ""}`;
  if (e?.name === "TimeoutError" || e?.name === "AbortError") {
    return `timeout: no complete answer within ${timeout} s; check the server, or allow ` +
      "longer with --timeout <seconds> (timeout in the API)";
  }
  if (err instanceof Deno.errors.NotCapable) {
    return `no network permission; run with --allow-net=${url.host}`;
  }
  if (/refused/i.test(text)) {
    return `connection refused: nothing is listening at ${url.host}; check the URL and that the server runs`;
  }
  if (/dns|resolve|lookup|not known|name or service/i.test(text)) {
    return `host not found: ${url.hostname} does not resolve; check the URL`;
  }
  if (/reset|closed|eof|incomplete/i.test(text)) {
    return `the connection was closed before the answer was complete (${e?.message ?? err})`;
  }
  return e?.message ?? String(err);
}

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}

interface ManifestGroup {
  paths: string[];
  weights: WeightEntry[];
}

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: Record<string, unknown>;
  weightsManifest?: ManifestGroup[];
  signature?: Record<string, unknown>;
  userDefinedMetadata?: Record<string, object>;
  modelInitializer?: Record<string, unknown>;
}

const BYTES: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  uint8: 1,
  uint16: 2,
  float16: 2,
  string: NaN,
};

/** Where to read the model files from: a folder on disk or a URL directory. */
interface Place {
  describe: string;
  read(relative: string): Promise<Uint8Array | undefined>;
  /** Refuses a manifest path that leaves the model's folder or origin. */
  check(relative: string): void;
}

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function folderPlace(folder: string): Place {
  const root = folder.replace(/\/+$/, "") || ".";
  return {
    describe: root,
    check(rel) {
      const parts = rel.split(/[\\/]+/);
      if (rel.startsWith("/") || /^[a-z]+:/i.test(rel) || parts.includes("..")) {
        throw new Error(
          `model.json lists weight file "${rel}", which is outside the model's folder ${root}: ` +
            "weight paths must be plain file names relative to model.json",
        );
      }
    },
    async read(rel) {
      try {
        return await Deno.readFile(`${root}/${rel}`);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return undefined;
        throw err;
      }
    },
  };
}

function urlPlace(modelUrl: URL, timeout: number): Place {
  const base = new URL(".", modelUrl);
  return {
    describe: base.href,
    check(rel) {
      const target = new URL(rel, base);
      if (target.origin !== base.origin || !target.pathname.startsWith(base.pathname)) {
        throw new Error(
          `model.json lists weight file "${rel}", which is outside the model's folder ${base.href}: ` +
            "weight paths must be relative to model.json and stay beside it",
        );
      }
    },
    async read(rel) {
      const url = new URL(rel, base);
      const { status, bytes } = await fetchBytes(url, timeout);
      if (status === 404) return undefined;
      if (!bytes) throw new Error(`Cannot fetch ${url.href}: HTTP ${status}`);
      return bytes;
    },
  };
}

function noReadPermission(path: string): Error {
  return new Error(
    `Cannot read the model "${path}": no read permission; run with --allow-read=${path}`,
  );
}

async function readModelJson(
  source: string,
  timeout: number,
): Promise<{ json: ModelJson; place: Place }> {
  let text: string | undefined;
  let place: Place;
  if (isUrl(source)) {
    const url = new URL(source.endsWith(".json") ? source : source.replace(/\/?$/, "/model.json"));
    place = urlPlace(url, timeout);
    const { status, bytes } = await fetchBytes(url, timeout);
    if (!bytes) {
      throw new Error(
        `Cannot fetch ${url.href}: HTTP ${status}. Give the URL of a model.json or of its folder`,
      );
    }
    text = new TextDecoder().decode(bytes);
  } else {
    let file = source;
    try {
      if ((await Deno.stat(source)).isDirectory) file = `${source.replace(/\/+$/, "")}/model.json`;
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw noReadPermission(source);
      throw new Error(
        `Model not found: "${source}" does not exist. Give a folder holding model.json, a model.json path or an http(s) URL`,
      );
    }
    place = folderPlace(file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : ".");
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw noReadPermission(source);
      throw new Error(`Model not found: no model.json at "${file}"`);
    }
  }
  let json: ModelJson;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(
      `Broken model.json in ${place.describe}: not valid JSON (${(err as Error).message})`,
    );
  }
  if (!json || typeof json !== "object" || !json.modelTopology) {
    throw new Error(
      `Broken model.json in ${place.describe}: it has no "modelTopology"; ` +
        "give a TensorFlow.js LayersModel or GraphModel (tensorflowjs_converter output)",
    );
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new Error(`Broken model.json in ${place.describe}: it has no "weightsManifest" list`);
  }
  return { json, place };
}

async function readWeights(json: ModelJson, place: Place): Promise<{
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
}> {
  const specs: tf.io.WeightsManifestEntry[] = [];
  const groups = json.weightsManifest!;
  for (const g of groups) {
    if (!Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      throw new Error(
        `Broken model.json in ${place.describe}: each weightsManifest entry needs "paths" and "weights"`,
      );
    }
    for (const p of g.paths) place.check(p);
  }
  const chunks: Uint8Array[] = [];
  for (const g of groups) {
    let got = 0;
    for (const p of g.paths) {
      const bytes = await place.read(p);
      if (!bytes) {
        throw new Error(
          `Missing weight shard "${p}" listed in model.json (looked in ${place.describe}); ` +
            "copy every weight file the manifest names beside model.json",
        );
      }
      chunks.push(bytes);
      got += bytes.byteLength;
    }
    let want = 0;
    for (const w of g.weights) {
      const per = BYTES[w.quantization?.dtype ?? w.dtype];
      if (!Number.isFinite(per)) {
        throw new Error(`Weight "${w.name}" has dtype ${w.dtype}, which convlens cannot read`);
      }
      want += w.shape.reduce((a, b) => a * b, 1) * per;
      specs.push(w as tf.io.WeightsManifestEntry);
    }
    if (got !== want) {
      throw new Error(
        `Weight shards [${
          g.paths.join(", ")
        }] hold ${got} bytes but the manifest's weights need ${want}: ` +
          "the files do not belong to this model.json or are truncated; export the model again",
      );
    }
  }
  const data = new Uint8Array(chunks.reduce((a, c) => a + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    data.set(c, off);
    off += c.byteLength;
  }
  return { specs, data: data.buffer };
}

async function readSidecar(place: Place): Promise<Sidecar> {
  const bytes = await place.read("convlens.json");
  if (!bytes) return {};
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new Error(
      `Broken convlens.json in ${place.describe}: not valid JSON (${(err as Error).message})`,
    );
  }
}

/**
 * Loads a LayersModel or GraphModel as a {@linkcode Net}.
 *
 * @param source A folder holding `model.json`, a `model.json` path, or an http(s) URL.
 * @param options Sidecar overrides.
 * @returns The Net.
 * @throws {Error} with a message naming the problem (missing file, broken JSON,
 * weight path outside the folder, missing shard, size mismatch).
 */
export async function loadNet(source: string, options: LoadOptions = {}): Promise<Net> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_S;
  if (typeof timeout !== "number" || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new RangeError(`timeout must be a positive number of seconds, got ${timeout}`);
  }
  const { json, place } = await readModelJson(source, timeout);
  const { specs, data } = await readWeights(json, place);
  const file = await readSidecar(place);
  const given = options.sidecar ?? {};
  // The input contract merges field by field: --range alone keeps the file's mean and std.
  const input = file.input || given.input ? { ...file.input, ...given.input } : undefined;
  const sidecar: Sidecar = { ...file, ...given, ...(input ? { input } : {}) };
  const unstated = input?.range === undefined && input?.mean === undefined &&
    input?.std === undefined;
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData: data,
    signature: json.signature,
    userDefinedMetadata: json.userDefinedMetadata,
    modelInitializer: json.modelInitializer,
  };
  const isGraph = json.format === "graph-model" || Array.isArray(json.modelTopology?.node);
  const handler = tf.io.fromMemory(artifacts);
  let model: tf.LayersModel | tf.GraphModel;
  try {
    model = isGraph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  } catch (err) {
    throw new Error(
      `Cannot build the model in ${place.describe} from model.json: ${(err as Error).message}`,
    );
  }
  try {
    checkImageModel(model, place.describe);
    const net = Net.fromModel(model, sidecar, source);
    if (unstated) options.onWarning?.(UNSTATED_CONTRACT_WARNING);
    return net;
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * Refuses a model that does not take images `[batch, height, width, channels]`,
 * saying what it takes instead.
 */
function checkImageModel(model: tf.LayersModel | tf.GraphModel, where: string): void {
  const inputs = model.inputs ?? [];
  const shape = (inputs[0]?.shape ?? undefined) as (number | null)[] | undefined;
  if (inputs.length > 1) {
    throw new RangeError(
      `The model in ${where} takes ${inputs.length} inputs; convlens supports image models ` +
        "with one input [batch, height, width, channels]",
    );
  }
  if (!shape || shape.length === 4) return;
  const dims = `[${shape.map((d) => d ?? "batch").join(", ")}]`;
  const what = shape.length === 5
    ? "5-D input (a volume or video model, e.g. Conv3D)"
    : shape.length === 2
    ? `flat vectors of ${shape[1]} features (a dense model, not an image model)`
    : shape.length === 3
    ? "sequences (a 1-D or recurrent model)"
    : `input of rank ${shape.length}`;
  throw new RangeError(
    `The model in ${where} takes ${what}, shape ${dims}: convlens supports image models ` +
      "taking [batch, height, width, channels]; this model is not supported",
  );
}

/**
 * Saves a LayersModel to a folder as `model.json` + `weights.bin` (the layout
 * {@linkcode loadNet} and `tf.loadLayersModel` read), with an optional
 * `convlens.json` sidecar. Files are written atomically.
 *
 * @param model The model.
 * @param folder Destination folder (created if missing).
 * @param sidecar Written as `convlens.json` when given.
 * @returns When the files are in place.
 */
export async function saveLayersModel(
  model: tf.LayersModel,
  folder: string,
  sidecar?: Sidecar,
): Promise<void> {
  const dir = folder.replace(/\/+$/, "");
  let files: { weights: Uint8Array; json: string } | undefined;
  await model.save(tf.io.withSaveHandler((artifacts) => {
    const raw = artifacts.weightData ?? new ArrayBuffer(0);
    const weights = Array.isArray(raw) ? tf.io.CompositeArrayBuffer.join(raw) : raw;
    const json = {
      format: "layers-model",
      generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs ?? [] }],
    };
    files = { weights: new Uint8Array(weights), json: JSON.stringify(json) };
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" },
    });
  }));
  await writeFileAtomic(`${dir}/weights.bin`, files!.weights);
  await writeFileAtomic(`${dir}/model.json`, files!.json);
  if (sidecar) {
    await writeFileAtomic(`${dir}/convlens.json`, JSON.stringify(sidecar, null, 2) + "\n");
  }
}
