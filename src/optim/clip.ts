// Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and non-finite gradient detection.
import type { FloatArray } from '../backend/index.ts';
import type { Tensor } from '../tensor/tensor.ts';

export interface ClipResult {
  /** The global L2 norm of all gradients before clipping. */
  totalNorm: number;
  /** Whether the gradients were scaled. */
  clipped: boolean;
  /** The first parameter with a NaN/Inf gradient (gradients are then left untouched), else null. */
  nonFinite: string | null;
}

/**
 * Scales all gradients by maxNorm / (totalNorm + 1e-6) when totalNorm > maxNorm, like PyTorch. The norm is
 * summed in float64 in a fixed order. With a non-finite norm nothing is scaled and the culprit is named, so
 * the trainer can skip the step and say why.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): ClipResult {
  let sumSq = 0;
  const withGrad = params.filter((p) => p.grad);
  for (const p of withGrad) {
    const g = p.grad as Tensor;
    sumSq += p.backend.sumSquares(g.data as FloatArray, g.size);
  }
  const totalNorm = Math.sqrt(sumSq);
  if (!Number.isFinite(totalNorm)) return { totalNorm, clipped: false, nonFinite: firstNonFinite(withGrad) };
  const coef = maxNorm / (totalNorm + 1e-6);
  if (coef >= 1) return { totalNorm, clipped: false, nonFinite: null };
  for (const p of withGrad) {
    const g = p.grad as Tensor;
    p.backend.scaleInPlace(g.data as FloatArray, g.size, coef);
  }
  return { totalNorm, clipped: true, nonFinite: null };
}

function firstNonFinite(params: readonly Tensor[]): string | null {
  for (const p of params) {
    const d = (p.grad as Tensor).data as FloatArray;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return `${p.name ?? `parameter #${p.id}`} (element ${i} = ${d[i]})`;
  }
  return null;
}
