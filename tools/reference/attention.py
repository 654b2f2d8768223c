"""Cross-attention probabilities recorded in diffusers, for the attention-map port (NAME/attention.safetensors).

A diffusers attention processor on every block's attn2 keeps its output path (AttnProcessor2_0, so the model's
outputs are unchanged, which is checked) and, beside it, computes the probabilities the classic way:
`Attention.get_attention_scores(head_to_batch_dim(to_q(x)), head_to_batch_dim(to_k(text)), mask)`, i.e.
softmax(scale * Q K^T + (1 - mask) * -10000) per head, then the mean over heads.

Recorded (which of them, and which blocks and steps, per config: RECORD below):
  attention.transformer.probs     [layers, 2, S, T]  the transformer stage's inputs (timestep pair "timestep"), both rows
  attention.pipeline.probs        [steps, layers, N, S, T]  the pipeline call, conditional half of the CFG batch only
  attention.pipeline.token_maps   [1, K, H, W]  DAAM aggregation of those, row 0: sum over steps, mean over layers (and
                                  heads, already), bicubic upsampling to the generation size (F.interpolate,
                                  align_corners=False), clamp >= 0; the K tokens of the first words
  attention.pipeline.word_maps    [1, W, H, W]  those words' maps: the mean of their pieces' token maps, min-max
                                  normalised to [0, 1]
T is the longest row's unmasked text tokens: past it every probability is exactly 0, so it is not stored.
attention.json lists the words and their token indices per row (from the fast tokenizer's word_ids()), and a set of
word-grouping cases: multi-piece words, unknown characters, truncated prompts.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from configs import TinyConfig

PROBS_MAX_ABS = 1e-5
# What each config records. The fixtures folder has a size budget (test/unit/fixtures.test.ts), so each config adds
# little: the transformer stage where its patch grid is small, one block and step of tiny-wide's 247-patch pipeline
# (which also exercises the layers/steps options), and maps only for tiny-hires' 48 x 32 image, first two words.
RECORD: dict[str, dict[str, Any]] = {
    "tiny-square": {"transformer": True, "layers": None, "steps": None, "map_words": 0},
    "tiny-wide": {"transformer": True, "layers": [1], "steps": [1], "map_words": 0},
    "tiny-hires": {"transformer": False, "layers": None, "steps": None, "map_words": 2},
}

# Texts for the word-to-pieces grouping: multi-piece words, unknown characters (alone, inside and beside a word),
# punctuation stuck to words, whitespace runs, and long texts cut by truncation (one mid-word).
GROUPING_CASES = (
    ("a small cactus with a happy face in the sahara desert.", 300),
    ("xylophone quizzically juxtaposed", 300),
    ("漢字 and ✓ marks, café 😊 at midnight", 300),
    ("a red✓circle   at the  top left", 300),
    ("two children flying over green hills at dawn, watercolor", 8),
    ("a vintage car riding across a desert road at sunset", 6),
    ("", 300),
)


class AttentionRecorder:
    """Installs recording processors on attn2 of every block; one entry per transformer call."""

    def __init__(self, transformer, conditional_half: bool):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.calls: list[list[torch.Tensor]] = []
        self.conditional_half = conditional_half
        self.row_start = 0
        self.num_layers = len(transformer.transformer_blocks)
        for layer, block in enumerate(transformer.transformer_blocks):
            block.attn2.set_processor(RecordingProcessor(self, layer, AttnProcessor2_0()))
        self.hook = transformer.register_forward_pre_hook(self.start_call, with_kwargs=True)

    def start_call(self, module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        self.row_start = hidden.shape[0] // 2 if self.conditional_half else 0
        self.calls.append([])

    def add(self, layer: int, probs: torch.Tensor) -> None:
        current = self.calls[-1]
        if len(current) != layer:
            raise RuntimeError(f"attn2 of block {layer} ran out of order")
        current.append(probs)

    def stacked(self) -> torch.Tensor:
        """[calls, layers, rows, S, L]."""
        for i, call in enumerate(self.calls):
            if len(call) != self.num_layers:
                raise RuntimeError(f"call {i} recorded {len(call)} of {self.num_layers} blocks")
        return torch.stack([torch.stack(call) for call in self.calls])


class RecordingProcessor:
    def __init__(self, recorder: AttentionRecorder, layer: int, inner):
        self.recorder, self.layer, self.inner = recorder, layer, inner

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        out = self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)
        start = self.recorder.row_start
        x, text = hidden_states[start:], encoder_hidden_states[start:]
        mask = None if attention_mask is None else attention_mask[start:]
        query = attn.head_to_batch_dim(attn.to_q(x))
        key = attn.head_to_batch_dim(attn.to_k(text))
        mask = attn.prepare_attention_mask(mask, text.shape[1], x.shape[0])
        probs = attn.get_attention_scores(query, key, mask)
        self.recorder.add(self.layer, probs.view(x.shape[0], attn.heads, *probs.shape[1:]).mean(1))
        return out


def remove_recorder(transformer, recorder: AttentionRecorder) -> None:
    from diffusers.models.attention_processor import AttnProcessor2_0

    recorder.hook.remove()
    for block in transformer.transformer_blocks:
        block.attn2.set_processor(AttnProcessor2_0())


def aggregate(probs: torch.Tensor, rows: int, cols: int, height: int, width: int, tokens: int) -> torch.Tensor:
    """[steps, layers, N, S, L] → [N, tokens, height, width]: DAAM's sum over steps and mean over layers, bicubic
    upsampling, clamp at 0."""
    summed = probs.mean(1).sum(0)[:, :, :tokens]
    grid = summed.permute(0, 2, 1).reshape(summed.shape[0], tokens, rows, cols)
    return F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False).clamp(min=0)


def word_maps(token_maps: torch.Tensor, words: list[list[dict[str, Any]]]) -> torch.Tensor:
    n, _, height, width = token_maps.shape
    out = torch.zeros(n, max(len(w) for w in words), height, width)
    for row, row_words in enumerate(words):
        for k, word in enumerate(row_words):
            m = token_maps[row, word["tokens"]].mean(0)
            span = m.max() - m.min()
            out[row, k] = (m - m.min()) / span if span > 0 else torch.zeros_like(m)
    return out


def words_of(tokenizer, text: str, max_length: int) -> list[dict[str, Any]]:
    """Words (whitespace-separated, as T5's pre-tokenizer cuts them) and the indices of their pieces, from the fast
    tokenizer's word_ids(); EOS and padding belong to no word."""
    encoding = tokenizer(text, max_length=max_length, truncation=True)
    words: dict[int, dict[str, Any]] = {}
    for index, word_id in enumerate(encoding.word_ids()):
        if word_id is None:
            continue
        if word_id not in words:
            start, end = encoding.word_to_chars(word_id)
            words[word_id] = {"text": text[start:end], "tokens": []}
        words[word_id]["tokens"].append(index)
    return [words[k] for k in sorted(words)]


def grouping_cases(tokenizer) -> list[dict[str, Any]]:
    cases = []
    for text, max_length in GROUPING_CASES:
        ids = tokenizer(text, max_length=max_length, truncation=True).input_ids
        cases.append({"text": text, "max_length": max_length, "input_ids": ids,
                      "pieces": tokenizer.convert_ids_to_tokens(ids), "words": words_of(tokenizer, text, max_length)})
    return cases


@torch.no_grad()
def transformer_probs(pipe, reference: dict[str, torch.Tensor]) -> torch.Tensor:
    """[layers, 2, S, L] for the transformer stage's inputs; the model's output must equal transformer.output."""
    recorder = AttentionRecorder(pipe.transformer, conditional_half=False)
    try:
        output = pipe.transformer(
            reference["transformer.hidden_states"],
            encoder_hidden_states=reference["transformer.encoder_hidden_states"],
            encoder_attention_mask=reference["transformer.encoder_attention_mask"],
            timestep=reference["transformer.timestep"],
            added_cond_kwargs={"resolution": None, "aspect_ratio": None},
            return_dict=False,
        )[0]
    finally:
        remove_recorder(pipe.transformer, recorder)
    if not torch.equal(output, reference["transformer.output"]):
        raise RuntimeError("recording attention changed the transformer's output")
    return recorder.stacked()[0]


@torch.no_grad()
def attention_stage(pipe, cfg: TinyConfig, reference: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    call = cfg.pipeline
    what = RECORD[cfg.name]
    cfg_on = call.guidance_scale > 1.0
    tensors = {}
    if what["transformer"]:
        width = max(cfg.transformer_stage.mask_lengths)
        tensors["attention.transformer.probs"] = trimmed(transformer_probs(pipe, reference), width)

    recorder = AttentionRecorder(pipe.transformer, conditional_half=cfg_on)
    try:
        generator = torch.Generator("cpu").manual_seed(call.seed)
        latents = pipe(**call.kwargs(), generator=generator, output_type="latent").images
    finally:
        remove_recorder(pipe.transformer, recorder)
    if not torch.equal(latents, reference["pipeline.latents_final"]):
        raise RuntimeError("recording attention changed the pipeline's latents")
    layers = what["layers"] or list(range(recorder.num_layers))
    steps = what["steps"] or list(range(len(recorder.calls)))
    probs = recorder.stacked()[steps][:, layers]

    prompts = [call.prompt] if isinstance(call.prompt, str) else list(call.prompt)
    texts = [pipe._text_preprocessing(p, clean_caption=call.clean_caption)[0] for p in prompts]
    rows = [text for text in texts for _ in range(call.num_images_per_prompt)]
    words = [words_of(pipe.tokenizer, text, call.max_sequence_length) for text in rows]
    lengths = [int(n) for n in reference["pipeline.prompt_attention_mask"].sum(1)]
    tensors["attention.pipeline.probs"] = trimmed(probs, max(lengths))
    _, _, latent_h, latent_w = reference["pipeline.latents_init"].shape
    patch = pipe.transformer.config.patch_size
    grid = [latent_h // patch, latent_w // patch]
    height, width = latent_h * pipe.vae_scale_factor, latent_w * pipe.vae_scale_factor
    info: dict[str, Any] = {
        "layers": layers,
        "steps": steps,
        "conditional_half": cfg_on,
        "texts": rows,
        "token_counts": lengths,
        "words": words,
        "grid": grid,
        "generation_size": [height, width],
        "grouping_cases": grouping_cases(pipe.tokenizer),
        "tolerances": {key: {"max_abs": PROBS_MAX_ABS} for key in tensors},
    }
    if what["map_words"]:
        first = words[0][: what["map_words"]]
        token_maps = aggregate(probs[:, :, :1], grid[0], grid[1], height, width, first[-1]["tokens"][-1] + 1)
        tensors["attention.pipeline.token_maps"] = token_maps
        tensors["attention.pipeline.word_maps"] = word_maps(token_maps, [first])
    return tensors, info


def trimmed(probs: torch.Tensor, width: int) -> torch.Tensor:
    """The first `width` text tokens: past the longest row's mask every probability is exactly 0 (exp(-10000))."""
    if probs[..., width:].any():
        raise RuntimeError("a masked text token has a non-zero probability")
    return probs[..., :width].contiguous()
