/**
 * The committed tiny fixture set (test/fixtures/tiny-*, written by tools/reference/make_fixtures.py) is complete
 * and consistent: every config has its pipeline folder and files, reference.safetensors holds the keys the
 * parity tests read with shapes that follow from the configs and the recorded call, and sizes stay in budget.
 *
 * It reads safetensors headers by hand (8-byte little-endian length, then JSON) so that it checks the files
 * independently of src/io.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { fixturesDir } from "../helpers/paths";

const EXPECTED_CONFIGS = ["tiny-hires", "tiny-square", "tiny-wide"];
const MB = 1_000_000;
const TINY_BUDGET_BYTES = 2.5 * MB;
// 3 MB until the tiled-VAE reference (tiny-square/vae-tiling.safetensors, 33 KB) took the folder to 3.03 MB.
const FIXTURES_BUDGET_BYTES = 3.1 * MB;
const MAX_FILE_BYTES = 1024 * 1024;
const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 };

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

type Json = Record<string, any>;

/** Header of a safetensors file, after checking that the tensors tile the data section exactly. */
function readHeader(file: string): Map<string, HeaderEntry> {
  assert.ok(fs.existsSync(file), `missing ${file}`);
  const bytes = fs.readFileSync(file);
  assert.ok(bytes.length >= 8, `${file}: shorter than the 8-byte header length`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  assert.ok(8 + headerLength <= bytes.length, `${file}: header length ${headerLength} runs past the file end`);
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>;
  const entries = new Map<string, HeaderEntry>();
  for (const [name, value] of Object.entries(header)) if (name !== "__metadata__") entries.set(name, value as HeaderEntry);
  const spans = [...entries].map(([name, e]) => {
    const elements = e.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = e.data_offsets;
    assert.ok(e.dtype in DTYPE_BYTES, `${file}: ${name} has unexpected dtype ${e.dtype}`);
    assert.equal(end - begin, elements * DTYPE_BYTES[e.dtype], `${file}: ${name} byte span does not match shape and dtype`);
    return [begin, end];
  }).sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (const [begin, end] of spans) {
    assert.equal(begin, next, `${file}: tensor data has a gap or overlap at offset ${begin}`);
    next = end;
  }
  assert.equal(8 + headerLength + next, bytes.length, `${file}: data section length does not match the header`);
  return entries;
}

function readInt64(file: string, entry: HeaderEntry): bigint[] {
  const bytes = fs.readFileSync(file);
  const start = 8 + Number(bytes.readBigUInt64LE(0)) + entry.data_offsets[0];
  const count = (entry.data_offsets[1] - entry.data_offsets[0]) / 8;
  return Array.from({ length: count }, (_, i) => bytes.readBigInt64LE(start + 8 * i));
}

/** JSON as Python writes it: bare -Infinity / Infinity / NaN become null here (only structure is checked). */
function readJson(file: string): Json {
  assert.ok(fs.existsSync(file), `missing ${file}`);
  const text = fs.readFileSync(file, "utf8").replace(/(?<=[:,[]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, "null");
  return JSON.parse(text) as Json;
}

function folderBytes(dir: string): number {
  return fs.readdirSync(dir, { withFileTypes: true }).reduce((total, entry) => {
    const full = path.join(dir, entry.name);
    return total + (entry.isDirectory() ? folderBytes(full) : fs.statSync(full).size);
  }, 0);
}

function allFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? allFiles(full) : [full];
  });
}

function configNames(): string[] {
  return fs.readdirSync(fixturesDir).filter((n) => n.startsWith("tiny-") && fs.statSync(path.join(fixturesDir, n)).isDirectory()).sort();
}

/** Checks one pipeline folder's files; returns the parsed component configs. */
function checkPipelineFolder(dir: string): { textEncoder: Json; transformer: Json; vae: Json } {
  const index = readJson(path.join(dir, "model_index.json"));
  assert.equal(index._class_name, "PixArtSigmaPipeline");
  for (const component of ["scheduler", "text_encoder", "tokenizer", "transformer", "vae"]) {
    assert.ok(Array.isArray(index[component]) && index[component].length === 2, `model_index.json: ${component} should be [library, class]`);
  }
  assert.equal(readJson(path.join(dir, "scheduler", "scheduler_config.json"))._class_name, "DPMSolverMultistepScheduler");
  for (const component of ["transformer", "vae"]) readHeader(path.join(dir, component, "diffusion_pytorch_model.safetensors"));
  checkTextEncoderWeights(path.join(dir, "text_encoder"));
  const tokenizer = path.join(dir, "tokenizer");
  assert.ok(fs.existsSync(path.join(tokenizer, "tokenizer_config.json")), `${tokenizer}: no tokenizer_config.json`);
  assert.ok(["tokenizer.json", "spiece.model"].some((f) => fs.existsSync(path.join(tokenizer, f))), `${tokenizer}: neither tokenizer.json nor spiece.model`);
  return {
    textEncoder: readJson(path.join(dir, "text_encoder", "config.json")),
    transformer: readJson(path.join(dir, "transformer", "config.json")),
    vae: readJson(path.join(dir, "vae", "config.json")),
  };
}

