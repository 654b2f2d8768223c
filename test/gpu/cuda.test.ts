/**
 * CUDA execution (onnxruntime's CUDA provider through onnxruntime-node). Runs only where `cudaStatus()` finds the
 * provider installed (`npm run gpu:install`) and an NVIDIA driver ≥ 580; elsewhere every test is skipped and the
 * suite's title says why. tools/gpu/device-check.sh runs this file on a GPU machine.
 *
 * Tolerances (GPU vs the CPU result of the same graph, which the parity tests tie to diffusers):
 * onnxruntime's CUDA provider runs fp32 MatMul/Gemm/Conv with TF32 by default (its `use_tf32` option, which
 * onnxruntime-node 1.30 cannot pass: its CUDA options take only deviceId). TF32 rounds the inputs of each product
 * to 10 mantissa bits (unit roundoff 2^-11 ≈ 4.9e-4); with fp32 accumulation, each layer's output is off by about
 * that relative to its scale, and the tiny models chain ≤ 6 such layers, which bounds the error at a few 1e-3 of
 * the output's largest magnitude. We allow 1e-2 × max|CPU output|: 2-3× headroom over that bound, while a wrong
 * kernel, layout or missing node gives O(1) differences. (cuDNN/cuBLAS also reorder sums, which is far below it.)
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { cudaStatus } from "../../src/onnx/device";
import { encodeModel } from "../../src/onnx/proto";
import { gpuProcessMemory, formatBytes } from "../../src/memory/probes";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import type { Tensor } from "../../src/models/model";
import { tinyConfigs } from "../helpers/reference";
import { writeTransformerPipeline } from "../helpers/synthetic-checkpoint";

/**
 * PIXART_GPU_DRY_RUN=1 runs the parity tests with "cpu" in place of "cuda" (and skips the GPU-only ones), to
 * check this file's own code on a machine without a GPU before spending GPU time on it.
 */
const DRY_RUN = process.env.PIXART_GPU_DRY_RUN === "1";
const status = DRY_RUN ? { available: true, driver: "none (dry run on the CPU)", gpus: [] as string[], reason: undefined } : cudaStatus();
const DEVICE = DRY_RUN ? "cpu" : "cuda";
const TF32_REL = 1e-2;

function assertGpuClose(name: string, gpu: Tensor, cpu: Tensor, rel = TF32_REL): void {
  assert.deepStrictEqual([...gpu.dims], [...cpu.dims], `${name}: shape`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < cpu.data.length; i++) {
    scale = Math.max(scale, Math.abs(cpu.data[i]));
    const d = Math.abs(gpu.data[i] - cpu.data[i]);
    if (!(d <= worst)) worst = d; // NaN-safe: a NaN difference becomes the worst
  }
  assert.ok(worst <= rel * scale, `${name}: max |cuda − cpu| = ${worst} > ${rel} × max|cpu| (${scale})`);
  console.log(`      ${name}: max |cuda − cpu| = ${worst.toExponential(2)} (${(worst / scale).toExponential(2)} of max|cpu|)`);
}

function gpuUsed(): number {
  const m = gpuProcessMemory();
  assert.ok(m, "nvidia-smi gave no reading");
  return m.usedBytes;
}

function sinTensor(dims: number[], phase: number, amp = 1): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { data: new Float32Array(n).map((_, i) => amp * Math.sin(0.37 * i + phase)), dims };
}

