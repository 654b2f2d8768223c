"""Compute the reference tensors of one config from its saved (and reloaded, fp32) pipeline folder.

Every stage runs the real diffusers/transformers module on inputs drawn from a seeded torch.Generator, so the
references depend only on the saved checkpoint, the config and the library versions.
"""

from __future__ import annotations

from typing import Any

import torch

from configs import TinyConfig

# Texts whose token ids are recorded in reference.json, for the tokenizer port: casing, punctuation,
# whitespace runs, NFKC folding, unknown characters, special-token strings and the empty prompt.
TOKENIZER_CASES = (
    "a cat sitting on a table",
    "A Small Cactus with a happy face in the Sahara desert.",
    "",
    "   leading and  trailing   spaces   ",
    "tab\tand\nnewline",
    "ＦＵＬＬＷＩＤＴＨ ① ﬁne ½ café naïve Zürich",
    "“quoted” — dashes – and… ellipsis",
    "emoji 😊 and unknown characters ✓ 漢字",
    "a,b.c/d:e;f!g?h",
    "numbers 0 12 345 6789 3.14 1e-4",
    "literal </s> and <extra_id_0> and <extra_id_99> and <pad> and <unk>",
    "x" * 40,
)


def load_pipeline(folder: str):
    from diffusers import PixArtSigmaPipeline

    pipe = PixArtSigmaPipeline.from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tokenizer_cases(tokenizer) -> list[dict[str, Any]]:
    """Ids from the pipeline's tokenizer (what diffusers uses) and from plain SentencePiece plus EOS.

    The two agree except where the text contains special-token strings, which transformers splits out first.
    The folder's tokenizer must also agree with a T5Tokenizer converted from spiece.model alone, so the
    tokenizer.json and spiece.model layouts of the fixtures are interchangeable.
    """
    import sentencepiece as spm

    from components import load_tokenizer
    from train_tokenizer import SPIECE_MODEL

    processor = spm.SentencePieceProcessor(model_file=SPIECE_MODEL)
    from_spiece = load_tokenizer()
    cases = []
    for text in TOKENIZER_CASES:
        ids = tokenizer(text).input_ids
        if from_spiece(text).input_ids != ids:
            raise RuntimeError(f"tokenizer folder and spiece.model disagree on {text!r}")
        cases.append({"text": text, "input_ids": ids, "sentencepiece_ids": processor.encode(text) + [1]})
    return cases


@torch.no_grad()
def t5_stage(pipe, cfg: TinyConfig) -> dict[str, torch.Tensor]:
    stage = cfg.t5_stage
    tokens = pipe.tokenizer(
        list(stage.prompts),
        padding="max_length",
        max_length=stage.max_length,
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    )
    ids, mask = tokens.input_ids, tokens.attention_mask
    hidden = pipe.text_encoder(ids, attention_mask=mask).last_hidden_state
    return {"t5.input_ids": ids, "t5.attention_mask": mask, "t5.last_hidden_state": hidden}


