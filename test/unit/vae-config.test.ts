import * as assert from "assert";
import { ConfigError } from "../../src/io/errors";
import type { TensorInfo, WeightSource } from "../../src/io/types";
import { parseAutoencoderKLConfig, vaeScaleFactor, withLegacyAttentionNames } from "../../src/models/autoencoder-kl";

const FILE = "/models/pixart/vae/config.json";

/** vae/config.json of the PixArt-Σ repos (spec §4.1). */
const PIXART_VAE = {
  _class_name: "AutoencoderKL",
  _diffusers_version: "0.18.0.dev0",
  act_fn: "silu",
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  force_upcast: false,
  in_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 512,
  scaling_factor: 0.13025,
  up_block_types: ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
};

function rejects(patch: Record<string, unknown>, field: string, message: RegExp): void {
  assert.throws(() => parseAutoencoderKLConfig({ ...PIXART_VAE, ...patch }, FILE), (e: Error) => {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e.name}: ${e.message}`);
    assert.strictEqual(e.field, field);
    assert.ok(e.message.startsWith(FILE), e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe("AutoencoderKL config", () => {
  it("reads the PixArt-Σ VAE config, with diffusers' defaults for absent keys", () => {
    const c = parseAutoencoderKLConfig(PIXART_VAE, FILE);
    assert.deepStrictEqual(c, {
      blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, latentChannels: 4, outChannels: 3, normNumGroups: 32,
      actFn: "silu", upBlockTypes: PIXART_VAE.up_block_types, scalingFactor: 0.13025, shiftFactor: null, sampleSize: 512,
      usePostQuantConv: true, midBlockAddAttention: true, forceUpcast: false,
    });
    assert.strictEqual(vaeScaleFactor(c), 8);
  });

  it("uses the AutoencoderKL constructor defaults for an empty config", () => {
    const c = parseAutoencoderKLConfig({}, FILE);
    assert.deepStrictEqual(c.blockOutChannels, [64]);
    assert.strictEqual(c.layersPerBlock, 1);
    assert.strictEqual(c.scalingFactor, 0.18215);
    assert.strictEqual(c.sampleSize, 32);
    assert.strictEqual(c.forceUpcast, true);
    assert.strictEqual(vaeScaleFactor(c), 1);
  });

  it("reads shift_factor and a [h, w] sample_size", () => {
    const c = parseAutoencoderKLConfig({ ...PIXART_VAE, shift_factor: 0.0609, sample_size: [1024, 768] }, FILE);
    assert.strictEqual(c.shiftFactor, 0.0609);
    assert.strictEqual(c.sampleSize, 1024);
  });

  it("rejects a config that is not a JSON object", () => {
    assert.throws(() => parseAutoencoderKLConfig([] as unknown as Record<string, unknown>, FILE), ConfigError);
  });

  it("rejects another model class", () => rejects({ _class_name: "AutoencoderTiny" }, "_class_name", /"AutoencoderKL"/));
  it("rejects norm_num_groups that does not divide a block's channels", () =>
    rejects({ norm_num_groups: 24 }, "norm_num_groups", /24, which does not divide 128/));
  it("rejects an activation other than SiLU", () => rejects({ act_fn: "gelu" }, "act_fn", /"silu".*found "gelu"/));
  it("rejects up block types other than UpDecoderBlock2D", () =>
    rejects({ up_block_types: [...PIXART_VAE.up_block_types.slice(1), "AttnUpDecoderBlock2D"] }, "up_block_types", /"AttnUpDecoderBlock2D"/));
  it("rejects an up_block_types list whose length differs from block_out_channels", () =>
    rejects({ up_block_types: PIXART_VAE.up_block_types.slice(1) }, "up_block_types", /\(4\), found 3/));
  it("rejects an empty block_out_channels", () => rejects({ block_out_channels: [] }, "block_out_channels", /non-empty list/));
  it("rejects a negative layers_per_block", () => rejects({ layers_per_block: -1 }, "layers_per_block", /≥ 0/));
  it("rejects a zero scaling_factor", () => rejects({ scaling_factor: 0 }, "scaling_factor", /non-zero/));
  it("rejects a non-numeric shift_factor", () => rejects({ shift_factor: "0.1" }, "shift_factor", /a number/));
  it("rejects a non-boolean use_post_quant_conv", () => rejects({ use_post_quant_conv: 1 }, "use_post_quant_conv", /true or false/));
  it("rejects a non-integer sample_size", () => rejects({ sample_size: 512.5 }, "sample_size", /an integer/));
});

/** An in-memory WeightSource (only names and shapes matter to the aliasing). */
function source(shapes: Record<string, number[]>): WeightSource {
  const info = (name: string): TensorInfo => ({ name, dtype: "F32", shape: shapes[name], file: "/w.safetensors", offset: 0, byteLength: 0 });
  return {
    dir: "/w",
    has: (n) => n in shapes,
    get: (n) => {
      if (!(n in shapes)) throw new Error(`missing ${n}`);
      return info(n);
    },
    names: () => Object.keys(shapes),
  };
}

describe("AutoencoderKL legacy attention names", () => {
  const P = "decoder.mid_block.attentions.0";

  it("answers to_q/to_k/to_v/to_out.0 with the query/key/value/proj_attn tensors, squeezing [C, C, 1, 1]", () => {
    const w = withLegacyAttentionNames(source({
      [`${P}.query.weight`]: [8, 8, 1, 1], [`${P}.query.bias`]: [8],
      [`${P}.key.weight`]: [8, 8], [`${P}.proj_attn.weight`]: [8, 8, 1, 1],
    }), [P]);
    assert.deepStrictEqual(w.get(`${P}.to_q.weight`), { ...w.get(`${P}.to_q.weight`), name: `${P}.query.weight`, shape: [8, 8] });
    assert.strictEqual(w.get(`${P}.to_q.bias`).name, `${P}.query.bias`);
    assert.deepStrictEqual(w.get(`${P}.to_k.weight`).shape, [8, 8]);
    assert.deepStrictEqual(w.get(`${P}.to_out.0.weight`).shape, [8, 8]);
    assert.strictEqual(w.has(`${P}.to_v.weight`), false);
  });

  it("squeezes conv-shaped weights under the current names too, and leaves other 1×1 convs alone", () => {
    const w = withLegacyAttentionNames(source({ [`${P}.to_v.weight`]: [8, 8, 1, 1], "post_quant_conv.weight": [4, 4, 1, 1] }), [P]);
    assert.deepStrictEqual(w.get(`${P}.to_v.weight`).shape, [8, 8]);
    assert.deepStrictEqual(w.get("post_quant_conv.weight").shape, [4, 4, 1, 1]);
  });

  it("prefers the current name when a file has both", () => {
    const w = withLegacyAttentionNames(source({ [`${P}.to_q.weight`]: [8, 8], [`${P}.query.weight`]: [4, 4] }), [P]);
    assert.deepStrictEqual(w.get(`${P}.to_q.weight`).shape, [8, 8]);
  });
});
