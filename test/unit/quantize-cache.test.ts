/**
 * Quantized models end to end on the tiny fixtures: the cache (hit, miss on a changed source, rebuild of a
 * truncated file), the int4 graphs against fp32 graphs on the dequantized weights, and the load errors.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { openWeights } from "../../src/io/checkpoint";
import { TensorShapeError } from "../../src/io/errors";
import { readTensorFloat32 } from "../../src/io/safetensors";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-writer";
import type { DType } from "../../src/io/types";
import { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import {
  NonFiniteWeightError, QuantizeDtypeError, QuantizeOptionError, dequantizeInt4, quantizeInt4,
} from "../../src/models/quantize";
import { QuantizeCacheError, defaultQuantizedCacheDir, type QuantizeLoadOptions } from "../../src/models/quantized-cache";
import { T5EncoderModel } from "../../src/models/t5-encoder";
import { describeDifference, loadReference, maxAbsDifference, tinyConfigs, type RefTensor } from "../helpers/reference";
import { makeTempDir, rejectsWith, removeTempDir } from "../helpers/st-writer";

const asI64 = (t: RefTensor) => ({ data: t.data as BigInt64Array, dims: t.dims });
const asF32 = (t: RefTensor) => ({ data: t.data as Float32Array, dims: t.dims });

async function encode(configDir: string, textEncoderDir: string, opts: QuantizeLoadOptions = {}): Promise<{ out: Float32Array; model: T5EncoderModel }> {
  const ref = await loadReference(configDir);
  const model = await T5EncoderModel.fromPretrained(textEncoderDir, opts);
  try {
    const out = await model.forward({ inputIds: asI64(await ref("t5.input_ids")), attentionMask: asI64(await ref("t5.attention_mask")) });
    return { out: out.data, model };
  } finally {
    await model.release();
  }
}

async function denoise(configDir: string, transformerDir: string, opts: QuantizeLoadOptions = {}): Promise<Float32Array> {
  const ref = await loadReference(configDir);
  const model = await PixArtTransformer2DModel.fromPretrained(transformerDir, opts);
  try {
    const out = await model.forward({
      hiddenStates: asF32(await ref("transformer.hidden_states")),
      encoderHiddenStates: asF32(await ref("transformer.encoder_hidden_states")),
      encoderAttentionMask: asI64(await ref("transformer.encoder_attention_mask")),
      timestep: (await ref("transformer.timestep")).data as BigInt64Array,
    });
    return out.data;
  } finally {
    await model.release();
  }
}

/**
 * Copies a model folder (config.json + weights, sharded or not) into one float32 model.safetensors, letting
 * `edit` replace any tensor.
 */
async function rewriteModel(src: string, dst: string, edit: (name: string, w: Float32Array, shape: readonly number[]) => TensorToWrite | undefined): Promise<void> {
  fs.mkdirSync(dst, { recursive: true });
  fs.copyFileSync(path.join(src, "config.json"), path.join(dst, "config.json"));
  const weights = await openWeights(src);
  const tensors: TensorToWrite[] = [];
  for (const name of weights.names()) {
    const info = weights.get(name);
    const w = await readTensorFloat32(info);
    tensors.push(edit(name, w, info.shape) ?? { name, dtype: "F32", shape: info.shape, data: w });
  }
  await writeSafetensors(path.join(dst, "model.safetensors"), tensors);
}

/** The checkpoint with every Linear weight matching `isLinear` replaced by its int4 round trip. */
function int4RoundTrip(isLinear: (name: string) => boolean) {
  return (name: string, w: Float32Array, shape: readonly number[]): TensorToWrite | undefined => {
    if (!isLinear(name) || shape.length !== 2) return undefined;
    const [out, inp] = shape;
    return { name, dtype: "F32", shape, data: dequantizeInt4(quantizeInt4(w, out, inp), out, inp) };
  };
}

