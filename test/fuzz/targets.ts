/**
 * Fuzz targets for the parsers that read untrusted bytes: safetensors headers, spiece.model (and its precompiled
 * charsmap), tokenizer.json, config.json (the three model configs) and the kernel's wire messages. Each input is a
 * seed mutated by a seeded PRNG; a target passes an input when it parses it or throws one of its typed errors.
 * Anything else (a TypeError, a RangeError...) is an "untyped" failure; an input taking over `hangMs` is a hang.
 */
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { CheckpointError } from "../../src/io/errors";
import { parsePythonJson, type JsonObject } from "../../src/io/json";
import { parseSafetensorsHeader } from "../../src/io/safetensors";
import { parseAutoencoderKLConfig } from "../../src/models/autoencoder-kl";
import { parsePixArtTransformerConfig } from "../../src/models/pixart-transformer-2d";
import { parseT5Config } from "../../src/models/t5-encoder";
import { PrecompiledCharsmap } from "../../src/tokenizer/precompiled-charsmap";
import { parseSentencePieceModel } from "../../src/tokenizer/sentencepiece-model";
import { parseTokenizerJson } from "../../src/tokenizer/tokenizer-json";
import { UnigramModel } from "../../src/tokenizer/unigram";
import { decode, encode, newHeader, Signer, WireError } from "../../kernel/src/wire";
import { fixturesDir } from "../helpers/paths";

/** xorshift32: fast, seeded, reproducible. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

const INTERESTING = ["0", "-1", "1e9", "1e308", "NaN", "Infinity", "-Infinity", "null", "true", '""', "[]", "{}", "\"\\u0000\"",
  "2147483648", "4294967296", "9007199254740993", "-0", "1.5", '"__proto__"', '"constructor"', "[[[[[[", "\"\\ud800\""];

/** One mutated copy of `seed`: a few byte flips, inserts, deletes, splices, truncations or token swaps. */
export function mutate(seed: Uint8Array, rng: Rng): Uint8Array {
  let b = Buffer.from(seed);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : rng.below(b.length);
    switch (rng.below(8)) {
      case 0: if (b.length) b[at] ^= 1 << rng.below(8); break;
      case 1: if (b.length) b[at] = rng.below(256); break;
      case 2: b = Buffer.concat([b.subarray(0, at), Buffer.from([rng.below(256)]), b.subarray(at)]); break;
      case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.below(16)))]); break;
      case 4: b = b.subarray(0, at); break;
      case 5: {
        const from = rng.below(b.length + 1);
        const len = rng.below(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + len), b.subarray(at)]);
        break;
      }
      case 6: b = Buffer.concat([b.subarray(0, at), Buffer.from(INTERESTING[rng.below(INTERESTING.length)]!), b.subarray(at + rng.below(8))]); break;
      default: if (b.length >= 4) b.writeUInt32LE(rng.next(), Math.min(at, b.length - 4));
    }
  }
  return b;
}

export interface Target {
  name: string;
  seeds: Uint8Array[];
  /** Runs one input; throws only what the target's `typed` accepts, for well-behaved code. */
  run(input: Uint8Array): void;
  typed(e: unknown): boolean;
}

const tiny = path.join(fixturesDir, "tiny-square", "pipeline");
const read = (rel: string): Buffer => fs.readFileSync(path.join(tiny, rel));

function safetensorsTarget(): Target {
  const file = read("transformer/diffusion_pytorch_model.safetensors");
  const n = Number(file.readBigUInt64LE(0));
  const header = file.subarray(8, 8 + n);
  const dataSize = file.length - 8 - n;
  return {
    name: "safetensors header",
    seeds: [header, Buffer.from('{"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')],
    run: (input) => void parseSafetensorsHeader(input, { file: "fuzz.safetensors", realPath: "fuzz.safetensors", dataStart: 8 + n, dataSize }),
    typed: (e) => e instanceof CheckpointError,
  };
}

const NORMALIZE_SAMPLE = "Ａ１ café ﬁ \u3000 e\u0301 \u{1F600}\u200d\u{1F600} 🇫🇷🇩🇪";

function spieceTarget(): Target {
  return {
    name: "spiece.model",
    seeds: [read("tokenizer/spiece.model")],
    run: (input) => {
      const spm = parseSentencePieceModel(input, "fuzz.model");
      const charsmap = spm.normalizerSpec.precompiledCharsmap;
      if (charsmap.length > 0) new PrecompiledCharsmap(charsmap, "fuzz.model", "normalizer_spec.precompiled_charsmap").normalize(NORMALIZE_SAMPLE);
      new UnigramModel(spm.pieces.map((p) => [p.piece, p.score]), 2).tokenize("\u2581hello\u2581world");
    },
    typed: (e) => e instanceof CheckpointError,
  };
}

