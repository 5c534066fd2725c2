// BERTScore assets: the rescale-with-baseline step is checked (bert_score's own rescaled values follow from its
// raw values and the roberta-large layer-17 baseline); the raw scores need roberta-large's hidden states, so
// those cases are skipped with the reason.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readRescaleBaseline, rescaleWithBaseline } from '../../src/eval/bertscore_rescale.ts';
import { asset, assetsDir, readAssetJson, SKIP_NO_ASSETS } from '../shared_assets.ts';

interface BertCase {
  model_type?: string;
  num_layers?: number;
  idf?: boolean;
  rescale_with_baseline?: boolean;
  use_fast_tokenizer?: boolean;
  lang?: string;
  P?: number[];
  R?: number[];
  F?: number[];
  decimal?: number;
  note?: string;
}

function cases(): BertCase[] {
  return (readAssetJson('metrics', 'bertscore', 'bertscore_test_cases.json') as { cases: BertCase[] }).cases;
}

describe('BERTScore (shared-asset test vectors)', () => {
  it('rescaling: cases 2 and 3 = (raw of cases 0 and 1 - b) / (1 - b), b = roberta-large layer 17', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cs = cases();
    const b = readRescaleBaseline(asset('metrics', 'bertscore', 'rescale_baseline_en', 'roberta-large.tsv'), 17);
    for (const [raw, rescaled] of [[cs[0], cs[2]], [cs[1], cs[3]]]) {
      assert.equal(raw.idf, rescaled.idf);
      assert.ok(!raw.rescale_with_baseline && rescaled.rescale_with_baseline);
      for (const k of ['P', 'R', 'F'] as const) {
        raw[k]!.forEach((x, i) => {
          const got = rescaleWithBaseline(x, b[k]);
          assert.ok(Math.abs(got - rescaled[k]![i]) < 0.5 * 10 ** -rescaled.decimal!, `idf=${raw.idf} ${k}[${i}]: ${got} vs ${rescaled[k]![i]}`);
        });
      }
    }
  });

  it('raw BERTScore cases 0, 1, 4 (roberta-large), 5 (scibert) and the multi-reference case', (t) => {
    t.skip('BERTScore needs the hidden states of roberta-large / scibert_scivocab_uncased, which alignkit cannot load offline; only the rescaling step is checked');
  });

  it('reads baseline files and reports malformed ones', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const b = readRescaleBaseline(asset('metrics', 'bertscore', 'rescale_baseline_en', 'roberta-large.tsv'), 17);
    assert.deepEqual(b, { P: 0.83150584, R: 0.8314941, F: 0.83122575 });
    assert.throws(() => readRescaleBaseline(asset('metrics', 'bertscore', 'rescale_baseline_en', 'roberta-large.tsv'), 99), /no baseline for layer 99/);
  });
});
