/** Bad tokenizer files and bad arguments: each gives a typed error that names the file, field or argument. */
import { strict as assert } from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as protobuf from "protobufjs";
import { parseSentencePieceModel, parseTokenizerJson, T5Tokenizer } from "../../src/tokenizer";
import { readTokenizerFixtureBytes, tokenizerFixturesDir } from "./tokenizer-fixtures";

const spieceDir = path.join(tokenizerFixturesDir, "spiece");

/** A ModelProto with the given pieces ([text, type]) and trainer_spec.model_type, written field by field. */
function modelBytes(pieces: Array<[string, number]>, modelType = 1): Uint8Array {
  const w = protobuf.Writer.create();
  for (const [text, type] of pieces) {
    w.uint32((1 << 3) | 2).fork().uint32((1 << 3) | 2).string(text).uint32((2 << 3) | 5).float(-1).uint32(3 << 3).int32(type).ldelim();
  }
  w.uint32((2 << 3) | 2).fork().uint32(3 << 3).int32(modelType).ldelim();
  return w.finish();
}

function tokenizerJson(): Record<string, unknown> {
  return JSON.parse(readTokenizerFixtureBytes("json/tokenizer.json.gz").toString("utf8")) as Record<string, unknown>;
}

describe("tokenizer errors", () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "t5-errors-"));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** A fresh folder holding `files` (name -> content). */
  function folder(name: string, files: Record<string, string | Uint8Array>): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir);
    for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
    return dir;
  }

  it("a missing folder is a TokenizerFileError naming it", async () => {
    const dir = path.join(tmp, "nope");
    await assert.rejects(T5Tokenizer.fromPretrained(dir), (e: Error) => {
      assert.equal(e.name, "TokenizerFileError");
      assert.match(e.message, /nope: folder not found/);
      return true;
    });
  });

  it("a folder without spiece.model or tokenizer.json is a TokenizerFileError", async () => {
    const dir = folder("empty", {});
    await assert.rejects(T5Tokenizer.fromPretrained(dir), {
      name: "TokenizerFileError",
      message: `${dir}: has neither tokenizer.json nor spiece.model; expected a T5 tokenizer folder`,
    });
  });

  it("a corrupt spiece.model is a TokenizerFileError naming the file", async () => {
    const dir = folder("corrupt", { "spiece.model": "this is not a protobuf\n" });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), (e: Error & { file?: string }) => {
      assert.equal(e.name, "TokenizerFileError");
      assert.equal(e.file, path.join(dir, "spiece.model"));
      assert.match(e.message, /not a SentencePiece model protobuf/);
      return true;
    });
  });

  it("a truncated spiece.model is a TokenizerFileError", async () => {
    const bytes = fs.readFileSync(path.join(spieceDir, "spiece.model"));
    const dir = folder("truncated", { "spiece.model": bytes.subarray(0, 1000) });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), { name: "TokenizerFileError" });
  });

  it("an empty spiece.model is a TokenizerFileError (no pieces)", () => {
    assert.throws(() => parseSentencePieceModel(new Uint8Array(0), "x/spiece.model"), {
      name: "TokenizerFileError",
      message: 'x/spiece.model, field "pieces": not a SentencePiece model: it has no pieces',
    });
  });

  it("a BPE spiece.model is refused", () => {
    const bytes = modelBytes([["<pad>", 3], ["</s>", 3], ["<unk>", 2], ["a", 1]], 2);
    assert.throws(() => parseSentencePieceModel(bytes, "bpe/spiece.model"), {
      name: "UnsupportedTokenizerError",
      message: /bpe\/spiece.model, field "trainer_spec.model_type": model_type 2 is not unigram/,
    });
  });

  it("a model whose id 2 is not <unk> is refused", async () => {
    const dir = folder("unk0", { "spiece.model": modelBytes([["<unk>", 2], ["</s>", 3], ["<pad>", 3], ["a", 1]]) });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), {
      name: "UnsupportedTokenizerError",
      message: /id 2 is "<pad>", but T5 tokenizers need the unknown token "<unk>" there/,
    });
  });

  it("a corrupt precompiled charsmap is a TokenizerFileError naming the field", async () => {
    const doc = tokenizerJson();
    (doc["normalizer"] as Record<string, unknown>)["precompiled_charsmap"] = "AAAA";
    const dir = folder("charsmap", { "tokenizer.json": JSON.stringify(doc) });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), {
      name: "TokenizerFileError",
      message: /field "normalizer.precompiled_charsmap": precompiled charsmap: 3 bytes is too short/,
    });
  });

  it("tokenizer.json that is not JSON is a ConfigError naming the file", async () => {
    const dir = folder("badjson", { "tokenizer.json": "{ not json" });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.ok(e.message.startsWith(path.join(dir, "tokenizer.json")), e.message);
      return true;
    });
  });

  it("a tokenizer.json BPE model is refused", () => {
    const doc = tokenizerJson();
    (doc["model"] as Record<string, unknown>)["type"] = "BPE";
    assert.throws(() => parseTokenizerJson(doc as never, "t.json"), {
      name: "UnsupportedTokenizerError",
      message: /t.json, field "model.type": model type "BPE" is not "Unigram"/,
    });
  });

  it("a malformed vocabulary entry is a TokenizerFileError naming it", () => {
    const doc = tokenizerJson();
    ((doc["model"] as Record<string, unknown>)["vocab"] as unknown[])[5] = ["x"];
    assert.throws(() => parseTokenizerJson(doc as never, "t.json"), {
      name: "TokenizerFileError",
      message: 't.json, field "model.vocab[5]": expected a [piece, score] pair',
    });
  });

  it("an added token with single_word is refused", async () => {
    const config = { added_tokens_decoder: { "1": { content: "</s>", single_word: true, special: true } } };
    const dir = folder("singleword", {
      "spiece.model": fs.readFileSync(path.join(spieceDir, "spiece.model")),
      "tokenizer_config.json": JSON.stringify(config),
    });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), {
      name: "UnsupportedTokenizerError",
      message: /field "added_tokens_decoder.1": token "<\/s>" has single_word: true/,
    });
  });

  it("a negative extra_ids is a TokenizerFileError", async () => {
    const dir = folder("extraids", {
      "spiece.model": fs.readFileSync(path.join(spieceDir, "spiece.model")),
      "tokenizer_config.json": JSON.stringify({ extra_ids: -1 }),
    });
    await assert.rejects(T5Tokenizer.fromPretrained(dir), { name: "TokenizerFileError", message: /field "extra_ids"/ });
  });
});

describe("tokenizer argument errors", () => {
  let tok: T5Tokenizer;
  before(async () => {
    tok = await T5Tokenizer.fromPretrained(spieceDir);
  });

  it("maxLength must be an integer >= 1", () => {
    assert.throws(() => tok.encode(["a"], { maxLength: 0 }), { name: "TokenizerArgumentError", argument: "maxLength" } as never);
  });
  it("padding must be max_length or longest", () => {
    assert.throws(() => tok.encode(["a"], { padding: "left" as never }), { name: "TokenizerArgumentError", message: /padding/ });
  });
  it("texts must be strings", () => {
    assert.throws(() => tok.encode(["a", 3 as never]), { name: "TokenizerArgumentError", message: /texts\[1\]: expected a string/ });
  });
  it("a lone surrogate is refused (transformers cannot take it either)", () => {
    assert.throws(() => tok.encode(["a\ud800b"]), { name: "TokenizerArgumentError", message: /lone UTF-16 surrogate/ });
  });
  it("decode refuses ids outside the vocabulary", () => {
    assert.throws(() => tok.decode([5, 99999]), { name: "TokenizerArgumentError", message: /id 99999 is not in the vocabulary/ });
  });
});
