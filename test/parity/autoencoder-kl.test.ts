/**
 * AutoencoderKL decoder vs diffusers: `vae.decode(z).sample` for every committed tiny config
 * (test/fixtures/<name>/reference.safetensors, written by tools/reference/make_fixtures.py).
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { MissingTensorError, TensorShapeError } from "../../src/io/errors";
import { openWeights } from "../../src/io/checkpoint";
import { openSafetensors, readTensorData } from "../../src/io/safetensors";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-writer";
import { readJsonObject } from "../../src/io/json";
import { AutoencoderKL, LatentShapeError, TilingOptionError, buildAutoencoderKLGraph, parseAutoencoderKLConfig } from "../../src/models/autoencoder-kl";
import type { Tensor } from "../../src/models/model";
import { fixturesDir } from "../helpers/paths";
import { describeDifference, loadReference, maxAbsDifference, tinyConfigs } from "../helpers/reference";

/** fp32 against fp32: only summation order differs. */
const TOLERANCE = 1e-4;
const ATTENTION = "decoder.mid_block.attentions.0";

interface VaeFixture {
  name: string;
  vaeDir: string;
  z: Tensor;
  sample: Tensor;
}

async function loadFixture(c: { name: string; dir: string; pipeline: string }): Promise<VaeFixture> {
  const ref = await loadReference(c.dir);
  const read = async (key: string): Promise<Tensor> => {
    const t = await ref(key);
    assert.ok(t.data instanceof Float32Array, `${c.name}: reference "${key}" should be float32`);
    return { data: t.data, dims: t.dims };
  };
  return { name: c.name, vaeDir: path.join(c.pipeline, "vae"), z: await read("vae.z"), sample: await read("vae.sample") };
}

function assertClose(actual: Tensor, expected: Tensor, what: string): void {
  assert.deepStrictEqual([...actual.dims], [...expected.dims], `${what}: dims`);
  const d = maxAbsDifference(actual.data, expected.data);
  assert.ok(d.maxAbs <= TOLERANCE, `${what}: ${describeDifference(d, expected.dims)}, tolerance ${TOLERANCE}`);
}

/** Copies a vae folder, renaming/reshaping its tensors with `edit` (return null to drop one). */
async function rewriteVae(src: string, dst: string, edit: (name: string, shape: readonly number[]) => { name: string; shape: readonly number[] } | null): Promise<void> {
  fs.mkdirSync(dst, { recursive: true });
  fs.copyFileSync(path.join(src, "config.json"), path.join(dst, "config.json"));
  const st = await openSafetensors(path.join(src, "diffusion_pytorch_model.safetensors"));
  const tensors: TensorToWrite[] = [];
  for (const info of st.tensors.values()) {
    const e = edit(info.name, info.shape);
    if (e) tensors.push({ name: e.name, shape: e.shape, dtype: info.dtype, data: () => readTensorData(info) });
  }
  await writeSafetensors(path.join(dst, "diffusion_pytorch_model.safetensors"), tensors);
}

