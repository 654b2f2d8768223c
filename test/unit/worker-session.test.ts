import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as v8 from "v8";
import * as vm from "vm";
import * as ort from "onnxruntime-node";
import { GraphBuilder, type BuiltModel } from "../../src/onnx/graph";
import { createSession } from "../../src/onnx/session";
import { SessionReleasedError, SessionWorkerError, WorkerSession } from "../../src/onnx/worker-session";
import { ModelReleasedError, type Tensor } from "../../src/models/model";
import { PixArtTransformer2DModel, type TransformerForwardInput } from "../../src/models/pixart-transformer-2d";
import { loadReference, tinyConfigs } from "../helpers/reference";

/** Threads of this process (main, libuv pool, V8 platform, workers, onnxruntime pools). */
const threadCount = (): number => fs.readdirSync("/proc/self/task").length;

/** y = relu(x) on a fixed [2, 3] input: cheap, with a shape onnxruntime checks. */
function reluGraph(): BuiltModel {
  const g = new GraphBuilder("relu");
  g.output(g.op("Relu", [g.input("x", "float32", [2, 3])]), "y", "float32", [2, 3]);
  return g.build();
}

/** `layers` chained [n, n] MatMuls with inline weights: a run that lasts long enough to watch the event loop. */
function slowGraph(n: number, layers: number): BuiltModel {
  const g = new GraphBuilder("slow");
  // Orthogonal-ish scale keeps activations finite (denormals or infinities would change the timing).
  const w = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i * 12.9898) * Math.sqrt(3 / n));
  const weight = g.constF32(w, [n, n]);
  let x = g.input("x", "float32", [n, n]);
  for (let i = 0; i < layers; i++) x = g.op("MatMul", [x, weight]);
  g.output(x, "y", "float32", [n, n]);
  return g.build();
}

/** Runs `fn` with a 10 ms interval timer going; returns how long it took and the longest gap between ticks. */
async function watchEventLoop(fn: () => Promise<unknown>): Promise<{ ms: number; maxGapMs: number; ticks: number }> {
  let last = performance.now();
  let maxGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    ticks++;
  }, 10);
  const start = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const end = performance.now();
  return { ms: end - start, maxGapMs: Math.max(maxGap, end - last), ticks };
}

/** The transformer inputs recorded in a tiny config's reference file. */
async function transformerInput(configDir: string): Promise<TransformerForwardInput> {
  const ref = await loadReference(configDir);
  return {
    hiddenStates: (await ref("transformer.hidden_states")) as Tensor,
    encoderHiddenStates: (await ref("transformer.encoder_hidden_states")) as Tensor,
    encoderAttentionMask: (await ref("transformer.encoder_attention_mask")) as Tensor<BigInt64Array>,
    timestep: (await ref("transformer.timestep")).data as BigInt64Array,
  };
}