const T5_LINEAR = /\.(q|k|v|o|wi|wi_0|wi_1|wo)\.weight$/;
const DIT_LINEAR = /^transformer_blocks\..*\.(to_q|to_k|to_v|to_out\.0|proj|net\.2)\.weight$/;

describe("quantized models: graphs", () => {
  const configs = tinyConfigs();
  let tmp: string;
  before(() => (tmp = makeTempDir("pixart-qmodel-")));
  after(() => removeTempDir(tmp));

  it("has tiny configs", () => assert.ok(configs.length >= 3, `found ${configs.length}`));

  // MatMulNBits at accuracy level 0 multiplies by exactly the dequantized weights, so the int4 model must match
  // the fp32 model run on an fp32 checkpoint holding those weights, up to summation order (the parity tolerance).
  for (const config of configs) {
    it(`${config.name}: int4 T5 = fp32 T5 on the dequantized weights (max-abs ≤ 1e-4)`, async () => {
      const src = path.join(config.pipeline, "text_encoder");
      const dst = path.join(tmp, config.name, "t5-dequantized");
      await rewriteModel(src, dst, int4RoundTrip((n) => T5_LINEAR.test(n)));
      const { out, model } = await encode(config.dir, src, { quantize: "int4", cacheDir: path.join(tmp, "cache") });
      const expected = (await encode(config.dir, dst)).out;
      assert.strictEqual(model.quantization?.linears, (await openWeights(src)).names().filter((n) => T5_LINEAR.test(n)).length);
      const d = maxAbsDifference(out, expected);
      assert.ok(d.maxAbs <= 1e-4, `${config.name}: ${describeDifference(d, [out.length])}`);
    });

    it(`${config.name}: int4 transformer (blocks quantized) = fp32 transformer on the dequantized weights (max-abs ≤ 1e-4)`, async () => {
      const src = path.join(config.pipeline, "transformer");
      const dst = path.join(tmp, config.name, "dit-dequantized");
      await rewriteModel(src, dst, int4RoundTrip((n) => DIT_LINEAR.test(n)));
      const out = await denoise(config.dir, src, { quantize: "int4", cacheDir: path.join(tmp, "cache") });
      const expected = await denoise(config.dir, dst);
      const d = maxAbsDifference(out, expected);
      assert.ok(d.maxAbs <= 1e-4, `${config.name}: ${describeDifference(d, [out.length])}`);
    });
  }
});

