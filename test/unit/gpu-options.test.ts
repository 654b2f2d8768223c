/**
 * The GPU code paths that can run without a GPU: device parsing and provider lists, the CUDA availability check
 * (with faked files and nvidia-smi output), the errors a CUDA request gets on a machine without the provider,
 * moving components, host-traffic counting, and the memory report's GPU fields from a faked nvidia-smi.
 * The CUDA runs themselves are in test/gpu/cuda.test.ts.
 */
import * as assert from "assert";
import * as path from "path";
import { cudaStatus, DeviceArgumentError, deviceOfProviders, executionProvidersFor, GpuUnavailableError, parseDevice, CUDA_PROVIDER_FILES } from "../../src/onnx/device";
import { sessionProviders } from "../../src/onnx/session";
import { GpuPeakSampler, parseGpuMemory, type GpuProcessMemory } from "../../src/memory/probes";
import { MemoryReport } from "../../src/memory/report";
import { assertValidPayload, MEMORY_MIME } from "../../src/display/schemas";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { ComponentStateError } from "../../src/pipeline/components";
import { fixturesDir } from "../helpers/paths";
import { writeTransformerPipeline } from "../helpers/synthetic-checkpoint";
import * as fs from "fs";
import * as os from "os";
import { createCanvas, loadImage } from "canvas";

const TINY = path.join(fixturesDir, "tiny-square", "pipeline");
const CUDA_HERE = cudaStatus().available;

