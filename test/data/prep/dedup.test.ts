// Deduplication: a generated corpus with planted near-duplicates (edits keeping true Jaccard >= 0.8) and hard
// negatives must be found with recall and precision >= 0.95; planted eval rows in train are caught.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deduplicator, MinHasher, candidateProbability, estimateJaccard, jaccard, lshParams, normalizeForDedup, parseShingle, shingleHashes } from '../../../src/data/prep/dedup.ts';
import { HashMap64, hash64 } from '../../../src/data/prep/hash.ts';
import { Rng } from '../../../src/data/prep/rng.ts';

const SPEC = { unit: 'char' as const, size: 5 };
const J = (a: string, b: string): number => jaccard(shingleHashes(normalizeForDedup(a), SPEC), shingleHashes(normalizeForDedup(b), SPEC));

function vocabulary(rng: Rng, n: number): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const out = new Set<string>();
  while (out.size < n) {
    let w = '';
    const len = 3 + rng.below(7);
    for (let i = 0; i < len; i++) w += letters[rng.below(26)];
    out.add(w);
  }
  return [...out];
}

function doc(rng: Rng, vocab: string[], words: number): string[] {
  return Array.from({ length: words }, () => vocab[rng.below(vocab.length)]);
}

/** Random word edits (substitute / insert / delete) until the true Jaccard is in [lo, hi]. */
function nearCopy(rng: Rng, vocab: string[], base: string[], lo: number, hi: number): string[] {
  for (;;) {
    const w = [...base];
    const edits = 1 + rng.below(4);
    for (let e = 0; e < edits; e++) {
      const k = rng.below(3), at = rng.below(w.length);
      if (k === 0) w[at] = vocab[rng.below(vocab.length)];
      else if (k === 1) w.splice(at, 0, vocab[rng.below(vocab.length)]);
      else if (w.length > 5) w.splice(at, 1);
    }
    const j = J(base.join(' '), w.join(' '));
    if (j >= lo && j <= hi) return w;
  }
}

describe('hashing', () => {
  it('HashMap64 stores the first value and grows', () => {
    const m = new HashMap64(4);
    for (let i = 0; i < 5000; i++) assert.equal(m.setIfAbsent(hash64(`t${i}`), i), undefined);
    assert.equal(m.size, 5000);
    assert.equal(m.setIfAbsent(hash64('t42'), 99), 42);
    assert.equal(m.get(hash64('t4999')), 4999);
    assert.equal(m.get(hash64('absent')), undefined);
    assert.ok(m.bytes <= 5000 * 12 / 0.35 + 1, `${m.bytes} bytes`);
  });
});

describe('MinHash and LSH', () => {
  it('shingles: char k-grams of the normalised text, word n-grams, short texts', () => {
    assert.equal(normalizeForDedup('  Hello\u00A0\n WORLD  ﬁ'), 'hello world fi');
    assert.equal(shingleHashes('abcdef', SPEC).length, 2);
    assert.equal(shingleHashes('abc', SPEC).length, 1);
    assert.equal(shingleHashes('a b c a b c', { unit: 'word', size: 2 }).length, 3); // "a b", "b c", "c a"
    assert.deepEqual(parseShingle('word:3'), { unit: 'word', size: 3 });
    assert.throws(() => parseShingle('char'), /--shingle must be/);
  });

  it('the S-curve: hand-computed candidate probabilities', () => {
    // b = 20, r = 5 (Mining of Massive Datasets, fig. 3.8): s = 0.8 -> 1 - (1 - 0.8^5)^20 = 0.99964
    assert.ok(Math.abs(candidateProbability(0.8, 20, 5) - 0.99964) < 1e-5);
    assert.ok(Math.abs(candidateProbability(0.3, 20, 5) - 0.04749) < 1e-5); // 1 - (1 - 0.3^5)^20
    const p = lshParams(0.8, 128);
    assert.deepEqual(p, { bands: 14, rows: 9 });
    assert.deepEqual(lshParams(0.8, 128, 0.5, 0.5), { bands: 9, rows: 13 });
    const knee = Math.pow(1 / p.bands, 1 / p.rows);
    assert.ok(knee > 0.65 && knee < 0.85, `S-curve knee ${knee} for b=${p.bands} r=${p.rows}`);
    assert.ok(candidateProbability(0.8, p.bands, p.rows) > 0.85);
    assert.ok(candidateProbability(0.85, p.bands, p.rows) > 0.97);
    assert.ok(candidateProbability(0.4, p.bands, p.rows) < 0.05);
  });

  it('signature agreement estimates Jaccard within 4 standard errors, and depends only on the seed', () => {
    const rng = new Rng(1);
    const vocab = vocabulary(rng, 500);
    const mh = new MinHasher(256, 7);
    for (let t = 0; t < 20; t++) {
      const a = doc(rng, vocab, 60);
      const b = nearCopy(rng, vocab, a, 0.3, 0.95);
      const ha = shingleHashes(normalizeForDedup(a.join(' ')), SPEC), hb = shingleHashes(normalizeForDedup(b.join(' ')), SPEC);
      const truth = jaccard(ha, hb);
      const est = estimateJaccard(mh.signature(ha), mh.signature(hb));
      assert.ok(Math.abs(est - truth) <= 4 * Math.sqrt((truth * (1 - truth)) / 256) + 1e-9, `estimate ${est} vs Jaccard ${truth}`);
    }
    const h = shingleHashes('some text here', SPEC);
    assert.deepEqual(new MinHasher(64, 3).signature(h), new MinHasher(64, 3).signature(h));
    assert.notDeepEqual(new MinHasher(64, 3).signature(h), new MinHasher(64, 4).signature(h));
  });
});