describe("quantized models: cache", () => {
  const [config] = tinyConfigs();
  let tmp: string;
  let encoderDir: string;
  beforeEach(() => {
    tmp = makeTempDir("pixart-qcache-");
    encoderDir = path.join(tmp, "text_encoder");
    fs.cpSync(path.join(config.pipeline, "text_encoder"), encoderDir, { recursive: true });
  });
  afterEach(() => removeTempDir(tmp));

  const cacheFiles = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

  for (const method of ["int8", "int4"] as const) {
    it(`${method}: the first load writes one file, the second maps it unchanged (no re-quantization)`, async () => {
      const cacheDir = path.join(tmp, "cache");
      const first = await encode(config.dir, encoderDir, { quantize: method, cacheDir });
      assert.strictEqual(first.model.quantization?.cacheHit, false);
      assert.deepStrictEqual(cacheFiles(cacheDir), [path.basename(first.model.quantization!.cacheFile)]);
      const before = fs.statSync(first.model.quantization!.cacheFile, { bigint: true });
      const second = await encode(config.dir, encoderDir, { quantize: method, cacheDir });
      assert.strictEqual(second.model.quantization?.cacheHit, true);
      assert.strictEqual(second.model.quantization?.cacheFile, first.model.quantization?.cacheFile);
      const after = fs.statSync(first.model.quantization!.cacheFile, { bigint: true });
      // A rewrite would be a new inode (temp file + rename) with a new mtime.
      assert.strictEqual(after.ino, before.ino);
      assert.strictEqual(after.mtimeNs, before.mtimeNs);
      assert.deepStrictEqual(second.out, first.out);
    });
  }

  it("a source file with a new mtime misses the cache and gets a new file", async () => {
    const cacheDir = path.join(tmp, "cache");
    const first = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    const weightsFile = (await openWeights(encoderDir)).files[0];
    const later = new Date(fs.statSync(weightsFile).mtimeMs + 10_000);
    fs.utimesSync(weightsFile, later, later);
    const second = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    assert.strictEqual(second.model.quantization?.cacheHit, false);
    assert.notStrictEqual(second.model.quantization?.cacheFile, first.model.quantization?.cacheFile);
    assert.strictEqual(cacheFiles(cacheDir).length, 2);
  });

  it("a source file of another size (same mtime) misses the cache", async () => {
    const cacheDir = path.join(tmp, "cache");
    const first = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    const weightsFile = (await openWeights(encoderDir)).files[0];
    const { atime, mtime } = fs.statSync(weightsFile);
    fs.appendFileSync(weightsFile, Buffer.alloc(8)); // bytes after the data section: still a valid file
    fs.utimesSync(weightsFile, atime, mtime);
    const second = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    assert.strictEqual(second.model.quantization?.cacheHit, false);
    assert.notStrictEqual(second.model.quantization?.cacheFile, first.model.quantization?.cacheFile);
  });

  for (const [what, damage] of [
    ["truncated in the data", (f: string) => fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2))],
    ["truncated in the header", (f: string) => fs.truncateSync(f, 12)],
    ["overwritten with zeros", (f: string) => fs.writeFileSync(f, Buffer.alloc(fs.statSync(f).size))],
  ] as const) {
    it(`a cache file ${what} is detected and rebuilt, with the same result`, async () => {
      const cacheDir = path.join(tmp, "cache");
      const first = await encode(config.dir, encoderDir, { quantize: "int4", cacheDir });
      const file = first.model.quantization!.cacheFile;
      damage(file);
      const second = await encode(config.dir, encoderDir, { quantize: "int4", cacheDir });
      assert.strictEqual(second.model.quantization?.cacheHit, false);
      assert.match(second.model.quantization?.rebuiltBecause ?? "", /invalid file/);
      assert.deepStrictEqual(second.out, first.out);
      const third = await encode(config.dir, encoderDir, { quantize: "int4", cacheDir });
      assert.strictEqual(third.model.quantization?.cacheHit, true);
    });
  }

  it("a valid safetensors file from another key/format at the cache path is rebuilt", async () => {
    const cacheDir = path.join(tmp, "cache");
    const first = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    const file = first.model.quantization!.cacheFile;
    await writeSafetensors(file, [{ name: "x", dtype: "F32", shape: [1], data: Float32Array.of(1) }], { metadata: { format: "other" } });
    const second = await encode(config.dir, encoderDir, { quantize: "int8", cacheDir });
    assert.strictEqual(second.model.quantization?.cacheHit, false);
    assert.match(second.model.quantization?.rebuiltBecause ?? "", /metadata does not match/);
    assert.deepStrictEqual(second.out, first.out);
  });

  it("the default folder is $PIXART_TS_CACHE/quantized, else $XDG_CACHE_HOME or ~/.cache under pixart-ts/quantized", () => {
    assert.strictEqual(defaultQuantizedCacheDir({ PIXART_TS_CACHE: "/data/px" }), path.join("/data/px", "quantized"));
    assert.strictEqual(defaultQuantizedCacheDir({ XDG_CACHE_HOME: "/xdg" }), path.join("/xdg", "pixart-ts", "quantized"));
    assert.match(defaultQuantizedCacheDir({}), /\.cache[\\/]pixart-ts[\\/]quantized$/);
  });
});

