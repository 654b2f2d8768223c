import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import {
  openComponent, openPipelineFolder, openWeights, requireTensors, withAliases,
} from "../../src/io/checkpoint";
import {
  ConfigError, MissingTensorError, NotAPipelineError, PathEscapeError, PathNotFoundError, WeightsNotFoundError,
} from "../../src/io/errors";
import { readTensorData, readTensorFloat32, toTypedArray } from "../../src/io/safetensors";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { makeTempDir, rejectsWith, removeTempDir, writeFile } from "../helpers/st-writer";

const json = (v: unknown): string => JSON.stringify(v, null, 2);

/** A small diffusers pipeline folder: single-file transformer, sharded T5, scheduler, vae with an fp16 variant. */
async function buildPipeline(dir: string, transformerClass = "PixArtTransformer2DModel"): Promise<void> {
  writeFile(path.join(dir, "model_index.json"), json({
    _class_name: "PixArtSigmaPipeline",
    _diffusers_version: "0.28.0.dev0",
    scheduler: ["diffusers", "DPMSolverMultistepScheduler"],
    text_encoder: ["transformers", "T5EncoderModel"],
    tokenizer: ["transformers", "T5Tokenizer"],
    transformer: ["diffusers", transformerClass],
    vae: ["diffusers", "AutoencoderKL"],
    safety_checker: [null, null],
    requires_safety_checker: false,
  }));
  writeFile(path.join(dir, "transformer", "config.json"), json({ _class_name: transformerClass, num_layers: 1, sample_size: 128 }));
  await writeSafetensors(path.join(dir, "transformer", "diffusion_pytorch_model.safetensors"), [
    { name: "proj_out.weight", dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: "proj_out.bias", dtype: "F32", shape: [2], data: new Float32Array([-1, -2]) },
  ]);
  writeFile(path.join(dir, "text_encoder", "config.json"), json({ _class_name: "T5EncoderModel", d_model: 4 }));
  await writeSafetensors(path.join(dir, "text_encoder", "model-00001-of-00002.safetensors"), [
    { name: "shared.weight", dtype: "F32", shape: [3, 4], data: new Float32Array(12).fill(0.5) },
  ]);
  await writeSafetensors(path.join(dir, "text_encoder", "model-00002-of-00002.safetensors"), [
    { name: "encoder.final_layer_norm.weight", dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    { name: "encoder.block.0.layer.0.SelfAttention.q.weight", dtype: "F16", shape: [4, 4], data: new Uint16Array(16) },
  ]);
  writeFile(path.join(dir, "text_encoder", "model.safetensors.index.json"), json({
    metadata: { total_size: 88 },
    weight_map: {
      "encoder.block.0.layer.0.SelfAttention.q.weight": "model-00002-of-00002.safetensors",
      "encoder.final_layer_norm.weight": "model-00002-of-00002.safetensors",
      "shared.weight": "model-00001-of-00002.safetensors",
    },
  }));
  writeFile(path.join(dir, "scheduler", "scheduler_config.json"), json({ _class_name: "DPMSolverMultistepScheduler", beta_end: 0.02 }));
  writeFile(path.join(dir, "tokenizer", "tokenizer_config.json"), json({ model_max_length: 300 }));
  writeFile(path.join(dir, "vae", "config.json"), json({ _class_name: "AutoencoderKL", scaling_factor: 0.13025 }));
  await writeSafetensors(path.join(dir, "vae", "diffusion_pytorch_model.safetensors"), [
    { name: "decoder.conv_out.bias", dtype: "F32", shape: [3], data: new Float32Array(3) },
  ]);
  await writeSafetensors(path.join(dir, "vae", "diffusion_pytorch_model.fp16.safetensors"), [
    { name: "decoder.conv_out.bias", dtype: "F16", shape: [3], data: new Uint16Array(3) },
  ]);
}

describe("io/checkpoint: diffusers folder layout", () => {
  let tmp: string;
  let pipe: string;
  let n = 0;
  /** A fresh copy of the pipeline folder, to break. */
  async function freshPipeline(cls?: string): Promise<string> {
    const dir = path.join(tmp, `p${n++}`);
    await buildPipeline(dir, cls);
    return dir;
  }
  before(async () => {
    tmp = makeTempDir();
    pipe = await freshPipeline();
  });
  after(() => removeTempDir(tmp));

  describe("model_index.json", () => {
    it("lists the components with their library and class, and the pipeline class", async () => {
      const p = await openPipelineFolder(pipe);
      assert.strictEqual(p.className, "PixArtSigmaPipeline");
      assert.strictEqual(p.diffusersVersion, "0.28.0.dev0");
      assert.deepStrictEqual([...p.components.keys()], ["scheduler", "text_encoder", "tokenizer", "transformer", "vae", "safety_checker"]);
      assert.deepStrictEqual(p.components.get("text_encoder"), { name: "text_encoder", library: "transformers", className: "T5EncoderModel" });
      assert.deepStrictEqual(p.components.get("safety_checker"), { name: "safety_checker", library: null, className: null });
      assert.strictEqual(p.config["requires_safety_checker"], false);
      assert.strictEqual(p.root, fs.realpathSync(pipe));
    });

    it("exposes both transformer class names (Transformer2DModel in older uploads)", async () => {
      for (const cls of ["Transformer2DModel", "PixArtTransformer2DModel"]) {
        const dir = await freshPipeline(cls);
        assert.strictEqual((await openPipelineFolder(dir)).components.get("transformer")!.className, cls);
        assert.strictEqual((await openComponent(dir, "transformer")).className, cls);
      }
    });

    it("a folder without model_index.json is a NotAPipelineError naming it", async () => {
      const dir = path.join(tmp, "not-a-pipeline");
      fs.mkdirSync(dir);
      const e = await rejectsWith(openPipelineFolder(dir), NotAPipelineError, [dir, "model_index.json"]);
      assert.strictEqual(e.field, "model_index.json");
    });

    it("a folder that does not exist is a PathNotFoundError naming it", async () => {
      const dir = path.join(tmp, "absent");
      await rejectsWith(openPipelineFolder(dir), PathNotFoundError, [dir, "not found"]);
    });

    it("a model_index.json without _class_name is a ConfigError naming the file and field", async () => {
      const dir = await freshPipeline();
      const file = path.join(dir, "model_index.json");
      fs.writeFileSync(file, json({ transformer: ["diffusers", "PixArtTransformer2DModel"] }));
      await rejectsWith(openPipelineFolder(dir), ConfigError, [file, 'field "_class_name"', "expected a string"]);
    });

    it("a component entry that is not [library, class] is a ConfigError naming the field", async () => {
      const dir = await freshPipeline();
      const file = path.join(dir, "model_index.json");
      fs.writeFileSync(file, json({ _class_name: "PixArtSigmaPipeline", vae: ["diffusers", 3] }));
      await rejectsWith(openPipelineFolder(dir), ConfigError, [file, 'field "vae"', "[library, class]"]);
    });
  });

  describe("components", () => {
    it("reads a model's config and its single-file weights", async () => {
      const c = await openComponent(pipe, "transformer");
      assert.strictEqual(c.configFile, path.join(pipe, "transformer", "config.json"));
      assert.strictEqual(c.config["sample_size"], 128);
      const w = c.weights!;
      assert.strictEqual(w.dir, path.join(pipe, "transformer"));
      assert.deepStrictEqual(w.names().sort(), ["proj_out.bias", "proj_out.weight"]);
      assert.ok(w.has("proj_out.weight") && !w.has("proj_out"));
      const info = w.get("proj_out.weight");
      assert.deepStrictEqual(info.shape, [2, 3]);
      assert.strictEqual(info.file, fs.realpathSync(path.join(pipe, "transformer", "diffusion_pytorch_model.safetensors")));
      assert.deepStrictEqual(Array.from(await readTensorFloat32(info)), [1, 2, 3, 4, 5, 6]);
    });

    it("reads the scheduler and tokenizer configs without looking for weights", async () => {
      const s = await openComponent(pipe, "scheduler");
      assert.strictEqual(s.className, "DPMSolverMultistepScheduler");
      assert.strictEqual(s.config["beta_end"], 0.02);
      assert.strictEqual(s.weights, null);
      assert.strictEqual((await openComponent(pipe, "tokenizer")).config["model_max_length"], 300);
    });

    it("resolves a sharded index, opening each shard once", async () => {
      const w = (await openComponent(pipe, "text_encoder")).weights!;
      assert.strictEqual(w.indexFile, path.join(pipe, "text_encoder", "model.safetensors.index.json"));
      assert.deepStrictEqual(w.files.map((f) => path.basename(f)), ["model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors"]);
      assert.strictEqual(w.names().length, 3);
      const ln = w.get("encoder.final_layer_norm.weight");
      assert.strictEqual(path.basename(ln.file), "model-00002-of-00002.safetensors");
      assert.deepStrictEqual(Array.from(await readTensorFloat32(ln)), [1, 2, 3, 4]);
      assert.strictEqual(path.basename(w.get("shared.weight").file), "model-00001-of-00002.safetensors");
      assert.strictEqual(w.get("encoder.block.0.layer.0.SelfAttention.q.weight").dtype, "F16");
    });

    it("prefers the default weights and loads the fp16 variant on request", async () => {
      const plain = (await openComponent(pipe, "vae")).weights!;
      assert.strictEqual(plain.get("decoder.conv_out.bias").dtype, "F32");
      const fp16 = (await openComponent(pipe, "vae", { variant: "fp16" })).weights!;
      assert.strictEqual(fp16.get("decoder.conv_out.bias").dtype, "F16");
      assert.strictEqual(path.basename(fp16.files[0]!), "diffusion_pytorch_model.fp16.safetensors");
    });

    it("openWeights opens a standalone model folder", async () => {
      const w = await openWeights(path.join(pipe, "transformer"));
      assert.strictEqual(w.get("proj_out.bias").byteLength, 8);
    });
  });

  describe("T5 tied embeddings: withAliases", () => {
    it("answers an alias with the target tensor, keeping the stored name", async () => {
      const w = withAliases((await openComponent(pipe, "text_encoder")).weights!, { "encoder.embed_tokens.weight": "shared.weight" });
      assert.ok(w.has("encoder.embed_tokens.weight"));
      const info = w.get("encoder.embed_tokens.weight");
      assert.strictEqual(info.name, "shared.weight");
      assert.deepStrictEqual(info.shape, [3, 4]);
      assert.ok(w.names().includes("encoder.embed_tokens.weight") && w.names().includes("shared.weight"));
    });

    it("lets a stored tensor win over an alias of the same name", async () => {
      const base = (await openComponent(pipe, "transformer")).weights!;
      const w = withAliases(base, { "proj_out.bias": "proj_out.weight" });
      assert.strictEqual(w.get("proj_out.bias").name, "proj_out.bias");
      assert.strictEqual(w.names().length, 2);
    });

    it("an alias whose target is absent is a MissingTensorError naming the folder and the alias", async () => {
      const base = (await openComponent(pipe, "transformer")).weights!;
      const w = withAliases(base, { "encoder.embed_tokens.weight": "shared.weight" });
      assert.ok(!w.has("encoder.embed_tokens.weight"));
      await rejectsWith(() => w.get("encoder.embed_tokens.weight"), MissingTensorError, [base.dir, "encoder.embed_tokens.weight"]);
    });
  });

  describe("errors", () => {
    it("a missing tensor is a MissingTensorError naming the folder, file and tensor", async () => {
      const w = (await openComponent(pipe, "transformer")).weights!;
      const e = await rejectsWith(() => w.get("pos_embed.proj.weight"), MissingTensorError,
        [path.join(pipe, "transformer"), '"pos_embed.proj.weight"', "diffusion_pytorch_model.safetensors"]);
      assert.strictEqual(e.tensor, "pos_embed.proj.weight");
    });

    it("requireTensors reports the first missing tensor and counts the rest", async () => {
      const w = (await openComponent(pipe, "transformer")).weights!;
      await rejectsWith(() => requireTensors(w, ["proj_out.bias", "a", "b", "c"]), MissingTensorError,
        [w.dir, '"a"', "2 more missing: b, c"]);
      requireTensors(w, ["proj_out.bias", "proj_out.weight"]);
    });

    it("an index mapping a tensor to a shard that lacks it is a MissingTensorError naming the shard and tensor", async () => {
      const dir = await freshPipeline();
      const index = path.join(dir, "text_encoder", "model.safetensors.index.json");
      const j = JSON.parse(fs.readFileSync(index, "utf8"));
      j.weight_map["shared.weight"] = "model-00002-of-00002.safetensors";
      fs.writeFileSync(index, json(j));
      await rejectsWith(openComponent(dir, "text_encoder"), MissingTensorError,
        [path.join(dir, "text_encoder", "model-00002-of-00002.safetensors"), '"shared.weight"', "model.safetensors.index.json"]);
    });

    async function withShard(shard: string): Promise<string> {
      const dir = await freshPipeline();
      const index = path.join(dir, "text_encoder", "model.safetensors.index.json");
      const j = JSON.parse(fs.readFileSync(index, "utf8"));
      j.weight_map["shared.weight"] = shard;
      fs.writeFileSync(index, json(j));
      return index;
    }

    it("refuses a shard index pointing to ../../etc/passwd", async () => {
      const index = await withShard("../../etc/passwd");
      const e = await rejectsWith(openComponent(path.dirname(path.dirname(index)), "text_encoder"), PathEscapeError,
        [index, 'field "weight_map.shared.weight"', '"../../etc/passwd"']);
      assert.strictEqual(e.path, "../../etc/passwd");
    });

    it("refuses an absolute shard path", async () => {
      const index = await withShard("/etc/passwd");
      await rejectsWith(openComponent(path.dirname(path.dirname(index)), "text_encoder"), PathEscapeError,
        [index, 'field "weight_map.shared.weight"', '"/etc/passwd"', "absolute"]);
    });

    it("refuses a shard path that escapes with backslash separators", async () => {
      const index = await withShard("sub\\..\\..\\..\\secret.safetensors");
      await rejectsWith(openComponent(path.dirname(path.dirname(index)), "text_encoder"), PathEscapeError,
        [index, 'field "weight_map.shared.weight"', "climbs out"]);
    });

    it("refuses a Windows drive path", async () => {
      const index = await withShard("C:\\weights\\x.safetensors");
      await rejectsWith(openComponent(path.dirname(path.dirname(index)), "text_encoder"), PathEscapeError,
        [index, 'field "weight_map.shared.weight"', "absolute"]);
    });

    it("accepts a shard in a subfolder and a harmless .. that stays inside", async () => {
      const dir = await freshPipeline();
      const te = path.join(dir, "text_encoder");
      fs.mkdirSync(path.join(te, "shards"));
      fs.renameSync(path.join(te, "model-00001-of-00002.safetensors"), path.join(te, "shards", "one.safetensors"));
      const index = path.join(te, "model.safetensors.index.json");
      const j = JSON.parse(fs.readFileSync(index, "utf8"));
      j.weight_map["shared.weight"] = "shards/../shards/one.safetensors";
      fs.writeFileSync(index, json(j));
      const w = (await openComponent(dir, "text_encoder")).weights!;
      assert.strictEqual(w.get("shared.weight").file, fs.realpathSync(path.join(te, "shards", "one.safetensors")));
    });

    it("refuses a shard that is a symlink leading outside the checkpoint, unless told to accept it", async () => {
      const dir = await freshPipeline();
      const outside = path.join(tmp, `outside${n++}.safetensors`);
      const shard = path.join(dir, "text_encoder", "model-00001-of-00002.safetensors");
      fs.renameSync(shard, outside);
      fs.symlinkSync(outside, shard);
      const index = path.join(dir, "text_encoder", "model.safetensors.index.json");
      await rejectsWith(openComponent(dir, "text_encoder"), PathEscapeError,
        [index, "model-00001-of-00002.safetensors", "symlink", outside]);
      const w = (await openComponent(dir, "text_encoder", { allowSymlinksOutside: true })).weights!;
      assert.strictEqual(w.get("shared.weight").file, fs.realpathSync(outside));
    });

    it("refuses a component name that leaves the pipeline folder", async () => {
      await rejectsWith(openComponent(pipe, "../p0"), ConfigError, [pipe, 'field "component"', "single folder name"]);
      await rejectsWith(openComponent(pipe, ".."), PathEscapeError, [pipe, 'field "component"', '".."']);
    });

    it("a weight_map that is not an object is a ConfigError naming the index and field", async () => {
      const dir = await freshPipeline();
      const index = path.join(dir, "text_encoder", "model.safetensors.index.json");
      fs.writeFileSync(index, json({ weight_map: ["model-00001-of-00002.safetensors"] }));
      await rejectsWith(openComponent(dir, "text_encoder"), ConfigError, [index, 'field "weight_map"', "an array"]);
    });

    it("a missing config.json is a ConfigError naming the file", async () => {
      const dir = await freshPipeline();
      const file = path.join(dir, "transformer", "config.json");
      fs.rmSync(file);
      const e = await rejectsWith(openComponent(dir, "transformer"), ConfigError, [file, "not found"]);
      assert.strictEqual(e.file, file);
    });

    it("a malformed config.json is a ConfigError naming the file and the line", async () => {
      const dir = await freshPipeline();
      const file = path.join(dir, "transformer", "config.json");
      fs.writeFileSync(file, '{\n  "num_layers": 28,\n  "sample_size": 128,\n}\n');
      await rejectsWith(openComponent(dir, "transformer"), ConfigError, [file, "malformed JSON", "line 4"]);
    });

    it("a component without weights is a WeightsNotFoundError listing the expected names", async () => {
      const dir = await freshPipeline();
      const tdir = path.join(dir, "transformer");
      fs.rmSync(path.join(tdir, "diffusion_pytorch_model.safetensors"));
      await rejectsWith(openComponent(dir, "transformer"), WeightsNotFoundError,
        [tdir, "diffusion_pytorch_model.safetensors", "model.safetensors.index.json"]);
    });

    it("only variant files present and no variant asked: WeightsNotFoundError pointing at the variant", async () => {
      const dir = await freshPipeline();
      const vdir = path.join(dir, "vae");
      fs.rmSync(path.join(vdir, "diffusion_pytorch_model.safetensors"));
      await rejectsWith(openComponent(dir, "vae"), WeightsNotFoundError,
        [vdir, "found only variant files diffusion_pytorch_model.fp16.safetensors", "variant option"]);
    });

    it("a variant that is not there is a WeightsNotFoundError naming the variant file", async () => {
      await rejectsWith(openComponent(pipe, "transformer", { variant: "bf16" }), WeightsNotFoundError,
        [path.join(pipe, "transformer"), "diffusion_pytorch_model.bf16.safetensors"]);
    });

    it("a variant with path characters is a ConfigError", async () => {
      await rejectsWith(openComponent(pipe, "vae", { variant: "../fp16" }), ConfigError, [path.join(pipe, "vae"), 'field "variant"']);
    });
  });

  it("reads tensors of every shard through TensorInfo offsets (integer data too)", async () => {
    const dir = path.join(tmp, "ints");
    fs.mkdirSync(dir);
    await writeSafetensors(path.join(dir, "model.safetensors"), [
      { name: "ids", dtype: "I64", shape: [3], data: new BigInt64Array([5n, -6n, 7n]) },
      { name: "w", dtype: "BF16", shape: [1], data: new Uint16Array([0x4000]) },
    ]);
    const w = await openWeights(dir);
    const ids = w.get("ids");
    assert.deepStrictEqual(Array.from(toTypedArray(ids, await readTensorData(ids)) as BigInt64Array), [5n, -6n, 7n]);
    assert.deepStrictEqual(Array.from(await readTensorFloat32(w.get("w"))), [2]);
  });
});
