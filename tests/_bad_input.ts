/**
 * Fixtures of the bad-input suite: a small model and images in a temporary
 * folder, plugin modules that fail or stall while saving, a server on 127.0.0.1
 * that answers slowly, wrongly or not at all, and a listing of a folder tree to
 * check that a failed run left nothing behind.
 *
 * @module
 */
import { tf } from "../core/tf.ts";
import { saveLayersModel } from "../core/load.ts";
import { encodePng } from "../core/images/codecs.ts";
import { sequentialNet } from "./_nets.ts";

/** Every path under `dir` (folders end in `/`), sorted; `[]` when it does not exist. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(at));
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        out.push(`${r}/`);
        await walk(`${at}/${e.name}`, r);
      } else out.push(r);
    }
  };
  await walk(dir, "");
  return out.sort();
}

/** A gray or colour PNG with a deterministic pattern. */
export function png(w: number, h: number, colour = false): Promise<Uint8Array> {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const v = (i * 37) % 256;
    data.set([v, colour ? 255 - v : v, v, 255], i * 4);
  }
  return encodePng({ width: w, height: h, data });
}

/** A PNG header (signature and IHDR) claiming a size, with no image data. */
export function pngHeader(width: number, height: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const v = new DataView(b.buffer);
  v.setUint32(16, width);
  v.setUint32(20, height);
  b.set([8, 0, 0, 0, 0], 24);
  return b;
}

/** A JPEG start (SOI, an APP0 segment, SOF0) claiming a size, with no image data. */
export function jpegHeader(width: number, height: number): Uint8Array {
  return new Uint8Array([
    0xff,
    0xd8,
    0xff,
    0xe0,
    0,
    16,
    0x4a,
    0x46,
    0x49,
    0x46,
    0,
    1,
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    0,
    0xff,
    0xc0,
    0,
    11,
    8,
    height >> 8,
    height & 255,
    width >> 8,
    width & 255,
    1,
    1,
    0x11,
    0,
  ]);
}

const core = (f: string) => new URL(`../core/${f}`, import.meta.url).href;

/**
 * A plugin module whose result fails (`"fail"`) or stalls (`"stall"`, printing
 * `saving` first) while its files are being written: an image is staged first,
 * then the model it carries is saved.
 */
export function savingPluginModule(kind: "fail" | "stall" | "throw"): string {
  return `
import { definePlugin } from "${core("plugin.ts")}";
import { Result } from "${core("result.ts")}";
import { tf } from "${core("tf.ts")}";
export const p = definePlugin({
  name: "${kind}-save", family: "inspect", summary: "test", params: {},
  async run() {
    ${kind === "throw" ? 'throw new Error("the plugin broke on purpose");' : ""}
    const r = new Result("${kind}-save", "test");
    const px = tf.zeros([4, 4, 1]);
    await r.addImage("a", px);
    px.dispose();
    r.model = {
      model: {
        async save() {
          ${
    kind === "stall"
      ? 'console.error("saving"); await new Promise((res) => setTimeout(res, 20000));'
      : ""
  }
          throw new Error("the disk is full (on purpose)");
        },
        dispose() {},
      },
      sidecar: {},
    };
    return r;
  },
});
`;
}

/** The fixtures' folder and paths. */
export interface Fixtures {
  /** The temporary folder holding everything. */
  root: string;
  /** A 12x12x1, 5-class model folder. */
  model: string;
  /** Paths by name: gray, colour, corrupt, empty, gif, text, hugePng, hugeJpeg, large, mid, dense, conv3d, ... */
  files: Record<string, string>;
}

/** Writes the fixtures into a new temporary folder. */
export async function makeFixtures(): Promise<Fixtures> {
  const root = await Deno.makeTempDir({ prefix: "convlens_bad_" });
  const model = `${root}/model`;
  await saveLayersModel(sequentialNet(), model, { name: "tiny" });
  const files: Record<string, string> = {};
  const put = async (name: string, data: Uint8Array | string) => {
    files[name] = `${root}/${name}`;
    if (typeof data === "string") await Deno.writeTextFile(files[name], data);
    else await Deno.writeFile(files[name], data);
  };
  await put("gray.png", await png(12, 12));
  await put("colour.png", await png(12, 12, true));
  await put("large.png", await png(200, 200));
  await put("mid.png", await png(100, 100));
  await put("corrupt.png", (await png(12, 12)).slice(0, 40));
  await put("empty.png", new Uint8Array());
  await put("anim.gif", new TextEncoder().encode("GIF89a........"));
  await put("notes.txt", "not an image\n");
  await put("huge.png", pngHeader(40000, 40000));
  await put("huge.jpg", jpegHeader(20000, 20000));
  await put("a_file", "a file, not a folder\n");
  await Deno.mkdir(`${root}/broken`);
  await put("broken/model.json", "{ not json");
  files["broken"] = `${root}/broken`;
  await Deno.mkdir(`${root}/empty_model`);
  files["empty_model"] = `${root}/empty_model`;
  await Deno.mkdir(`${root}/a_folder.png`);
  files["a_folder.png"] = `${root}/a_folder.png`;
  // A model whose weights file is missing, and one whose weights are truncated.
  for (const [name, cut] of [["no_shard", -1], ["short", 16]] as const) {
    const dir = `${root}/${name}`;
    await saveLayersModel(sequentialNet(), dir);
    if (cut < 0) await Deno.remove(`${dir}/weights.bin`);
    else await Deno.writeFile(`${dir}/weights.bin`, new Uint8Array(cut));
    files[name] = dir;
  }
  const dense = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [20], units: 3, activation: "softmax" })],
  });
  await saveLayersModel(dense, `${root}/dense`);
  dense.dispose();
  files["dense"] = `${root}/dense`;
  const volume = tf.sequential({
    layers: [
      tf.layers.conv3d({ inputShape: [4, 8, 8, 1], filters: 2, kernelSize: 3 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 3 }),
    ],
  });
  await saveLayersModel(volume, `${root}/conv3d`);
  volume.dispose();
  files["conv3d"] = `${root}/conv3d`;
  for (const kind of ["fail", "stall", "throw"] as const) {
    await put(`${kind}_plugin.ts`, savingPluginModule(kind));
  }
  await put("no_plugin.ts", "export const x = 1;\n");
  return { root, model, files };
}

/** A server on 127.0.0.1 for model URLs: `/slow/` never answers, `/500/` and `/404/` fail. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`. */
  base: string;
  /** A port where nothing listens. */
  closedPort: number;
  /** Stops the server (and releases the requests held open). */
  close(): Promise<void>;
}

/**
 * Serves the test's URLs. A held request is released when the server closes or
 * after 15 s, so the server always stops by itself.
 */
export function startServer(): TestServer {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const limit = setTimeout(release, 15_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path.startsWith("/slow/")) {
      await released;
      return new Response("too late", { status: 503 });
    }
    if (path.startsWith("/500/")) return new Response("broken", { status: 500 });
    return new Response("no such file", { status: 404 });
  });
  // A port that was just free: bind, note it, close.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return {
    base: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    closedPort,
    async close() {
      release();
      clearTimeout(limit);
      await server.shutdown();
    },
  };
}