describe("quantized models: errors", () => {
  const [config] = tinyConfigs();
  let tmp: string;
  beforeEach(() => (tmp = makeTempDir("pixart-qerr-")));
  afterEach(() => removeTempDir(tmp));
  const src = () => path.join(config.pipeline, "text_encoder");
  const Q_WEIGHT = "encoder.block.0.layer.0.SelfAttention.q.weight";

  it("an unknown quantize value → QuantizeOptionError naming the option and the allowed values", async () => {
    const e = await rejectsWith(T5EncoderModel.fromPretrained(src(), { quantize: "fp8" as never, cacheDir: tmp }), QuantizeOptionError,
      ["quantize", '"int8", "int4"', '"fp8"']);
    assert.strictEqual((e as QuantizeOptionError).option, "quantize");
  });

  it("an unknown int4 accuracy level → QuantizeOptionError", async () => {
    await rejectsWith(PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"),
      { quantize: "int4", int4AccuracyLevel: 1 as never, cacheDir: tmp }), QuantizeOptionError, ["int4AccuracyLevel", "0, 4"]);
  });

  for (const dtype of ["I8", "F64", "I64"] as DType[]) {
    it(`a Linear weight stored as ${dtype} → QuantizeDtypeError naming the file and the tensor`, async () => {
      const dir = path.join(tmp, "text_encoder");
      await rewriteModel(src(), dir, (name, w, shape) => {
        if (name !== Q_WEIGHT) return undefined;
        const data = dtype === "I8" ? Int8Array.from(w, (v) => Math.round(v * 100)) : dtype === "F64" ? Float64Array.from(w) : BigInt64Array.from(w, () => 1n);
        return { name, dtype, shape, data };
      });
      await rejectsWith(T5EncoderModel.fromPretrained(dir, { quantize: "int8", cacheDir: path.join(tmp, "cache") }), QuantizeDtypeError,
        [path.join(fs.realpathSync(dir), "model.safetensors"), Q_WEIGHT, dtype, "F32, F16, BF16"]);
      assert.deepStrictEqual(fs.existsSync(path.join(tmp, "cache")) ? fs.readdirSync(path.join(tmp, "cache")) : [], []);
    });
  }

  it("a Linear weight of the wrong shape → TensorShapeError naming the tensor", async () => {
    const dir = path.join(tmp, "text_encoder");
    const wo = "encoder.block.0.layer.1.DenseReluDense.wo.weight"; // [d_model, d_ff], not square in any tiny config
    await rewriteModel(src(), dir, (name, w, shape) => (name === wo ? { name, dtype: "F32", shape: [shape[1], shape[0]], data: w } : undefined));
    await rejectsWith(T5EncoderModel.fromPretrained(dir, { quantize: "int4", cacheDir: tmp }), TensorShapeError, [wo]);
  });

  it("a NaN in a Linear weight → NonFiniteWeightError naming the file, tensor and row; no file is left behind", async () => {
    const dir = path.join(tmp, "text_encoder");
    await rewriteModel(src(), dir, (name, w, shape) => {
      if (name !== Q_WEIGHT) return undefined;
      const data = Float32Array.from(w);
      data[shape[1] * 3 + 1] = NaN;
      return { name, dtype: "F32", shape, data };
    });
    const cacheDir = path.join(tmp, "cache");
    const e = await rejectsWith(T5EncoderModel.fromPretrained(dir, { quantize: "int4", cacheDir }), NonFiniteWeightError, [Q_WEIGHT, "row 3"]);
    assert.ok(e.message.startsWith(fs.realpathSync(dir)), e.message);
    assert.deepStrictEqual(fs.readdirSync(cacheDir), []);
  });

  it("a cache folder that cannot be created → QuantizeCacheError naming it", async () => {
    const blocker = path.join(tmp, "a-file");
    fs.writeFileSync(blocker, "");
    await rejectsWith(T5EncoderModel.fromPretrained(src(), { quantize: "int8", cacheDir: path.join(blocker, "cache") }), QuantizeCacheError,
      [path.join(blocker, "cache"), "cacheDir"]);
  });
});
