import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ConfigError, MissingTensorError, TensorShapeError } from "../../src/io/errors";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-writer";
import { linear } from "../../src/onnx/ops";
import {
  T5EncoderModel, T5InputError, buildT5EncoderGraph, parseT5Config, relativePositionBucket, relativePositionBuckets,
  type T5Config, type T5LinearFn,
} from "../../src/models/t5-encoder";
import { openWeights } from "../../src/io/checkpoint";
import { fixturesDir } from "../helpers/paths";
import { makeTempDir, rejectsWith, removeTempDir } from "../helpers/st-writer";

const FILE = "/models/pixart/text_encoder/config.json";

/** text_encoder/config.json of the PixArt-Σ repos (spec §3.1), as transformers 4 wrote it. */
const PIXART_T5 = {
  architectures: ["T5EncoderModel"], classifier_dropout: 0.0, d_ff: 10240, d_kv: 64, d_model: 4096,
  decoder_start_token_id: 0, dense_act_fn: "gelu_new", dropout_rate: 0.1, eos_token_id: 1,
  feed_forward_proj: "gated-gelu", initializer_factor: 1.0, is_encoder_decoder: true, is_gated_act: true,
  layer_norm_epsilon: 1e-6, model_type: "t5", num_decoder_layers: 24, num_heads: 64, num_layers: 24,
  output_past: true, pad_token_id: 0, relative_attention_max_distance: 128, relative_attention_num_buckets: 32,
  tie_word_embeddings: false, torch_dtype: "float32", transformers_version: "4.21.0", use_cache: true, vocab_size: 32128,
};