def padding_mask(lengths: tuple[int, ...], seq_len: int) -> torch.Tensor:
    mask = torch.zeros(len(lengths), seq_len, dtype=torch.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    return mask


@torch.no_grad()
def transformer_stage(pipe, cfg: TinyConfig) -> dict[str, torch.Tensor]:
    stage = cfg.transformer_stage
    generator = torch.Generator().manual_seed(cfg.seed + 100)
    hidden = torch.randn(2, 4, stage.latent_height, stage.latent_width, generator=generator)
    encoder_hidden = torch.randn(2, stage.seq_len, cfg.t5.d_model, generator=generator)
    mask = padding_mask(stage.mask_lengths, stage.seq_len)
    tensors = {
        "transformer.hidden_states": hidden,
        "transformer.encoder_hidden_states": encoder_hidden,
        "transformer.encoder_attention_mask": mask,
    }
    for suffix, steps in (("", stage.timesteps), ("_b", stage.timesteps_b)):
        timestep = torch.tensor(steps, dtype=torch.int64)
        output = pipe.transformer(
            hidden,
            encoder_hidden_states=encoder_hidden,
            encoder_attention_mask=mask,
            timestep=timestep,
            added_cond_kwargs={"resolution": None, "aspect_ratio": None},
            return_dict=False,
        )[0]
        tensors[f"transformer.timestep{suffix}"] = timestep
        tensors[f"transformer.output{suffix}"] = output
    return tensors


@torch.no_grad()
def vae_stage(pipe, cfg: TinyConfig) -> dict[str, torch.Tensor]:
    stage = cfg.vae_stage
    generator = torch.Generator().manual_seed(cfg.seed + 200)
    latents = torch.randn(stage.batch, 4, stage.latent_height, stage.latent_width, generator=generator)
    z = latents / pipe.vae.config.scaling_factor
    sample = pipe.vae.decode(z, return_dict=False)[0]
    return {"vae.z": z, "vae.sample": sample}


@torch.no_grad()
def vae_tiling_stage(pipe, cfg: TinyConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`vae.decode(z)` with `enable_tiling()` and the config's tile size: tiles overlap and are blended."""
    tiling = cfg.vae_stage.tiling
    vae = pipe.vae
    generator = torch.Generator().manual_seed(cfg.seed + 300)
    z = torch.randn(tiling.batch, 4, tiling.latent_height, tiling.latent_width, generator=generator)
    z = z / vae.config.scaling_factor
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    vae.enable_tiling()
    vae.tile_sample_min_size = tiling.tile_sample_min_size
    vae.tile_latent_min_size = tiling.tile_sample_min_size // scale
    vae.tile_overlap_factor = tiling.tile_overlap_factor
    try:
        sample = vae.decode(z, return_dict=False)[0]
    finally:
        vae.disable_tiling()
        vae.tile_sample_min_size = vae.config.sample_size
        vae.tile_latent_min_size = vae.config.sample_size // scale
        vae.tile_overlap_factor = 0.25
    info = {"tile_sample_min_size": tiling.tile_sample_min_size, "tile_latent_min_size": tiling.tile_sample_min_size // scale,
            "tile_overlap_factor": tiling.tile_overlap_factor,
            "z": f"torch.randn from torch.Generator().manual_seed({cfg.seed + 300}) divided by scaling_factor",
            "call": "vae.enable_tiling(); vae.decode(z, return_dict=False)[0]"}
    return {"vae.tiled.z": z, "vae.tiled.sample": sample}, info


class PipelineRecorder:
    """Wraps the pipeline's encode_prompt and prepare_latents to keep what they return, and records the
    latents after each step through the legacy callback."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.encoded: tuple | None = None
        self.latents_init: torch.Tensor | None = None
        self.latents_size: tuple[int, int] | None = None
        self.steps: list[torch.Tensor] = []
        encode_prompt, prepare_latents = pipe.encode_prompt, pipe.prepare_latents

        def record_encode(*args, **kwargs):
            self.encoded = encode_prompt(*args, **kwargs)
            return self.encoded

        def record_latents(batch_size, channels, height, width, *args, **kwargs):
            self.latents_size = (int(height), int(width))
            self.latents_init = prepare_latents(batch_size, channels, height, width, *args, **kwargs).clone()
            return self.latents_init

        pipe.encode_prompt = record_encode
        pipe.prepare_latents = record_latents

    def callback(self, step: int, timestep, latents: torch.Tensor) -> None:
        self.steps.append(latents.clone())

    def run(self, kwargs: dict[str, Any], seed: int, output_type: str):
        self.steps = []
        generator = torch.Generator("cpu").manual_seed(seed)
        return self.pipe(**kwargs, generator=generator, output_type=output_type, callback=self.callback,
                         callback_steps=1).images


@torch.no_grad()
def pipeline_stage(pipe, cfg: TinyConfig) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from diffusers.utils.torch_utils import randn_tensor

    call = cfg.pipeline
    recorder = PipelineRecorder(pipe)
    image = recorder.run(call.kwargs(), call.seed, "np")
    image_run = (recorder.encoded, recorder.latents_init, list(recorder.steps))
    latents_final = recorder.run(call.kwargs(), call.seed, "latent")

    # The two runs must agree, and the recorded noise must be what randn_tensor draws from a fresh generator.
    same_noise = randn_tensor(tuple(recorder.latents_init.shape), generator=torch.Generator("cpu").manual_seed(call.seed),
                              dtype=torch.float32)
    check_equal("latents_init (callback run vs randn_tensor)", recorder.latents_init, same_noise)
    check_equal("latents_init (np run vs latent run)", image_run[1], recorder.latents_init)
    check_equal("latents_final (last step of np run vs latent run)", image_run[2][-1], latents_final)

    prompt_embeds, prompt_mask, negative_embeds, negative_mask = recorder.encoded
    tensors = {
        "pipeline.latents_init": recorder.latents_init,
        "pipeline.prompt_embeds": prompt_embeds,
        "pipeline.prompt_attention_mask": prompt_mask,
        "pipeline.latents_steps": torch.stack(recorder.steps),
        "pipeline.latents_final": latents_final,
        "pipeline.timesteps": pipe.scheduler.timesteps.to(torch.int64),
        "pipeline.sigmas": pipe.scheduler.sigmas.to(torch.float32),
        "pipeline.image": torch.from_numpy(image),
    }
    if negative_embeds is not None:
        tensors["pipeline.negative_prompt_embeds"] = negative_embeds
        tensors["pipeline.negative_prompt_attention_mask"] = negative_mask
    height, width = recorder.latents_size
    info = {
        "call": {**call.kwargs(), "seed": call.seed, "output_type": "np"},
        "generator": "torch.Generator('cpu').manual_seed(seed), passed as generator=",
        "do_classifier_free_guidance": call.guidance_scale > 1.0,
        "generation_height": height,
        "generation_width": width,
        "latent_shape": list(recorder.latents_init.shape),
        "image_shape": list(image.shape),
        "latents_final": "images of a second call with output_type='latent' (same arguments, fresh generator)",
        "latents_steps": "latents after each scheduler step, recorded by the legacy callback (callback_steps=1)",
    }
    return tensors, info


def check_equal(what: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or not torch.equal(a, b):
        raise RuntimeError(f"{what}: tensors differ")


def check_not_degenerate(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Return a problem for every float tensor that has NaN/inf or (with more than one element) no spread."""
    problems = []
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            continue
        if not torch.isfinite(tensor).all():
            problems.append(f"{name} has NaN or inf")
        elif tensor.numel() > 1 and float(tensor.std()) <= 1e-3:
            problems.append(f"{name} has std {float(tensor.std()):.3g} <= 1e-3")
    return problems
