"""Train the tiny SentencePiece unigram model used by every fixture tokenizer.

The model follows the T5 conventions (pad=0, eos=1, unk=2, no bos, dummy prefix, whitespace collapsing) and is
trained on a small committed corpus. Normalisation is a precompiled charsmap like T5's nmt_nfkc, compiled by
SentencePiece from user-defined rules (tiny-tokenizer/rules.tsv: NFKC for a few Unicode blocks plus the nmt
whitespace/control-character rules). The built-in nmt_nfkc charsmap alone is ~240 KB, which would take a
tenth of the fixture budget per tokenizer folder; the charsmap format and the code path that applies it are
the same. (The tokenizer's own fixtures, test/fixtures/tokenizer/, cover the full nmt_nfkc charsmap.)

Training is deterministic: fixed options, one thread, a fixed random seed, and relative file names (the
trainer stores its input names inside the model proto, so absolute paths would make the bytes depend on
where it ran).

Usage: python tools/reference/train_tokenizer.py [--out DIR]   (default: tools/reference/tiny-tokenizer)
       python tools/reference/train_tokenizer.py --write-rules  (rewrite tiny-tokenizer/rules.tsv from unicodedata)
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
TOKENIZER_DIR = os.path.join(HERE, "tiny-tokenizer")
CORPUS = os.path.join(TOKENIZER_DIR, "corpus.txt")
SPIECE_MODEL = os.path.join(TOKENIZER_DIR, "spiece.model")
RULES_TSV = os.path.join(TOKENIZER_DIR, "rules.tsv")

# The number of pieces SentencePiece learns; transformers adds 100 <extra_id_N> sentinels on top.
PIECE_COUNT = 320
EXTRA_IDS = 100

TRAINER_OPTIONS = dict(
    model_type="unigram",
    vocab_size=PIECE_COUNT,
    pad_id=0,
    eos_id=1,
    unk_id=2,
    bos_id=-1,
    pad_piece="<pad>",
    eos_piece="</s>",
    unk_piece="<unk>",
    add_dummy_prefix=True,
    remove_extra_whitespaces=True,
    character_coverage=0.9995,
    split_digits=False,
    byte_fallback=False,
    num_threads=1,
    minloglevel=2,
)

# Blocks whose NFKC mappings go into rules.tsv: Latin-1, general punctuation, number forms, enclosed
# alphanumerics, Latin ligatures, full-width ASCII.
SUBSET_BLOCKS = ((0x00A0, 0x00FF), (0x2000, 0x206F), (0x2150, 0x218F), (0x2460, 0x24FF), (0xFB00, 0xFB06),
                 (0xFF01, 0xFF5E))


def subset_rules() -> list[tuple[str, str]]:
    """(source, target) pairs: NFKC in SUBSET_BLOCKS, whitespace controls to a space, other controls removed."""
    rules = []
    for first, last in SUBSET_BLOCKS:
        for code in range(first, last + 1):
            normalized = unicodedata.normalize("NFKC", chr(code))
            if normalized != chr(code):
                rules.append((chr(code), normalized))
    rules += [(c, " ") for c in "\t\n\x0b\x0c\r"]
    rules += [(chr(c), "") for c in [*range(0x01, 0x09), 0x0E, 0x1F, 0x7F]]
    return rules


def write_rules(path: str = RULES_TSV) -> None:
    def hex_codes(text: str) -> str:
        return " ".join(f"{ord(c):04X}" for c in text)

    with open(path, "w", encoding="utf-8") as f:
        for source, target in subset_rules():
            f.write(f"{hex_codes(source)}\t{hex_codes(target)}\n")


def train(out_dir: str) -> str:
    """Train into out_dir and return the path of spiece.model (spiece.vocab is written beside it)."""
    import sentencepiece as spm

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        shutil.copyfile(CORPUS, os.path.join(work, "corpus.txt"))
        shutil.copyfile(RULES_TSV, os.path.join(work, "rules.tsv"))
        cwd = os.getcwd()
        os.chdir(work)
        try:
            spm.set_random_generator_seed(1)
            spm.SentencePieceTrainer.train(input="corpus.txt", model_prefix="spiece",
                                           normalization_rule_tsv="rules.tsv", **TRAINER_OPTIONS)
        finally:
            os.chdir(cwd)
        for name in ("spiece.model", "spiece.vocab"):
            shutil.copyfile(os.path.join(work, name), os.path.join(out_dir, name))
    return os.path.join(out_dir, "spiece.model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=TOKENIZER_DIR)
    parser.add_argument("--write-rules", action="store_true", help=f"rewrite {RULES_TSV} from unicodedata")
    args = parser.parse_args()
    if args.write_rules:
        write_rules()
        print(RULES_TSV)
        return
    print(train(args.out))


if __name__ == "__main__":
    main()