describe("gpu options (CPU-checkable parts)", function () {
  this.timeout(120_000);

  describe("devices", () => {
    it("parses cpu, cuda and cuda:N, and names the argument on anything else", () => {
      assert.deepStrictEqual(parseDevice(undefined), { kind: "cpu", id: 0 });
      assert.deepStrictEqual(parseDevice("cpu"), { kind: "cpu", id: 0 });
      assert.deepStrictEqual(parseDevice("cuda"), { kind: "cuda", id: 0 });
      assert.deepStrictEqual(parseDevice("cuda:3"), { kind: "cuda", id: 3 });
      for (const bad of ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", 0, null]) {
        assert.throws(() => parseDevice(bad, "transformer.device"), (e: Error) =>
          e instanceof DeviceArgumentError && e.message.startsWith("transformer.device:") && e.message.includes(JSON.stringify(bad)));
      }
    });

    it("maps a device to execution providers with the CPU behind CUDA, and back", () => {
      assert.deepStrictEqual(executionProvidersFor(parseDevice("cpu")), ["cpu"]);
      assert.deepStrictEqual(executionProvidersFor(parseDevice("cuda:1")), [{ name: "cuda", deviceId: 1 }, "cpu"]);
      assert.deepStrictEqual(deviceOfProviders([{ name: "cuda", deviceId: 2 }, "cpu"]), { kind: "cuda", id: 2 });
      assert.deepStrictEqual(deviceOfProviders(["cuda"]), { kind: "cuda", id: 0 });
      assert.deepStrictEqual(deviceOfProviders(undefined), { kind: "cpu", id: 0 });
      // `device` wins over `executionProviders`; neither means the CPU, as before.
      assert.deepStrictEqual(sessionProviders({ device: "cuda", executionProviders: ["cpu"] }), [{ name: "cuda", deviceId: 0 }, "cpu"]);
      assert.deepStrictEqual(sessionProviders({ executionProviders: ["cuda"] }), ["cuda"]);
      assert.deepStrictEqual(sessionProviders({}), ["cpu"]);
    });
  });

  describe("cudaStatus", () => {
    const all = () => true;
    it("says to run gpu:install when the provider files are missing", () => {
      const s = cudaStatus({ nativeDir: "/x", exists: (f) => !f.endsWith("libonnxruntime_providers_cuda.so"), queryGpus: () => "580.1, H200" });
      assert.strictEqual(s.available, false);
      assert.match(s.reason!, /libonnxruntime_providers_cuda\.so missing in \/x.*npm run gpu:install/);
    });
    it("names a missing driver", () => {
      const s = cudaStatus({ nativeDir: "/x", exists: all, queryGpus: () => null });
      assert.strictEqual(s.available, false);
      assert.match(s.reason!, /no NVIDIA driver/);
    });
    it("names a driver older than CUDA 13 needs", () => {
      const s = cudaStatus({ nativeDir: "/x", exists: all, queryGpus: () => "535.104.05, NVIDIA A100-SXM4-80GB\n" });
      assert.strictEqual(s.available, false);
      assert.strictEqual(s.driver, "535.104.05");
      assert.match(s.reason!, /driver 535\.104\.05 is too old.*≥ 580/);
    });
    it("accepts a driver ≥ 580 with the files in place, listing the GPUs", () => {
      const s = cudaStatus({ nativeDir: "/x", exists: all, queryGpus: () => "580.159.03, NVIDIA H200\n580.159.03, NVIDIA H200\n" });
      assert.deepStrictEqual(s, { available: true, driver: "580.159.03", gpus: ["NVIDIA H200", "NVIDIA H200"] });
    });
    it("looks in onnxruntime-node's native folder for the two provider files", () => {
      const seen: string[] = [];
      cudaStatus({ exists: (f) => (seen.push(f), false) });
      assert.deepStrictEqual(seen.map((f) => path.basename(f)), [...CUDA_PROVIDER_FILES]);
      assert.ok(seen.every((f) => f.includes(path.join("onnxruntime-node", "bin", "napi-v6"))), seen.join(", "));
    });
  });

  describe("asking for CUDA on this machine", function () {
    before(function () {
      if (CUDA_HERE) this.skip(); // on a GPU machine these requests succeed: test/gpu covers them
    });

    it("fromPretrained({ device: 'cuda' }) fails with GpuUnavailableError naming the fix", async () => {
      await assert.rejects(PixArtSigmaPipeline.fromPretrained(TINY, { device: "cuda", textEncoder: null, vae: null }),
        (e: Error) => e instanceof GpuUnavailableError && /device "cuda": /.test(e.message) && /gpu:install|driver/.test(e.message));
    });

    it("pipe.to('cuda', 'transformer') fails and leaves the transformer working on the CPU", async () => {
      const pipe = await PixArtSigmaPipeline.fromPretrained(TINY, { textEncoder: null, vae: null });
      try {
        await assert.rejects(pipe.to("cuda", "transformer"), GpuUnavailableError);
        assert.strictEqual(pipe.transformer!.device, "cpu");
        const r = await pipe.call(tinyCall());
        assert.ok(r.latents && r.latents.data.every(Number.isFinite));
        await assert.rejects(pipe.to("cuda:x" as "cuda", "transformer"), DeviceArgumentError);
        await assert.rejects(pipe.to("cuda", "unet" as "vae"), ComponentStateError);
      } finally {
        await pipe.dispose();
      }
    });
  });

  it("model.to('cpu') on a CPU model keeps its session; to() counts and moves nothing else", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained(TINY, { textEncoder: null, vae: null });
    try {
      const t = pipe.transformer!;
      assert.strictEqual(await t.to("cpu"), t);
      await pipe.to("cpu");
      assert.strictEqual(pipe.transformer, t);
      assert.ok(!pipe.timeline.events.some((e) => e.label.startsWith("move")), "a no-op move is not on the timeline");
    } finally {
      await pipe.dispose();
    }
  });

  it("counts the host bytes each transformer step hands to and takes from onnxruntime", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained(TINY, { textEncoder: null, vae: null });
    try {
      const t = pipe.transformer!;
      const steps = 3;
      await pipe.call({ ...tinyCall(), numInferenceSteps: steps });
      const { runs, bytesIn, bytesOut } = t.hostTraffic;
      // The text graph runs once per prompt (caption projection and every block's cross-attention keys/values),
      // then the step graph once per step.
      assert.strictEqual(runs, steps + 1);
      // Text graph: embeddings [2,L,caption] in, keys and values [2,L,inner] per block out. Each step (CFG, batch 2):
      // latents [2,C,h,w], those keys and values, mask, timestep, positions in; the prediction [2,outC,h,w] out.
      // The keys and values dominate and cross on every step: what IO binding would save.
      const c = t.config;
      const h = 32 / 8;
      const embeds = 2 * 4 * c.captionChannels! * 4;
      const keysValues = c.numLayers * 2 * 2 * 4 * c.innerDim * 4;
      const latentsIn = 2 * c.inChannels * h * h * 4;
      const out = 2 * c.outChannels * h * h * 4;
      assert.strictEqual(bytesOut, steps * out + keysValues);
      const least = embeds + steps * (keysValues + latentsIn);
      assert.ok(bytesIn >= least, `in: ${bytesIn} < ${least}`);
      assert.ok(bytesIn < least * 1.5 + 65536, `in: ${bytesIn} (only the graphs' feeds are counted)`);
    } finally {
      await pipe.dispose();
    }
  });

  it("fp16 weights (what the GPU keeps 16-bit): an F16 checkpoint maps half the bytes and predicts like its F32 twin", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-f16-"));
    const shape = { layers: 2, heads: 2, headDim: 16, captionChannels: CAPTION, sampleSize: 8 };
    const pipes: PixArtSigmaPipeline[] = [];
    try {
      const bytes32 = await writeTransformerPipeline(path.join(dir, "f32"), shape);
      const bytes16 = await writeTransformerPipeline(path.join(dir, "f16"), { ...shape, dtype: "F16" });
      assert.strictEqual(bytes16 * 2, bytes32);
      for (const d of ["f32", "f16"]) pipes.push(await PixArtSigmaPipeline.fromPretrained(path.join(dir, d), { progress: false }));
      const [t32, t16] = pipes.map((p) => p.transformer!);
      assert.deepStrictEqual(t16.weightBytes, { F16: bytes16 });
      assert.ok(t16.built.hasCastWeights, "16-bit weights are cast per layer at run time, not folded into fp32 copies");
      const input = {
        hiddenStates: { data: new Float32Array(2 * 4 * 4 * 4).map((_, i) => Math.sin(i)), dims: [2, 4, 4, 4] },
        encoderHiddenStates: { data: new Float32Array(2 * 3 * CAPTION).map((_, i) => Math.cos(i) * 0.3), dims: [2, 3, CAPTION] },
        encoderAttentionMask: { data: new BigInt64Array(6).fill(1n), dims: [2, 3] },
        timestep: [500, 500],
      };
      const [a, b] = [await t32.forward(input), await t16.forward(input)];
      // fp16 rounds each weight by ≤ 2^-11 relative; through 2 blocks that stays well under 1e-2 of the output's scale.
      const scale = Math.max(...Array.from(a.data, Math.abs));
      const worst = Math.max(...Array.from(a.data, (v, i) => Math.abs(v - b.data[i])));
      assert.ok(worst > 0 && worst < 1e-2 * scale, `max diff ${worst} vs scale ${scale}`);
    } finally {
      for (const p of pipes) await p.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("GPU memory from nvidia-smi output", () => {
    const MiB = 1024 * 1024;
    it("sums this process's rows and ignores other processes", () => {
      const out = "4242, GPU-aaa, 1536\n77, GPU-aaa, 9000\n4242, GPU-bbb, 512\n";
      assert.deepStrictEqual(parseGpuMemory(out, 4242), {
        usedBytes: 2048 * MiB, gpus: [{ uuid: "GPU-aaa", usedBytes: 1536 * MiB }, { uuid: "GPU-bbb", usedBytes: 512 * MiB }], scope: "process",
      });
    });
    it("falls back to whole-GPU figures when no row is this process's (another PID namespace)", () => {
      const m = parseGpuMemory("77, GPU-aaa, 9000\n", 4242, "GPU-aaa, 9500\nGPU-bbb, 3\n");
      assert.deepStrictEqual(m, { usedBytes: 9503 * MiB, gpus: [{ uuid: "GPU-aaa", usedBytes: 9500 * MiB }, { uuid: "GPU-bbb", usedBytes: 3 * MiB }], scope: "device" });
    });
    it("reads '[N/A]' as 0 and an empty listing as nothing used", () => {
      assert.strictEqual(parseGpuMemory("4242, GPU-aaa, [N/A]\n", 4242).usedBytes, 0);
      assert.deepStrictEqual(parseGpuMemory("", 4242), { usedBytes: 0, gpus: [], scope: "process" });
    });
    it("GpuPeakSampler keeps the highest sample, and reports nothing without a driver", async () => {
      const readings = [100, 700, 300, 250];
      let i = 0;
      const probe = async (): Promise<GpuProcessMemory> => ({ usedBytes: readings[Math.min(i++, readings.length - 1)], gpus: [] });
      const s = new GpuPeakSampler(probe, 5).start();
      // Wait for the probe calls themselves, not a fixed time: a loaded machine can miss a 60 ms window.
      while (i < readings.length) await new Promise((r) => setTimeout(r, 5));
      const r = await s.stop();
      assert.strictEqual(r!.peak, 700);
      assert.ok(r!.samples >= 4);
      assert.strictEqual(await new GpuPeakSampler(async () => null, 5).start().stop(), undefined);
    });
  });

  describe("the memory report with a faked GPU", () => {
    /** A pipeline whose transformer claims to be on a GPU, with GPU readings from a script instead of nvidia-smi. */
    async function fakeGpuPipeline(): Promise<{ pipe: PixArtSigmaPipeline; gpu: { used: number } }> {
      const pipe = await PixArtSigmaPipeline.fromPretrained(TINY, { textEncoder: null, vae: null, transformer: null });
      const gpu = { used: 600 * 2 ** 20 }; // CUDA context
      pipe.gpuProbe = {
        now: () => ({ usedBytes: gpu.used, gpus: [{ uuid: "GPU-fake", usedBytes: gpu.used }], scope: "process" }),
        sampler: () => new GpuPeakSampler(async () => ({ usedBytes: (gpu.used += 50 * 2 ** 20), gpus: [] }), 5),
      };
      await pipe.load("transformer");
      return { pipe, gpu };
    }

    it("records per-component GPU memory, the peak during a run, and the drop after delete + flush", async () => {
      const { pipe, gpu } = await fakeGpuPipeline();
      try {
        const t = pipe.transformer!;
        // Stand in for `await pipe.to("cuda", "transformer")`: the model reports "cuda" and loading it took 1 GiB.
        Object.defineProperty(t, "device", { value: "cuda" });
        const before = gpu.used;
        gpu.used += 1024 * 2 ** 20;
        (pipe as unknown as { loaded(n: string, b?: number, l?: string): void }).loaded("transformer", before, "move transformer to cuda");
        await pipe.call(tinyCall());
        gpu.used = 600 * 2 ** 20; // what the driver shows once the session is released
        delete pipe.transformer;
        const report = await pipe.flush();

        const load = report.timeline.find((e) => e.label === "move transformer to cuda")!;
        assert.strictEqual(load.gpuUsed, before + 1024 * 2 ** 20);
        const run = report.timeline.find((e) => e.kind === "run" && e.component === "transformer")!;
        assert.ok(run.gpuPeakDuring! > load.gpuUsed!, "the sampled peak during the run is above the level at load");
        const flush = report.timeline[report.timeline.length - 1];
        assert.strictEqual(flush.kind, "flush");
        assert.strictEqual(flush.gpuUsed, 600 * 2 ** 20);
        assert.strictEqual(report.gpu!.usedBytes, 600 * 2 ** 20);
        assertValidPayload(MEMORY_MIME, JSON.parse(JSON.stringify(report)));
        assert.match(report.toString(), /GPU: 600\.0 MiB held by this process/);
        assert.match(report.toString(), /GPU peak during/);
        // The PNG of the notebook bundle draws the GPU line (#f58518) once there are GPU readings.
        const png = report.toPng();
        if (process.env.PIXART_SAVE_CHART) fs.writeFileSync(process.env.PIXART_SAVE_CHART, png);
        const img = await loadImage(png);
        const ctx = createCanvas(img.width, img.height).getContext("2d");
        ctx.drawImage(img, 0, 0);
        const px = ctx.getImageData(0, 0, img.width, img.height).data;
        let orange = 0;
        for (let i = 0; i < px.length; i += 4) if (px[i] === 0xf5 && px[i + 1] === 0x85 && px[i + 2] === 0x18) orange++;
        assert.ok(orange > 50, `${orange} pixels of the GPU colour in the chart`);
      } finally {
        await pipe.dispose();
      }
    });

    it("gives the component's GPU bytes at load and its GPU activation peak while loaded", async () => {
      const { pipe, gpu } = await fakeGpuPipeline();
      try {
        Object.defineProperty(pipe.transformer!, "device", { value: "cuda" });
        const before = gpu.used;
        gpu.used += 1024 * 2 ** 20;
        (pipe as unknown as { loaded(n: string, b?: number): void }).loaded("transformer", before);
        const atRun = gpu.used;
        await pipe.call(tinyCall());
        const report = pipe.memoryReport();
        const c = report.components.find((x) => x.name === "transformer")!;
        assert.strictEqual(c.device, "cuda");
        assert.strictEqual(c.gpuBytes, 1024 * 2 ** 20);
        assert.ok(c.gpuActivationPeak! >= 50 * 2 ** 20 && c.gpuActivationPeak! <= gpu.used - atRun, `${c.gpuActivationPeak}`);
        assertValidPayload(MEMORY_MIME, JSON.parse(JSON.stringify(report)));
        assert.match(report.toString(), /transformer\s+yes .* cuda\s+1\.0 GiB/);
      } finally {
        await pipe.dispose();
      }
    });

    it("a CPU-only pipeline's report has no GPU columns and no GPU reading (as before)", async () => {
      const pipe = await PixArtSigmaPipeline.fromPretrained(TINY, { textEncoder: null, vae: null });
      try {
        let probed = 0;
        pipe.gpuProbe = { now: () => (probed++, null), sampler: () => new GpuPeakSampler(async () => (probed++, null)) };
        await pipe.call(tinyCall());
        const report = pipe.memoryReport();
        assert.strictEqual(probed, 0, "nvidia-smi is not run for CPU pipelines");
        assert.strictEqual(report.gpu, null);
        assert.ok(!/GPU/.test(report.toString()), report.toString());
        assert.ok(report.timeline.every((e) => e.gpuUsed === undefined && e.gpuPeakDuring === undefined));
      } finally {
        await pipe.dispose();
      }
    });

    it("MemoryReport prints a whole-GPU reading as such", () => {
      const r = new MemoryReport([], [], { gpuMemory: { usedBytes: 3 * 2 ** 30, gpus: [], scope: "device" } });
      assert.match(r.toString(), /GPU: 3\.0 GiB used on the GPU \(nvidia-smi shows no row for this process; other processes included\)/);
    });
  });
});

/** caption_channels of the tiny-square transformer. */
const CAPTION = 32;

function tinyCall() {
  const len = 4;
  return {
    promptEmbeds: { data: new Float32Array(len * CAPTION).map((_, i) => Math.sin(i) * 0.1), dims: [1, len, CAPTION] },
    promptAttentionMask: { data: new BigInt64Array(len).fill(1n), dims: [1, len] },
    negativePromptEmbeds: { data: new Float32Array(len * CAPTION).map((_, i) => Math.cos(i) * 0.1), dims: [1, len, CAPTION] },
    negativePromptAttentionMask: { data: new BigInt64Array(len).fill(1n), dims: [1, len] },
    guidanceScale: 4.5, numInferenceSteps: 1, outputType: "latent" as const, useResolutionBinning: false, height: 32, width: 32, seed: 0,
  };
}
