"""Reference fixtures for the T5 tokenizer (src/tokenizer/).

Real T5 vocabularies cannot be downloaded here, so this tool trains a small SentencePiece unigram model with the
T5 conventions (pad=0, eos=1, unk=2, no bos, nmt_nfkc normalisation) on a deterministic generated corpus, then
records what transformers' T5Tokenizer produces with it, loaded the two ways a checkpoint can ship it:

* `spiece/`: `spiece.model` plus a transformers-4 style `tokenizer_config.json` (the layout of the released
  PixArt-Sigma checkpoints);
* `json/`: the same tokenizer after `save_pretrained` under transformers 5 (`tokenizer.json` +
  `tokenizer_config.json`, no `spiece.model`).

It also records diffusers' `_text_preprocessing` outputs (clean_caption False and True) and Python's
`str.lower()` / `str.isspace()` tables, which the TypeScript port must reproduce.

Usage: .venv/bin/python tools/reference/tokenizer.py   (writes test/fixtures/tokenizer/)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "test", "fixtures", "tokenizer")
MAX_LENGTH = 300
EXTRA_IDS = 100

# ----------------------------------------------------------------------------------------------------------------
# Training corpus: captions made of real words, pseudo-words (so the unigram trainer learns sub-word pieces) and
# some non-Latin words (so accented, Greek, Cyrillic and CJK characters are in the vocabulary and emoji are not).

WORDS = """a an the of in on at with and or under over near behind photo painting portrait landscape mountain river
sunset sunrise city night street woman man child girl boy old young beautiful dark light forest tree flower garden
house car road sky cloud rain snow winter summer autumn spring golden hour cinematic detailed highly realistic
digital art illustration style oil watercolor sketch drawing anime castle dragon knight sword fire water ocean beach
wave sand desert camel star galaxy space astronaut rocket robot futuristic cyberpunk neon lights reflection glass
mirror window door table chair coffee cup book library reading cat dog bird horse fox wolf bear red blue green yellow
purple orange black white pink grey silver bronze wooden stone marble steel soft sharp focus bokeh wide angle closeup
macro shot studio lighting dramatic moody vibrant colorful pastel minimalist surreal fantasy medieval victorian
baroque renaissance impressionist trending artstation unreal engine octane render masterpiece best quality""".split()

FOREIGN = """café naïve résumé über straße façade jalapeño crème brûlée fiancée déjà piñata smörgåsbord garçon
élégant hôtel forêt château noël año niño ciudad montaña pájaro corazón mädchen größe schön künstler
東京 猫 犬 山 川 花 空 日本 中国 北京 夜 雪 こんにちは ありがとう さくら ねこ 서울 고양이 사랑 하늘
москва кошка собака город ночь зима αθήνα γάτα σκύλος θάλασσα ήλιος""".split()

SYLLABLES = "ka lo mi nu pe ra si to vu ze bra cle dri fro glu pla qui sto tri vex orn ath eln ung ist".split()

NUMBERS = "0 1 2 3 4 5 6 7 8 9 10 12 16 20 24 32 50 64 100 128 256 512 1024 2048 1080p 4k 8k 3d 2d".split()


def training_lines(count: int = 30000) -> list[str]:
    rnd = random.Random(1234)
    pseudo = ["".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))) for _ in range(600)]
    pools = [(WORDS, 0.6), (pseudo, 0.2), (FOREIGN, 0.12), (NUMBERS, 0.08)]
    lines = []
    for _ in range(count):
        words = []
        for _ in range(rnd.randint(3, 16)):
            r, acc = rnd.random(), 0.0
            for pool, weight in pools:
                acc += weight
                if r < acc:
                    words.append(rnd.choice(pool))
                    break
            else:
                words.append(rnd.choice(WORDS))
        line = " ".join(words)
        if rnd.random() < 0.3:
            line = line.capitalize()
        if rnd.random() < 0.4:
            line += rnd.choice([".", ",", "!", "?", ";", ":", " -", "'s", ")"])
        lines.append(line)
    return lines


def train_model(path: str, rules_tsv: str | None) -> None:
    """Train the unigram model into `path`, normalizing with nmt_nfkc, or with `rules_tsv` (sentencepiece's
    normalization_rule_tsv format) when given."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)  # the trainer stores its input/output names in the proto: keep them relative
        try:
            with open("corpus.txt", "w", encoding="utf-8") as f:
                f.write("\n".join(training_lines()))
            normalization = {"normalization_rule_name": "nmt_nfkc"}
            if rules_tsv is not None:
                with open("rules.tsv", "w", encoding="utf-8") as f:
                    f.write(rules_tsv)
                normalization = {"normalization_rule_tsv": "rules.tsv"}
            spm.SentencePieceTrainer.train(
                input="corpus.txt", model_prefix="spiece", model_type="unigram", vocab_size=800,
                hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, add_dummy_prefix=True,
                remove_extra_whitespaces=True, character_coverage=0.9995, byte_fallback=False, num_threads=1,
                shuffle_input_sentence=False, minloglevel=2, **normalization,
            )
        finally:
            os.chdir(cwd)
        shutil.copyfile(os.path.join(tmp, "spiece.model"), path)


