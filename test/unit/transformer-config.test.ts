import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ConfigError, TensorShapeError, MissingTensorError } from "../../src/io/errors";
import { openWeights } from "../../src/io/checkpoint";
import { writeSafetensors } from "../../src/io/safetensors-writer";
import { buildPixArtTransformerGraph, parsePixArtTransformerConfig, PixArtTransformer2DModel, sincosPosEmbed, TransformerInputError } from "../../src/models/pixart-transformer-2d";
import { fixturesDir } from "../helpers/paths";
import { transformerWeightShapes } from "../helpers/synthetic-checkpoint";

/** The released PixArt-Sigma-XL-2-1024-MS transformer config (spec §2.1). */
const RELEASED = {
  _class_name: "Transformer2DModel", activation_fn: "gelu-approximate", attention_bias: true, attention_head_dim: 72,
  attention_type: "default", caption_channels: 4096, cross_attention_dim: 1152, double_self_attention: false, dropout: 0.0,
  in_channels: 4, interpolation_scale: 2, norm_elementwise_affine: false, norm_eps: 1e-6, norm_num_groups: 32,
  norm_type: "ada_norm_single", num_attention_heads: 16, num_embeds_ada_norm: 1000, num_layers: 28, num_vector_embeds: null,
  only_cross_attention: false, out_channels: 8, patch_size: 2, sample_size: 128, upcast_attention: false,
  use_additional_conditions: false, use_linear_projection: false, some_future_key: 1,
};

function refuses(raw: Record<string, unknown>, field: string, pattern: RegExp): void {
  assert.throws(() => parsePixArtTransformerConfig(raw, "transformer/config.json"), (e: unknown) =>
    e instanceof ConfigError && e.field === field && pattern.test(e.message) && e.message.includes("transformer/config.json"));
}

describe("PixArtTransformer2DModel config", () => {
  it("reads the released 1024-MS config (class name Transformer2DModel, unknown keys ignored)", () => {
    const c = parsePixArtTransformerConfig(RELEASED, "config.json");
    assert.deepStrictEqual([c.innerDim, c.numLayers, c.sampleSize, c.interpolationScale, c.captionChannels, c.outChannels, c.ffInnerDim],
      [1152, 28, 128, 2, 4096, 8, 4608]);
  });
  it("defaults interpolation_scale like diffusers: max(sample_size // 64, 1)", () => {
    const { interpolation_scale: _, ...rest } = RELEASED;
    assert.strictEqual(parsePixArtTransformerConfig({ ...rest, sample_size: 256 }, "c").interpolationScale, 4);
    assert.strictEqual(parsePixArtTransformerConfig({ ...rest, sample_size: 32 }, "c").interpolationScale, 1);
  });
  it("refuses cross_attention_dim ≠ heads × head dim (diffusers fails later inside attn2)", () =>
    refuses({ ...RELEASED, cross_attention_dim: 1024 }, "cross_attention_dim", /16 × 72 = 1152, found 1024/));
  it("refuses another class", () => refuses({ ...RELEASED, _class_name: "UNet2DConditionModel" }, "_class_name", /PixArtTransformer2DModel/));
  it("refuses another norm_type", () => refuses({ ...RELEASED, norm_type: "layer_norm" }, "norm_type", /ada_norm_single/));
  it("refuses PixArt-α micro-conditioning", () => refuses({ ...RELEASED, use_additional_conditions: true }, "use_additional_conditions", /not supported/));
  it("refuses a non-integer head count", () => refuses({ ...RELEASED, num_attention_heads: 2.5 }, "num_attention_heads", /integer/));
  it("refuses an unknown activation", () => refuses({ ...RELEASED, activation_fn: "geglu" }, "activation_fn", /gelu-approximate/));

  describe("weights that do not fit the config", () => {
    let dir: string;
    const shape = { layers: 1, heads: 2, headDim: 4, captionChannels: 6, sampleSize: 8 };
    const config = { ...RELEASED, num_layers: 1, num_attention_heads: 2, attention_head_dim: 4, caption_channels: 6, cross_attention_dim: 8, sample_size: 8 };
    before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-trcfg-")); });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = async (name: string, edit: (m: Map<string, number[]>) => void) => {
      const shapes = transformerWeightShapes(shape);
      edit(shapes);
      const folder = path.join(dir, name);
      fs.mkdirSync(folder);
      await writeSafetensors(path.join(folder, "diffusion_pytorch_model.safetensors"),
        [...shapes].map(([n, s]) => ({ name: n, dtype: "F32" as const, shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) })));
      return openWeights(folder);
    };
    it("a wrong-shaped tensor → TensorShapeError naming the tensor, the file and both shapes", async () => {
      const weights = await write("bad-shape", (m) => m.set("transformer_blocks.0.attn2.to_k.weight", [8, 5]));
      assert.throws(() => buildPixArtTransformerGraph(parsePixArtTransformerConfig(config, "c"), weights), (e: unknown) =>
        e instanceof TensorShapeError && /transformer_blocks\.0\.attn2\.to_k\.weight/.test(e.message) && /\[8, 8\]/.test(e.message) &&
        /\[8, 5\]/.test(e.message) && e.message.includes("diffusion_pytorch_model.safetensors"));
    });
    it("a missing tensor → MissingTensorError naming it", async () => {
      const weights = await write("missing", (m) => m.delete("proj_out.bias"));
      assert.throws(() => buildPixArtTransformerGraph(parsePixArtTransformerConfig(config, "c"), weights),
        (e: unknown) => e instanceof MissingTensorError && /proj_out\.bias/.test(e.message));
    });
  });
});

describe("PixArtTransformer2DModel.forward input checks", () => {
  it("refuses odd latent sides and mismatched batches with the argument named", async () => {
    const model = await PixArtTransformer2DModel.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline", "transformer"));
    try {
      const mask = { data: new BigInt64Array(2 * 3).fill(1n), dims: [2, 3] };
      const text = { data: new Float32Array(2 * 3 * 32), dims: [2, 3, 32] };
      await assert.rejects(model.forward({ hiddenStates: { data: new Float32Array(2 * 4 * 7 * 8), dims: [2, 4, 7, 8] }, encoderHiddenStates: text,
        encoderAttentionMask: mask, timestep: [1, 1] }), (e: unknown) => e instanceof TransformerInputError && e.argument === "hiddenStates");
      await assert.rejects(model.forward({ hiddenStates: { data: new Float32Array(2 * 4 * 8 * 8), dims: [2, 4, 8, 8] }, encoderHiddenStates: text,
        encoderAttentionMask: mask, timestep: [1] }), (e: unknown) => e instanceof TransformerInputError && e.argument === "timestep");
    } finally {
      await model.release();
    }
  });
});

describe("sincosPosEmbed", () => {
  it("puts the column (x) coordinate in the first half and the row (y) in the second", () => {
    const pe = sincosPosEmbed(8, 2, 3, 2, 1); // rows 2, cols 3, base 2: x_j = j·2/3, y_i = i·2/2
    const row = (i: number, j: number) => Array.from(pe.subarray((i * 3 + j) * 8, (i * 3 + j + 1) * 8));
    const x = Math.fround(Math.fround(2 / Math.fround(3 / 2)));
    assert.deepStrictEqual(row(1, 2).slice(0, 4).map((v) => Math.fround(v)), [Math.sin(x), Math.sin(x / 100), Math.cos(x), Math.cos(x / 100)].map(Math.fround));
    assert.deepStrictEqual(row(1, 2).slice(4), [Math.sin(1), Math.sin(0.01), Math.cos(1), Math.cos(0.01)].map(Math.fround));
  });
});
