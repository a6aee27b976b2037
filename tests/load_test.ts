import assert from "node:assert/strict";
import { tf } from "../core/tf.ts";
import { loadNet, saveLayersModel } from "../core/load.ts";
import { functionalNet, sequentialNet } from "./_nets.ts";

await tf.setBackend("cpu");

async function saved(model: tf.LayersModel, sidecar?: Record<string, unknown>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convlens_load_" });
  await saveLayersModel(model, dir, sidecar);
  return dir;
}

async function editJson(dir: string, f: (j: Record<string, unknown>) => void): Promise<void> {
  const path = `${dir}/model.json`;
  const j = JSON.parse(await Deno.readTextFile(path));
  f(j);
  await Deno.writeTextFile(path, JSON.stringify(j));
}

async function sameOutputs(a: tf.LayersModel, dir: string): Promise<void> {
  const net = await loadNet(dir);
  const x = tf.randomUniform([2, ...a.inputs[0].shape.slice(1) as number[]], 0, 1, "float32", 2);
  const d = tf.tidy(() => (a.predict(x) as tf.Tensor).sub(net.forward(x).output).abs().max());
  assert.ok((await d.data())[0] < 1e-6);
  tf.dispose([x, d]);
  net.dispose();
}

Deno.test("loadNet() loads a Sequential and a functional LayersModel from a folder", async () => {
  const seq = sequentialNet();
  const dir = await saved(seq, { name: "seq", labels: ["a", "b", "c", "d", "e"] });
  await sameOutputs(seq, dir);
  const net = await loadNet(`${dir}/model.json`);
  assert.equal(net.kind, "layers");
  assert.equal(net.sidecar.name, "seq");
  assert.deepEqual(net.labels, ["a", "b", "c", "d", "e"]);
  net.dispose();
  const fn = functionalNet();
  await sameOutputs(fn, await saved(fn));
});

Deno.test("loadNet() reads sharded weights", async () => {
  const seq = sequentialNet();
  const dir = await saved(seq);
  const bytes = await Deno.readFile(`${dir}/weights.bin`);
  const cut = 100;
  await Deno.writeFile(`${dir}/group1-shard1of2.bin`, bytes.slice(0, cut));
  await Deno.writeFile(`${dir}/group1-shard2of2.bin`, bytes.slice(cut));
  await Deno.remove(`${dir}/weights.bin`);
  await editJson(dir, (j) => {
    (j.weightsManifest as { paths: string[] }[])[0].paths = [
      "group1-shard1of2.bin",
      "group1-shard2of2.bin",
    ];
  });
  await sameOutputs(seq, dir);
});

Deno.test("loadNet() loads a model over http from a server on localhost", async () => {
  const seq = sequentialNet();
  const dir = await saved(seq, { name: "served" });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (!path.startsWith("/models/seq/")) return new Response("not found", { status: 404 });
    try {
      return new Response(await Deno.readFile(`${dir}/${path.slice("/models/seq/".length)}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}/models/seq/`;
    await sameOutputs(seq, base);
    const net = await loadNet(`${base}model.json`);
    assert.equal(net.sidecar.name, "served");
    net.dispose();
    await editJson(dir, (j) => {
      (j.weightsManifest as { paths: string[] }[])[0].paths = ["../../secret.bin"];
    });
    await assert.rejects(loadNet(base), /outside the model's folder/);
    await editJson(dir, (j) => {
      (j.weightsManifest as { paths: string[] }[])[0].paths = ["http://evil.example/w.bin"];
    });
    await assert.rejects(loadNet(base), /outside the model's folder/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("loadNet() refuses weight paths outside the folder, missing shards and size mismatches", async () => {
  const dir = await saved(sequentialNet());
  const paths = (p: string[]) => (j: Record<string, unknown>) => {
    (j.weightsManifest as { paths: string[] }[])[0].paths = p;
  };
  await editJson(dir, paths(["../weights.bin"]));
  await assert.rejects(
    loadNet(dir),
    /weight file "\.\.\/weights\.bin", which is outside the model's folder/,
  );
  await editJson(dir, paths(["/etc/passwd"]));
  await assert.rejects(loadNet(dir), /outside the model's folder/);
  await editJson(dir, paths(["missing.bin"]));
  await assert.rejects(loadNet(dir), /Missing weight shard "missing\.bin"/);
  await editJson(dir, paths(["weights.bin"]));
  const bytes = await Deno.readFile(`${dir}/weights.bin`);
  await Deno.writeFile(`${dir}/weights.bin`, bytes.slice(0, bytes.length - 8));
  await assert.rejects(loadNet(dir), /hold \d+ bytes but the manifest's weights need \d+/);
});

Deno.test("loadNet() names a broken model.json, a missing model and a broken sidecar", async () => {
  const dir = await saved(sequentialNet());
  await Deno.writeTextFile(`${dir}/convlens.json`, "{ nope");
  await assert.rejects(loadNet(dir), /Broken convlens\.json/);
  await Deno.remove(`${dir}/convlens.json`);
  await Deno.writeTextFile(`${dir}/model.json`, "{ not json");
  await assert.rejects(loadNet(dir), /Broken model\.json .*not valid JSON/);
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify({ weightsManifest: [] }));
  await assert.rejects(loadNet(dir), /has no "modelTopology"/);
  await assert.rejects(loadNet(`${dir}/nowhere`), /Model not found/);
});
