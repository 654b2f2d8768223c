export {
  TorchGenerator, TorchGeneratorOptions, TorchGeneratorState, NormalKernel, RandomArgumentError, Shape, shapeSize,
  TORCH_DEFAULT_SEED,
} from "./torch-generator";
export { randnTensor, defaultGenerator } from "./randn-tensor";
export type { Mt19937State } from "./mt19937";
