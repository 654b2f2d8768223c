"""Build the random tiny components of one config and save them as a diffusers pipeline folder.

Weights are drawn with fixed torch seeds. Parameters that the libraries initialise to a constant (LayerNorm and
GroupNorm weights of 1, zero biases) are then perturbed with their own fixed seed, so that every parameter
changes the output and a test can catch an engine that ignores or swaps one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import torch

from configs import PUBLISHED_SCHEDULER_CONFIG, TRANSFORMER2D_EXTRA_KEYS, TinyConfig
from train_tokenizer import EXTRA_IDS, PIECE_COUNT, SPIECE_MODEL

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# The T5 embedding has more rows than the tokenizer has ids, rounded up to a multiple of 128 like
# T5's 32100 -> 32128.
T5_VOCAB_SIZE = -(-(PIECE_COUNT + EXTRA_IDS) // 128) * 128


def perturb_constant_parameters(module: torch.nn.Module, seed: int, scale: float = 0.2) -> list[str]:
    """Add seeded noise to every parameter whose entries are all equal; return their names."""
    generator = torch.Generator().manual_seed(seed)
    changed = []
    with torch.no_grad():
        for name, param in module.named_parameters():
            flat = param.detach().reshape(-1)
            if flat.numel() > 0 and bool(torch.all(flat == flat[0])):
                param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * scale)
                changed.append(name)
    return changed


def load_tokenizer():
    """The T5Tokenizer that transformers builds from the committed spiece.model (the released layout)."""
    from transformers import T5Tokenizer

    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(SPIECE_MODEL, os.path.join(folder, "spiece.model"))
        tokenizer = T5Tokenizer.from_pretrained(folder, extra_ids=EXTRA_IDS)
    if len(tokenizer) != PIECE_COUNT + EXTRA_IDS:
        raise RuntimeError(f"tokenizer has {len(tokenizer)} ids, expected {PIECE_COUNT + EXTRA_IDS}")
    return tokenizer


def build_text_encoder(cfg: TinyConfig):
    from transformers import T5Config, T5EncoderModel

    spec = cfg.t5
    config = T5Config(
        vocab_size=T5_VOCAB_SIZE,
        d_model=spec.d_model,
        d_kv=spec.d_kv,
        num_heads=spec.num_heads,
        d_ff=spec.d_ff,
        num_layers=spec.num_layers,
        num_decoder_layers=spec.num_layers,
        feed_forward_proj=spec.feed_forward_proj,
        relative_attention_num_buckets=spec.relative_attention_num_buckets,
        relative_attention_max_distance=spec.relative_attention_max_distance,
        layer_norm_epsilon=1e-6,
        dropout_rate=0.1,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(cfg.seed + 1)
    model = T5EncoderModel(config).eval()
    perturb_constant_parameters(model, cfg.seed + 11)
    return model


def build_transformer(cfg: TinyConfig):
    from diffusers import PixArtTransformer2DModel

    spec = cfg.transformer
    inner = spec.num_attention_heads * spec.attention_head_dim
    torch.manual_seed(cfg.seed + 2)
    model = PixArtTransformer2DModel(
        num_attention_heads=spec.num_attention_heads,
        attention_head_dim=spec.attention_head_dim,
        in_channels=4,
        out_channels=8,
        num_layers=spec.num_layers,
        dropout=0.0,
        norm_num_groups=32,
        cross_attention_dim=inner,
        attention_bias=True,
        sample_size=spec.sample_size,
        patch_size=spec.patch_size,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        upcast_attention=False,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
        interpolation_scale=spec.interpolation_scale,
        use_additional_conditions=spec.use_additional_conditions,
        caption_channels=cfg.t5.d_model,
    ).eval()
    perturb_constant_parameters(model, cfg.seed + 12)
    return model


def build_vae(cfg: TinyConfig):
    from diffusers import AutoencoderKL

    spec = cfg.vae
    blocks = len(spec.block_out_channels)
    torch.manual_seed(cfg.seed + 3)
    model = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=spec.block_out_channels,
        layers_per_block=spec.layers_per_block,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=spec.norm_num_groups,
        sample_size=spec.sample_size,
        scaling_factor=spec.scaling_factor,
        force_upcast=False,
    ).eval()
    perturb_constant_parameters(model, cfg.seed + 13)
    return model


def build_scheduler():
    from diffusers import DPMSolverMultistepScheduler

    fields = {k: v for k, v in PUBLISHED_SCHEDULER_CONFIG.items() if not k.startswith("_")}
    return DPMSolverMultistepScheduler(**fields)


def save_pipeline(cfg: TinyConfig, folder: str) -> None:
    """Build every component and write the pipeline folder, then adjust the layout the config asks for."""
    from diffusers import PixArtSigmaPipeline

    text_encoder = build_text_encoder(cfg).to(DTYPES[cfg.t5.storage_dtype])
    transformer = build_transformer(cfg).to(DTYPES[cfg.transformer.storage_dtype])
    vae = build_vae(cfg).to(DTYPES[cfg.vae.storage_dtype])
    pipe = PixArtSigmaPipeline(
        tokenizer=load_tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=build_scheduler(),
    )
    if os.path.exists(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    if cfg.t5.max_shard_size is not None:
        write_sharded_text_encoder(text_encoder, os.path.join(folder, "text_encoder"), cfg.t5.max_shard_size)
    if cfg.tokenizer_layout in ("spiece", "both"):
        tokenizer_folder = os.path.join(folder, "tokenizer")
        shutil.copyfile(SPIECE_MODEL, os.path.join(tokenizer_folder, "spiece.model"))
        if cfg.tokenizer_layout == "spiece":
            os.remove(os.path.join(tokenizer_folder, "tokenizer.json"))
    if cfg.published_scheduler_config:
        write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), PUBLISHED_SCHEDULER_CONFIG)
    if cfg.transformer.released_class_name:
        use_released_transformer_class_name(folder)


def write_sharded_text_encoder(model, folder: str, max_shard_size: int) -> None:
    shutil.rmtree(folder)
    model.save_pretrained(folder, max_shard_size=max_shard_size, safe_serialization=True)
    shards = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if not os.path.exists(os.path.join(folder, "model.safetensors.index.json")) or len(shards) < 2:
        raise RuntimeError(f"expected a shard index and 2+ shards in {folder}, found {shards}")


def use_released_transformer_class_name(folder: str) -> None:
    """Name the transformer class as the released checkpoints do; diffusers remaps it on load."""
    config_path = os.path.join(folder, "transformer", "config.json")
    config = read_json(config_path)
    config["_class_name"] = "Transformer2DModel"
    config.update(TRANSFORMER2D_EXTRA_KEYS)
    write_json(config_path, dict(sorted(config.items())))
    index_path = os.path.join(folder, "model_index.json")
    index = read_json(index_path)
    index["transformer"] = ["diffusers", "Transformer2DModel"]
    write_json(index_path, index)


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
        f.write("\n")