def load_proto(path: str):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def charsmap_rules(blob: bytes) -> dict[str, str]:
    """Every (key -> replacement) entry of a precompiled charsmap: a walk over its darts double-array trie."""
    import struct

    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    pool = blob[4 + trie_bytes:]
    offset = lambda u: (u >> 10) << ((u & (1 << 9)) >> 6)
    rules: dict[str, str] = {}

    def walk(node: int, key: bytes) -> None:
        for c in range(1, 256):
            pos = node ^ c
            if pos >= len(units) or units[pos] & 0x800000FF != c:
                continue
            child = pos ^ offset(units[pos])
            if (units[pos] >> 8) & 1:
                start = units[child] & 0x7FFFFFFF
                rules[(key + bytes([c])).decode("utf-8")] = pool[start:pool.index(0, start)].decode("utf-8")
            walk(child, key + bytes([c]))

    walk(offset(units[0]), b"")
    return rules


def nmt_nfkc_subset(alphabet: set[str]) -> tuple[str, bytes]:
    """sentencepiece's nmt_nfkc rules whose keys use only `alphabet`, as a rules TSV, and the full nmt_nfkc
    charsmap. The full charsmap takes ~240 KB per copy; on text over the alphabet the subset behaves the same
    (every key that can match such text is kept), which main() checks on every recorded string."""
    with tempfile.TemporaryDirectory() as tmp:
        train_model(os.path.join(tmp, "full.model"), None)
        full = load_proto(os.path.join(tmp, "full.model")).normalizer_spec.precompiled_charsmap
    hex_codes = lambda text: " ".join(f"{ord(c):04X}" for c in text)
    rules = sorted((k, v) for k, v in charsmap_rules(full).items() if set(k) <= alphabet)
    return "".join(f"{hex_codes(k)}\t{hex_codes(v)}\n" for k, v in rules), full


# ----------------------------------------------------------------------------------------------------------------
# The prompt corpus.

HAND_WRITTEN = [
    "",
    " ",
    "   \n\t  ",
    "a cat",
    "A photo of a cat sitting on a wooden table, golden hour, highly detailed, 8k",
    "  leading and trailing spaces  ",
    "runs     of      spaces",
    "tabs\tand\t\ttabs",
    "new\nlines\n\n\nand\r\nwindows\rbreaks",
    "vertical\x0btab and form\x0cfeed",
    "file\x1cgroup\x1drecord\x1eunit\x1fseparators",
    "next\x85line",
    "line\u2028separator and paragraph\u2029separator",
    "no\u00a0break\u202fnarrow\u2007figure spaces",
    "ideographic\u3000space and en\u2002em\u2003thin\u2009hair\u200aspaces",
    "zero\u200bwidth\u200cnon\u200djoiner",
    "byte\ufefforder mark",
    "soft\u00adhyphen",
    "control\x00chars\x07bell\x1bescape\x7fdel",
    "Digits 0123456789 and 3.14159, 1,000,000 and 2024-11-27",
    "1080p 4k 8k 3d render 512x512 1024x768",
    "Café naïve résumé über straße façade jalapeño crème brûlée",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301 (decomposed accents)",
    "A\u0301 Ａ\u0301 e\u0301\u0302\u0303\u0304 stacked combining marks",
    "Ｆｕｌｌｗｉｄｔｈ ｆｏｒｍｓ １２３ ＡＢＣ ！？",
    "ﾊﾝｶｸ half-width katakana ｶﾀｶﾅ",
    "ligatures: ﬁsh ﬂower ﬀ ﬃ ﬄ ﬅ ﬆ",
    "circled ① ② ⑳ superscript x² y³ fractions ½ ¼ ¾ roman Ⅻ ⅷ",
    "math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐛𝐨𝐥𝐝 𝒮𝒸𝓇𝒾𝓅𝓉 ℝ ℕ ∑ ∫ √ ∞ ≠ ≤",
    "東京の夜景、美しい猫 日本 中国 北京",
    "こんにちは、世界！ ありがとう さくら",
    "서울 고양이 사랑 하늘 한국어 문장",
    "\u1100\u1161\u11a8 decomposed hangul jamo",
    "Москва ночью, кошка и собака",
    "ΑΘΗΝΑ Αθήνα ΟΔΟΣ Σ ΣΑΣ σας ΣΙΣΥΦΟΣ",
    "ΟΔΟΣ Σ ΣΑΣ. ΑΣ1 Α\u0301Σ final sigma",
    "Ὀδυσσεύς ᾅ polytonic greek",
    "مرحبا بالعالم arabic text",
    "שלום עולם hebrew",
    "नमस्ते दुनिया क्षत्रिय श्री devanagari conjuncts",
    "สวัสดีชาวโลก thai",
    "emoji 😀 🙂 🎨 🐱 a cat 🐈‍⬛ family 👨‍👩‍👧‍👦",
    "flags 🇯🇵 🇺🇸 🇫🇷 skin tones 👍🏽 👋🏿 keycap 1️⃣ #️⃣",
    "heart ❤️ ❤ star ★ ☆ ✨ arrows → ← ↑ ↓ ⇒",
    "😀😀😀😀😀 consecutive unknown characters 🙂🙂",
    "literal </s> end of sequence token",
    "text</s>glued</s></s>",
    "<pad> <unk> </s> <s> <mask>",
    "sentinel <extra_id_3> and <extra_id_0> and <extra_id_99>",
    "<extra_id_100> is not a sentinel, nor is <extra_id_3 or extra_id_3>",
    "glued<extra_id_7>text<extra_id_12>",
    "fullwidth ＜/s＞ and ＜extra_id_1＞ and ＜unk＞",
    "▁ lower one eighth block ▁▁ and ▁cat▁dog",
    "▁",
    "a▁b",
    "İstanbul ıi İI Turkish dotted and dotless",
    "Straße STRASSE ß ẞ",
    "ǅ ǈ ǋ Ǳ titlecase digraphs",
    "MIXED case TeXt WITH CaPiTaLs",
    "URL https://www.example.com/path?q=1&x=2 and www.test.org",
    "html <b>bold</b> &amp; &quot;quoted&quot; &lt;tag&gt; &#39;",
    "email someone@example.com @nickname #hashtag #123",
    "quotes “double” ‘single’ «guillemets» „low“ ‚low‘",
    "dashes - – — ― ‐ minus − and ellipsis … ...",
    "mojibake cafÃ© naÃ¯ve â€œquotedâ€",
    "private use \ue000\uf8ff and unassigned \u0378 \U0001fffe",
    "supplementary 𠀀 𪚥 𝄞 𓀀",
    "punctuation!!! ??? ... ,,, ;;; ::: --- ___ *** ### @@@",
    "brackets (round) [square] {curly} <angle> 「かぎ」 【すみ】",
    "a" * 50,
    "x " * 50,
    " ".join(["word"] * 400),
    "a, b. c; d: e! f? g' h\" i( j) k[ l] m{ n} o/ p\\ q| r~ s` t^ u& v* w+ x= y< z>",
]