describe('deduplication of a planted corpus', () => {
  it('exact: hash of the normalised text, keep-first', () => {
    const d = new Deduplicator({ mode: 'exact' });
    assert.deepEqual(d.check('Hello  World', 1), { keep: true });
    assert.deepEqual(d.check('hello world', 2), { keep: false, kind: 'exact', of: 1 });
    assert.deepEqual(d.check('hello world!', 3), { keep: true });
  });

  it('near: recall >= 0.95 and precision >= 0.95 on planted near-duplicates (Jaccard >= 0.8) and hard negatives', () => {
    const rng = new Rng(2024);
    const vocab = vocabulary(rng, 3000);
    type Item = { text: string; group: number };
    const items: Item[] = [];
    const bases = Array.from({ length: 400 }, () => doc(rng, vocab, 40 + rng.below(40)));
    bases.forEach((b, i) => items.push({ text: b.join(' '), group: i }));
    const planted: number[] = [];
    for (let i = 0; i < 120; i++) {
      planted.push(i);
      items.push({ text: nearCopy(rng, vocab, bases[i], 0.8, 0.9).join(' '), group: i });
    }
    // Hard negatives: share roughly half of a base document (Jaccard 0.2..0.55) — not duplicates.
    for (let i = 200; i < 260; i++) {
      const b = bases[i];
      const half = [...b.slice(0, b.length >> 1), ...doc(rng, vocab, b.length - (b.length >> 1))];
      const j = J(b.join(' '), half.join(' '));
      assert.ok(j < 0.6, `negative too similar: ${j}`);
      items.push({ text: half.join(' '), group: -1 - i });
    }
    rng.shuffle(items);
    const d = new Deduplicator({ mode: 'both', threshold: 0.75, numPerm: 128, seed: 0 });
    const lineGroup = new Map<number, number>();
    let truePos = 0, falsePos = 0;
    items.forEach((it, k) => {
      const line = k + 1;
      lineGroup.set(line, it.group);
      const v = d.check(it.text, line);
      if (!v.keep) {
        if (lineGroup.get(v.of!) === it.group && it.group >= 0) truePos++;
        else falsePos++;
      }
    });
    const recall = truePos / planted.length;
    const precision = truePos / Math.max(1, truePos + falsePos);
    assert.ok(recall >= 0.95, `recall ${recall} (${truePos}/${planted.length})`);
    assert.ok(precision >= 0.95, `precision ${precision} (${falsePos} false positives)`);
    assert.equal(d.counts.kept + d.counts.exact + d.counts.near, items.length);
  });

  it('contamination: planted eval rows (verbatim and lightly edited) in train are found and reported with the eval line', () => {
    const rng = new Rng(77);
    const vocab = vocabulary(rng, 2000);
    const evalDocs = Array.from({ length: 50 }, () => doc(rng, vocab, 50));
    const d = new Deduplicator({ mode: 'both', threshold: 0.8 });
    evalDocs.forEach((e, i) => d.addEval(e.join(' '), i + 1));
    const train: { text: string; evalLine: number | null }[] = Array.from({ length: 300 }, () => ({ text: doc(rng, vocab, 50).join(' '), evalLine: null }));
    for (let i = 0; i < 10; i++) train.push({ text: evalDocs[i].join(' ').toUpperCase(), evalLine: i + 1 });
    for (let i = 10; i < 20; i++) train.push({ text: nearCopy(rng, vocab, evalDocs[i], 0.85, 0.97).join(' '), evalLine: i + 1 });
    rng.shuffle(train);
    let found = 0, wrong = 0;
    train.forEach((t, k) => {
      const v = d.check(t.text, k + 1);
      if (v.kind === 'contaminated_exact' || v.kind === 'contaminated_near') {
        if (v.of === t.evalLine) found++;
        else wrong++;
      }
    });
    assert.equal(d.counts.contaminated_exact, 10);
    assert.ok(found >= 19, `found ${found}/20 planted eval rows`);
    assert.equal(wrong, 0);
  });
});
