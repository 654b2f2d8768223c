/** The T5 tokenizer of PixArt-Sigma (transformers 5 behaviour) and the pipeline's text preprocessing. */
export * from "./errors";
export { T5Tokenizer, toInt64Tensor, DEFAULT_MAX_LENGTH, SPIECE_MODEL_FILE } from "./t5-tokenizer";
export type { EncodeOptions, EncodedBatch, DecodeOptions } from "./t5-tokenizer";
export { parseSentencePieceModel, readSentencePieceModel, PieceType } from "./sentencepiece-model";
export type { SentencePieceModel, SentencePiece } from "./sentencepiece-model";
export { parseTokenizerJson, readTokenizerJson, TOKENIZER_JSON_FILE } from "./tokenizer-json";
export type { TokenizerJson } from "./tokenizer-json";
export type { AddedTokenSpec } from "./tokenizer-config";
export { pythonLower, pythonStrip } from "./python-str";
export { textPreprocessing } from "./text-preprocess";
export { cleanCaption, unquotePlus } from "./clean-caption";
export { isBad as ftfyIsBad, fixText as ftfyFixText } from "./ftfy";
export type { TextPreprocessingOptions } from "./text-preprocess";
