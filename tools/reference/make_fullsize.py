"""Writes full-size, randomly initialised PixArt-Σ components in the exact diffusers format, for benchmarks.

Never commit the output (GBs). Shapes are those of the released checkpoints (spec §2.1, §3.1, §4.1):
  transformer   PixArt-Sigma-XL-2-1024-MS transformer: 28 layers, 16 heads × 72, caption 4096 (2.4 GB fp32)
  vae           SDXL VAE: block_out_channels [128, 256, 512, 512], 2 layers per block (335 MB fp32)
  text_encoder  T5 v1.1 XXL encoder: d_model 4096, 24 layers, 64 heads, d_ff 10240 (9.5 GB bf16 / 19 GB fp32)

Usage: .venv/bin/python tools/reference/make_fullsize.py OUT_DIR [--components transformer,vae,text_encoder]
                                                         [--dtype float32|bfloat16|float16]
A component folder that already exists is kept (delete it to regenerate).
"""
import argparse
import os
import time

import torch

TRANSFORMER = dict(
    sample_size=128, num_layers=28, patch_size=2, attention_head_dim=72, num_attention_heads=16, caption_channels=4096,
    in_channels=4, cross_attention_dim=1152, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
    num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    interpolation_scale=2, use_additional_conditions=False,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, norm_num_groups=32,
    sample_size=512, scaling_factor=0.13025, force_upcast=False,
)
T5 = dict(
    d_model=4096, d_kv=64, num_heads=64, d_ff=10240, num_layers=24, relative_attention_num_buckets=32,
    relative_attention_max_distance=128, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6, vocab_size=32128,
    pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, tie_word_embeddings=False,
)


def build(name, dtype):
    torch.manual_seed(0)
    if name == "transformer":
        from diffusers import PixArtTransformer2DModel
        return PixArtTransformer2DModel(**TRANSFORMER).to(dtype)
    if name == "vae":
        from diffusers import AutoencoderKL
        return AutoencoderKL(**VAE).to(dtype)
    if name == "text_encoder":
        from transformers import T5Config, T5EncoderModel
        torch.set_default_dtype(dtype)  # initialise directly in the target dtype: 19 GB fp32 would not fit beside a copy
        try:
            return T5EncoderModel(T5Config(**T5))
        finally:
            torch.set_default_dtype(torch.float32)
    raise SystemExit(f"unknown component {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--components", default="transformer")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    for name in args.components.split(","):
        folder = os.path.join(args.out, name)
        if os.path.isdir(folder):
            print(f"{folder}: exists, kept")
            continue
        start = time.time()
        model = build(name, dtype)
        model.save_pretrained(folder, max_shard_size="10GB")
        params = sum(p.numel() for p in model.parameters())
        del model
        print(f"{folder}: {params:,} parameters, {args.dtype}, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