describe("AutoencoderKL decoder parity with diffusers", function () {
  const configs = tinyConfigs();

  it("finds committed tiny configs", () => {
    assert.ok(configs.length > 0, `no tiny configs (<name>/pipeline and <name>/reference.safetensors) under ${fixturesDir}`);
  });

  for (const c of configs) {
    it(`${c.name}: decodeRaw(vae.z) matches vae.sample within ${TOLERANCE}`, async () => {
      const fx = await loadFixture(c);
      const vae = await AutoencoderKL.fromPretrained(fx.vaeDir);
      try {
        assertClose(await vae.decodeRaw(fx.z), fx.sample, c.name);
      } finally {
        await vae.release();
      }
    });
  }

  describe("tiled decoding (diffusers' enable_tiling) vs diffusers' tiled_decode", () => {
    const tiledConfigs = configs.filter((c) => fs.existsSync(path.join(c.dir, "vae-tiling.safetensors")));

    it("some tiny config has a tiled-decode reference", () => {
      assert.ok(tiledConfigs.length > 0, "no <config>/vae-tiling.safetensors under the fixtures");
    });

    for (const c of tiledConfigs) {
      it(`${c.name}: tiles, blends and crops like diffusers within ${TOLERANCE}`, async () => {
        const file = path.join(c.dir, "vae-tiling.safetensors");
        const tiling = JSON.parse((await openSafetensors(file)).metadata?.["tiling"] ?? "null");
        const ref = await loadReference(c.dir, "vae-tiling.safetensors");
        const z = await ref("vae.tiled.z");
        const sample = await ref("vae.tiled.sample");
        const vae = await AutoencoderKL.fromPretrained(path.join(c.pipeline, "vae"));
        try {
          vae.enableTiling({ tileSampleMinSize: tiling.tile_sample_min_size, tileOverlapFactor: tiling.tile_overlap_factor });
          assert.strictEqual(vae.tileLatentMinSize, tiling.tile_latent_min_size);
          const zt = { data: z.data as Float32Array, dims: z.dims };
          // The fixture must really tile: more than one tile along each axis.
          assert.ok(zt.dims[2] > vae.tileLatentMinSize && zt.dims[3] > vae.tileLatentMinSize, `z ${zt.dims} fits in one tile`);
          const tiled = await vae.decodeRaw(zt);
          assertClose(tiled, { data: sample.data as Float32Array, dims: sample.dims }, `${c.name} tiled`);
          // ...and the seams make it differ from a plain decode, which `tiled: false` still gives.
          const plain = await vae.decodeRaw(zt, { tiled: false });
          assert.ok(maxAbsDifference(plain.data, tiled.data).maxAbs > 1e-3, "tiled and plain decodes should differ near the seams");
          // A batch is tiled like its images one by one (sliced or not).
          const two = { data: new Float32Array([...zt.data, ...zt.data.map((v) => -v)]), dims: [2, ...zt.dims.slice(1)] };
          const batched = await vae.decodeRaw(two);
          const sliced = await vae.decodeRaw(two, { sliced: true });
          const neg = await vae.decodeRaw({ data: zt.data.map((v) => -v), dims: zt.dims });
          const half = batched.data.length / 2;
          assertClose({ data: batched.data.subarray(0, half), dims: tiled.dims }, tiled, "batch row 0");
          assertClose({ data: batched.data.subarray(half), dims: tiled.dims }, neg, "batch row 1");
          assertClose(sliced, batched, "sliced batch");
          vae.disableTiling();
          assertClose(await vae.decodeRaw(zt), plain, "after disableTiling");
        } finally {
          await vae.release();
        }
      });
    }

    it("rejects tile options outside their range, naming the option", async () => {
      const c = configs[0];
      const vae = await AutoencoderKL.fromPretrained(path.join(c.pipeline, "vae"));
      try {
        assert.throws(() => vae.enableTiling({ tileSampleMinSize: 4 }), (e: Error) => e instanceof TilingOptionError && /tileSampleMinSize/.test(e.message));
        assert.throws(() => vae.enableTiling({ tileSampleMinSize: 32.5 }), (e: Error) => e instanceof TilingOptionError && /tileSampleMinSize/.test(e.message));
        assert.throws(() => vae.enableTiling({ tileOverlapFactor: 1 }), (e: Error) => e instanceof TilingOptionError && /tileOverlapFactor/.test(e.message));
        assert.throws(() => vae.enableTiling({ tileSampleMinSize: 8, tileOverlapFactor: 0.5 }), (e: Error) => e instanceof TilingOptionError && /stride/.test(e.message));
        assert.strictEqual(vae.useTiling, false);
        vae.enableTiling();
        assert.strictEqual(vae.tileSampleMinSize, vae.config.sampleSize);
        assert.strictEqual(vae.tileLatentMinSize, vae.config.sampleSize / vae.scaleFactor);
      } finally {
        await vae.release();
      }
    });
  });

  describe("on the first tiny config", () => {
    let fx: VaeFixture;
    let vae: AutoencoderKL;
    let tmp: string;
    before(async function () {
      if (configs.length === 0) this.skip();
      fx = await loadFixture(configs[0]);
      vae = await AutoencoderKL.fromPretrained(fx.vaeDir);
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-vae-"));
    });
    after(async () => {
      await vae?.release();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("decode(latents) divides by scaling_factor first", async () => {
      const sf = Math.fround(vae.scalingFactor);
      const latents = { data: fx.z.data.map((v) => v * sf), dims: fx.z.dims };
      assertClose(await vae.decode(latents), fx.sample, "decode(z · scaling_factor)");
    });

    it("sliced decoding (one image at a time) gives the batched result", async () => {
      const [b, ...rest] = fx.z.dims;
      const per = rest.reduce((a, d) => a * d, 1);
      const batch2 = new Float32Array(2 * per * b);
      batch2.set(fx.z.data, 0);
      batch2.set(fx.z.data, per * b);
      const out = await vae.decodeRaw({ data: batch2, dims: [2 * b, ...rest] }, { sliced: true });
      const half = out.data.length / 2;
      assertClose({ data: out.data.subarray(0, half), dims: fx.sample.dims }, fx.sample, "sliced, first half");
      assertClose({ data: out.data.subarray(half), dims: fx.sample.dims }, fx.sample, "sliced, second half");
    });

    it("loads legacy attention names (query/key/value/proj_attn) with 1×1-conv-shaped weights", async () => {
      const legacy = { to_q: "query", to_k: "key", to_v: "value", "to_out.0": "proj_attn" };
      const dir = path.join(tmp, "legacy-vae");
      let renamed = 0;
      await rewriteVae(fx.vaeDir, dir, (name, shape) => {
        for (const [cur, old] of Object.entries(legacy)) {
          const prefix = `${ATTENTION}.${cur}.`;
          if (!name.startsWith(prefix)) continue;
          renamed++;
          const param = name.slice(prefix.length);
          return { name: `${ATTENTION}.${old}.${param}`, shape: param === "weight" ? [...shape, 1, 1] : shape };
        }
        return { name, shape };
      });
      assert.strictEqual(renamed, 8, "the fixture's mid-block attention should have 4 projections with weight and bias");
      const old = await AutoencoderKL.fromPretrained(dir);
      try {
        assertClose(await old.decodeRaw(fx.z), fx.sample, "legacy names");
      } finally {
        await old.release();
      }
    });

    it("never references encoder weights", async () => {
      const dir = path.join(tmp, "decoder-only");
      await rewriteVae(fx.vaeDir, dir, (name, shape) => (name.startsWith("encoder.") || name.startsWith("quant_conv.") ? null : { name, shape }));
      const dec = await AutoencoderKL.fromPretrained(dir);
      await dec.release();
    });

    it("rejects latents with the wrong channel count", async () => {
      const [b, c, h, w] = fx.z.dims;
      const bad = { data: new Float32Array(b * (c + 1) * h * w), dims: [b, c + 1, h, w] };
      await assert.rejects(vae.decodeRaw(bad), (e: Error) => e instanceof LatentShapeError && /"z".*\[batch, 4, height, width\]/.test(e.message));
    });

    it("rejects latents whose data length does not match the dims", async () => {
      const bad = { data: fx.z.data.subarray(1), dims: fx.z.dims };
      await assert.rejects(vae.decode(bad), (e: Error) => e instanceof LatentShapeError && /"latents" has/.test(e.message));
    });

    it("fails at build time, naming the tensor, when a decoder weight is missing", async () => {
      const dir = path.join(tmp, "missing");
      await rewriteVae(fx.vaeDir, dir, (name, shape) => (name === "decoder.conv_out.bias" ? null : { name, shape }));
      await assert.rejects(AutoencoderKL.fromPretrained(dir), (e: Error) => e instanceof MissingTensorError && e.message.includes("decoder.conv_out.bias"));
    });

    it("fails at build time, naming the tensor, when the config does not match the weights", async () => {
      const file = path.join(fx.vaeDir, "config.json");
      const raw = await readJsonObject(file);
      const config = parseAutoencoderKLConfig({ ...raw, latent_channels: 8 }, file);
      const weights = await openWeights(fx.vaeDir);
      assert.throws(() => buildAutoencoderKLGraph(config, weights),
        (e: Error) => e instanceof TensorShapeError && e.message.includes("post_quant_conv.weight"));
    });
  });
});
