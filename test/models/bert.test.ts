// The BERT / RoBERTa encoder reproduces Hugging Face transformers' hidden states (fixtures/bert, written by
// fixtures/make_bert_fixtures.py with BertModel / RobertaModel 5.18): every layer of a right-padded batch, to
// 1e-5; and the tokenizers load from the same folders and give the ids the fixture used.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../shared_assets.ts';
import { BertEncoder, parseBertConfig } from '../../src/models/bert.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';

interface Fixture {
  sentences: string[];
  hidden: { ids: number[][]; mask: number[][]; states: Record<string, number[][][]> };
}

for (const kind of ['bert', 'roberta']) {
  describe(`${kind} encoder vs transformers`, () => {
    const dir = join(repoRoot, 'fixtures', 'bert', kind);
    const fx = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'bert', `${kind}.json`), 'utf8')) as Fixture;
    const model = BertEncoder.load(dir);
    const B = fx.hidden.ids.length;
    const T = fx.hidden.ids[0].length;
    const H = model.config.hiddenSize;

    it('hidden states of every layer on a padded batch', () => {
      const ids = Int32Array.from(fx.hidden.ids.flat());
      const mask = Int32Array.from(fx.hidden.mask.flat());
      for (const layer of ['0', '1', '2']) {
        const got = model.hiddenStates(ids, mask, B, T, Number(layer));
        let maxErr = 0;
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++) {
            if (!fx.hidden.mask[b][t]) continue; // padding rows are not part of the contract
            for (let h = 0; h < H; h++) maxErr = Math.max(maxErr, Math.abs(got[(b * T + t) * H + h] - fx.hidden.states[layer][b][t][h]));
          }
        assert.ok(maxErr < 1e-5, `layer ${layer}: max abs error ${maxErr}`);
      }
    });

    it('encode() of unpadded sequences equals the padded batch', () => {
      const seqs = fx.hidden.ids.map((row, b) => row.filter((_, t) => fx.hidden.mask[b][t] === 1));
      const states = model.encode(seqs, 2, 3);
      seqs.forEach((s, b) => {
        assert.equal(states[b].length, s.length * H);
        for (let t = 0; t < s.length; t++) for (let h = 0; h < H; h++) assert.ok(Math.abs(states[b][t * H + h] - fx.hidden.states['2'][b][t][h]) < 1e-5);
      });
    });

    it('the tokenizer in the folder gives the fixture ids', () => {
      const tok = loadTokenizer(dir, { requireConfig: false });
      fx.sentences.forEach((s, b) => {
        const expected = fx.hidden.ids[b].filter((_, t) => fx.hidden.mask[b][t] === 1);
        assert.deepEqual(tok.encode(kind === 'roberta' ? ' ' + s : s), expected);
      });
    });
  });
}

describe('bert config and checkpoint errors', () => {
  it('names the file and field', () => {
    assert.throws(() => parseBertConfig({ model_type: 'gpt2' }, 'x/config.json'), /x\/config\.json: model_type 'gpt2' is not a BERT-family encoder/);
    assert.throws(() => parseBertConfig({ model_type: 'bert', hidden_size: 32 }, 'c.json'), /c\.json: field 'vocab_size' must be a number \(missing\)/);
    assert.throws(() => parseBertConfig({ model_type: 'bert', vocab_size: 10, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, intermediate_size: 8, max_position_embeddings: 8, position_embedding_type: 'relative_key' }, 'c.json'), /position_embedding_type 'relative_key' is not supported/);
    const tmp = mkdtempSync(join(tmpdir(), 'alignkit-bert-'));
    try {
      const cfg = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'bert', 'bert', 'config.json'), 'utf8'));
      writeFileSync(join(tmp, 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
      copyFileSync(join(repoRoot, 'fixtures', 'bert', 'bert', 'model.safetensors'), join(tmp, 'model.safetensors'));
      assert.throws(() => BertEncoder.load(tmp), /tensor 'encoder\.layer\.2\.attention\.self\.query\.weight' is missing/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
