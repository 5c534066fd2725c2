// Public tensor API: the Tensor class, creation, scopes, autograd, and every op.
export * from './errors.ts';
export {
  Tensor, Storage, tidy, keep, noGrad, untracked, isGradEnabled, memoryInfo, empty, uninitialized, zeros, ones, full, tensor, intTensor,
  fromOp, shapeSize, contiguousStrides, isFloatDType,
} from './tensor.ts';
export type { DType, FloatDType, GradNode, MemoryInfo, TensorData } from './tensor.ts';
export * from './ops/elementwise.ts';
export * from './ops/reduce.ts';
export * from './ops/shape.ts';
export * from './ops/indexing.ts';
export * from './ops/nn.ts';
export * from './random.ts';
export * from './dtype.ts';
export * from './gradcheck.ts';