describe(status.available ? `CUDA execution (driver ${status.driver}, ${status.gpus?.join(", ")})` : `CUDA execution — skipped: ${status.reason}`, function () {
  this.timeout(600_000);
  before(function () {
    if (!status.available) {
      console.log(`    GPU tests skipped: ${status.reason}`);
      this.skip();
    }
  });

  for (const config of tinyConfigs()) {
    describe(`parity of each stage on CUDA vs CPU: ${config.name}`, () => {
      let cpu: PixArtSigmaPipeline;
      let gpu: PixArtSigmaPipeline;
      before(async function () {
        if (!status.available) this.skip();
        cpu = await PixArtSigmaPipeline.fromPretrained(config.pipeline, { progress: false });
        gpu = await PixArtSigmaPipeline.fromPretrained(config.pipeline, { device: DEVICE, progress: false });
      });
      after(async () => {
        await cpu?.dispose();
        await gpu?.dispose();
      });

      it("loads every model on the GPU", () => {
        for (const m of [gpu.textEncoder, gpu.transformer, gpu.vae]) assert.strictEqual(m!.device, DEVICE);
      });

      it("T5 encoder", async () => {
        const ids = { data: BigInt64Array.from({ length: 2 * 12 }, (_, i) => BigInt((i * 7) % 50)), dims: [2, 12] };
        const mask = { data: BigInt64Array.from({ length: 2 * 12 }, (_, i) => (i % 12 < 9 ? 1n : 0n)), dims: [2, 12] };
        const [a, b] = await Promise.all([gpu.textEncoder!.forward({ inputIds: ids, attentionMask: mask }), cpu.textEncoder!.forward({ inputIds: ids, attentionMask: mask })]);
        assertGpuClose("text encoder last_hidden_state", a, b);
      });

      it("transformer (one forward with CFG batch 2)", async () => {
        const c = gpu.transformer!.config;
        const side = 2 * c.patchSize * 2;
        const input = {
          hiddenStates: sinTensor([2, c.inChannels, side, side], 0.1),
          encoderHiddenStates: sinTensor([2, 7, c.captionChannels ?? c.crossAttentionDim], 0.7, 0.3),
          encoderAttentionMask: { data: BigInt64Array.from({ length: 14 }, (_, i) => (i % 7 < 5 ? 1n : 0n)), dims: [2, 7] },
          timestep: [999, 999],
        };
        assertGpuClose("transformer noise prediction", await gpu.transformer!.forward(input), await cpu.transformer!.forward(input));
      });

      it("VAE decode", async () => {
        const z = sinTensor([1, gpu.vae!.config.latentChannels, 8, 8], 0.3, 2);
        assertGpuClose("vae decode", await gpu.vae!.decode(z), await cpu.vae!.decode(z));
      });

      it("a whole call (2 steps, latents), and moving the transformer back to the CPU cell by cell", async () => {
        const call = { prompt: "a red cube", numInferenceSteps: 2, seed: 0, outputType: "latent" as const, useResolutionBinning: false };
        const onGpu = (await gpu.call(call)).latents!;
        // CFG (4.5) scales the difference of two predictions: (1 + 2 × 4.5) × the per-forward bound.
        assertGpuClose("latents after 2 steps", onGpu, (await cpu.call(call)).latents!, TF32_REL * 10);
        await gpu.to("cpu", "transformer");
        assert.strictEqual(gpu.transformer!.device, "cpu");
        const back = (await gpu.call(call)).latents!;
        assert.ok(back.data.every(Number.isFinite));
        await gpu.to(DEVICE, "transformer");
        assert.strictEqual(gpu.transformer!.device, DEVICE);
      });

      it("the in-graph denoising loop (stepsPerRun 2 over 4 steps) on CUDA vs the step-by-step loop on the CPU", async () => {
        const call = { prompt: "a red cube", numInferenceSteps: 4, seed: 0, outputType: "latent" as const, useResolutionBinning: false };
        const onGpu = (await gpu.call({ ...call, stepsPerRun: 2 })).latents!;
        // As the 2-step call above (CFG amplifies each forward's TF32 error), over 4 steps of a second-order solver.
        assertGpuClose("latents after 4 steps in runs of 2", onGpu, (await cpu.call(call)).latents!, TF32_REL * 10);
      });
    });
  }

  describe("GPU memory", () => {
    let dir: string;
    before(async function () {
      if (!status.available || DRY_RUN) this.skip();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-gpu-"));
      // ≈ 530 MB of fp32 weights; the F16 copy ≈ 265 MB.
      const shape = { layers: 6, heads: 16, headDim: 72, captionChannels: 4096, sampleSize: 32 };
      await writeTransformerPipeline(path.join(dir, "f32"), shape);
      await writeTransformerPipeline(path.join(dir, "f16"), { ...shape, dtype: "F16" });
      // The CUDA context (hundreds of MiB per process) is made by the first CUDA session and stays; make it now.
      const warm = await PixArtSigmaPipeline.fromPretrained(tinyConfigs()[0].pipeline, { device: "cuda", textEncoder: null, vae: null, progress: false });
      await warm.dispose();
    });
    after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

    const run = (pipe: PixArtSigmaPipeline) => pipe.call({
      promptEmbeds: sinTensor([1, 8, 4096], 0.2, 0.1), promptAttentionMask: { data: new BigInt64Array(8).fill(1n), dims: [1, 8] },
      negativePromptEmbeds: sinTensor([1, 8, 4096], 0.9, 0.1), negativePromptAttentionMask: { data: new BigInt64Array(8).fill(1n), dims: [1, 8] },
      numInferenceSteps: 2, outputType: "latent", useResolutionBinning: false, height: 256, width: 256, seed: 0, progress: false,
    });

    it("delete + flush releases the transformer's GPU memory, and the report shows it", async () => {
      const base = gpuUsed();
      const pipe = await PixArtSigmaPipeline.fromPretrained(path.join(dir, "f32"), { device: "cuda", progress: false });
      await run(pipe);
      const loaded = gpuUsed();
      const grown = loaded - base;
      assert.ok(grown >= 400 * 2 ** 20, `GPU use grew by only ${formatBytes(grown)} for ≈ 530 MB of weights`);
      delete pipe.transformer;
      const report = await pipe.flush();
      const after = gpuUsed();
      console.log(`      GPU: base ${formatBytes(base)}, loaded + run ${formatBytes(loaded)}, after delete + flush ${formatBytes(after)}`);
      assert.ok(loaded - after >= 0.9 * grown, `only ${formatBytes(loaded - after)} of ${formatBytes(grown)} came back`);
      const flush = report.timeline[report.timeline.length - 1];
      assert.strictEqual(flush.kind, "flush");
      assert.ok(flush.gpuUsed !== undefined && flush.gpuUsed <= base + 0.1 * grown, `flush event: ${flush.gpuUsed}`);
      const load = report.timeline.find((e) => e.kind === "load" && e.component === "transformer")!;
      assert.ok(load.gpuUsed! > flush.gpuUsed!, "the timeline shows the load above the flush");
      assert.ok(report.timeline.some((e) => e.kind === "run" && (e.gpuPeakDuring ?? 0) >= load.gpuUsed!), "a run's GPU peak is on the timeline");
      console.log(report.toString().split("\n").map((l) => `      ${l}`).join("\n"));
    });

    it("fp16 weights stay 16-bit on the GPU: an F16 checkpoint takes about half the GPU memory of its F32 twin", async () => {
      const taken: Record<string, number> = {};
      for (const dtype of ["f32", "f16"]) {
        const pipe = await PixArtSigmaPipeline.fromPretrained(path.join(dir, dtype), { device: "cuda", transformer: null, progress: false });
        await pipe.load("transformer");
        taken[dtype] = pipe.memoryReport().components.find((c) => c.name === "transformer")!.gpuBytes!;
        await run(pipe);
        await pipe.dispose();
      }
      console.log(`      GPU at load: F32 ${formatBytes(taken.f32)}, F16 ${formatBytes(taken.f16)}`);
      assert.ok(taken.f16 < 0.65 * taken.f32, `F16 ${formatBytes(taken.f16)} vs F32 ${formatBytes(taken.f32)}`);
    });
  });

  describe("host traffic per denoising step", () => {
    it("onnxruntime-node 1.30's gpu-buffer outputs are WebGPU-only, as docs/gpu.md says: on CUDA they fail or come back on the CPU", async function () {
      if (!status.available || DRY_RUN) this.skip();
      // docs/gpu.md: the binding's gpu-buffer IO binding uses a "WebGPU_Buffer" memory info (strings of
      // onnxruntime_binding.node), so latents cannot stay on a CUDA device between runs. If this starts to work
      // (output on the GPU, readable with getData()), the pipeline should use it: update the docs and the pipeline.
      const bytes = encodeModel({ graphName: "g", nodes: [{ name: "n", op_type: "Relu", input: ["x"], output: ["y"], attribute: [] }], initializers: [],
        inputs: [{ name: "x", type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 4 }] } } } }],
        outputs: [{ name: "y", type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 4 }] } } } }], opsets: [{ domain: "", version: 21 }] });
      const session = await ort.InferenceSession.create(bytes, { executionProviders: [{ name: "cuda", deviceId: 0 }], preferredOutputLocation: "gpu-buffer" });
      let outcome: string;
      try {
        const { y } = await session.run({ x: new ort.Tensor("float32", Float32Array.of(-1, 2, -3, 4), [4]) });
        outcome = `location ${y.location}`;
        if (y.location === "gpu-buffer") {
          const data = await y.getData(true);
          assert.fail(`gpu-buffer output works on CUDA (data ${Array.from(data as Float32Array)}): IO binding is possible, update docs/gpu.md and use it`);
        }
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        outcome = `error: ${(e as Error).message}`;
      } finally {
        await session.release();
      }
      console.log(`      gpu-buffer on CUDA: ${outcome}`);
    });

    it("each step hands the embeddings, latents and timestep to onnxruntime and takes the prediction back (measured)", async function () {
      if (!status.available) this.skip();
      const pipe = await PixArtSigmaPipeline.fromPretrained(tinyConfigs()[0].pipeline, { device: DEVICE, progress: false });
      try {
        const steps = 4;
        await pipe.call({ prompt: "a red cube", numInferenceSteps: steps, seed: 0, outputType: "latent", useResolutionBinning: false });
        const t = pipe.transformer!.hostTraffic;
        // One run per step, plus the text graph's once per prompt (issue 15).
        assert.strictEqual(t.steps, steps);
        console.log(`      per step: ${formatBytes(t.bytesIn / steps)} host → GPU, ${formatBytes(t.bytesOut / steps)} GPU → host`);
        assert.ok(t.bytesOut > 0 && t.bytesIn > 0);
      } finally {
        await pipe.dispose();
      }
    });

    it("the in-graph denoising loop hands the text and positions over once per run: per-step traffic near zero (measured)", async function () {
      if (!status.available) this.skip();
      const pipe = await PixArtSigmaPipeline.fromPretrained(tinyConfigs()[0].pipeline, { device: DEVICE, progress: false });
      try {
        const t = pipe.transformer!;
        const call = { prompt: "a red cube", numInferenceSteps: 8, seed: 0, outputType: "latent" as const, useResolutionBinning: false };
        const seconds = async (options: object) => {
          const start = process.hrtime.bigint();
          await pipe.call({ ...call, ...options });
          return Number(process.hrtime.bigint() - start) / 1e9;
        };
        await seconds({});
        await seconds({ stepsPerRun: 8 }); // warm-up: makes the loop graph's session
        const before = { ...t.hostTraffic };
        const stepwise = await seconds({});
        const mid = { ...t.hostTraffic };
        const loop = await seconds({ stepsPerRun: 8 });
        const perStep = (a: typeof before, b: typeof before) => ({ in: (b.bytesIn - a.bytesIn) / (b.steps - a.steps), out: (b.bytesOut - a.bytesOut) / (b.steps - a.steps) });
        const s = perStep(before, mid);
        const l = perStep(mid, t.hostTraffic);
        console.log(`      step by step: ${formatBytes(s.in)} in, ${formatBytes(s.out)} out per step, ${(stepwise / 8 * 1000).toFixed(1)} ms/step`);
        console.log(`      in-graph loop, 8 steps a run: ${formatBytes(l.in)} in, ${formatBytes(l.out)} out per step, ${(loop / 8 * 1000).toFixed(1)} ms/step`);
        assert.strictEqual(t.hostTraffic.runs - mid.runs, 1);
        assert.ok(l.in < s.in / 4, "per-step traffic into onnxruntime is at least 4× lower with 8 steps a run");
      } finally {
        await pipe.dispose();
      }
    });
  });
});