function tokenizerJsonTarget(): Target {
  const full = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(fixturesDir, "tokenizer", "json", "tokenizer.json.gz"))).toString("utf8"));
  // A small but complete document: the real one's structure with its first 100 pieces and the tiny checkpoint's
  // charsmap (the full ones made each input cost 3 ms; 1,000,000 of them should take minutes, not an hour).
  const charsmap = Buffer.from(parseSentencePieceModel(read("tokenizer/spiece.model"), "spiece.model").normalizerSpec.precompiledCharsmap).toString("base64");
  const normalizer = JSON.parse(JSON.stringify(full.normalizer).replace(/"precompiled_charsmap":"[^"]*"/, `"precompiled_charsmap":"${charsmap}"`));
  // The first special tokens and the last extra ids: every kind of entry, without 100 copies of one shape.
  const addedTokens = [...full.added_tokens.slice(0, 3), ...full.added_tokens.slice(-2)];
  const small = { ...full, added_tokens: addedTokens, normalizer, model: { ...full.model, vocab: full.model.vocab.slice(0, 100) } };
  return {
    name: "tokenizer.json",
    seeds: [Buffer.from(JSON.stringify(small))],
    run: (input) => {
      const doc = parsePythonJson(Buffer.from(input).toString("utf8"), "fuzz/tokenizer.json");
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return;
      const json = parseTokenizerJson(doc as JsonObject, "fuzz/tokenizer.json");
      if (json.charsmap) new PrecompiledCharsmap(json.charsmap, json.file, "normalizer.precompiled_charsmap").normalize(NORMALIZE_SAMPLE);
      new UnigramModel(json.vocab, 2).tokenize("\u2581hello");
    },
    typed: (e) => e instanceof CheckpointError,
  };
}

function configTarget(): Target {
  const parsers = [
    ["transformer/config.json", parsePixArtTransformerConfig],
    ["vae/config.json", parseAutoencoderKLConfig],
    ["text_encoder/config.json", parseT5Config],
  ] as const;
  return {
    name: "config.json",
    seeds: parsers.map(([rel]) => read(rel)),
    run: (input) => {
      const doc = parsePythonJson(Buffer.from(input).toString("utf8"), "fuzz/config.json");
      if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return;
      for (const [, parse] of parsers) {
        try {
          parse(doc as JsonObject, "fuzz/config.json");
        } catch (e) {
          if (!(e instanceof CheckpointError)) throw e;
        }
      }
    },
    typed: (e) => e instanceof CheckpointError,
  };
}

function kernelMessageTarget(): Target {
  const signer = new Signer("hmac-sha256", "fuzz-key");
  const msg = { identities: [Buffer.from("client")], header: newHeader("execute_request", "s", "u"), parent_header: {}, metadata: {},
    content: { code: "1 + 1", silent: false, user_expressions: { a: "1" } }, buffers: [] };
  const frames = encode(msg, signer);
  const at = frames.findIndex((f) => f.toString() === "<IDS|MSG>");
  return {
    name: "kernel message",
    seeds: frames.slice(at + 2, at + 6).map((f) => Buffer.from(f)),
    run: (input) => {
      // The input replaces one JSON frame (chosen by its first byte) and is signed, so parsing is reached.
      const parts = frames.slice(at + 2, at + 6).map((f) => Buffer.from(f));
      parts[(input[0] ?? 0) % 4] = Buffer.from(input);
      const out = [...frames.slice(0, at + 1), Buffer.from(signer.sign(parts)), ...parts];
      if ((input[1] ?? 0) % 7 === 0) out.splice(at, 1); // sometimes no delimiter
      decode(out, signer);
    },
    typed: (e) => e instanceof WireError,
  };
}

export function allTargets(): Target[] {
  return [safetensorsTarget(), spieceTarget(), tokenizerJsonTarget(), configTarget(), kernelMessageTarget()];
}

export interface FuzzReport {
  target: string;
  inputs: number;
  accepted: number;
  typedErrors: number;
  /** Typed errors by class name (e.g. TokenizerFileError: 812345). */
  typedClasses: Record<string, number>;
  untyped: Array<{ input: string; error: string }>;
  hangs: Array<{ input: string; ms: number }>;
  slowestMs: number;
  seconds: number;
}

/**
 * Runs `count` mutated inputs through `target` (seeded, so a failure can be replayed). `onProgress` is called every
 * `progressEvery` inputs with the report so far (a long run shows where it is and leaves figures if it is stopped).
 */
export function fuzz(target: Target, count: number, seed = 1, hangMs = 1000,
  onProgress?: (report: FuzzReport) => void, progressEvery = 100_000): FuzzReport {
  const rng = new Rng(seed);
  const report: FuzzReport = { target: target.name, inputs: 0, accepted: 0, typedErrors: 0, typedClasses: {}, untyped: [], hangs: [], slowestMs: 0, seconds: 0 };
  const start = Date.now();
  for (let i = 0; i < count; i++) {
    const input = mutate(target.seeds[rng.below(target.seeds.length)]!, rng);
    const t0 = performance.now();
    try {
      target.run(input);
      report.accepted++;
    } catch (e) {
      if (target.typed(e)) {
        report.typedErrors++;
        const name = (e as Error).constructor.name;
        report.typedClasses[name] = (report.typedClasses[name] ?? 0) + 1;
      }
      else if (report.untyped.length < 20) report.untyped.push({ input: Buffer.from(input).toString("base64"), error: String((e as Error)?.stack ?? e).slice(0, 400) });
      else report.untyped.length++;
    }
    const ms = performance.now() - t0;
    if (ms > report.slowestMs) report.slowestMs = ms;
    if (ms > hangMs) report.hangs.push({ input: Buffer.from(input).toString("base64"), ms });
    report.inputs++;
    if (onProgress && report.inputs % progressEvery === 0 && report.inputs < count) {
      report.seconds = (Date.now() - start) / 1000;
      onProgress(report);
    }
  }
  report.seconds = (Date.now() - start) / 1000;
  return report;
}
