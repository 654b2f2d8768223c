/**
 * Random-weight diffusers checkpoints of any size, written at test time (never committed): a pipeline folder
 * with a PixArt transformer, for memory tests that need hundreds of MB of real, loadable weights.
 */
import * as fs from "fs";
import * as path from "path";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-writer";
import { fixturesDir } from "./paths";

export interface TransformerShape {
  layers: number;
  heads: number;
  headDim: number;
  captionChannels: number;
  sampleSize: number;
  /** Stored dtype of the weights (default F32). F16 is what a GPU keeps 16-bit and casts per layer at run time. */
  dtype?: "F32" | "F16";
}

/** Tensor name → shape of a PixArtTransformer2DModel state dict (spec §2.9). */
export function transformerWeightShapes(s: TransformerShape): Map<string, number[]> {
  const d = s.heads * s.headDim;
  const shapes = new Map<string, number[]>();
  const linear = (name: string, out: number, inp: number) => {
    shapes.set(`${name}.weight`, [out, inp]);
    shapes.set(`${name}.bias`, [out]);
  };
  shapes.set("pos_embed.proj.weight", [d, 4, 2, 2]);
  shapes.set("pos_embed.proj.bias", [d]);
  linear("caption_projection.linear_1", d, s.captionChannels);
  linear("caption_projection.linear_2", d, d);
  linear("adaln_single.emb.timestep_embedder.linear_1", d, 256);
  linear("adaln_single.emb.timestep_embedder.linear_2", d, d);
  linear("adaln_single.linear", 6 * d, d);
  for (let i = 0; i < s.layers; i++) {
    const b = `transformer_blocks.${i}`;
    shapes.set(`${b}.scale_shift_table`, [6, d]);
    for (const attn of ["attn1", "attn2"]) for (const p of ["to_q", "to_k", "to_v", "to_out.0"]) linear(`${b}.${attn}.${p}`, d, d);
    linear(`${b}.ff.net.0.proj`, 4 * d, d);
    linear(`${b}.ff.net.2`, d, 4 * d);
  }
  shapes.set("scale_shift_table", [2, d]);
  linear("proj_out", 2 * 2 * 8, d);
  return shapes;
}

/** The same tensor stored as float16 (round to nearest even; the values here are small normals, no overflow). */
function toF16(t: TensorToWrite): TensorToWrite {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const half = (v: number): number => {
    f32[0] = v;
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    if (exp <= 0) return sign; // below the normal range: flush to zero (not reached by these weights)
    let mant = x & 0x7fffff;
    let e = exp;
    const rest = mant & 0x1fff;
    mant >>>= 13;
    if (rest > 0x1000 || (rest === 0x1000 && (mant & 1))) {
      mant++;
      if (mant === 0x400) { mant = 0; e++; }
    }
    return sign | (e << 10) | mant;
  };
  return {
    name: t.name, dtype: "F16", shape: t.shape,
    data: async () => {
      const src = (await (t.data as () => Float32Array | Promise<Float32Array>)()) as Float32Array;
      const out = new Uint16Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = half(src[i]);
      return out;
    },
  };
}

/** Small deterministic pseudo-random values (xorshift), produced lazily so multi-GB files never sit in memory. */
function randomTensor(name: string, shape: number[], seed: number): TensorToWrite {
  const count = shape.reduce((a, b) => a * b, 1);
  const scale = 1 / Math.sqrt(shape[shape.length - 1]);
  return {
    name, dtype: "F32", shape,
    data: () => {
      const out = new Float32Array(count);
      let x = (seed * 2654435761) >>> 0 || 1;
      for (let i = 0; i < count; i++) {
        x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
        out[i] = ((x / 4294967296) * 2 - 1) * scale;
      }
      return out;
    },
  };
}

/**
 * Writes `<dir>/model_index.json`, `scheduler/` (copied from the tiny fixture) and `transformer/`.
 * Returns the transformer's weight bytes.
 */
export async function writeTransformerPipeline(dir: string, s: TransformerShape): Promise<number> {
  fs.mkdirSync(path.join(dir, "transformer"), { recursive: true });
  fs.mkdirSync(path.join(dir, "scheduler"), { recursive: true });
  const tiny = path.join(fixturesDir, "tiny-square", "pipeline");
  fs.copyFileSync(path.join(tiny, "scheduler", "scheduler_config.json"), path.join(dir, "scheduler", "scheduler_config.json"));
  fs.writeFileSync(path.join(dir, "model_index.json"), JSON.stringify({
    _class_name: "PixArtSigmaPipeline", scheduler: ["diffusers", "DPMSolverMultistepScheduler"], transformer: ["diffusers", "PixArtTransformer2DModel"],
  }));
  const d = s.heads * s.headDim;
  fs.writeFileSync(path.join(dir, "transformer", "config.json"), JSON.stringify({
    _class_name: "PixArtTransformer2DModel", num_attention_heads: s.heads, attention_head_dim: s.headDim, num_layers: s.layers,
    caption_channels: s.captionChannels, cross_attention_dim: d, sample_size: s.sampleSize, interpolation_scale: 1,
    use_additional_conditions: false, in_channels: 4, out_channels: 8, patch_size: 2,
  }));
  const shapes = transformerWeightShapes(s);
  const f16 = s.dtype === "F16";
  const tensors = [...shapes].map(([name, shape], i) => (f16 ? toF16 : (t: TensorToWrite) => t)(randomTensor(name, shape, i + 1)));
  await writeSafetensors(path.join(dir, "transformer", "diffusion_pytorch_model.safetensors"), tensors);
  return [...shapes.values()].reduce((a, shape) => a + (f16 ? 2 : 4) * shape.reduce((x, y) => x * y, 1), 0);
}
