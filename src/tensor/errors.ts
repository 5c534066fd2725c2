// Errors thrown by tensor operations. Every message names the op and the shapes involved, so a mistake in
// model code reads like "matmul: inner dimensions differ: a [2,3] @ b [4,5]" rather than a crash.

export class AlignkitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Shapes that do not fit the op (wrong rank, mismatched dims, non-broadcastable). */
export class ShapeError extends AlignkitError {}
/** Wrong element type for the op (e.g. float ids, int32 activations). */
export class DTypeError extends AlignkitError {}
/** A tensor used after dispose(), or an op on tensors from different backends. */
export class LifetimeError extends AlignkitError {}
/** An index outside the valid range (gather / embedding / slice). */
export class IndexError extends AlignkitError {}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}
