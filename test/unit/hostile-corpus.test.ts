/**
 * The bad-input corpus: safetensors headers and files, checkpoint folders, tokenizer files, call() arguments. Every
 * case asserts the error class and the subject it names (file, tensor, field or argument); none may crash, hang or
 * return non-finite output. Large inputs are generated here, never committed. (Kernel cases: test/kernel/
 * kernel-hostile.test.ts.)
 */
import * as assert from "assert";
import { constants as bufferConstants } from "buffer";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { CheckpointError, ConfigError, NonFiniteWeightError, PathEscapeError, SafetensorsFormatError } from "../../src/io/errors";
import { fingerprintFiles, checkUnchanged, WeightsFileChangedError } from "../../src/io/file-guard";
import { parsePythonJson } from "../../src/io/json";
import { openWeights } from "../../src/io/checkpoint";
import { openSafetensors, parseSafetensorsHeader } from "../../src/io/safetensors";
import { checkFiniteWeights } from "../../src/io/weight-scan";
import { AutoencoderKL, buildAutoencoderKLGraph, parseAutoencoderKLConfig } from "../../src/models/autoencoder-kl";
import { createSession } from "../../src/onnx/session";
import { PixArtTransformer2DModel, parsePixArtTransformerConfig } from "../../src/models/pixart-transformer-2d";
import { T5EncoderModel, parseT5Config } from "../../src/models/t5-encoder";
import { NonFiniteTensorError, PipelineArgumentError, PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { checkFinite } from "../../src/pipeline/validate";
import { TokenizerFileError } from "../../src/tokenizer/errors";
import { PrecompiledCharsmap } from "../../src/tokenizer/precompiled-charsmap";
import { parseSentencePieceModel } from "../../src/tokenizer/sentencepiece-model";
import { T5Tokenizer } from "../../src/tokenizer/t5-tokenizer";
import { parseTokenizerJson } from "../../src/tokenizer/tokenizer-json";
import { readTokenizerConfig } from "../../src/tokenizer/tokenizer-config";
import { fixturesDir } from "../helpers/paths";
import { makeTempDir, removeTempDir, writeRawSafetensors } from "../helpers/st-writer";

type ErrorClass = new (...args: never[]) => Error;

/** Asserts `e` is an instance of `cls` and has each of `subject`'s properties (or, for RegExps, a matching message). */
function check(e: unknown, cls: ErrorClass, subject: Record<string, unknown>): true {
  assert.ok(e instanceof cls, `expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  for (const [key, want] of Object.entries(subject)) {
    const got: unknown = (e as unknown as Record<string, unknown>)[key];
    if (want instanceof RegExp) assert.match(String(got), want, `${key} of ${e.message}`);
    else assert.strictEqual(got, want, `${key} of ${e.message}`);
  }
  return true;
}

const ST = "corpus.safetensors";
const ctx = { file: ST, realPath: ST, dataStart: 8, dataSize: 64 };
const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: "F32", shape, data_offsets: offsets });

/** [case name, header text, tensor named in the error (or undefined for file-level problems)]. */
const HEADER_CASES: Array<[string, string, string | undefined]> = [
  ["not UTF-8", "\xff\xfe", undefined],
  ["not JSON", "{", undefined],
  ["JSON array", "[]", undefined],
  ["JSON string", '"x"', undefined],
  ["JSON number", "1", undefined],
  ["JSON null", "null", undefined],
  ["trailing garbage", '{"a": 1} x', undefined],
  ["entry is a number", '{"a": 1}', "a"],
  ["entry is null", '{"a": null}', "a"],
  ["entry is an array", '{"a": []}', "a"],
  ["unknown dtype", JSON.stringify({ a: { dtype: "F128", shape: [1], data_offsets: [0, 4] } }), "a"],
  ["dtype lowercase", JSON.stringify({ a: { dtype: "f32", shape: [1], data_offsets: [0, 4] } }), "a"],
  ["dtype missing", JSON.stringify({ a: { shape: [1], data_offsets: [0, 4] } }), "a"],
  ["shape missing", JSON.stringify({ a: { dtype: "F32", data_offsets: [0, 4] } }), "a"],
  ["shape negative", JSON.stringify({ a: f32([-1], [0, 4]) }), "a"],
  ["shape fractional", JSON.stringify({ a: f32([1.5], [0, 4]) }), "a"],
  ["shape string", JSON.stringify({ a: { dtype: "F32", shape: "1", data_offsets: [0, 4] } }), "a"],
  ["shape NaN token", '{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', undefined],
  ["shape huge", JSON.stringify({ a: f32([1e15, 1e15], [0, 4]) }), "a"],
  ["shape 2^53", JSON.stringify({ a: f32([2 ** 53], [0, 4]) }), "a"],
  ["offsets missing", JSON.stringify({ a: { dtype: "F32", shape: [1] } }), "a"],
  ["offsets one number", JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }), "a"],
  ["offsets three numbers", JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4, 8] } }), "a"],
  ["offsets reversed", JSON.stringify({ a: f32([1], [8, 4]) }), "a"],
  ["offsets negative", JSON.stringify({ a: f32([1], [-4, 0]) }), "a"],
  ["offsets fractional", JSON.stringify({ a: f32([1], [0.5, 4.5]) }), "a"],
  ["offsets strings", JSON.stringify({ a: { dtype: "F32", shape: [1], data_offsets: ["0", "4"] } }), "a"],
  ["span does not match shape", JSON.stringify({ a: f32([2], [0, 4]) }), "a"],
  ["past the data section", JSON.stringify({ a: f32([32], [0, 128]) }), "a"],
  ["offset 2^60", JSON.stringify({ a: f32([1], [2 ** 60, 2 ** 60 + 4]) }), "a"],
  ["duplicate tensor name", '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', "a"],
  ["duplicate with escapes", '{"\\u0061": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', "a"],
  ["metadata not an object", JSON.stringify({ __metadata__: 5 }), undefined],
  ["metadata value a number", JSON.stringify({ __metadata__: { format: 1 } }), undefined],
  ["metadata value null", JSON.stringify({ __metadata__: { format: null } }), undefined],
  ["deep nesting", `{"a": ${"[".repeat(5000)}${"]".repeat(5000)}}`, "a"],
];

describe("hostile corpus: safetensors headers", () => {
  for (const [name, text, tensor] of HEADER_CASES) {
    it(name, () => {
      assert.throws(() => parseSafetensorsHeader(Buffer.from(text, "latin1"), ctx), (e: unknown) =>
        check(e, SafetensorsFormatError, { file: ST, ...(tensor === undefined ? {} : { tensor }) }));
    });
  }
  it("overlapping tensors", () => {
    const text = JSON.stringify({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) });
    assert.throws(() => parseSafetensorsHeader(Buffer.from(text), ctx), (e: unknown) => check(e, SafetensorsFormatError, { file: ST }));
  });
});

describe("hostile corpus: safetensors files", () => {
  let dir: string;
  before(() => { dir = makeTempDir("pixart-corpus-st-"); });
  after(() => removeTempDir(dir));

  const fileCases: Array<[string, (file: string) => void, ErrorClass]> = [
    ["an empty file", (f) => fs.writeFileSync(f, ""), SafetensorsFormatError],
    ["a 7-byte file", (f) => fs.writeFileSync(f, Buffer.alloc(7)), SafetensorsFormatError],
    ["header length 0", (f) => writeRawSafetensors(f, "", undefined, 0n), SafetensorsFormatError],
    ["header length past the end", (f) => writeRawSafetensors(f, "{}", undefined, 1000n), SafetensorsFormatError],
    ["header length 2^64 - 1", (f) => writeRawSafetensors(f, "{}", undefined, 2n ** 64n - 1n), SafetensorsFormatError],
    ["header length above 100 MB", (f) => writeRawSafetensors(f, "{}", undefined, 200_000_000n), SafetensorsFormatError],
    ["a PNG renamed", (f) => fs.writeFileSync(f, Buffer.from("89504e470d0a1a0a0000000d49484452", "hex")), SafetensorsFormatError],
    ["a truncated data section", (f) => writeRawSafetensors(f, { a: f32([4], [0, 16]) }, new Uint8Array(8)), SafetensorsFormatError],
    ["header of spaces", (f) => writeRawSafetensors(f, "        "), SafetensorsFormatError],
    ["a directory", (f) => fs.mkdirSync(f), SafetensorsFormatError],
  ];
  for (const [name, make, cls] of fileCases) {
    it(name, async () => {
      const file = path.join(dir, `${name.replace(/\W+/g, "-")}.safetensors`);
      make(file);
      await assert.rejects(openSafetensors(file), (e: unknown) => check(e, cls, { file }));
    });
  }
  it("a missing file", async () => {
    const file = path.join(dir, "missing.safetensors");
    await assert.rejects(openSafetensors(file), (e: unknown) => check(e, CheckpointError, { file }));
  });
  it("a file truncated after it was validated (before the session is made)", () => {
    const file = path.join(dir, "later-truncated.safetensors");
    writeRawSafetensors(file, { a: f32([4], [0, 16]) }, new Uint8Array(16));
    const size = fs.statSync(file).size;
    fs.truncateSync(file, size - 8);
    assert.throws(() => fingerprintFiles({ [file]: size }), (e: unknown) => check(e, WeightsFileChangedError, { file }));
  });
  it("a file truncated after it was validated (before the weight scan reads it)", async () => {
    const file = path.join(dir, "scan-truncated.safetensors");
    writeRawSafetensors(file, { a: f32([4], [0, 16]), b: f32([4], [16, 32]) }, new Uint8Array(32));
    const st = await openSafetensors(file);
    fs.truncateSync(file, fs.statSync(file).size - 8);
    await assert.rejects(checkFiniteWeights(st.tensors.values()), (e: unknown) => check(e, WeightsFileChangedError, { file: st.realPath, message: /tensor "b"/ }));
  });
  for (const change of ["truncated", "rewritten", "replaced", "deleted"] as const) {
    it(`a mapped file ${change} under a loaded model`, () => {
      const file = path.join(dir, `mapped-${change}.safetensors`);
      writeRawSafetensors(file, { a: f32([4], [0, 16]) }, new Uint8Array(16));
      const fps = fingerprintFiles({ [file]: fs.statSync(file).size });
      checkUnchanged(fps);
      if (change === "truncated") fs.truncateSync(file, 10);
      if (change === "rewritten") fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
      if (change === "replaced") {
        fs.renameSync(file, `${file}.old`);
        writeRawSafetensors(file, { a: f32([4], [0, 16]) }, new Uint8Array(16));
      }
      if (change === "deleted") fs.rmSync(file);
      assert.throws(() => checkUnchanged(fps), (e: unknown) => check(e, WeightsFileChangedError, { file }));
    });
  }
});

/** A copy of the tiny pipeline that a case may break. */
function copyTiny(dir: string): string {
  const out = path.join(dir, "pipe");
  fs.rmSync(out, { recursive: true, force: true });
  fs.cpSync(path.join(fixturesDir, "tiny-square", "pipeline"), out, { recursive: true });
  return out;
}

describe("hostile corpus: a weights file truncated between denoising steps", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = makeTempDir("pixart-corpus-trunc-"); });
  after(() => removeTempDir(dir));

  // In a child process: reading a page of a truncated mapping is SIGBUS, which would kill the test runner itself.
  // The file is truncated in the callback after step 0 (step by step), or after the first run of 2 steps
  // (stepsPerRun: 2); the next run must refuse with WeightsFileChangedError, and the process must live on.
  for (const [name, extra] of [["one run per step", {}], ["stepsPerRun: 2", { stepsPerRun: 2 }]] as const) {
    it(`${name}: WeightsFileChangedError on the next run, not SIGBUS`, () => {
      const p = copyTiny(dir);
      const file = path.join(p, "transformer", "diffusion_pytorch_model.safetensors");
      const script = `
        const fs = require("fs");
        const { PixArtSigmaPipeline } = require(${JSON.stringify(require.resolve("../../src/pipeline/pixart-sigma"))});
        (async () => {
          const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(p)});
          let truncated = -1;
          try {
            await pipe.call({ prompt: "a cat", useResolutionBinning: false, numInferenceSteps: 4, outputType: "latent", ...${JSON.stringify(extra)},
              callbackOnStepEnd: ({ step }) => { if (truncated < 0) { fs.truncateSync(${JSON.stringify(file)}, 100); truncated = step; } } });
            console.log("no error");
          } catch (e) {
            console.log(JSON.stringify({ name: e.name, file: e.file, truncated }));
          }
          await pipe.dispose();
        })();`;
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
      assert.strictEqual(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
      assert.strictEqual(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { name: string; file: string; truncated: number };
      assert.deepStrictEqual(out, { name: "WeightsFileChangedError", file: fs.realpathSync(file), truncated: "stepsPerRun" in extra ? 1 : 0 });
    });
  }

  it("copyWeights: a session runs on, unchanged, after its file is truncated (what a mapped session cannot survive)", () => {
    const p = copyTiny(dir);
    const vae = path.join(p, "vae");
    const src = (m: string): string => JSON.stringify(require.resolve(`../../src/${m}`));
    const script = `
      const fs = require("fs");
      const ort = require(${JSON.stringify(require.resolve("onnxruntime-node"))});
      const { createSession } = require(${src("onnx/session")});
      const { openWeights } = require(${src("io/checkpoint")});
      const { readJsonObject } = require(${src("io/json")});
      const { parseAutoencoderKLConfig, buildAutoencoderKLGraph } = require(${src("models/autoencoder-kl")});
      (async () => {
        const dir = ${JSON.stringify(vae)};
        const config = parseAutoencoderKLConfig(await readJsonObject(dir + "/config.json"), "config.json");
        const built = buildAutoencoderKLGraph(config, await openWeights(dir));
        const z = new ort.Tensor("float32", new Float32Array(config.latentChannels * 64).fill(0.1), [1, config.latentChannels, 8, 8]);
        const run = async (s) => (await s.run({ z }))[s.outputNames[0]].data;
        const mapped = await createSession(built);
        const want = await run(mapped);
        await mapped.release();
        const copied = await createSession(built, { copyWeights: true });
        fs.truncateSync(${JSON.stringify(path.join(vae, "diffusion_pytorch_model.safetensors"))}, 100);
        const got = await run(copied);
        await copied.release();
        console.log(JSON.stringify({ length: got.length, same: got.length === want.length && got.every((v, i) => Object.is(v, want[i])) }));
      })();`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    assert.strictEqual(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
    assert.strictEqual(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { length: number; same: boolean };
    assert.ok(out.length > 0 && out.same, r.stdout);
  });

  it("copyWeights refuses a file over Node's Buffer limit with a CheckpointError naming it (before reading it)", async () => {
    const vae = path.join(copyTiny(dir), "vae");
    const file = path.join(vae, "diffusion_pytorch_model.safetensors");
    const config = parseAutoencoderKLConfig(JSON.parse(fs.readFileSync(path.join(vae, "config.json"), "utf8")) as Record<string, unknown>, "config.json");
    const built = buildAutoencoderKLGraph(config, await openWeights(vae));
    fs.truncateSync(file, bufferConstants.MAX_LENGTH + 1); // sparse: no disk blocks for the extension
    try {
      await assert.rejects(createSession(built, { copyWeights: true }), (e: unknown) =>
        e instanceof CheckpointError && e.message.includes(fs.realpathSync(file)) && /copyWeights reads each file whole/.test(e.message));
    } finally {
      fs.rmSync(file);
    }
  });

  it("copyWeights through the session worker (the models' default) decodes exactly as the mapped session", async () => {
    const vae = path.join(copyTiny(dir), "vae");
    const z = { data: new Float32Array(4 * 64).map((_, i) => Math.sin(i)), dims: [1, 4, 8, 8] };
    const decode = async (copyWeights: boolean): Promise<Float32Array> => {
      const model = await AutoencoderKL.fromPretrained(vae, { copyWeights });
      try {
        return (await model.decode(z)).data;
      } finally {
        await model.release();
      }
    };
    const [mapped, copied] = [await decode(false), await decode(true)];
    assert.ok(mapped.length > 0 && mapped.every((v, i) => Object.is(v, copied[i])));
  });
});

describe("hostile corpus: checkpoint folders and configs", function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = makeTempDir("pixart-corpus-ckpt-"); });
  after(() => removeTempDir(dir));

  const T = "transformer/config.json";
  const transformerConfigs: Array<[string, Record<string, unknown>, string]> = [
    ["sample_size 1e9", { sample_size: 1e9 }, "sample_size"],
    ["sample_size 4096", { sample_size: 4096 }, "sample_size"],
    ["sample_size NaN", { sample_size: NaN }, "sample_size"],
    ["sample_size -1", { sample_size: -1 }, "sample_size"],
    ["sample_size string", { sample_size: "128" }, "sample_size"],
    ["num_layers 1e9", { num_layers: 1e9 }, "num_layers"],
    ["num_attention_heads 0", { num_attention_heads: 0 }, "num_attention_heads"],
    ["attention_head_dim 1.5", { attention_head_dim: 1.5 }, "attention_head_dim"],
    ["patch_size 2^30", { patch_size: 2 ** 30 }, "patch_size"],
    ["in_channels Infinity", { in_channels: Infinity }, "in_channels"],
  ];
  for (const [name, patch, field] of transformerConfigs) {
    it(`transformer config: ${name}`, () => {
      const raw = { ...JSON.parse(fs.readFileSync(path.join(fixturesDir, "tiny-square", "pipeline", T), "utf8")), ...patch };
      assert.throws(() => parsePixArtTransformerConfig(raw, T), (e: unknown) => check(e, ConfigError, { file: T, field }));
    });
  }
  const vaeConfigs: Array<[string, Record<string, unknown>, string]> = [
    ["latent_channels 1e9", { latent_channels: 1e9 }, "latent_channels"],
    ["block_out_channels empty", { block_out_channels: [] }, "block_out_channels"],
    ["block_out_channels with 0", { block_out_channels: [0] }, "block_out_channels"],
    ["scaling_factor string", { scaling_factor: "x" }, "scaling_factor"],
  ];
  for (const [name, patch, field] of vaeConfigs) {
    it(`vae config: ${name}`, () => {
      const f = "vae/config.json";
      const raw = { ...JSON.parse(fs.readFileSync(path.join(fixturesDir, "tiny-square", "pipeline", f), "utf8")), ...patch };
      assert.throws(() => parseAutoencoderKLConfig(raw, f), (e: unknown) => check(e, ConfigError, { file: f, field }));
    });
  }
  const t5Configs: Array<[string, Record<string, unknown>, string]> = [
    ["d_model 1e12", { d_model: 1e12 }, "d_model"],
    ["num_heads -2", { num_heads: -2 }, "num_heads"],
    ["vocab_size string", { vocab_size: "big" }, "vocab_size"],
  ];
  for (const [name, patch, field] of t5Configs) {
    it(`text encoder config: ${name}`, () => {
      const f = "text_encoder/config.json";
      const raw = { ...JSON.parse(fs.readFileSync(path.join(fixturesDir, "tiny-square", "pipeline", f), "utf8")), ...patch };
      assert.throws(() => parseT5Config(raw, f), (e: unknown) => check(e, ConfigError, { file: f, field }));
    });
  }
  const jsonTexts: Array<[string, string]> = [
    ["empty", ""], ["unterminated string", '{"a": "'], ["control character", '{"a": "\u0001"}'], ["bad escape", '{"a": "\\q"}'],
    ["single quotes", "{'a': 1}"], ["trailing comma", '{"a": 1,}'], ["deep nesting", "[".repeat(100_000)], ["bare word", "{\"a\": nan}"],
  ];
  for (const [name, text] of jsonTexts) {
    it(`config JSON: ${name}`, () => assert.throws(() => parsePythonJson(text, "x/config.json"), (e: unknown) => check(e, ConfigError, { file: "x/config.json" })));
  }

  it("config.json linked to a file outside the checkpoint", async () => {
    const pipe = copyTiny(dir);
    const outside = path.join(dir, "outside.json");
    fs.writeFileSync(outside, "{}");
    const file = path.join(pipe, "transformer", "config.json");
    fs.rmSync(file);
    fs.symlinkSync(outside, file);
    await assert.rejects(PixArtSigmaPipeline.fromPretrained(pipe), (e: unknown) => check(e, PathEscapeError, { file }));
  });
  it("spiece.model linked outside the checkpoint", async () => {
    const pipe = copyTiny(dir);
    const outside = path.join(dir, "outside.model");
    fs.copyFileSync(path.join(pipe, "tokenizer", "spiece.model"), outside);
    const file = path.join(pipe, "tokenizer", "spiece.model");
    fs.rmSync(file);
    fs.symlinkSync(outside, file);
    await assert.rejects(PixArtSigmaPipeline.fromPretrained(pipe), (e: unknown) => check(e, PathEscapeError, { file }));
  });
  it("a symlinked component folder is accepted (the 512 px / 2K repos reuse the 1024 px T5)", async () => {
    const pipe = copyTiny(dir);
    const shared = path.join(dir, "shared-text-encoder");
    fs.rmSync(shared, { recursive: true, force: true });
    fs.renameSync(path.join(pipe, "text_encoder"), shared);
    fs.symlinkSync(shared, path.join(pipe, "text_encoder"));
    const p = await PixArtSigmaPipeline.fromPretrained(pipe);
    await p.dispose();
  });
  const indexCases: Array<[string, unknown, ErrorClass, string]> = [
    ["a shard path with ..", { weight_map: { "a.weight": "../x.safetensors" } }, PathEscapeError, "weight_map.a.weight"],
    ["an absolute shard path", { weight_map: { "a.weight": "/etc/passwd" } }, PathEscapeError, "weight_map.a.weight"],
    ["a Windows absolute shard path", { weight_map: { "a.weight": "C:\\x.safetensors" } }, PathEscapeError, "weight_map.a.weight"],
    ["a shard name that is a number", { weight_map: { "a.weight": 5 } }, ConfigError, "weight_map.a.weight"],
    ["a NUL in the shard name", { weight_map: { "a.weight": "a\u0000.safetensors" } }, ConfigError, "weight_map.a.weight"],
    ["weight_map an array", { weight_map: [] }, ConfigError, "weight_map"],
    ["an empty weight_map", { weight_map: {} }, ConfigError, "weight_map"],
  ];
  for (const [name, index, cls, field] of indexCases) {
    it(`shard index: ${name}`, async () => {
      const comp = path.join(dir, `index-${name.replace(/\W+/g, "-")}`);
      fs.mkdirSync(comp, { recursive: true });
      const file = path.join(comp, "diffusion_pytorch_model.safetensors.index.json");
      fs.writeFileSync(file, JSON.stringify(index));
      await assert.rejects(openWeights(comp), (e: unknown) => check(e, cls, { file, field }));
    });
  }
  const modelIndexCases: Array<[string, string, ErrorClass, Record<string, unknown>]> = [
    ["model_index.json not JSON", "{", ConfigError, {}],
    ["model_index.json an array", "[]", ConfigError, {}],
    ["_class_name a number", '{"_class_name": 5}', ConfigError, { field: "_class_name" }],
    ["a component pair of numbers", '{"_class_name": "PixArtSigmaPipeline", "transformer": [1, 2]}', ConfigError, { field: "transformer" }],
  ];
  for (const [name, text, cls, subject] of modelIndexCases) {
    it(name, async () => {
      const pipe = copyTiny(dir);
      const file = path.join(pipe, "model_index.json");
      fs.writeFileSync(file, text);
      await assert.rejects(PixArtSigmaPipeline.fromPretrained(pipe), (e: unknown) => check(e, cls, { file, ...subject }));
    });
  }
});

describe("hostile corpus: the CLI (bad checkpoints and arguments: exit code, one clear line, no stack trace)", function () {
  this.timeout(300_000);
  const cli = path.join(__dirname, "..", "..", "src", "cli", "main.js");
  let dir: string;
  before(() => { dir = makeTempDir("pixart-corpus-cli-"); });
  after(() => removeTempDir(dir));

  const editJson = (file: string, patch: Record<string, unknown>): void =>
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), ...patch }));
  const cases: Array<[string, (p: string) => string[], number, RegExp]> = [
    ["transformer config sample_size 1e9", (p) => { editJson(path.join(p, "transformer/config.json"), { sample_size: 1e9 }); return []; }, 1,
      /^pixart: ConfigError: .*transformer\/config\.json, field "sample_size"/m],
    ["truncated transformer weights", (p) => { fs.truncateSync(path.join(p, "transformer/diffusion_pytorch_model.safetensors"), 1000); return []; }, 1,
      /^pixart: SafetensorsFormatError: .*transformer\/diffusion_pytorch_model\.safetensors: .*truncated/m],
    ["vae config.json linked to /etc/passwd", (p) => { fs.rmSync(path.join(p, "vae/config.json")); fs.symlinkSync("/etc/passwd", path.join(p, "vae/config.json")); return []; }, 1,
      /^pixart: PathEscapeError: .*vae\/config\.json: .*leaves the checkpoint folder/m],
    ["model_index.json cut short", (p) => { fs.writeFileSync(path.join(p, "model_index.json"), '{"_class_name": '); return []; }, 1,
      /^pixart: ConfigError: .*model_index\.json: malformed JSON/m],
    ["tokenizer_config.json extra_ids 1e9", (p) => { editJson(path.join(p, "tokenizer/tokenizer_config.json"), { extra_ids: 1e9 }); return []; }, 1,
      /^pixart: TokenizerFileError: .*tokenizer_config\.json, field "extra_ids"/m],
    ["--model naming a file", (p) => ["-m", path.join(p, "model_index.json")], 1, /^pixart: PathNotFoundError: .*model_index\.json: .*expected a folder/m],
    ["--height NaN", () => ["--height", "NaN"], 2, /^pixart: --height NaN: expects an integer/m],
    ["--seed 1e400", () => ["--seed", "1e400"], 2, /^pixart: --seed 1e400: expects an integer/m],
  ];
  for (const [name, breakIt, status, pattern] of cases) {
    it(`CLI: ${name}`, () => {
      const p = copyTiny(dir);
      const extra = breakIt(p);
      const model = extra[0] === "-m" ? [] : ["-m", p];
      const r = spawnSync(process.execPath, [cli, "generate", "a cat", "--no-binning", "--steps", "1", "--out", path.join(dir, "x.png"), ...model, ...extra], { encoding: "utf8" });
      assert.strictEqual(r.status, status, r.stderr);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
      assert.ok(!fs.existsSync(path.join(dir, "x.png")), "no image written");
    });
  }
});

/** Rewrites a float32 safetensors file with every tensor in `dtype` (values rounded toward zero: only their finiteness matters here). */
function convertFloats(file: string, dtype: "F32" | "F16" | "BF16"): void {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const size = dtype === "F32" ? 4 : 2;
  const parts: Buffer[] = [];
  let at = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const src = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + n + t.data_offsets[0], bytes.byteOffset + 8 + n + t.data_offsets[1]));
    const out = Buffer.alloc(src.length * size);
    src.forEach((v, i) => {
      if (dtype === "F32") out.writeFloatLE(v, 4 * i);
      else if (dtype === "BF16") out.writeUInt16LE(Buffer.from(Float32Array.of(v).buffer).readUInt32LE(0) >>> 16, 2 * i);
      else out.writeUInt16LE(toHalfBits(v), 2 * i);
    });
    header[name] = { dtype, shape: t.shape, data_offsets: [at, at + out.length] };
    at += out.length;
    parts.push(out);
  }
  writeRawSafetensors(file, header, Buffer.concat(parts));
}

/** float32 → float16 bits, truncating; tiny values flush to ±0 (the fixtures' weights are far below 65504). */
function toHalfBits(v: number): number {
  const x = Buffer.from(Float32Array.of(v).buffer).readUInt32LE(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  return exp <= 0 ? sign : sign | (exp << 10) | ((x >>> 13) & 0x3ff);
}

/** Sets element `index` of tensor `tensor` to the bit pattern of `value` (NaN or ±Infinity) in the tensor's dtype. */
function poke(file: string, tensor: string, index: number, value: number): void {
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const t = (JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { dtype: string; data_offsets: [number, number] }>)[tensor]!;
  const at = 8 + n + t.data_offsets[0];
  const bits32 = Number.isNaN(value) ? 0x7fc00000 : value > 0 ? 0x7f800000 : 0xff800000;
  if (t.dtype === "F32") bytes.writeUInt32LE(bits32 >>> 0, at + 4 * index);
  else if (t.dtype === "BF16") bytes.writeUInt16LE(bits32 >>> 16, at + 2 * index);
  else bytes.writeUInt16LE(Number.isNaN(value) ? 0x7e00 : value > 0 ? 0x7c00 : 0xfc00, at + 2 * index);
  fs.writeFileSync(file, bytes);
}

describe("hostile corpus: non-finite weights (the load-time scan)", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = makeTempDir("pixart-corpus-weights-"); });
  after(() => removeTempDir(dir));

  const load = {
    text_encoder: (d: string, checkWeights?: boolean) => T5EncoderModel.fromPretrained(d, { inProcess: true, ...(checkWeights === undefined ? {} : { checkWeights }) }),
    transformer: (d: string, checkWeights?: boolean) => PixArtTransformer2DModel.fromPretrained(d, { inProcess: true, ...(checkWeights === undefined ? {} : { checkWeights }) }),
    vae: (d: string, checkWeights?: boolean) => AutoencoderKL.fromPretrained(d, { inProcess: true, ...(checkWeights === undefined ? {} : { checkWeights }) }),
  } as const;
  // One mapped tensor per component; the transformer's caption projection is read only by its text graph (whose
  // session is made at the first forward), so it shows that graph's weights are checked at load too.
  const cases: Array<[keyof typeof load, string, string]> = [
    ["text_encoder", "model.safetensors", "encoder.block.0.layer.0.SelfAttention.k.weight"],
    ["transformer", "diffusion_pytorch_model.safetensors", "transformer_blocks.0.ff.net.2.weight"],
    ["transformer", "diffusion_pytorch_model.safetensors", "caption_projection.linear_1.weight"],
    ["vae", "diffusion_pytorch_model.safetensors", "decoder.conv_in.weight"],
  ];
  for (const [component, fileName, tensor] of cases) {
    for (const dtype of ["F32", "F16", "BF16"] as const) {
      for (const value of [NaN, Infinity, -Infinity]) {
        it(`${component} ${dtype}: ${value} in ${tensor}`, async () => {
          const p = copyTiny(dir);
          const file = path.join(p, component, fileName);
          convertFloats(file, dtype);
          poke(file, tensor, 5, value);
          await assert.rejects(load[component](path.join(p, component)),
            (e: unknown) => check(e, NonFiniteWeightError, { file: fs.realpathSync(file), tensor, index: 5, value, message: new RegExp(`${dtype}`) }));
        });
      }
    }
    it(`${component}: checkWeights: false skips the scan (${tensor})`, async () => {
      const p = copyTiny(dir);
      const file = path.join(p, component, fileName);
      poke(file, tensor, 5, NaN);
      const model = await load[component](path.join(p, component), false);
      await model.release();
    });
  }
  it("the F16 and BF16 copies of the fixtures pass the scan (no false positives)", async () => {
    for (const dtype of ["F16", "BF16"] as const) {
      const p = copyTiny(dir);
      for (const [component, fileName] of [["text_encoder", "model.safetensors"], ["transformer", "diffusion_pytorch_model.safetensors"], ["vae", "diffusion_pytorch_model.safetensors"]] as const) {
        convertFloats(path.join(p, component, fileName), dtype);
        await (await load[component](path.join(p, component))).release();
      }
    }
  });
});

describe("hostile corpus: tokenizer files", function () {
  this.timeout(120_000);
  let dir: string;
  let spiece: Buffer;
  before(() => {
    dir = makeTempDir("pixart-corpus-tok-");
    spiece = fs.readFileSync(path.join(fixturesDir, "tiny-square", "pipeline", "tokenizer", "spiece.model"));
  });
  after(() => removeTempDir(dir));

  const vocab = [["<pad>", 0], ["</s>", 0], ["<unk>", 0], ["\u2581a", -1]];
  const tokJsonCases: Array<[string, Record<string, unknown>, string]> = [
    ["vocab missing", { model: { type: "Unigram" } }, "model.vocab"],
    ["vocab empty", { model: { type: "Unigram", vocab: [] } }, "model.vocab"],
    ["a NaN score", { model: { type: "Unigram", vocab: [...vocab, ["b", NaN]] } }, "model.vocab[4]"],
    ["an Infinity score", { model: { type: "Unigram", vocab: [...vocab, ["b", Infinity]] } }, "model.vocab[4]"],
    ["a -Infinity score", { model: { type: "Unigram", vocab: [...vocab, ["b", -Infinity]] } }, "model.vocab[4]"],
    ["a score that is a string", { model: { type: "Unigram", vocab: [...vocab, ["b", "1"]] } }, "model.vocab[4]"],
    ["a piece that is a number", { model: { type: "Unigram", vocab: [...vocab, [5, 0]] } }, "model.vocab[4]"],
    ["an entry that is not a pair", { model: { type: "Unigram", vocab: [...vocab, "b"] } }, "model.vocab[4]"],
    ["a charsmap that is not base64", { model: { type: "Unigram", vocab }, normalizer: { type: "Precompiled", precompiled_charsmap: "@@@" } }, "normalizer.precompiled_charsmap"],
    ["a charsmap whose strings are not UTF-8", { model: { type: "Unigram", vocab }, normalizer: { type: "Precompiled", precompiled_charsmap: Buffer.from([4, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0x28, 0]).toString("base64") } }, "normalizer.precompiled_charsmap"],
  ];
  for (const [name, doc, field] of tokJsonCases) {
    it(`tokenizer.json: ${name}`, async () => {
      const file = path.join(dir, "tokenizer.json");
      await assert.rejects((async () => {
        const json = parseTokenizerJson(doc as never, file);
        return T5Tokenizer.fromTokenizerJson(json, dir);
      })(), (e: unknown) => check(e, TokenizerFileError, { file, field }));
    });
  }

  /** Charsmap blobs: u32 trie size, trie units, pool. */
  const blob = (units: number[], pool: number[]): Uint8Array => {
    const b = Buffer.alloc(4 + 4 * units.length + pool.length);
    b.writeUInt32LE(4 * units.length, 0);
    units.forEach((u, i) => b.writeUInt32LE(u >>> 0, 4 + 4 * i));
    Buffer.from(pool).copy(b, 4 + 4 * units.length);
    return b;
  };
  const charsmapCases: Array<[string, Uint8Array]> = [
    ["3 bytes", new Uint8Array(3)],
    ["trie size 0", blob([], [0])],
    ["trie size past the blob", Buffer.from([255, 255, 0, 0, 1, 2])],
    ["trie size not a multiple of 4", Buffer.from([6, 0, 0, 0, 1, 2, 3, 4, 5, 6])],
    ["pool not UTF-8", blob([0], [0xff, 0xfe, 0])],
    // Root offset 96, so byte "a" (0x61) leads to unit 1, a leaf whose value is unit 1 ^ 2 = 3.
    ["a key whose value is past the pool", blob([96 << 10, 0x161 | (2 << 10), 0, 0x7fffffff], [65, 0])],
    ["a key whose value points inside a string", blob([96 << 10, 0x161 | (2 << 10), 0, 1], [65, 66, 0])],
    ["random bytes", Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24).map((v, i) => (i === 0 ? 0 : i < 4 ? [0, 0x0f, 0][i - 1]! : v))],
  ];
  for (const [name, bytes] of charsmapCases) {
    it(`precompiled charsmap: ${name}`, () => {
      assert.throws(() => new PrecompiledCharsmap(bytes, "spiece.model", "normalizer_spec.precompiled_charsmap"),
        (e: unknown) => check(e, TokenizerFileError, { file: "spiece.model", field: "normalizer_spec.precompiled_charsmap" }));
    });
  }

  const spieceCases: Array<[string, (b: Buffer) => Uint8Array]> = [
    ["empty", () => new Uint8Array(0)],
    ["one byte", () => Uint8Array.of(0x0a)],
    ["truncated in half", (b) => b.subarray(0, b.length >> 1)],
    ["a length prefix past the end", () => Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0x0f)],
    ["a JSON file", () => Buffer.from('{"model": {}}')],
    ["an invalid wire type", () => Uint8Array.of(0x0f, 0x00)],
  ];
  for (const [name, make] of spieceCases) {
    it(`spiece.model: ${name}`, () => {
      assert.throws(() => parseSentencePieceModel(make(spiece), "spiece.model"), (e: unknown) => check(e, TokenizerFileError, { file: "spiece.model" }));
    });
  }
  it("spiece.model: a NaN score", () => {
    // The first piece's score field (float, tag 0x15) is overwritten with NaN.
    const b = Buffer.from(spiece);
    const at = b.indexOf(0x15, b.indexOf(0x12) + 2);
    b.writeFloatLE(NaN, at + 1);
    assert.throws(() => parseSentencePieceModel(b, "spiece.model"), (e: unknown) => check(e, TokenizerFileError, { file: "spiece.model", field: /^pieces\[\d+\]\.score$/ }));
  });

  const configCases: Array<[string, Record<string, unknown>, string]> = [
    ["extra_ids 1e9", { extra_ids: 1e9 }, "extra_ids"],
    ["extra_ids -1", { extra_ids: -1 }, "extra_ids"],
    ["extra_ids 1.5", { extra_ids: 1.5 }, "extra_ids"],
    ["extra_ids a string", { extra_ids: "100" }, "extra_ids"],
    ["eos_token a number", { eos_token: 5 }, "eos_token"],
  ];
  for (const [name, config, field] of configCases) {
    it(`tokenizer_config.json: ${name}`, async () => {
      const d = path.join(dir, `cfg-${name.replace(/\W+/g, "-")}`);
      fs.mkdirSync(d, { recursive: true });
      const file = path.join(d, "tokenizer_config.json");
      fs.writeFileSync(file, JSON.stringify(config));
      await assert.rejects(readTokenizerConfig(d), (e: unknown) => check(e, TokenizerFileError, { file, field }));
    });
  }
});

describe("hostile corpus: call() and encodePrompt() arguments", function () {
  this.timeout(300_000);
  let pipe: PixArtSigmaPipeline;
  before(async () => { pipe = await PixArtSigmaPipeline.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline")); });
  after(async () => { await pipe?.dispose(); });

  const base = { useResolutionBinning: false, numInferenceSteps: 1, prompt: "a cat" };
  const f32t = (dims: number[], fill = 0) => ({ data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(fill), dims });
  const mask = (b: number, l: number) => ({ data: new BigInt64Array(b * l).fill(1n), dims: [b, l] });
  const revoked = (() => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; })();
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["prompt: 5", { prompt: 5 }, "prompt"],
    ["prompt: null", { prompt: null }, "prompt"],
    ["prompt: an object", { prompt: { text: "a" } }, "prompt"],
    ["prompt: a symbol", { prompt: Symbol("s") }, "prompt"],
    ["prompt: [1, 2]", { prompt: [1, 2] }, "prompt"],
    ["prompt: ['a', null]", { prompt: ["a", null] }, "prompt"],
    ["prompt: []", { prompt: [] }, "prompt"],
    ["prompt: a revoked Proxy", { prompt: revoked }, "prompt"],
    ["negativePrompt: 7", { negativePrompt: 7 }, "negativePrompt"],
    ["negativePrompt: [3]", { negativePrompt: [3] }, "negativePrompt"],
    ["height: NaN", { height: NaN }, "height"],
    ["height: NaN with binning", { height: NaN, useResolutionBinning: true }, "height"],
    ["height: 1e9 with binning", { height: 1e9, useResolutionBinning: true }, "height"],
    ["height: 1e9", { height: 1e9 }, "height"],
    ["height: Infinity", { height: Infinity }, "height"],
    ["height: -64", { height: -64 }, "height"],
    ["height: '64'", { height: "64" }, "height"],
    ["width: 1e6", { width: 1e6 }, "width"],
    ["width: 65.5", { width: 65.5 }, "width"],
    ["height × width beyond memory", { height: 16384, width: 16384, numImagesPerPrompt: 64 }, "height"],
    ["numInferenceSteps: 1e6", { numInferenceSteps: 1e6 }, "numInferenceSteps"],
    ["numInferenceSteps: 1001", { numInferenceSteps: 1001 }, "numInferenceSteps"],
    ["numInferenceSteps: NaN", { numInferenceSteps: NaN }, "numInferenceSteps"],
    ["numInferenceSteps: '5'", { numInferenceSteps: "5" }, "numInferenceSteps"],
    ["numInferenceSteps: 0", { numInferenceSteps: 0 }, "numInferenceSteps"],
    ["timesteps: [5, 1e6, -3]", { timesteps: [5, 1e6, -3] }, "timesteps"],
    ["timesteps: [-1]", { timesteps: [-1] }, "timesteps"],
    ["timesteps: [1000]", { timesteps: [1000] }, "timesteps"],
    ["timesteps: ascending", { timesteps: [10, 20] }, "timesteps"],
    ["timesteps: repeated", { timesteps: [20, 20] }, "timesteps"],
    ["timesteps: [NaN]", { timesteps: [NaN] }, "timesteps"],
    ["timesteps: []", { timesteps: [] }, "timesteps"],
    ["timesteps: a string", { timesteps: "999" }, "timesteps"],
    ["timesteps: 1001 entries", { timesteps: Array.from({ length: 1001 }, (_, i) => 1000 - i) }, "timesteps"],
    ["guidanceScale: NaN", { guidanceScale: NaN }, "guidanceScale"],
    ["guidanceScale: Infinity", { guidanceScale: Infinity }, "guidanceScale"],
    ["guidanceScale: '4.5'", { guidanceScale: "4.5" }, "guidanceScale"],
    ["eta: NaN", { eta: NaN }, "eta"],
    ["numImagesPerPrompt: 1e9", { numImagesPerPrompt: 1e9 }, "numImagesPerPrompt"],
    ["numImagesPerPrompt: 0", { numImagesPerPrompt: 0 }, "numImagesPerPrompt"],
    ["numImagesPerPrompt: 1.5", { numImagesPerPrompt: 1.5 }, "numImagesPerPrompt"],
    ["maxSequenceLength: 1e9", { maxSequenceLength: 1e9 }, "maxSequenceLength"],
    ["maxSequenceLength: 0", { maxSequenceLength: 0 }, "maxSequenceLength"],
    ["maxSequenceLength: NaN", { maxSequenceLength: NaN }, "maxSequenceLength"],
    ["latents: data shorter than dims", { latents: { data: new Float32Array(20), dims: [1, 4, 8, 8] } }, "latents"],
    ["latents: data longer than dims", { latents: { data: new Float32Array(1000), dims: [1, 4, 8, 8] } }, "latents"],
    ["latents: NaN", { latents: f32t([1, 4, 8, 8], NaN) }, "latents"],
    ["latents: Infinity", { latents: f32t([1, 4, 8, 8], Infinity) }, "latents"],
    ["latents: a plain array", { latents: { data: [0, 0], dims: [1, 2] } }, "latents"],
    ["latents: Float64Array", { latents: { data: new Float64Array(256), dims: [1, 4, 8, 8] } }, "latents"],
    ["latents: dims with -1", { latents: { data: new Float32Array(256), dims: [1, 4, -8, -8] } }, "latents"],
    ["latents: dims with NaN", { latents: { data: new Float32Array(256), dims: [1, 4, NaN, 8] } }, "latents"],
    ["latents: null", { latents: null }, "latents"],
    ["promptEmbeds: data length mismatch", { prompt: undefined, promptEmbeds: { data: new Float32Array(20), dims: [1, 8, 32] }, promptAttentionMask: mask(1, 8) }, "promptEmbeds"],
    ["promptEmbeds: NaN", { prompt: undefined, promptEmbeds: f32t([1, 8, 32], NaN), promptAttentionMask: mask(1, 8) }, "promptEmbeds"],
    ["promptEmbeds: -Infinity", { prompt: undefined, promptEmbeds: f32t([1, 8, 32], -Infinity), promptAttentionMask: mask(1, 8) }, "promptEmbeds"],
    ["promptAttentionMask: Float32Array", { prompt: undefined, promptEmbeds: f32t([1, 8, 32]), promptAttentionMask: { data: new Float32Array(8), dims: [1, 8] } }, "promptAttentionMask"],
    ["promptAttentionMask: data length mismatch", { prompt: undefined, promptEmbeds: f32t([1, 8, 32]), promptAttentionMask: { data: new BigInt64Array(3), dims: [1, 8] } }, "promptAttentionMask"],
    ["negativePromptEmbeds: NaN", { prompt: undefined, promptEmbeds: f32t([1, 8, 32]), promptAttentionMask: mask(1, 8), negativePromptEmbeds: f32t([1, 8, 32], NaN), negativePromptAttentionMask: mask(1, 8) }, "negativePromptEmbeds"],
  ];
  for (const [name, patch, argument] of cases) {
    it(name, async () => {
      await assert.rejects(pipe.call({ ...base, ...patch } as never), (e: unknown) => check(e, PipelineArgumentError, { argument }));
    });
  }
  it("options: null", async () => {
    await assert.rejects(pipe.call(null as never), (e: unknown) => check(e, PipelineArgumentError, { argument: "options" }));
  });
  it("encodePrompt: prompt 5", async () => {
    await assert.rejects(pipe.encodePrompt(5 as never), (e: unknown) => check(e, PipelineArgumentError, { argument: "prompt" }));
  });
  it("encodePrompt: maxSequenceLength 1e9", async () => {
    await assert.rejects(pipe.encodePrompt("a", { maxSequenceLength: 1e9 }), (e: unknown) => check(e, PipelineArgumentError, { argument: "maxSequenceLength" }));
  });

  it("a stage output with NaN is a NonFiniteTensorError naming the stage and step", () => {
    assert.throws(() => checkFinite("denoise", { data: Float32Array.of(0, NaN), dims: [2] }, 3),
      (e: unknown) => check(e, NonFiniteTensorError, { stage: "denoise", step: 3, index: 1 }));
  });

  it("NaN weights: a NonFiniteWeightError at load; with checkWeights: false, at the first stage they reach (never a black image)", async function () {
    this.timeout(120_000);
    const dir = makeTempDir("pixart-corpus-nan-");
    try {
      const p = copyTiny(dir);
      const file = path.join(p, "vae", "diffusion_pytorch_model.safetensors");
      const bytes = fs.readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      bytes.fill(0xff, 8 + n); // every VAE weight becomes NaN (0xffffffff)
      fs.writeFileSync(file, bytes);
      await assert.rejects(PixArtSigmaPipeline.fromPretrained(p),
        (e: unknown) => check(e, NonFiniteWeightError, { file: fs.realpathSync(file), tensor: /^decoder\./, index: 0 }));
      const broken = await PixArtSigmaPipeline.fromPretrained(p, { checkWeights: false });
      try {
        await assert.rejects(broken.call(base), (e: unknown) => check(e, NonFiniteTensorError, { stage: /decode/ }));
        // The pipeline-level opt-out holds for later loads too.
        delete broken.vae;
        await broken.load("vae");
        // A component's own options override it.
        delete broken.vae;
        await assert.rejects(broken.load("vae", { checkWeights: true }), (e: unknown) => check(e, NonFiniteWeightError, { file: fs.realpathSync(file) }));
      } finally {
        await broken.dispose();
      }
    } finally {
      removeTempDir(dir);
    }
  });

  for (const [name, prompt] of [
    ["a 1 MB prompt without spaces", "a".repeat(1_000_000)],
    ["40,000 emoji", "\u{1F600}".repeat(40_000)],
    ["200,000 'a.' pairs (URL scan)", "a.".repeat(200_000)],
  ] as const) {
    it(`${name} with default caption cleaning finishes (linear-time cleaning and tokenization)`, async () => {
      const warn = console.warn;
      console.warn = () => undefined;
      try {
        const out = await pipe.call({ ...base, prompt, outputType: "latent" });
        assert.ok(out.latents!.data.every(Number.isFinite));
      } finally {
        console.warn = warn;
      }
    });
  }
});
