// Safeguards against catastrophic forgetting (the second half; rehearsal — replaying old-task rows in every
// batch — lives in the trainers' samplers):
//   L2 to the initial weights:  R = (λ/2) Σ_i (θ_i − θ0_i)²            ∂R/∂θ_i = λ (θ_i − θ0_i)
//   EWC (Kirkpatrick et al. 2017):  R = (λ/2) Σ_i F_i (θ_i − θ0_i)²     ∂R/∂θ_i = λ F_i (θ_i − θ0_i)
// with F the diagonal empirical Fisher at θ0: the mean over samples of the squared per-sample gradient of the
// loss. The penalty's gradient is added straight into .grad after backward (no graph), so it costs one pass
// over the parameters per step.

import { AlignkitError, noGrad, tidy, untracked, zeros, type Tensor } from '../tensor/index.ts';

export interface ForgettingOptions<B> {
  /** λ of the plain L2-to-initial-weights penalty (0 = off). */
  l2InitCoef: number;
  /** λ of EWC (0 = off). */
  ewcCoef: number;
  /** Samples for the Fisher estimate, one per yield (per-sample gradients: batch size 1). */
  fisherBatches?: () => AsyncIterable<B>;
  /** Mean loss of a batch, recorded for backward. */
  lossOf?: (batch: B) => Tensor;
}

export class ForgettingRegularizer {
  private constructor(
    private readonly params: Map<string, Tensor>,
    private readonly initial: Map<string, Float32Array>,
    private readonly fisher: Map<string, Float32Array> | null,
    private readonly l2: number,
    private readonly ewc: number,
  ) {}

  /** Snapshots θ0 (and estimates the Fisher diagonal at θ0 when EWC is on). Gradients are left zeroed. */
  static async create<B>(params: ReadonlyMap<string, Tensor>, o: ForgettingOptions<B>): Promise<ForgettingRegularizer> {
    if (!(o.l2InitCoef >= 0) || !(o.ewcCoef >= 0)) throw new AlignkitError('l2_init_coef and ewc_coef must be >= 0');
    const initial = new Map<string, Float32Array>();
    for (const [name, t] of params) initial.set(name, Float32Array.from(t.data as Float32Array));
    let fisher: Map<string, Float32Array> | null = null;
    if (o.ewcCoef > 0) {
      if (!o.fisherBatches || !o.lossOf) throw new AlignkitError('EWC needs samples to estimate the Fisher information');
      fisher = new Map([...params].map(([n, t]) => [n, new Float32Array(t.size)]));
      let samples = 0;
      for await (const b of o.fisherBatches()) {
        for (const t of params.values()) t.zeroGrad();
        tidy(() => o.lossOf?.(b).backward());
        for (const [n, t] of params) {
          const f = fisher.get(n) as Float32Array;
          const g = t.grad?.data as Float32Array | undefined;
          if (g) for (let i = 0; i < f.length; i++) f[i] += g[i] * g[i];
        }
        samples++;
      }
      for (const t of params.values()) t.zeroGrad();
      if (samples === 0) throw new AlignkitError('EWC: no samples to estimate the Fisher information from');
      for (const f of fisher.values()) for (let i = 0; i < f.length; i++) f[i] /= samples;
    }
    return new ForgettingRegularizer(new Map(params), initial, fisher, o.l2InitCoef, o.ewcCoef);
  }

  /** Adds ∂R/∂θ to every parameter's gradient (creating it when absent); returns R. */
  addGradients(): number {
    let penalty = 0;
    noGrad(() => {
      for (const [name, t] of this.params) {
        const theta = t.data as Float32Array;
        const theta0 = this.initial.get(name) as Float32Array;
        const fisher = this.fisher?.get(name) ?? null;
        if (!t.grad) t.grad = untracked(() => zeros(t.shape, t.backend));
        const g = t.grad.data as Float32Array;
        for (let i = 0; i < theta.length; i++) {
          const d = theta[i] - theta0[i];
          const w = this.l2 + (fisher ? this.ewc * fisher[i] : 0);
          g[i] += w * d;
          penalty += 0.5 * w * d * d;
        }
      }
    });
    return penalty;
  }

  /** The Fisher diagonal of a parameter (tests, reports). */
  fisherOf(name: string): Float32Array | null {
    return this.fisher?.get(name) ?? null;
  }

  dispose(): void {
    this.initial.clear();
    this.fisher?.clear();
  }
}

/**
 * The parameters to train: all (patterns null) or those whose name matches one of the patterns (a plain
 * substring, or /regex/); the rest are frozen. A pattern that matches nothing is an error naming the pattern.
 */
export function selectTrainable(named: ReadonlyMap<string, Tensor>, patterns: readonly string[] | null): Map<string, Tensor> {
  if (!patterns || patterns.length === 0) return new Map([...named].filter(([, t]) => t.requiresGrad));
  const tests = patterns.map((p) => {
    const m = /^\/(.*)\/([a-z]*)$/.exec(p);
    const re = m ? new RegExp(m[1], m[2]) : null;
    return { p, hit: (name: string) => (re ? re.test(name) : name.includes(p)), used: false };
  });
  const out = new Map<string, Tensor>();
  for (const [name, t] of named) {
    const hit = tests.filter((x) => x.hit(name));
    for (const h of hit) h.used = true;
    t.requireGrad(hit.length > 0);
    if (hit.length) out.set(name, t);
  }
  const unused = tests.filter((x) => !x.used).map((x) => x.p);
  if (unused.length) throw new AlignkitError(`trainable_modules: ${unused.map((u) => `'${u}'`).join(', ')} match no parameter (names look like ${[...named.keys()].slice(0, 3).join(', ')})`);
  return out;
}
