"""The tiny fixture configurations.

Each config varies what matters to a loader (file layout, storage dtype, shards, class names) and to the graph
code (square and non-square latents, pos-embed interpolation scales 0.5/1/2, head counts, both T5 FFN kinds,
bucket counts, CFG on and off, images per prompt, resolution binning). tools/reference/README.md has the same
information as a table: keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The published PixArt-Sigma-XL-2-1024-MS scheduler_config.json (spec §5.1): every field, nothing more.
PUBLISHED_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "DPMSolverMultistepScheduler",
    "_diffusers_version": "0.22.0.dev0",
    "algorithm_type": "dpmsolver++",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "dynamic_thresholding_ratio": 0.995,
    "euler_at_final": False,
    "lambda_min_clipped": float("-inf"),
    "lower_order_final": True,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "solver_order": 2,
    "solver_type": "midpoint",
    "steps_offset": 0,
    "thresholding": False,
    "timestep_spacing": "linspace",
    "trained_betas": None,
    "use_karras_sigmas": False,
    "use_lu_lambdas": False,
    "variance_type": None,
}

# Keys the released transformer/config.json carries because it was written for Transformer2DModel
# (spec §2.1). PixArtTransformer2DModel ignores them; a loader must too.
TRANSFORMER2D_EXTRA_KEYS: dict[str, Any] = {
    "double_self_attention": False,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "use_linear_projection": False,
}


@dataclass(frozen=True)
class T5Spec:
    d_model: int
    d_kv: int
    num_heads: int
    d_ff: int
    num_layers: int
    feed_forward_proj: str  # "gated-gelu" (T5DenseGatedActDense: wi_0, wi_1, wo) or "relu" (wi, wo)
    relative_attention_num_buckets: int
    relative_attention_max_distance: int
    storage_dtype: str = "float32"
    max_shard_size: int | None = None  # bytes; None writes one model.safetensors


@dataclass(frozen=True)
class TransformerSpec:
    sample_size: int
    num_layers: int
    num_attention_heads: int
    attention_head_dim: int
    interpolation_scale: float
    use_additional_conditions: bool | None
    patch_size: int = 2
    storage_dtype: str = "float32"
    # Write the config the way the released checkpoints do: _class_name "Transformer2DModel" and its extra keys.
    released_class_name: bool = False


@dataclass(frozen=True)
class VaeSpec:
    block_out_channels: tuple[int, ...]
    norm_num_groups: int
    layers_per_block: int = 1
    sample_size: int = 64
    scaling_factor: float = 0.13025
    storage_dtype: str = "float32"


@dataclass(frozen=True)
class T5Stage:
    prompts: tuple[str, ...]
    max_length: int


@dataclass(frozen=True)
class TransformerStage:
    latent_height: int
    latent_width: int
    seq_len: int
    mask_lengths: tuple[int, int]  # real tokens per row; the rest is padding (mask 0)
    timesteps: tuple[int, int]
    timesteps_b: tuple[int, int]


@dataclass(frozen=True)
class VaeTiling:
    """`vae.enable_tiling()` with a smaller tile than sample_size, so a few tiles (and a 1-latent sliver) fit a
    small fixture; the references go to vae-tiling.safetensors."""
    tile_sample_min_size: int
    tile_overlap_factor: float
    batch: int
    latent_height: int
    latent_width: int


@dataclass(frozen=True)
class VaeStage:
    batch: int
    latent_height: int
    latent_width: int
    tiling: VaeTiling | None = None


@dataclass(frozen=True)
class PipelineCall:
    prompt: str | tuple[str, ...]
    negative_prompt: str
    seed: int
    num_inference_steps: int | None
    guidance_scale: float
    height: int | None
    width: int | None
    use_resolution_binning: bool
    num_images_per_prompt: int
    max_sequence_length: int
    timesteps: tuple[int, ...] | None = None  # custom descending timesteps instead of num_inference_steps
    # bs4 is installed but ftfy is not, so clean_caption=True would fall back to False with a warning;
    # the fixtures pass False explicitly so the recorded arguments say what actually ran.
    clean_caption: bool = False

    def kwargs(self) -> dict[str, Any]:
        prompt = self.prompt if isinstance(self.prompt, str) else list(self.prompt)
        return dict(
            prompt=prompt,
            negative_prompt=self.negative_prompt,
            num_inference_steps=self.num_inference_steps,
            timesteps=None if self.timesteps is None else list(self.timesteps),
            guidance_scale=self.guidance_scale,
            height=self.height,
            width=self.width,
            use_resolution_binning=self.use_resolution_binning,
            num_images_per_prompt=self.num_images_per_prompt,
            max_sequence_length=self.max_sequence_length,
            clean_caption=self.clean_caption,
        )


@dataclass(frozen=True)
class TinyConfig:
    name: str
    seed: int
    description: str
    t5: T5Spec
    transformer: TransformerSpec
    vae: VaeSpec
    t5_stage: T5Stage
    transformer_stage: TransformerStage
    vae_stage: VaeStage
    pipeline: PipelineCall
    # "spiece": the released layout (spiece.model + tokenizer_config.json, no tokenizer.json);
    # "tokenizer.json": what transformers 5 save_pretrained writes; "both": tokenizer.json and spiece.model.
    tokenizer_layout: str = "tokenizer.json"
    # Replace the diffusers-written scheduler config by the published field set (absent keys take defaults).
    published_scheduler_config: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


TINY_SQUARE = TinyConfig(
    name="tiny-square",
    seed=1000,
    description="square 8x8 latent at native size, released file layout, T5 gated-gelu, CFG on, 2 images per prompt",
    t5=T5Spec(d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2, feed_forward_proj="gated-gelu",
              relative_attention_num_buckets=32, relative_attention_max_distance=128),
    transformer=TransformerSpec(sample_size=8, num_layers=2, num_attention_heads=2, attention_head_dim=8,
                                interpolation_scale=1, use_additional_conditions=False, released_class_name=True),
    vae=VaeSpec(block_out_channels=(4, 8, 8, 8), norm_num_groups=4),
    t5_stage=T5Stage(
        prompts=("a cat sitting on a table",
                 "An astronaut riding a white horse on the moon, oil painting, highly detailed, 8k"),
        max_length=300,
    ),
    transformer_stage=TransformerStage(latent_height=8, latent_width=8, seq_len=120, mask_lengths=(1, 11),
                                       timesteps=(999, 999), timesteps_b=(0, 500)),
    vae_stage=VaeStage(batch=2, latent_height=6, latent_width=6,
                       tiling=VaeTiling(tile_sample_min_size=32, tile_overlap_factor=0.25, batch=1,
                                        latent_height=7, latent_width=6)),
    pipeline=PipelineCall(
        prompt="A small cactus with a happy face in the Sahara desert.",
        negative_prompt="",
        seed=0,
        num_inference_steps=3,
        guidance_scale=4.5,
        height=None,
        width=None,
        use_resolution_binning=False,
        num_images_per_prompt=2,
        max_sequence_length=300,
    ),
    tokenizer_layout="spiece",
    published_scheduler_config=True,
)

TINY_WIDE = TinyConfig(
    name="tiny-wide",
    seed=2000,
    description="non-square latents, interpolation 0.5, T5 in 3 shards, transformer stored fp16, binning with "
                "resize-and-crop back, CFG off",
    t5=T5Spec(d_model=32, d_kv=4, num_heads=6, d_ff=40, num_layers=3, feed_forward_proj="gated-gelu",
              relative_attention_num_buckets=32, relative_attention_max_distance=128, max_shard_size=40_000),
    transformer=TransformerSpec(sample_size=32, num_layers=2, num_attention_heads=3, attention_head_dim=8,
                                interpolation_scale=0.5, use_additional_conditions=None, storage_dtype="float16"),
    vae=VaeSpec(block_out_channels=(4, 4, 8, 8), norm_num_groups=2),
    t5_stage=T5Stage(
        prompts=("Two children flying over green hills at dawn, watercolor", "", "a red fox"),
        max_length=64,
    ),
    transformer_stage=TransformerStage(latent_height=8, latent_width=12, seq_len=64, mask_lengths=(5, 23),
                                       timesteps=(500, 500), timesteps_b=(999, 1)),
    vae_stage=VaeStage(batch=2, latent_height=4, latent_width=6),
    pipeline=PipelineCall(
        prompt=("Two children flying over green hills at dawn, watercolor",),
        negative_prompt="",
        seed=7,
        num_inference_steps=2,
        guidance_scale=1.0,
        height=78,
        width=50,
        use_resolution_binning=True,
        num_images_per_prompt=1,
        max_sequence_length=64,
    ),
)

TINY_HIRES = TinyConfig(
    name="tiny-hires",
    seed=3000,
    description="sample_size 16, interpolation 2, T5 relu FFN with 8 buckets stored bf16, VAE stored fp16, "
                "2 prompts x 2 images with a negative prompt and custom timesteps, latent not at native size, "
                "tokenizer.json and spiece.model side by side",
    t5=T5Spec(d_model=24, d_kv=8, num_heads=4, d_ff=37, num_layers=2, feed_forward_proj="relu",
              relative_attention_num_buckets=8, relative_attention_max_distance=20, storage_dtype="bfloat16"),
    transformer=TransformerSpec(sample_size=16, num_layers=2, num_attention_heads=4, attention_head_dim=4,
                                interpolation_scale=2, use_additional_conditions=False),
    vae=VaeSpec(block_out_channels=(4, 8, 8, 8), norm_num_groups=2, storage_dtype="float16"),
    t5_stage=T5Stage(
        prompts=("A Vintage Car riding across a desert road at sunset, 35mm film photo, dramatic shadows, "
                 "bokeh, pastel colors, trending on artstation",
                 "ＦＵＬＬＷＩＤＴＨ café ① — “quoted”"),
        max_length=32,
    ),
    transformer_stage=TransformerStage(latent_height=16, latent_width=16, seq_len=64, mask_lengths=(1, 37),
                                       timesteps=(250, 250), timesteps_b=(750, 42)),
    vae_stage=VaeStage(batch=2, latent_height=6, latent_width=4),
    pipeline=PipelineCall(
        prompt=("a red fox", "A vintage car riding across a desert road at sunset, 35mm film photo"),
        negative_prompt="blurry, low quality",
        seed=42,
        num_inference_steps=None,
        timesteps=(600, 400, 250, 100),
        guidance_scale=3.0,
        height=48,
        width=32,
        use_resolution_binning=False,
        num_images_per_prompt=2,
        max_sequence_length=48,
    ),
    tokenizer_layout="both",
)

CONFIGS: tuple[TinyConfig, ...] = (TINY_SQUARE, TINY_WIDE, TINY_HIRES)
