/**
 * diffusers' `randn_tensor` for CPU generators: one generator draws the whole tensor; a list of generators
 * draws one batch row each (row i from generator i), so each image of a batch can have its own seed.
 */

import { RandomArgumentError, Shape, shapeSize, TorchGenerator } from "./torch-generator";

let globalGenerator: TorchGenerator | undefined;

/** The process-wide generator used when none is given, like torch's default CPU generator (same seed). */
export function defaultGenerator(): TorchGenerator {
  globalGenerator ??= new TorchGenerator();
  return globalGenerator;
}

export function randnTensor(shape: readonly number[], generator?: TorchGenerator | readonly TorchGenerator[]): Float32Array {
  const size = shapeSize(shape as Shape);
  if (generator === undefined) return defaultGenerator().randn(shape);
  if (!Array.isArray(generator)) return (generator as TorchGenerator).randn(shape);
  const generators = generator as readonly TorchGenerator[];
  if (generators.length === 1) return generators[0].randn(shape);
  // As diffusers: row i comes from generator i; extra generators are not used, missing ones are an error.
  const batch = shape[0];
  if (shape.length === 0 || generators.length < batch) {
    throw new RandomArgumentError(
      `a list of ${generators.length} generators covers at most ${generators.length} batch rows, ` +
      `got shape [${shape.join(", ")}]`);
  }
  const rowShape = [1, ...shape.slice(1)];
  const rowSize = size / batch;
  const out = new Float32Array(size);
  for (let i = 0; i < batch; i++) out.set(generators[i].randn(rowShape), i * rowSize);
  return out;
}
