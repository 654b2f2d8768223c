/**
 * Reads a SentencePiece `ModelProto` (`spiece.model`) with protobufjs. Only the fields a T5 tokenizer needs are
 * declared; protobufjs skips the others. Field numbers follow sentencepiece's `sentencepiece_model.proto`.
 */
import { promises as fsp } from "fs";
import { checkFileContained } from "../io/paths";
import * as protobuf from "protobufjs";
import { TokenizerFileError, UnsupportedTokenizerError } from "./errors";

/** `ModelProto.SentencePiece.Type`. */
export enum PieceType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

export interface SentencePiece {
  piece: string;
  /** The float32 log-probability stored in the file, widened to a double (as Python does). */
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  /** The file the model was read from, for messages. */
  file: string;
  pieces: SentencePiece[];
  trainerSpec: {
    /** 1 = unigram, 2 = BPE, 3 = word, 4 = char. */
    modelType: number;
    unkId: number;
    bosId: number;
    eosId: number;
    padId: number;
    byteFallback: boolean;
  };
  normalizerSpec: {
    name: string;
    /** The darts double-array + replacement strings blob; empty when the model does no normalization. */
    precompiledCharsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

const MODEL_TYPE_UNIGRAM = 1;

/** The subset of sentencepiece_model.proto read here (proto2; enums declared as int32, same wire format). */
const SCHEMA = {
  nested: {
    ModelProto: {
      fields: {
        pieces: { rule: "repeated", type: "SentencePiece", id: 1 },
        trainerSpec: { type: "TrainerSpec", id: 2 },
        normalizerSpec: { type: "NormalizerSpec", id: 3 },
      },
      nested: {
        SentencePiece: {
          fields: {
            piece: { type: "string", id: 1 },
            score: { type: "float", id: 2 },
            type: { type: "int32", id: 3 },
          },
        },
      },
    },
    TrainerSpec: {
      fields: {
        modelType: { type: "int32", id: 3 },
        byteFallback: { type: "bool", id: 35 },
        unkId: { type: "int32", id: 40 },
        bosId: { type: "int32", id: 41 },
        eosId: { type: "int32", id: 42 },
        padId: { type: "int32", id: 43 },
      },
    },
    NormalizerSpec: {
      fields: {
        name: { type: "string", id: 1 },
        precompiledCharsmap: { type: "bytes", id: 2 },
        addDummyPrefix: { type: "bool", id: 3 },
        removeExtraWhitespaces: { type: "bool", id: 4 },
        escapeWhitespaces: { type: "bool", id: 5 },
      },
    },
  },
};

let modelProtoType: protobuf.Type | undefined;
function modelProto(): protobuf.Type {
  modelProtoType ??= protobuf.Root.fromJSON(SCHEMA).lookupType("ModelProto");
  return modelProtoType;
}

interface RawPiece {
  piece?: string;
  score?: number;
  type?: number;
}
interface RawModel {
  pieces?: RawPiece[];
  trainerSpec?: Record<string, number | boolean | undefined>;
  normalizerSpec?: { name?: string; precompiledCharsmap?: Uint8Array } & Record<string, unknown>;
}

/** Proto2 defaults of the declared fields (as in sentencepiece_model.proto). */
function orDefault<T>(value: T | undefined, fallback: T): T {
  return value === undefined || value === null ? fallback : value;
}

/** Decodes `bytes` (the content of `file`); throws `TokenizerFileError` when they are not a usable model. */
export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  let raw: RawModel;
  try {
    raw = modelProto().decode(bytes) as unknown as RawModel;
  } catch (e) {
    throw new TokenizerFileError(file, `not a SentencePiece model protobuf (${(e as Error).message})`, { cause: e });
  }
  const rawPieces = raw.pieces ?? [];
  if (rawPieces.length === 0) {
    throw new TokenizerFileError(file, "not a SentencePiece model: it has no pieces", { field: "pieces" });
  }
  const pieces = rawPieces.map((p, i): SentencePiece => {
    if (typeof p.piece !== "string" || p.piece.length === 0) {
      throw new TokenizerFileError(file, `piece ${i} has no text`, { field: `pieces[${i}].piece` });
    }
    const score = orDefault(p.score, 0);
    if (!Number.isFinite(score)) throw new TokenizerFileError(file, `piece ${i} has score ${score}; expected a finite number`, { field: `pieces[${i}].score` });
    return { piece: p.piece, score, type: orDefault(p.type, PieceType.Normal) };
  });
  const t = raw.trainerSpec ?? {};
  const n = raw.normalizerSpec ?? {};
  const model: SentencePieceModel = {
    file,
    pieces,
    trainerSpec: {
      modelType: orDefault(t.modelType as number | undefined, MODEL_TYPE_UNIGRAM),
      unkId: orDefault(t.unkId as number | undefined, 0),
      bosId: orDefault(t.bosId as number | undefined, 1),
      eosId: orDefault(t.eosId as number | undefined, 2),
      padId: orDefault(t.padId as number | undefined, -1),
      byteFallback: orDefault(t.byteFallback as boolean | undefined, false),
    },
    normalizerSpec: {
      name: orDefault(n.name, ""),
      precompiledCharsmap: orDefault(n.precompiledCharsmap, new Uint8Array(0)),
      addDummyPrefix: orDefault(n.addDummyPrefix as boolean | undefined, true),
      removeExtraWhitespaces: orDefault(n.removeExtraWhitespaces as boolean | undefined, true),
      escapeWhitespaces: orDefault(n.escapeWhitespaces as boolean | undefined, true),
    },
  };
  if (model.trainerSpec.modelType !== MODEL_TYPE_UNIGRAM) {
    throw new UnsupportedTokenizerError(file, `model_type ${model.trainerSpec.modelType} is not unigram (1)`, {
      field: "trainer_spec.model_type",
    });
  }
  return model;
}

/** Reads and parses `file`; a missing or unreadable file is a `TokenizerFileError` naming it. */
export async function readSentencePieceModel(file: string): Promise<SentencePieceModel> {
  await checkFileContained(file);
  let bytes: Uint8Array;
  try {
    bytes = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TokenizerFileError(file, code === "ENOENT" ? "file not found" : `cannot be read (${code ?? String(e)})`, {
      cause: e,
    });
  }
  return parseSentencePieceModel(bytes, file);
}
