// Model-based intrinsic metrics: sliding-window perplexity and pooled hidden-state embeddings against torch on the
// hash model (fixtures/harness/perplexity.json, embeddings.json); cosine similarity, nearest neighbours and the
// silhouette score against hand-computed values and scikit-learn (sklearn.json); PCA against scikit-learn and a
// dataset with known axes; t-SNE keeps well-separated clusters apart and is deterministic for a seed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { perplexity, slidingWindows } from '../../../src/eval/model_perplexity.ts';
import { cosineSimilarityMatrix, embedTexts, nearestNeighbours, silhouetteScore } from '../../../src/eval/model_embeddings.ts';
import { pca, SeededRandom, tsne } from '../../../src/eval/model_projection.ts';
import { scatterSvg, writeTextAtomic } from '../../../src/eval/model_plot.ts';
import { loadTokenizer } from '../../../src/tokenizer/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';
import { hashModel } from './hash_model.ts';

const fixture = <T>(name: string): T => JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'harness', name), 'utf8')) as T;
const tmp = mkdtempSync(join(tmpdir(), 'alignkit-model-metrics-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('slidingWindows: with stride < maxLength every token after the first is a target exactly once', () => {
  for (const [n, L, s] of [[10, 4, 2], [10, 4, 3], [7, 3, 1], [1, 4, 2], [5, 8, 3]]) {
    const w = slidingWindows(n, L, s);
    const hits = new Array<number>(n).fill(0);
    for (const x of w) {
      assert.ok(x.end - x.begin <= L && x.targets <= x.end - x.begin - 1, `window ${JSON.stringify(x)}`);
      for (let t = x.end - x.targets; t < x.end; t++) hits[t]++;
    }
    assert.deepEqual(hits, Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1)), `n ${n} L ${L} stride ${s}`);
  }
  assert.deepEqual(slidingWindows(10, 4, 2), [{ begin: 0, end: 4, targets: 3 }, { begin: 2, end: 6, targets: 2 }, { begin: 4, end: 8, targets: 2 }, { begin: 6, end: 10, targets: 2 }]);
  // disjoint windows (stride = maxLength): each window's first token has no context in it and is not scored
  assert.deepEqual(slidingWindows(10, 4, 4), [{ begin: 0, end: 4, targets: 3 }, { begin: 4, end: 8, targets: 3 }, { begin: 8, end: 10, targets: 1 }]);
  assert.throws(() => slidingWindows(10, 4, 5), /stride/);
});

test('perplexity: equals torch on the hash model for four (max_length, stride) settings', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const fx = fixture<{ text: string; ids: number[]; cases: { max_length: number; stride: number; scored: number; nll_sum: number; perplexity: number }[] }>('perplexity.json');
  const tok = loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  const text = [...readFileSync(asset(fx.text), 'utf8')].slice(0, 3000).join('');
  assert.deepEqual(tok.encode(text), fx.ids);
  const model = hashModel();
  for (const c of fx.cases) {
    const r = perplexity(model, [text], { maxLength: c.max_length, stride: c.stride, tokenizer: tok });
    assert.equal(r.scored, c.scored);
    assert.ok(Math.abs(r.perText[0].nll - c.nll_sum) < 5e-3, `nll ${r.perText[0].nll} vs ${c.nll_sum}`);
    assert.ok(Math.abs(r.perplexity / c.perplexity - 1) < 1e-6, `(${c.max_length}, ${c.stride}): ${r.perplexity} vs ${c.perplexity}`);
  }
});

test('embeddings: mean and last-token pooling equal torch; similarity and neighbours', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const fx = fixture<{ texts: { text: string; ids: number[]; mean: number[]; last: number[] }[] }>('embeddings.json');
  const tok = loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  const model = hashModel();
  const texts = fx.texts.map((x) => x.text);
  for (const pooling of ['mean', 'last'] as const) {
    const e = embedTexts(model, tok, texts, { pooling, batchSize: 4 });
    e.forEach((v, i) => v.forEach((x, j) => assert.ok(Math.abs(x - fx.texts[i][pooling][j]) < 1e-5, `${pooling} text ${i} dim ${j}: ${x} vs ${fx.texts[i][pooling][j]}`)));
  }
  const m = cosineSimilarityMatrix([[1, 0], [1, 1], [0, 2], [-1, 0]]);
  assert.ok(Math.abs(m[0][1] - Math.SQRT1_2) < 1e-15 && m[0][2] === 0 && m[0][3] === -1 && m[1][1] === 1, JSON.stringify(m));
  assert.deepEqual(nearestNeighbours([[1, 0], [1, 1], [0, 2], [-1, 0]], 2).map((r) => r.map((x) => x.index)), [[1, 2], [0, 2], [1, 0], [2, 1]]);
});