function rejects(patch: Record<string, unknown>, field: string, message: RegExp): void {
  assert.throws(() => parseT5Config({ ...PIXART_T5, ...patch }, FILE), (e: Error) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e.name}: ${e.message}`);
    assert.strictEqual(e.field, field);
    assert.ok(e.message.startsWith(FILE), e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** Removes keys from the PixArt config (for testing what transformers derives when they are absent). */
function without(...keys: string[]): Record<string, unknown> {
  const c: Record<string, unknown> = { ...PIXART_T5 };
  for (const k of keys) delete c[k];
  return c;
}

describe("T5 config", () => {
  it("reads the PixArt-Σ T5-XXL config", () => {
    assert.deepStrictEqual(parseT5Config(PIXART_T5, FILE), {
      vocabSize: 32128, dModel: 4096, dKv: 64, numHeads: 64, dFf: 10240, numLayers: 24,
      relativeAttentionNumBuckets: 32, relativeAttentionMaxDistance: 128, layerNormEpsilon: 1e-6,
      feedForwardProj: "gated-gelu", denseActFn: "gelu_new", isGatedAct: true,
    });
  });

  it("reads a transformers 5 config (dtype, tie_word_embeddings true, scale_decoder_outputs)", () => {
    const c = parseT5Config({ ...without("torch_dtype"), dtype: "bfloat16", tie_word_embeddings: true, scale_decoder_outputs: false }, FILE);
    assert.strictEqual(c.denseActFn, "gelu_new");
    assert.strictEqual(c.isGatedAct, true);
  });

  it("uses T5Config's defaults for an empty config (original T5: relu, not gated)", () => {
    assert.deepStrictEqual(parseT5Config({}, FILE), {
      vocabSize: 32128, dModel: 512, dKv: 64, numHeads: 8, dFf: 2048, numLayers: 6,
      relativeAttentionNumBuckets: 32, relativeAttentionMaxDistance: 128, layerNormEpsilon: 1e-6,
      feedForwardProj: "relu", denseActFn: "relu", isGatedAct: false,
    });
  });

  it("derives the activation and gating from feed_forward_proj when dense_act_fn/is_gated_act are absent", () => {
    const derive = (ffp: string) => parseT5Config({ ...without("dense_act_fn", "is_gated_act"), feed_forward_proj: ffp }, FILE);
    assert.deepStrictEqual([derive("gated-gelu").denseActFn, derive("gated-gelu").isGatedAct], ["gelu_new", true]);
    assert.deepStrictEqual([derive("gated-silu").denseActFn, derive("gated-silu").isGatedAct], ["silu", true]);
    assert.deepStrictEqual([derive("gelu").denseActFn, derive("gelu").isGatedAct], ["gelu", false]);
    assert.deepStrictEqual([derive("relu").denseActFn, derive("relu").isGatedAct], ["relu", false]);
  });

  it("accepts mT5 (same encoder modules)", () => {
    assert.strictEqual(parseT5Config({ ...PIXART_T5, model_type: "mt5" }, FILE).numLayers, 24);
  });

  it("rejects another model_type (e.g. umt5, whose blocks each have their own position bias)", () =>
    rejects({ model_type: "umt5" }, "model_type", /"t5", "mt5".*found "umt5"/));
  it("rejects a non-integer d_model", () => rejects({ d_model: 40.5 }, "d_model", /integer/));
  it("rejects a zero num_heads", () => rejects({ num_heads: 0 }, "num_heads", /≥ 1/));
  it("rejects a string d_kv", () => rejects({ d_kv: "64" }, "d_kv", /a number/));
  it("rejects a d_ff that is a list", () => rejects({ d_ff: [10240] }, "d_ff", /a number/));
  it("rejects num_layers 0", () => rejects({ num_layers: 0 }, "num_layers", /≥ 1/));
  it("rejects a non-integer vocab_size", () => rejects({ vocab_size: 3.5 }, "vocab_size", /integer/));
  it("rejects a negative layer_norm_epsilon", () => rejects({ layer_norm_epsilon: -1e-6 }, "layer_norm_epsilon", /≥ 0/));
  it("rejects fewer than 4 relative attention buckets", () =>
    rejects({ relative_attention_num_buckets: 3 }, "relative_attention_num_buckets", /at least 4/));
  it("rejects a max_distance not above the exact buckets (log of it divides)", () =>
    rejects({ relative_attention_max_distance: 8 }, "relative_attention_max_distance", /more than 8/));
  it("rejects a feed_forward_proj that is not gated-ACT or ACT", () =>
    rejects({ feed_forward_proj: "double-gelu" }, "feed_forward_proj", /"gated-\{ACT\}" or "\{ACT\}"/));
  it("rejects a feed_forward_proj with two dashes", () =>
    rejects({ feed_forward_proj: "gated-gelu-x" }, "feed_forward_proj", /"gated-\{ACT\}"/));
  it("rejects is_gated_act contradicting feed_forward_proj", () =>
    rejects({ is_gated_act: false }, "is_gated_act", /contradicts feed_forward_proj "gated-gelu"/));
  it("rejects dense_act_fn contradicting feed_forward_proj", () =>
    rejects({ dense_act_fn: "relu" }, "dense_act_fn", /"relu" contradicts.*means "gelu_new"/));
  it("rejects an activation the graph does not implement", () =>
    rejects({ feed_forward_proj: "gated-mish", dense_act_fn: "mish" }, "dense_act_fn", /activation this graph implements/));
  it("rejects an activation the graph does not implement (derived from feed_forward_proj)", () =>
    assert.throws(() => parseT5Config({ ...without("dense_act_fn"), feed_forward_proj: "gated-tanh" }, FILE),
      (e: ConfigError) => e instanceof ConfigError && e.field === "feed_forward_proj" && /implements/.test(e.message)));
  it("rejects a config that is not a JSON object", () =>
    assert.throws(() => parseT5Config([] as unknown as Record<string, unknown>, FILE), ConfigError));
});

describe("T5 relative position buckets vs torch", () => {
  interface Case { num_buckets: number; max_distance: number; buckets: number[] }
  const doc = JSON.parse(fs.readFileSync(path.join(fixturesDir, "t5", "relative-position-buckets.json"), "utf8")) as {
    max_length: number; cases: Case[];
  };
  const last = doc.max_length - 1;

  it("has the (32, 128) T5 v1.1 case and the tiny configs' cases", () => {
    const pairs = doc.cases.map((c) => `${c.num_buckets}/${c.max_distance}`);
    for (const p of ["32/128", "8/20"]) assert.ok(pairs.includes(p), `fixture lacks ${p}: ${pairs.join(", ")}`);
  });

  for (const c of doc.cases) {
    it(`${c.num_buckets} buckets, max distance ${c.max_distance}: every rel in ±${last}`, () => {
      const wrong: string[] = [];
      for (let rel = -last; rel <= last; rel++) {
        const got = relativePositionBucket(rel, c.num_buckets, c.max_distance);
        if (got !== c.buckets[rel + last]) wrong.push(`rel ${rel}: ${got} (torch ${c.buckets[rel + last]})`);
      }
      assert.deepStrictEqual(wrong, []);
    });
  }

  it("lays out [L, L] tables as torch does (row = query, column = key) for L = 1, 7, 300, 512", () => {
    const c = doc.cases[0];
    for (const length of [1, 7, 300, 512]) {
      const t = relativePositionBuckets(length, c.num_buckets, c.max_distance);
      assert.strictEqual(t.length, length * length);
      for (let q = 0; q < length; q += Math.max(1, length >> 4)) {
        for (let k = 0; k < length; k++) assert.strictEqual(Number(t[q * length + k]), c.buckets[k - q + last], `L ${length}, q ${q}, k ${k}`);
      }
    }
  });
});

/** A tiny random T5 checkpoint folder; `edit` may rename, reshape or drop tensors before writing. */
async function writeTinyT5(dir: string, raw: Record<string, unknown>, edit: (t: Map<string, number[]>) => void = () => {}): Promise<T5Config> {
  const config = parseT5Config(raw, "config.json");
  const { dModel: d, dFf: ff, numHeads: h, dKv } = config;
  const shapes = new Map<string, number[]>([["shared.weight", [config.vocabSize, d]], ["encoder.final_layer_norm.weight", [d]]]);
  shapes.set("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [config.relativeAttentionNumBuckets, h]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `encoder.block.${i}.layer`;
    for (const m of ["q", "k", "v"]) shapes.set(`${p}.0.SelfAttention.${m}.weight`, [h * dKv, d]);
    shapes.set(`${p}.0.SelfAttention.o.weight`, [d, h * dKv]);
    shapes.set(`${p}.0.layer_norm.weight`, [d]);
    for (const m of config.isGatedAct ? ["wi_0", "wi_1"] : ["wi"]) shapes.set(`${p}.1.DenseReluDense.${m}.weight`, [ff, d]);
    shapes.set(`${p}.1.DenseReluDense.wo.weight`, [d, ff]);
    shapes.set(`${p}.1.layer_norm.weight`, [d]);
  }
  edit(shapes);
  let seed = 1;
  const tensors: TensorToWrite[] = [...shapes].map(([name, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5);
    return { name, dtype: "F32", shape, data };
  });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(raw));
  await writeSafetensors(path.join(dir, "model.safetensors"), tensors);
  return config;
}

const TINY = { ...PIXART_T5, d_model: 8, d_kv: 3, num_heads: 2, d_ff: 5, num_layers: 2, vocab_size: 11 };

describe("T5 graph build and forward arguments", () => {
  let dir: string;
  beforeEach(() => { dir = makeTempDir("pixart-t5-"); });
  afterEach(() => removeTempDir(dir));

  const build = async () => buildT5EncoderGraph(parseT5Config(TINY, "config.json"), await openWeights(dir));

  it("names the tensor and the file when a projection has the wrong shape", async () => {
    await writeTinyT5(dir, TINY, (t) => t.set("encoder.block.1.layer.0.SelfAttention.k.weight", [6, 7]));
    const e = await rejectsWith(build, TensorShapeError, ["encoder.block.1.layer.0.SelfAttention.k.weight", "model.safetensors", "[6, 8]", "[6, 7]"]);
    assert.strictEqual(e.tensor, "encoder.block.1.layer.0.SelfAttention.k.weight");
  });

  it("rejects an embedding whose rows differ from vocab_size", async () => {
    await writeTinyT5(dir, TINY, (t) => t.set("shared.weight", [12, 8]));
    await rejectsWith(build, TensorShapeError, ["shared.weight", "[11, 8]", "[12, 8]"]);
  });

  it("rejects a relative attention bias with the wrong number of heads", async () => {
    await writeTinyT5(dir, TINY, (t) => t.set("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [32, 3]));
    await rejectsWith(build, TensorShapeError, ["relative_attention_bias.weight", "[32, 2]"]);
  });

  it("names a missing FFN weight (a gated config over an ungated checkpoint)", async () => {
    await writeTinyT5(dir, TINY, (t) => {
      for (const i of [0, 1]) {
        t.delete(`encoder.block.${i}.layer.1.DenseReluDense.wi_0.weight`);
        t.delete(`encoder.block.${i}.layer.1.DenseReluDense.wi_1.weight`);
        t.set(`encoder.block.${i}.layer.1.DenseReluDense.wi.weight`, [5, 8]);
      }
    });
    await rejectsWith(build, MissingTensorError, ["encoder.block.0.layer.1.DenseReluDense.wi_0.weight"]);
  });

  it("reads the embedding from encoder.embed_tokens.weight when shared.weight is not stored", async () => {
    await writeTinyT5(dir, TINY, (t) => {
      t.set("encoder.embed_tokens.weight", t.get("shared.weight")!);
      t.delete("shared.weight");
    });
    const built = await build();
    assert.deepStrictEqual(built.inputNames, ["input_ids", "attention_mask", "position_buckets"]);
  });

  it("sends every projection through the linear function it is given (the quantization swap point)", async () => {
    await writeTinyT5(dir, TINY);
    const prefixes: string[] = [];
    const counting: T5LinearFn = (g, x, prefix, shape) => {
      prefixes.push(prefix);
      return linear(g, x, prefix, { bias: false, shape });
    };
    buildT5EncoderGraph(parseT5Config(TINY, "config.json"), await openWeights(dir), { linear: counting });
    // 2 layers × (q, k, v, o, wi_0, wi_1, wo)
    assert.strictEqual(prefixes.length, 14);
    assert.ok(prefixes.includes("encoder.block.1.layer.1.DenseReluDense.wo"));
  });

  describe("forward", () => {
    let model: T5EncoderModel;
    beforeEach(async () => {
      await writeTinyT5(dir, TINY);
      model = await T5EncoderModel.fromPretrained(dir);
    });
    afterEach(() => model.release());

    const ids = (v: number[], dims = [1, v.length]) => ({ data: BigInt64Array.from(v.map(BigInt)), dims });

    it("returns [B, L, d_model]", async () => {
      const out = await model.forward({ inputIds: ids([5, 1, 0, 0, 3, 1, 0, 0], [2, 4]), attentionMask: ids([1, 1, 0, 0, 1, 1, 0, 0], [2, 4]) });
      assert.deepStrictEqual(out.dims, [2, 4, 8]);
      assert.ok(out.data.every(Number.isFinite));
    });

    it("rejects a mask of another shape", () =>
      rejectsWith(model.forward({ inputIds: ids([5, 1, 0]), attentionMask: ids([1, 1]) }), T5InputError, ["attentionMask", "[1, 3]", "[1, 2]"]));
    it("rejects 1-D input ids", () =>
      rejectsWith(model.forward({ inputIds: ids([5, 1], [2]), attentionMask: ids([1, 1], [2]) }), T5InputError, ["inputIds", "[batch, length]"]));
    it("rejects an id outside the vocabulary", () =>
      rejectsWith(model.forward({ inputIds: ids([5, 11]), attentionMask: ids([1, 1]) }), T5InputError, ["inputIds", "[0, 11)", "11 at index 1"]));
    it("rejects a negative id", () =>
      rejectsWith(model.forward({ inputIds: ids([-1, 1]), attentionMask: ids([1, 1]) }), T5InputError, ["inputIds", "-1 at index 0"]));
    it("rejects mask values other than 0 and 1", () =>
      rejectsWith(model.forward({ inputIds: ids([5, 1]), attentionMask: ids([1, 2]) }), T5InputError, ["attentionMask", "0 or 1", "2 at index 1"]));
  });
});