/** Lets pending thread exits and finalizers settle. */
const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("WorkerSession: onnxruntime in a worker thread", () => {
  // One session first, so lazily started process threads (libuv pool, onnxruntime env) are not counted as leaks.
  before(async () => {
    const s = await WorkerSession.create(reluGraph(), { intraOpNumThreads: 1 });
    await s.release();
  });

  it("gives bit-identical outputs to an in-process session for every tiny transformer, and leaves the inputs intact", async () => {
    const configs = tinyConfigs();
    assert.ok(configs.length > 0, "no tiny configs under test/fixtures");
    for (const config of configs) {
      const input = await transformerInput(config.dir);
      const before = input.hiddenStates.data.slice();
      const dir = path.join(config.pipeline, "transformer");
      const inThread = await PixArtTransformer2DModel.fromPretrained(dir, { inProcess: true });
      const inWorker = await PixArtTransformer2DModel.fromPretrained(dir);
      try {
        const a = await inThread.forward(input);
        const b = await inWorker.forward(input);
        // Twice: the model reuses its cached pos_embed array, which must not have been moved away.
        const c = await inWorker.forward(input);
        assert.deepStrictEqual(b.dims, a.dims);
        assert.ok(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer)), `${config.name}: worker output differs`);
        assert.ok(Buffer.from(c.data.buffer).equals(Buffer.from(a.data.buffer)), `${config.name}: second worker run differs`);
        assert.deepStrictEqual(input.hiddenStates.data, before, `${config.name}: the caller's input was changed or detached`);
      } finally {
        await inThread.release();
        await inWorker.release();
      }
    }
  });

  it("copies what it sends: the graph bytes and feeds that are views into bigger or pooled buffers stay usable", async () => {
    // Too big for node's Buffer pool, so the encoded model owns its ArrayBuffer: moving it would empty built.bytes.
    const big = slowGraph(64, 1);
    const bytes = Buffer.from(big.bytes);
    await (await WorkerSession.create(big)).release();
    assert.ok(Buffer.from(big.bytes).equals(bytes), "the graph bytes were detached or changed");
    const first = await WorkerSession.create(reluGraph());
    const second = await WorkerSession.create(reluGraph());
    try {
      const backing = new Float32Array(16).map((_, i) => i - 8);
      const x = new ort.Tensor("float32", backing.subarray(2, 8), [2, 3]);
      const out = await first.run({ x });
      assert.deepStrictEqual(Array.from(out["y"].data as Float32Array), [0, 0, 0, 0, 0, 0]);
      assert.deepStrictEqual(Array.from(backing), Array.from({ length: 16 }, (_, i) => i - 8), "the caller's buffer was detached or changed");
      // Small Buffers share node's pool: a feed viewing one must not take the pool (and its neighbours) away.
      const pooled = Buffer.allocUnsafe(24);
      const neighbour = Buffer.from("still here");
      assert.strictEqual(pooled.buffer, neighbour.buffer, "expected both Buffers in node's pool");
      const view = new Float32Array(pooled.buffer, pooled.byteOffset, 6);
      view.set([1, -1, 2, -2, 3, -3]);
      const y = (await second.run({ x: new ort.Tensor("float32", view, [2, 3]) }))["y"].data as Float32Array;
      assert.deepStrictEqual(Array.from(y), [1, 0, 2, 0, 3, 0]);
      assert.strictEqual(neighbour.toString(), "still here");
      assert.deepStrictEqual(Array.from(view), [1, -1, 2, -2, 3, -3]);
    } finally {
      await first.release();
      await second.release();
    }
  });

  it("keeps the event loop responsive during a long run (and an in-process run does not: the control)", async function () {
    const x = new ort.Tensor("float32", new Float32Array(384 * 384).fill(0.5), [384, 384]);
    // Calibrate: a run must take ≥ 300 ms on this machine, however fast or loaded it is.
    let layers = 120;
    for (;;) {
      const probe = await createSession(slowGraph(384, layers), { intraOpNumThreads: 1 });
      const start = performance.now();
      await probe.run({ x });
      const ms = performance.now() - start;
      await probe.release();
      if (ms >= 300) break;
      layers = Math.ceil(layers * Math.min(8, 400 / Math.max(ms, 1)));
    }
    const built = slowGraph(384, layers);
    const local = await createSession(built, { intraOpNumThreads: 1 });
    const worker = await WorkerSession.create(built, { intraOpNumThreads: 1 });
    try {
      const blocked = await watchEventLoop(() => local.run({ x }));
      const free = await watchEventLoop(() => worker.run({ x }));
      const msg = `in-process ${JSON.stringify(blocked)}, worker ${JSON.stringify(free)}`;
      // The control shows the run is long enough to starve a 10 ms timer when it shares the thread.
      assert.ok(blocked.ms >= 150 && blocked.maxGapMs >= 0.8 * blocked.ms, `control did not block: ${msg}`);
      assert.ok(free.ms >= 150, `worker run too short to tell: ${msg}`);
      assert.ok(free.maxGapMs < 100 && free.ticks >= free.ms / 40, `event loop stalled during the worker run: ${msg}`);
    } finally {
      await local.release();
      await worker.release();
    }
  });

  it("release() ends the worker thread; a later run throws SessionReleasedError, and ModelReleasedError through a model", async () => {
    const s = await WorkerSession.create(reluGraph());
    assert.deepStrictEqual([s.inputNames, s.outputNames], [["x"], ["y"]]);
    assert.ok(s.threadRunning);
    await s.release();
    assert.strictEqual(s.threadRunning, false);
    await s.release(); // twice is fine
    await assert.rejects(s.run({ x: new ort.Tensor("float32", new Float32Array(6), [2, 3]) }), SessionReleasedError);

    const config = tinyConfigs()[0];
    const model = await PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"));
    const input = await transformerInput(config.dir);
    await model.forward(input);
    await model.release();
    await assert.rejects(model.forward(input), ModelReleasedError);
  });

  it("a release() issued during a run lets the run finish first", async () => {
    const s = await WorkerSession.create(slowGraph(256, 20), { intraOpNumThreads: 1 });
    const run = s.run({ x: new ort.Tensor("float32", new Float32Array(256 * 256).fill(1), [256, 256]) });
    const release = s.release();
    const out = await run;
    await release;
    assert.deepStrictEqual(out["y"].dims, [256, 256]);
    assert.strictEqual(s.threadRunning, false);
  });

  it("an onnxruntime error in the worker comes back with its name and message, worker and caller frames, and the session keeps working", async () => {
    const s = await WorkerSession.create(reluGraph());
    try {
      const err = await s.run({ x: new ort.Tensor("float32", new Float32Array(4), [2, 2]) }).then(
        () => assert.fail("a [2, 2] input to a [2, 3] graph must fail"),
        (e: Error) => e,
      );
      assert.ok(err instanceof Error);
      assert.strictEqual(err.name, "Error");
      assert.match(err.message, /invalid dimensions for input: x/i);
      // Frames from the worker (onnxruntime's binding there), then from this thread down to this test.
      const [inWorker, here] = (err.stack ?? "").split(/--- in onnxruntime worker thread \d+/);
      assert.ok(here !== undefined, `no thread marker in ${err.stack}`);
      assert.match(inWorker, /at .*onnxruntime-node/, "worker frames missing");
      assert.match(here, /worker-session\.test\.ts/, "caller frames missing");
      const ok = await s.run({ x: new ort.Tensor("float32", Float32Array.of(-1, 2, -3, 4, -5, 6), [2, 3]) });
      assert.deepStrictEqual(Array.from(ok["y"].data as Float32Array), [0, 2, 0, 4, 0, 6]);
    } finally {
      await s.release();
    }
  });

  it("a model onnxruntime refuses rejects create() with its error and leaves no thread behind", async () => {
    const threads = threadCount();
    const bad = { ...reluGraph(), bytes: Uint8Array.of(1, 2, 3, 4) };
    await assert.rejects(WorkerSession.create(bad), (e: Error) => e.name === "Error" && /protobuf|parse|model/i.test(e.message));
    await settle();
    assert.ok(threadCount() <= threads, `${threadCount()} threads, ${threads} before`);
  });

  it("a worker that dies rejects the pending run with SessionWorkerError instead of hanging", async () => {
    const s = await WorkerSession.create(slowGraph(256, 40), { intraOpNumThreads: 1 });
    const run = s.run({ x: new ort.Tensor("float32", new Float32Array(256 * 256).fill(1), [256, 256]) });
    // Stands in for an out-of-memory or otherwise fatal end of the thread (the worker is private).
    await (s as unknown as { conn: { worker: { terminate(): Promise<number> } } }).conn.worker.terminate();
    await assert.rejects(run, (e: Error) => e instanceof SessionWorkerError && e.message.includes(`thread ${s.threadId} exited unexpectedly`));
    await assert.rejects(s.run({ x: new ort.Tensor("float32", new Float32Array(256 * 256), [256, 256]) }), SessionWorkerError);
    await s.release(); // still fine: nothing left to release
  });

  it("passes the session options to the worker, taking them out of wider option objects that hold functions", async () => {
    // onnxruntime's intra-op pool has n - 1 threads of its own: the options' effect is visible in /proc.
    const threadsWith = async (n: number): Promise<number> => {
      const before = threadCount();
      const opts = { intraOpNumThreads: n, linear: () => "not cloneable", log: console.log };
      const s = await WorkerSession.create(reluGraph(), opts);
      const added = threadCount() - before;
      await s.release();
      return added;
    };
    assert.strictEqual((await threadsWith(3)) - (await threadsWith(1)), 2);
  });

  it("20 create/run/release cycles leave no threads behind", async () => {
    const threads = threadCount();
    const x = new ort.Tensor("float32", new Float32Array(6).fill(1), [2, 3]);
    for (let i = 0; i < 20; i++) {
      const s = await WorkerSession.create(reluGraph(), { intraOpNumThreads: 1 });
      await s.run({ x });
      await s.release();
    }
    await settle();
    assert.ok(threadCount() <= threads, `${threadCount()} threads, ${threads} before`);
  });

  it("a session dropped without release() ends its worker once garbage-collected", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const threads = threadCount();
    await (async () => {
      const s = await WorkerSession.create(reluGraph(), { intraOpNumThreads: 1 });
      await s.run({ x: new ort.Tensor("float32", new Float32Array(6), [2, 3]) });
    })();
    assert.ok(threadCount() > threads);
    for (let i = 0; i < 20 && threadCount() > threads; i++) {
      gc();
      await settle();
    }
    assert.ok(threadCount() <= threads, `${threadCount()} threads, ${threads} before`);
  });
});