def generated_prompts(count: int) -> list[str]:
    """Random prompts mixing vocabulary words, odd characters and whitespace runs (seeded, so reproducible)."""
    rnd = random.Random(20261127)
    odd = list("éèêëàâäôöûüçñßøåæœ") + list("ΣσςΑΩЖжЯя東京猫犬あア한글") + list("😀🎨🐱❤★") + [
        "\u0301", "\u0308", "\u200b", "\u00a0", "\u3000", "\u2028", "\ufeff", "\u00ad", "ﬁ", "Ａ", "１", "＜", "＞",
        "²", "½", "①", "▁", "İ", "\t", "\n", "\r\n", "</s>", "<extra_id_5>", "<pad>", "&", "#", "@", "http://a.com",
    ]
    out = []
    for i in range(count):
        parts = []
        for _ in range(rnd.randint(1, 40 if i % 10 else 220)):
            r = rnd.random()
            if r < 0.55:
                parts.append(rnd.choice(WORDS + FOREIGN))
            elif r < 0.7:
                parts.append(rnd.choice(NUMBERS))
            elif r < 0.85:
                parts.append(rnd.choice(odd))
            else:
                parts.append("".join(rnd.choice(odd + list("abcxyz")) for _ in range(rnd.randint(1, 4))))
        text = ""
        for part in parts:
            text += part + rnd.choice([" ", " ", " ", "", "  ", "\t", "\n", " \n ", ",", ", "])
        if rnd.random() < 0.3:
            text = text.upper()
        elif rnd.random() < 0.3:
            text = text.title()
        out.append(text)
    return out


def prompts() -> list[str]:
    return HAND_WRITTEN + generated_prompts(220)


# ----------------------------------------------------------------------------------------------------------------
# Recording transformers' behaviour.

def v4_style_config() -> dict:
    """A tokenizer_config.json as transformers 4 wrote it for T5 (the released PixArt checkpoints' kind)."""
    return {
        "additional_special_tokens": [f"<extra_id_{i}>" for i in range(EXTRA_IDS)],
        "eos_token": "</s>",
        "extra_ids": EXTRA_IDS,
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<pad>",
        "sp_model_kwargs": {},
        "tokenizer_class": "T5Tokenizer",
        "unk_token": "<unk>",
    }