/** One model.safetensors, or a shard index whose every entry is found in the shard it names. */
function checkTextEncoderWeights(dir: string): void {
  const indexFile = path.join(dir, "model.safetensors.index.json");
  if (!fs.existsSync(indexFile)) {
    assert.ok(readHeader(path.join(dir, "model.safetensors")).has("shared.weight"), `${dir}: no shared.weight`);
    return;
  }
  const weightMap = readJson(indexFile).weight_map as Record<string, string>;
  const shards = new Map<string, Map<string, HeaderEntry>>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (!shards.has(shard)) shards.set(shard, readHeader(path.join(dir, shard)));
    assert.ok(shards.get(shard)!.has(tensor), `${dir}/${shard}: ${tensor} is listed in the index but not stored`);
  }
  assert.ok(shards.size >= 2, `${dir}: a shard index with ${shards.size} shard`);
}

describe("committed tiny fixtures (tools/reference/make_fixtures.py)", () => {
  const names = configNames();

  it("has every expected config", () => {
    assert.deepEqual(names.filter((n) => EXPECTED_CONFIGS.includes(n)), EXPECTED_CONFIGS, `found ${names.join(", ")} in ${fixturesDir}`);
  });

  for (const name of names) {
    describe(name, () => {
      const dir = path.join(fixturesDir, name);
      const refFile = path.join(dir, "reference.safetensors");
      let configs: ReturnType<typeof checkPipelineFolder>;
      let ref: Json;
      let header: Map<string, HeaderEntry>;
      const shapeOf = (key: string, dtype: string): number[] => {
        const entry = header.get(key);
        assert.ok(entry, `${refFile}: no tensor ${key}`);
        assert.equal(entry.dtype, dtype, `${key}: dtype`);
        return entry.shape;
      };
      const hasPadding = (key: string) => {
        const values = readInt64(refFile, header.get(key)!);
        assert.ok(values.includes(0n) && values.includes(1n), `${key}: expected both real tokens (1) and padding (0)`);
      };

      before(() => {
        configs = checkPipelineFolder(path.join(dir, "pipeline"));
        ref = readJson(path.join(dir, "reference.json"));
        header = readHeader(refFile);
      });

      it("reference.json names the config and describes every tensor in reference.safetensors", () => {
        assert.equal(ref.config, name);
        for (const lib of ["torch", "diffusers", "transformers"]) assert.equal(typeof ref.versions[lib], "string", `versions.${lib}`);
        const described = Object.fromEntries([...header].map(([k, e]) => [k, e.shape]));
        assert.deepEqual(Object.fromEntries(Object.entries(ref.tensors as Record<string, Json>).map(([k, t]) => [k, t.shape])), described);
      });

      it("T5 stage: ids and mask [B, L] with padding, hidden state [B, L, d_model]", () => {
        const [b, l] = shapeOf("t5.input_ids", "I64");
        assert.ok(b >= 2, `batch ${b}`);
        assert.equal(l, ref.t5.max_length);
        assert.deepEqual(shapeOf("t5.attention_mask", "I64"), [b, l]);
        hasPadding("t5.attention_mask");
        assert.deepEqual(shapeOf("t5.last_hidden_state", "F32"), [b, l, configs.textEncoder.d_model]);
      });

      it("transformer stage: CFG-like batch of 2 with int64 timesteps and a padded mask", () => {
        const [two, c, h, w] = shapeOf("transformer.hidden_states", "F32");
        assert.deepEqual([two, c], [2, configs.transformer.in_channels]);
        const [, l] = shapeOf("transformer.encoder_attention_mask", "I64");
        hasPadding("transformer.encoder_attention_mask");
        assert.deepEqual(shapeOf("transformer.encoder_hidden_states", "F32"), [2, l, configs.transformer.caption_channels]);
        for (const suffix of ["", "_b"]) {
          assert.deepEqual(shapeOf(`transformer.timestep${suffix}`, "I64"), [2]);
          assert.deepEqual(shapeOf(`transformer.output${suffix}`, "F32"), [2, configs.transformer.out_channels, h, w]);
        }
      });

      it("VAE stage: vae.sample is vae.z upscaled by 2^(blocks-1)", () => {
        const [b, c, h, w] = shapeOf("vae.z", "F32");
        assert.equal(c, configs.vae.latent_channels);
        const scale = 2 ** (configs.vae.block_out_channels.length - 1);
        assert.deepEqual(shapeOf("vae.sample", "F32"), [b, configs.vae.out_channels, h * scale, w * scale]);
      });

      it("pipeline run: shapes follow the recorded call arguments", () => {
        const info = ref.pipeline;
        const call = info.call;
        for (const arg of ["prompt", "negative_prompt", "seed", "num_inference_steps", "guidance_scale", "height", "width",
          "use_resolution_binning", "num_images_per_prompt", "max_sequence_length", "clean_caption"]) {
          assert.ok(arg in call, `reference.json pipeline.call.${arg}`);
        }
        const n = (typeof call.prompt === "string" ? 1 : call.prompt.length) * call.num_images_per_prompt;
        const latent = [n, configs.transformer.in_channels, info.generation_height / 8, info.generation_width / 8];
        const steps = shapeOf("pipeline.timesteps", "I64")[0];
        assert.equal(steps, call.timesteps ? call.timesteps.length : call.num_inference_steps);
        assert.deepEqual(shapeOf("pipeline.sigmas", "F32"), [steps + 1]);
        assert.deepEqual(shapeOf("pipeline.latents_init", "F32"), latent);
        assert.deepEqual(shapeOf("pipeline.latents_steps", "F32"), [steps, ...latent]);
        assert.deepEqual(shapeOf("pipeline.latents_final", "F32"), latent);
        const prefixes = call.guidance_scale > 1 ? ["pipeline.", "pipeline.negative_"] : ["pipeline."];
        assert.equal(header.has("pipeline.negative_prompt_embeds"), call.guidance_scale > 1, "negative embeds iff CFG");
        for (const p of prefixes) {
          assert.deepEqual(shapeOf(`${p}prompt_embeds`, "F32"), [n, call.max_sequence_length, configs.textEncoder.d_model]);
          assert.deepEqual(shapeOf(`${p}prompt_attention_mask`, "I64"), [n, call.max_sequence_length]);
        }
        const defaultSize = configs.transformer.sample_size * 8;
        assert.deepEqual(shapeOf("pipeline.image", "F32"), [n, call.height ?? defaultSize, call.width ?? defaultSize, 3]);
      });

      it("every float output has a tolerance", () => {
        const inputs = ["transformer.hidden_states", "transformer.encoder_hidden_states", "vae.z", "pipeline.latents_init"];
        const outputs = [...header].filter(([k, e]) => e.dtype === "F32" && !inputs.includes(k)).map(([k]) => k).sort();
        assert.deepEqual(Object.keys(ref.tolerances).sort(), outputs);
        for (const [key, t] of Object.entries(ref.tolerances as Record<string, Json>)) {
          assert.ok(t.max_abs > 0 && t.max_abs <= 0.01, `${key}: max_abs ${t.max_abs}`);
        }
      });
    });
  }

  it(`tiny configs stay under ${TINY_BUDGET_BYTES / MB} MB together, no file over 1 MiB`, () => {
    const files = names.flatMap((n) => allFiles(path.join(fixturesDir, n)));
    const big = files.filter((f) => fs.statSync(f).size > MAX_FILE_BYTES);
    assert.deepEqual(big, [], "files over 1 MiB");
    const total = names.reduce((sum, n) => sum + folderBytes(path.join(fixturesDir, n)), 0);
    assert.ok(total < TINY_BUDGET_BYTES, `tiny fixtures take ${(total / MB).toFixed(2)} MB`);
  });

  it(`the whole fixtures folder stays under ${FIXTURES_BUDGET_BYTES / MB} MB`, () => {
    const sizes = fs.readdirSync(fixturesDir).map((n) => {
      const full = path.join(fixturesDir, n);
      return [n, fs.statSync(full).isDirectory() ? folderBytes(full) : fs.statSync(full).size] as const;
    });
    const total = sizes.reduce((sum, [, size]) => sum + size, 0);
    const breakdown = sizes.map(([n, size]) => `${n} ${(size / MB).toFixed(2)}`).join(", ");
    assert.ok(total < FIXTURES_BUDGET_BYTES, `test/fixtures takes ${(total / MB).toFixed(2)} MB (${breakdown})`);
  });
});
