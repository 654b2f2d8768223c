import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { GraphBuilder } from "../../src/onnx/graph";
import { linear, layerNorm } from "../../src/onnx/ops";
import { createSession } from "../../src/onnx/session";
import type { DType, WeightSource } from "../../src/io/types";
import { openWeights } from "../../src/io/checkpoint";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { TensorShapeError } from "../../src/io/errors";
import { processMemory, resetPeak } from "../../src/memory/probes";

type RawTensor = { dtype: DType; shape: number[]; bytes: Uint8Array };

async function writeTensors(file: string, tensors: Record<string, RawTensor>): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await writeSafetensors(file, Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.bytes })));
}

/** Writes `<folder>/model.safetensors` and opens the folder's weights as the models do. */
async function writeWeights(folder: string, tensors: Record<string, RawTensor>): Promise<WeightSource> {
  await writeTensors(path.join(folder, "model.safetensors"), tensors);
  return openWeights(folder);
}

const f32 = (a: number[]) => new Uint8Array(Float32Array.from(a).buffer);

function toF16Bits(x: number): number {
  // Exact for the small integers and halves used below.
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = (u >>> 13) & 0x3ff;
  return x === 0 ? sign : sign | (exp << 10) | mant;
}

describe("onnx/GraphBuilder", () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-graph-")); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // W [out=2, in=3] as torch stores nn.Linear weights.
  const W = [1, 2, 3, -1, 0.5, 4];
  const B = [0.25, -2];
  const X = [1, 2, 3, 4, 5, 6]; // [2, 3]
  const expected = [1 + 4 + 9 + 0.25, -1 + 1 + 12 - 2, 4 + 10 + 18 + 0.25, -4 + 2.5 + 24 - 2];

  async function runLinear(ws: WeightSource): Promise<Float32Array> {
    const g = new GraphBuilder("linear", ws);
    const x = g.input("x", "float32", ["n", 3]);
    g.output(linear(g, x, "fc", { shape: [2, 3] }), "y", "float32", ["n", 2]);
    const session = await createSession(g.build());
    try {
      const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from(X), [2, 3]) });
      return out.y.data as Float32Array;
    } finally {
      await session.release();
    }
  }

  it("runs nn.Linear with weights memory-mapped from a safetensors file", async () => {
    const ws = await writeWeights(path.join(dir, "a"), {
      "fc.weight": { dtype: "F32", shape: [2, 3], bytes: f32(W) },
      "fc.bias": { dtype: "F32", shape: [2], bytes: f32(B) },
    });
    assert.deepStrictEqual(Array.from(await runLinear(ws)), expected);
  });

  it("casts fp16 and bf16 weights to float32 at run time", async () => {
    const h = new Uint16Array(W.map(toF16Bits));
    const bf = new Uint16Array(new Uint32Array(Float32Array.from(B).buffer).map((u) => u >>> 16));
    const ws = await writeWeights(path.join(dir, "b"), {
      "fc.weight": { dtype: "F16", shape: [2, 3], bytes: new Uint8Array(h.buffer) },
      "fc.bias": { dtype: "BF16", shape: [2], bytes: new Uint8Array(bf.buffer) },
    });
    assert.deepStrictEqual(Array.from(await runLinear(ws)), expected);
  });

  it("reads weights through symlinks into another folder (the Hugging Face cache layout)", async () => {
    // models--org--name/snapshots/<rev>/transformer/model.safetensors -> ../../../blobs/<sha>
    const repo = path.join(dir, "models--org--name");
    const blobs = path.join(repo, "blobs");
    const snap = path.join(repo, "snapshots", "rev", "transformer");
    await writeTensors(path.join(blobs, "sha1"), {
      "fc.weight": { dtype: "F32", shape: [2, 3], bytes: f32(W) },
      "fc.bias": { dtype: "F32", shape: [2], bytes: f32(B) },
    });
    fs.mkdirSync(snap, { recursive: true });
    fs.symlinkSync(path.relative(snap, path.join(blobs, "sha1")), path.join(snap, "model.safetensors"));
    const ws = await openWeights(snap);
    assert.strictEqual(ws.get("fc.weight").file, fs.realpathSync(path.join(blobs, "sha1")));
    assert.deepStrictEqual(Array.from(await runLinear(ws)), expected);
  });

  it("refuses a weight whose shape does not match the config, naming the tensor", async () => {
    const ws = await writeWeights(path.join(dir, "c"), {
      "fc.weight": { dtype: "F32", shape: [3, 2], bytes: f32(W) },
    });
    const g = new GraphBuilder("bad", ws);
    assert.throws(() => linear(g, g.input("x", "float32", [1, 3]), "fc", { shape: [2, 3] }),
      (e: unknown) => e instanceof TensorShapeError && /fc\.weight/.test(e.message) && /\[2, 3\]/.test(e.message));
  });

  it("runs each 16-bit weight's fp32 cast just before its MatMul, so only one fp32 copy is alive at a time", async () => {
    const n = 1024;
    const layers = 16;
    const one = new Uint16Array(n * n).fill(0x3c00); // bf16 0.0078125: keeps activations finite
    const tensors: Record<string, { dtype: DType; shape: number[]; bytes: Uint8Array }> = {};
    for (let i = 0; i < layers; i++) tensors[`l${i}.weight`] = { dtype: "BF16", shape: [n, n], bytes: new Uint8Array(one.buffer) };
    const ws = await writeWeights(path.join(dir, "bf16-layers"), tensors);
    const g = new GraphBuilder("casts", ws);
    let x = g.input("x", "float32", [4, n]);
    for (let i = 0; i < layers; i++) x = linear(g, x, `l${i}`, { bias: false });
    g.output(x, "y", "float32", [4, n]);
    const session = await createSession(g.build(), { intraOpNumThreads: 1 });
    try {
      const input = new ort.Tensor("float32", new Float32Array(4 * n).fill(1), [4, n]);
      await session.run({ x: input }); // maps the weights in
      const before = processMemory().rss;
      resetPeak();
      await session.run({ x: input });
      const growth = processMemory().rssPeak - before;
      const copy = n * n * 4;
      // All casts first would hold 16 copies (64 MiB) at the peak; one at a time holds one or two.
      assert.ok(growth < 4 * copy, `peak grew by ${(growth / 2 ** 20).toFixed(1)} MiB during a run; one fp32 copy is ${copy / 2 ** 20} MiB`);
    } finally {
      await session.release();
    }
  });

  it("runs a Loop whose body reads checkpoint weights (fp32 and fp16) and loop inputs of the enclosing graph", async () => {
    const h = new Uint16Array(W.map(toF16Bits));
    const ws = await writeWeights(path.join(dir, "loop"), {
      "fc.weight": { dtype: "F16", shape: [2, 3], bytes: new Uint8Array(h.buffer) },
      "fc.bias": { dtype: "F32", shape: [2], bytes: f32(B) },
    });
    // x ← x·2 + fc(v) + steps[i], for i < len(steps): the body reads fc's weights, v and steps from the outer graph.
    const g = new GraphBuilder("loop", ws);
    const x = g.input("x", "float32", [2, 2]);
    const v = g.input("v", "float32", [2, 3]);
    const steps = g.input("steps", "float32", ["k"]);
    const body = g.subgraph("body");
    const iter = body.input("iter", "int64", []);
    const cond = body.input("cond", "bool", []);
    const xIn = body.input("x_in", "float32", [2, 2]);
    const next = body.op("Add", [body.op("Add", [body.op("Mul", [xIn, body.constF32(2)]), linear(body, v, "fc", { shape: [2, 3] })]),
      body.op("Gather", [steps, iter], { axis: 0 })]);
    body.output(cond, "cond_out", "bool", []);
    body.output(next, "x_out", "float32", [2, 2]);
    const [y] = g.opN("Loop", [g.op("Squeeze", [g.op("Shape", [steps])]), "", x], { body: body.buildSubgraph() }, { outputs: 1 });
    g.output(y, "y", "float32", [2, 2]);
    assert.throws(() => body.build(), /buildSubgraph/);
    const built = g.build();
    assert.ok(built.hasCastWeights, "the fp16 weight read in the body is cast at run time");
    const session = await createSession(built);
    try {
      const out = await session.run({
        x: new ort.Tensor("float32", Float32Array.from([1, 2, 3, 4]), [2, 2]),
        v: new ort.Tensor("float32", Float32Array.from(X), [2, 3]),
        steps: new ort.Tensor("float32", Float32Array.from([10, 100, 1000]), [3]),
      });
      let want = [1, 2, 3, 4];
      for (const s of [10, 100, 1000]) want = want.map((xv, k) => xv * 2 + expected[k] + s);
      assert.deepStrictEqual(Array.from(out.y.data as Float32Array), want);
    } finally {
      await session.release();
    }
  });

  it("LayerNormalization without affine parameters matches the formula", async () => {
    const g = new GraphBuilder("ln");
    const x = g.input("x", "float32", [1, 4]);
    g.output(layerNorm(g, x, 4, 1e-6), "y", "float32", [1, 4]);
    const session = await createSession(g.build());
    const y = (await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 2, 3, 4]), [1, 4]) })).y.data as Float32Array;
    await session.release();
    const sd = Math.sqrt(1.25 + 1e-6);
    [1, 2, 3, 4].forEach((v, i) => assert.ok(Math.abs(y[i] - (v - 2.5) / sd) < 1e-6));
  });
});