def gzip_in_place(path: str) -> None:
    """Replace `path` by `path`.gz (byte-identical once unpacked; the tests unpack it into a temporary folder)."""
    import gzip

    with open(path, "rb") as src, open(path + ".gz", "wb") as f, \
            gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(src.read())
    os.remove(path)


def write_json_gz(name: str, doc) -> None:
    """Reference data as gzipped JSON (the fixture budget is shared; mtime 0 keeps the bytes reproducible)."""
    import gzip

    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with open(os.path.join(OUT, name), "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(data)


def encode_record(tok, text: str) -> dict:
    enc = tok(text, padding="max_length", max_length=MAX_LENGTH, truncation=True, add_special_tokens=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    length = sum(mask)
    assert len(ids) == MAX_LENGTH and mask == [1] * length + [0] * (MAX_LENGTH - length), text
    assert all(i == tok.pad_token_id for i in ids[length:]), text
    return {"ids": ids[:length], "decoded": tok.decode(ids[:length], skip_special_tokens=True)}


def main() -> None:
    from diffusers import PixArtSigmaPipeline
    from transformers import T5Tokenizer

    spiece_dir, json_dir = os.path.join(OUT, "spiece"), os.path.join(OUT, "json")
    for d in (spiece_dir, json_dir):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for name in ("cases.json", "clean-caption.json", "python-str.json"):  # older, uncompressed layout
        if os.path.exists(os.path.join(OUT, name)):
            os.remove(os.path.join(OUT, name))
    alphabet = set("".join(training_lines() + prompts() + VARIANT_PROMPTS + stress_texts()))
    rules_tsv, full_charsmap = nmt_nfkc_subset(alphabet)
    train_model(os.path.join(spiece_dir, "spiece.model"), rules_tsv)
    with open(os.path.join(spiece_dir, "tokenizer_config.json"), "w") as f:
        json.dump(v4_style_config(), f, indent=2)

    from_spiece = T5Tokenizer.from_pretrained(spiece_dir)
    from_spiece.save_pretrained(json_dir)
    assert sorted(os.listdir(json_dir)) == ["tokenizer.json", "tokenizer_config.json"], os.listdir(json_dir)
    from_json = T5Tokenizer.from_pretrained(json_dir)
    gzip_in_place(os.path.join(json_dir, "tokenizer.json"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(spiece_dir, "spiece.model"))
    check_subset_charsmap(from_spiece, full_charsmap, prompts() + VARIANT_PROMPTS)

    # diffusers' preprocessing, called on a bare instance (the method needs no component).
    pipe = PixArtSigmaPipeline.__new__(PixArtSigmaPipeline)

    cases, sp_differs = [], 0
    for text in prompts():
        a, b = encode_record(from_spiece, text), encode_record(from_json, text)
        raw_sp = sp.encode(text)
        if a["ids"][:-1] != raw_sp[: len(a["ids"]) - 1]:
            sp_differs += 1
        cases.append({
            "text": text,
            "ids": a["ids"],
            **({"idsJson": b["ids"]} if b["ids"] != a["ids"] else {}),
            # decoded text for the hand-written prompts only (size)
            **({"decoded": a["decoded"]} if text in HAND_WRITTEN else {}),
            **({"decodedJson": b["decoded"]} if text in HAND_WRITTEN and b["decoded"] != a["decoded"] else {}),
            "lower": pipe._text_preprocessing(text, clean_caption=False)[0],
        })

    # Batches: padding="longest", and truncation to a short max_length.
    batch = ["a cat", "", "A photo of a cat sitting on a wooden table, golden hour"]
    longest = from_spiece(batch, padding="longest", truncation=True, max_length=MAX_LENGTH)
    short = from_spiece(batch, padding="max_length", truncation=True, max_length=8)

    sentinels = {f"<extra_id_{i}>": from_spiece.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(EXTRA_IDS)}
    meta = {
        "transformers": __import__("transformers").__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "sentencepiece": spm.__version__,
        "maxLength": MAX_LENGTH,
        "vocabSize": len(from_spiece),
        "pieceCount": sp.get_piece_size(),
        "promptsWhereSentencePieceDiffers": sp_differs,
        "note": "ids are stored without the padding tail; the tool asserted tail == pad id and mask == [1]*len+[0]*rest",
    }
    doc = {
        "meta": meta,
        "variants": config_variants(spiece_dir),
        "unigram": unigram_cases(),
        "normalizer": normalizer_cases(from_spiece, full_charsmap),
        "sentinels": sentinels,
        "batches": {
            "texts": batch,
            "longest": {"ids": longest["input_ids"], "mask": longest["attention_mask"]},
            "maxLength8": {"ids": short["input_ids"], "mask": short["attention_mask"]},
        },
        "cases": cases,
    }
    write_json_gz("cases.json.gz", doc)
    write_python_tables()
    write_ftfy_tables_ts()
    bs4_rule_self_check()
    corpus_clean = clean_caption_cases([c["text"] for c in cases])
    clean = {
        "extra": clean_caption_cases(CLEAN_EXTRA),
        "corpus": [{"clean": c["clean"], "covered": c["covered"]} for c in corpus_clean],
        "isBad": is_bad_cases(),
    }
    write_json_gz("clean-caption.json.gz", clean)
    both = clean["extra"] + clean["corpus"]
    print(f"clean_caption: {sum(c['covered'] for c in both)} of {len(both)} inputs covered", file=sys.stderr)
    print(f"{len(cases)} prompts; sentencepiece itself differs from transformers 5 on {sp_differs}", file=sys.stderr)


VARIANT_PROMPTS = [
    "a cat </s> dog",
    "x<extra_id_1>y <extra_id_0>",
    "＜extra_id_1＞ and ＜/s＞",
    "<extra_id_99> <extra_id_5>",
    "castle castles knight",
    "",
]


def config_variants(spiece_dir: str) -> list[dict]:
    """Other tokenizer_config.json contents next to the same spiece.model (the TS test rebuilds each folder)."""
    from transformers import T5Tokenizer

    sp = spm.SentencePieceProcessor(model_file=os.path.join(spiece_dir, "spiece.model"))
    plain = next(sp.id_to_piece(i) for i in range(3, sp.get_piece_size())
                 if not sp.id_to_piece(i).startswith("\u2581") and len(sp.id_to_piece(i)) >= 3)
    flags = dict(single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    variants = [
        {"name": "spiece.model alone", "config": None},
        {"name": "extra_ids 0", "config": {"extra_ids": 0}},
        {"name": "added_tokens_decoder with flags", "config": {
            "extra_ids": 100,
            "added_tokens_decoder": {
                "1": {**flags, "content": "</s>", "lstrip": True, "rstrip": True},
                str(sp.piece_to_id(plain)): {**flags, "content": plain, "special": False},
                str(sp.get_piece_size() + 98): {**flags, "content": "<extra_id_1>", "normalized": True},
            },
        }},
    ]
    for v in variants:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(os.path.join(spiece_dir, "spiece.model"), os.path.join(tmp, "spiece.model"))
            if v["config"] is not None:
                with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
                    json.dump(v["config"], f)
            tok = T5Tokenizer.from_pretrained(tmp)
            prompts_v = VARIANT_PROMPTS + [f"{plain} x{plain}y {plain.upper()}"]
            v["cases"] = [{"text": t, **encode_record(tok, t)} for t in prompts_v]
            v["vocabSize"] = len(tok)
    return variants


def check_subset_charsmap(tok, full_charsmap: bytes, texts: list[str]) -> None:
    """The committed model's nmt_nfkc subset normalizes every prompt as the full nmt_nfkc charsmap does."""
    from tokenizers.normalizers import Precompiled

    full, subset = Precompiled(full_charsmap), tok.backend_tokenizer.normalizer
    for t in texts:
        assert full.normalize_str(t) == subset.normalize_str(t), repr(t)


def stress_texts() -> list[str]:
    """Random strings over characters that stress grapheme segmentation and the charsmap (combining marks,
    Prepend, ZWJ sequences, regional indicators, Hangul jamo, CR LF, fullwidth forms)."""
    pool = list("aeAZ09 .,-\t\r\n") + ["\r\n", "\u0301", "\u0308", "\u0323", "\u20dd", "\u200d", "\u200b",
        "\ufe0f", "\u0600", "\u0605", "\u06dd", "\u0915", "\u094d", "\u0937", "\u093f", "\u0e33", "\u1100",
        "\u1161", "\u11a8", "\uac00", "\U0001f1ef", "\U0001f1f5", "\U0001f468", "\U0001f469", "\U0001f3fd",
        "\u2764", "\uff21", "\uff41", "\uff11", "\uff1c", "\u3000", "\u00a0", "\u2028", "\u0085", "\ufb01",
        "\u00bd", "\u2460", "\u00e9", "\u03a3", "\u1e9e", "\u0130", "\u2581", "\u00ad", "\u0000", "\u007f",
        "\U0001d518", "\u3099", "\u304b", "\u30ab", "\uff76", "\uff9e"]
    rnd = random.Random(99)
    return ["".join(rnd.choice(pool) for _ in range(rnd.randint(1, 12))) for _ in range(1000)]


def normalizer_cases(tok, full_charsmap: bytes) -> list[list[str]]:
    """The tokenizer's Precompiled normalizer on stress_texts(), checked equal to the full nmt_nfkc charsmap."""
    from tokenizers.normalizers import Precompiled

    normalizer, full = tok.backend_tokenizer.normalizer, Precompiled(full_charsmap)
    cases = [[t, normalizer.normalize_str(t)] for t in stress_texts()]
    assert all(full.normalize_str(t) == n for t, n in cases)
    return cases


def unigram_cases() -> dict:
    """The bare Unigram model of `tokenizers` on a made-up vocabulary with equal-score paths and unknowns."""
    from tokenizers import Tokenizer
    from tokenizers.models import Unigram

    vocab = [["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["ab", -2.0], ["c", -1.5], ["bc", -2.5], ["abc", -4.0],
             ["d", -0.5], ["xy", -3.0], ["\U0001f600", -2.0], ["e\u0301", -1.0]]
    tok = Tokenizer(Unigram([tuple(v) for v in vocab], unk_id=0, byte_fallback=False))
    texts = ["ab", "abc", "abcd", "bcab", "zz", "azzb", "xyz", "zxy", "\U0001f600\U0001f601", "\U0001f601a",
             "e\u0301e", "<unk>z", "qq<unk>", "a<unk>b", ""]
    return {"vocab": vocab, "unkId": 0, "cases": [{"text": t, "ids": tok.encode(t).ids} for t in texts]}


def code_point_ranges(pred) -> list[list[int]]:
    """Maximal [first, last] runs of non-surrogate code points for which pred(chr(cp)) holds."""
    runs: list[list[int]] = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or not pred(chr(cp)):
            continue
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return runs


def regex_class(runs: list[list[int]]) -> str:
    """A JavaScript regex character-class body (for the `u` flag) matching the runs."""
    esc = lambda cp: f"\\\\u{{{cp:x}}}"  # a backslash escaped for the TypeScript string literal
    return "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in runs)


def write_python_tables() -> None:
    """Python's str.lower(), str.isspace() and re's \w \d \s, as a fixture and as src/tokenizer/python-str-tables.ts."""
    import re

    lower = {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if c.lower() != c:
            lower[cp] = c.lower()
    space = [cp for cp in range(0x10000) if chr(cp).isspace()]
    classes = {name: code_point_ranges(lambda c, r=re.compile(pat): r.match(c) is not None)
               for name, pat in (("word", r"\w"), ("digit", r"\d"), ("space", r"\s"))}
    doc = {"python": sys.version.split()[0], "unicode": __import__("unicodedata").unidata_version,
           "lower": [[cp, s] for cp, s in sorted(lower.items())], "isspace": space, "re": classes}
    write_json_gz("python-str.json.gz", doc)
    write_python_tables_ts(lower, space, classes)


def lower_runs(lower: dict[int, str]) -> list[list[int]]:
    """[first, last, delta, step] runs: cp -> cp + delta for cp in first..last by step (single code points only)."""
    runs: list[list[int]] = []
    for cp in sorted(lower):
        if len(lower[cp]) != 1:
            continue
        delta = ord(lower[cp]) - cp
        if runs and runs[-1][2] == delta and cp - runs[-1][1] == (runs[-1][3] or cp - runs[-1][1]) <= 2:
            runs[-1][1], runs[-1][3] = cp, cp - runs[-1][1]
        else:
            runs.append([cp, cp, delta, 0])
    return [[a, b, d, st or 1] for a, b, d, st in runs]


GENERATED = "generated by tools/reference/tokenizer.py from"


def write_ts(name: str, doc: str, body: str) -> None:
    with open(os.path.join(ROOT, "src", "tokenizer", name), "w", encoding="utf-8") as f:
        f.write(f"/**\n{doc}\n */\n\n{body}")


def write_python_tables_ts(lower: dict[int, str], space: list[int], classes: dict) -> None:
    rows = ",\n".join(f"  [0x{a:04x}, 0x{b:04x}, {d}, {st}]" for a, b, d, st in lower_runs(lower))
    multi = ", ".join(f"[0x{cp:04x}, {json.dumps(s)}]" for cp, s in sorted(lower.items()) if len(s) != 1)
    version = f"Python {sys.version.split()[0]} (Unicode {__import__('unicodedata').unidata_version})"
    body = f"""/** [first, last, delta, step]: `str.lower()` maps first, first+step, ..., last to cp + delta. */
export const LOWER_RUNS: ReadonlyArray<readonly [number, number, number, number]> = [
{rows},
];

/** Code points whose `str.lower()` is more than one code point. */
export const LOWER_MULTI: ReadonlyArray<readonly [number, string]> = [{multi}];

/** Code points for which `str.isspace()` is true (what `str.strip()` removes); all are in the BMP. */
export const PYTHON_SPACE: readonly number[] = [{", ".join(f"0x{cp:04x}" for cp in space)}];

/** Bodies of regex character classes (JavaScript, `u` flag) equal to Python `re`'s \\w, \\d and \\s on str. */
export const RE_WORD = "{regex_class(classes["word"])}";
export const RE_DIGIT = "{regex_class(classes["digit"])}";
export const RE_SPACE = "{regex_class(classes["space"])}";
"""
    write_ts("python-str-tables.ts",
             f" * {version} string facts, {GENERATED} the interpreter: do not edit.\n"
             " * JavaScript's case mapping and \\w / \\d / \\b follow other rules (and Node's newer Unicode), so the\n"
             " * pipeline's Python string operations are reproduced from these tables.", body)


# ----------------------------------------------------------------------------------------------------------------
# clean_caption: ftfy's tables as TypeScript, and reference outputs with a record of which inputs the port covers.

def js_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)


def write_ftfy_tables_ts() -> None:
    import ftfy
    from ftfy import badness, chardata

    def mapping(table: dict) -> str:
        return ",\n".join(f"  [0x{cp:04x}, {js_string(v)}]" for cp, v in sorted(table.items()))

    categories = ",\n".join(f"  {k}: {js_string(v)}" for k, v in badness.MOJIBAKE_CATEGORIES.items())
    body = f"""/** fix_latin_ligatures: code point -> replacement. */
export const LIGATURES: ReadonlyArray<readonly [number, string]> = [
{mapping(chardata.LIGATURES)},
];

/** fix_character_width: code point -> replacement (halfwidth / fullwidth forms, U+3000). */
export const WIDTH_MAP: ReadonlyArray<readonly [number, string]> = [
{mapping(chardata.WIDTH_MAP)},
];

/** remove_control_chars: code points deleted. */
export const CONTROL_CHARS: readonly number[] = [{", ".join(f"0x{cp:04x}" for cp in sorted(chardata.CONTROL_CHARS))}];

/** uncurl_quotes: bodies of the character classes replaced by ' and by ". */
export const SINGLE_QUOTES = {js_string(chardata.SINGLE_QUOTE_RE.pattern[1:-1])};
export const DOUBLE_QUOTES = {js_string(chardata.DOUBLE_QUOTE_RE.pattern[1:-1])};

/** The character categories of ftfy's mojibake heuristic (`badness.MOJIBAKE_CATEGORIES`), as class bodies. */
export const MOJIBAKE: Readonly<Record<string, string>> = {{
{categories},
}};
"""
    write_ts("ftfy-tables.ts", f" * ftfy {ftfy.__version__} data tables, {GENERATED} the installed package: do not edit.", body)


CLEAN_EXTRA = [
    "Check https://example.com/page and www.site.org/x, or http://a.b.co/q?x=1",
    "visit example.ru/path/ now, mail me@example.com",
    "a photo by @john_doe99 and @anna",
    "<person> in a field",
    "free shipping! Worldwide free shipping on all orders",
    "free download, download free, click for more, click on details",
    "image.png photo.JPG file.jpeg doc.pdf video.mp4 app.apk",
    "png image jpg images of a cat page 12",
    "ip 192.168.0.1 and 10.0.0.255",
    "article 3:45  ",
    "literal backslash-n\\nhere",
    "#123 #12345 #1234 number 1234567 and 12345",
    "jc6640 jc6640vc 6640vc231 j2d1a2a abc12345",
    "size 1920x1080 12.5x3 4х5 6×7",
    "title : subtitle , a,b a.b a/b 1,2 1.5",
    "\"quoted caption\"",
    "'single quoted'",
    "-leading dash",
    "trailing plus+",
    ".hidden",
    "this-is-my-cute-cat this_is_my_cute_cat",
    "one-two three_four",
    "dots... and .. and . middle . dot",
    "quotes \"\"\"triple\"\"\" and ''two''",
    "bad *** punct ### ~~~ ||| {} [] () \\ / ® © ™ • · º ½ ¾ ¿ ¡ §",
    "em — dash – en ‐ hyphen − minus ⸺ two-em 〜 wave",
    "«french» “curly” ‘single’ `back` ´acute¨",
    "&quot;html quot&quot; and &amp; amp &amp",
    "fish &amp chips &lt;b&gt;",
    "url encoded caf%C3%A9 %E2%9C%93 50%25 a+b %zz %2",
    "bad utf-8 %C3 %ED%A0%80 %FF caf%C3%A9",
    "%E6%9D%B1 non-ascii é%C3%A9 mixed",
    "html <b>bold</b> <i>it</i> <br/> text",
    "a < b > c and 3 <4",
    "black & white",
    "tom&jerry",
    "&#65; &#x42; &copy",
    "CJK 東京 一二三 ㄱ ㈠ ㌀ 㐀 ䷀ kept: かな カナ 한글",
    "mojibake cafÃ© naÃ¯ve",
    "Â£100 and â€œquotesâ€",
    "ﬁne ﬂowers ＡＢＣ　ｆｕｌｌ",
    "control\x00\x07chars and\u200bzero width \ufeffbom",
    "line\r\nbreaks\rold mac\u2028sep\u2029para\x85nel",
    "\x1b[31mred\x1b[0m terminal",
    "tabs\tand\nnewlines\n\nhere",
    "Ελληνικά ΚΕΙΜΕΝΟ ΟΔΟΣ",
    "Русский текст, Москва",
    "naïve café résumé Ångström",
    "   ",
    "",
    "A PHOTO, OF A CAT.SITTING ON/A TABLE",
    "word,word.word/word 1,2.3/4",
    "x : y",
    "a@b.com",
    "emoji 😀 and 🐱 cats",
]


def is_bad_cases() -> list[list]:
    """Short strings over the characters ftfy's heuristic looks at, with ftfy's is_bad verdict."""
    from ftfy.badness import MOJIBAKE_CATEGORIES, is_bad

    alphabet = sorted({c for v in MOJIBAKE_CATEGORIES.values() for c in v if c != "-"} |
                      set("ÂÃÎÐØÙàВГРСΒΓΞΟβ€™ā°µ²³×√≈‚Äâó¢£ŸžŠš®©»·–—´ ¡aZz.,?! \t1"))
    rnd = random.Random(7)
    out, seen = [], set()
    while len(out) < 2000:
        t = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 5)))
        if t not in seen:
            seen.add(t)
            out.append([t, is_bad(t)])
    return out


def bs4_rule_self_check() -> None:
    """The port replaces BeautifulSoup by bs4_model when no '&' precedes [A-Za-z0-9#] and no '<' precedes
    [A-Za-z/!?]; check that claim exhaustively on short strings."""
    import itertools
    import warnings

    from bs4 import BeautifulSoup

    warnings.filterwarnings("ignore")
    alphabet = ["a", "Z", "1", "#", "&", "<", ">", ";", " ", "\n", "\t", "\r", "/", "!", "?", "é", "-"]
    checked = 0
    for n in range(1, 5):
        for chars in itertools.product(alphabet, repeat=n):
            t = "".join(chars)
            if bs4_changes_possible(t):
                continue
            assert BeautifulSoup(t, features="html.parser").text == bs4_model(t), repr(t)
            checked += 1
    print(f"BeautifulSoup identity checked on {checked} short strings", file=sys.stderr)


def bs4_model(t: str) -> str:
    """What the port does instead of BeautifulSoup on such text: a text made only of ASCII whitespace becomes
    one newline (if it has one) or one space, as BeautifulSoup does with whitespace-only strings."""
    if t and all(c in " \n\t\x0c\r" for c in t):
        return "\n" if "\n" in t else " "
    return t


def bs4_changes_possible(t: str) -> bool:
    import re
    return re.search(r"&[A-Za-z0-9#]|<[A-Za-z/!?]", t) is not None


def clean_caption_cases(texts: list[str]) -> list[dict]:
    """diffusers' clean_caption=True output for each text, and whether the TS port's coverage rules hold for it
    (computed here with the real libraries: BeautifulSoup input, ftfy input, html.unescape input)."""
    import re

    import ftfy
    from diffusers.pipelines.pixart_alpha import pipeline_pixart_sigma as module
    from ftfy.badness import is_bad

    pipe = module.PixArtSigmaPipeline.__new__(module.PixArtSigmaPipeline)
    covered = True
    real_bs, real_fix_text = module.BeautifulSoup, ftfy.fix_text
    real_fix_encoding, real_unescape_html = ftfy.fix_encoding, ftfy.FIXERS["unescape_html"]
    entity = re.compile(r"&#?[0-9A-Za-z]{1,24};")

    def bs(markup, features):
        nonlocal covered
        covered &= not bs4_changes_possible(markup)
        return real_bs(markup, features=features)

    def fix_encoding(text, *args, **kwargs):  # ftfy's mojibake repair: not ported, runs only on "bad" text
        nonlocal covered
        covered &= text.isascii() or not is_bad(text)
        return real_fix_encoding(text, *args, **kwargs)

    def unescape_html(text):  # ftfy's entity decoding: not ported, acts only on "&name;" / "&#n;"
        nonlocal covered
        covered &= entity.search(text) is None
        return real_unescape_html(text)

    def fix_text(text):
        nonlocal covered
        out = real_fix_text(text)
        covered &= "&" not in out  # html.unescape follows: not ported, the identity without "&"
        return out

    module.BeautifulSoup, module.ftfy.fix_text = bs, fix_text
    ftfy.fix_encoding, ftfy.FIXERS["unescape_html"] = fix_encoding, unescape_html
    try:
        out = []
        for t in texts:
            covered = True
            result = pipe._text_preprocessing(t, clean_caption=True)[0]
            out.append({"text": t, "clean": result, "covered": covered})
        return out
    finally:
        module.BeautifulSoup, module.ftfy.fix_text = real_bs, real_fix_text
        ftfy.fix_encoding, ftfy.FIXERS["unescape_html"] = real_fix_encoding, real_unescape_html


if __name__ == "__main__":
    main()