test('silhouette: hand-computed case and scikit-learn (euclidean and cosine)', () => {
  // 1-D points 0, 1 | 5, 7: a(0)=1, b(0)=6 -> 5/6; a(1)=1, b(1)=5 -> 4/5; a(5)=2, b(5)=4.5 -> 2.5/4.5; a(7)=2, b(7)=6.5 -> 4.5/6.5
  const s = silhouetteScore([[0], [1], [5], [7]], ['a', 'a', 'b', 'b']);
  const want = [5 / 6, 4 / 5, 2.5 / 4.5, 4.5 / 6.5];
  s.samples.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-15, `sample ${i}: ${x} vs ${want[i]}`));
  assert.ok(Math.abs(s.score - want.reduce((a, b) => a + b) / 4) < 1e-15, `score ${s.score}`);
  const fx = fixture<{ silhouette: { X: number[][]; labels: number[]; euclidean: { score: number; samples: number[] }; cosine: { score: number; samples: number[] } } }>('sklearn.json');
  for (const metric of ['euclidean', 'cosine'] as const) {
    const r = silhouetteScore(fx.silhouette.X, fx.silhouette.labels, metric);
    assert.ok(Math.abs(r.score - fx.silhouette[metric].score) < 1e-12, `${metric}: ${r.score} vs ${fx.silhouette[metric].score}`);
    r.samples.forEach((x, i) => assert.ok(Math.abs(x - fx.silhouette[metric].samples[i]) < 1e-12, `${metric} sample ${i}: ${x}`));
  }
  assert.throws(() => silhouetteScore([[0], [1]], ['a', 'b']), /2 to n - 1/);
});

test('pca: known axes of a rotated cross; scikit-learn on random data', () => {
  // points ±3 along u and ±1 along w (u ⟂ w, in 3-D): covariance eigenvalues 2*9/3 = 6 and 2*1/3 = 2/3
  const u = [0.6, 0.8, 0];
  const w = [-0.8, 0.6, 0];
  const X = [3, -3].map((a) => u.map((x) => a * x)).concat([1, -1].map((a) => w.map((x) => a * x)));
  const r = pca(X, { seed: 3 });
  assert.ok(Math.abs(r.explainedVariance[0] - 6) < 1e-12 && Math.abs(r.explainedVariance[1] - 2 / 3) < 1e-12, `${r.explainedVariance}`);
  r.components[0].forEach((x, j) => assert.ok(Math.abs(x - u[j]) < 1e-9, `axis 0[${j}]: ${x} vs ${u[j]}`));
  r.components[1].forEach((x, j) => assert.ok(Math.abs(x - -w[j]) < 1e-9, `axis 1[${j}]: ${x} vs ${-w[j]}`)); // sign: largest |entry| positive
  assert.ok(Math.abs(r.explainedVarianceRatio[0] - 6 / (6 + 2 / 3)) < 1e-12, `ratio ${r.explainedVarianceRatio[0]}`);
  const fx = fixture<{ pca: { X: number[][]; components: number[][]; explained_variance: number[]; projection: number[][] } }>('sklearn.json').pca;
  const s = pca(fx.X);
  s.components.forEach((c, i) => c.forEach((x, j) => assert.ok(Math.abs(x - fx.components[i][j]) < 1e-8, `component ${i}[${j}]: ${x} vs ${fx.components[i][j]}`)));
  s.explainedVariance.forEach((x, i) => assert.ok(Math.abs(x / fx.explained_variance[i] - 1) < 1e-10, `variance ${i}: ${x} vs ${fx.explained_variance[i]}`));
  s.projection.forEach((p, i) => p.forEach((x, j) => assert.ok(Math.abs(x - fx.projection[i][j]) < 1e-8, `projection ${i},${j}: ${x}`)));
});

test('tsne: three well-separated clusters stay separated; deterministic per seed; SVG written atomically', () => {
  const rnd = new SeededRandom(11);
  const X: number[][] = [];
  const labels: string[] = [];
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < 12; i++) {
      X.push(Array.from({ length: 10 }, (_, j) => (j === c ? 20 : 0) + rnd.normal()));
      labels.push(`cluster ${c}`);
    }
  const a = tsne(X, { perplexity: 8, iterations: 1000, seed: 5 });
  const b = tsne(X, { perplexity: 8, iterations: 1000, seed: 5 });
  assert.deepEqual(a.embedding, b.embedding);
  assert.notDeepEqual(tsne(X, { perplexity: 8, iterations: 1000, seed: 6 }).embedding, a.embedding);
  // every point's nearest 2-D neighbour is in its own cluster, and the clusters are compact relative to the gaps
  const e = a.embedding;
  e.forEach((p, i) => {
    let best = -1;
    let bd = Infinity;
    e.forEach((q, j) => {
      const d = (p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2;
      if (j !== i && d < bd) [bd, best] = [d, j];
    });
    assert.equal(labels[best], labels[i], `point ${i}`);
  });
  assert.ok(silhouetteScore(e, labels).score > 0.7, `silhouette ${silhouetteScore(e, labels).score}`);
  assert.throws(() => tsne(X, { perplexity: 36 }), /perplexity/);
  const svg = scatterSvg(e, { labels, title: 't-SNE <test>' });
  assert.match(svg, /^<svg [^>]+>/);
  assert.equal((svg.match(/<circle /g) ?? []).length, 36 + 3);
  assert.match(svg, /t-SNE &lt;test&gt;/);
  const path = join(tmp, 'tsne.svg');
  writeTextAtomic(path, svg);
  assert.equal(readFileSync(path, 'utf8'), svg);
});
