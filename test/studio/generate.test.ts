// Candidates generated on the spot by two tiny local models: every prompt gets n responses from each model,
// tagged with the model's folder name, equal to sampleResponses' output for the same seed; with one model a
// pairwise project needs n >= 2; prompt files report bad lines.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadModel } from '../../src/models/index.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { sampleResponses } from '../../src/trainers/compare.ts';
import { openStudioDb } from '../../src/studio/db.ts';
import { generateCandidates, readPromptFile } from '../../src/studio/generate.ts';
import { StudioStore } from '../../src/studio/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-gen-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sampling = { maxNewTokens: 6, temperature: 1, topK: 0, topP: 1, seed: 3 };

describe('generating candidates', () => {
  it('two models answer every prompt; responses are tagged and imported as pairwise items', () => {
    const small = { hidden: 32, layers: 1, heads: 2, kvHeads: 1 };
    const m1 = writeTinyChatModel(join(dir, 'policy-a'), { ...small, seed: 1 });
    const m2 = writeTinyChatModel(join(dir, 'policy-b'), { ...small, seed: 2 });
    const store = new StudioStore(openStudioDb(':memory:'), { seed: 1 });
    const p = store.createProject({ name: 'gen', taskType: 'pairwise', annotationsPerItem: 2 });
    const prompts = [{ id: 'x', prompt: 'Hello' }, { prompt: 'Bye' }];
    const r = generateCandidates(store, p.id, prompts, { models: [m1, m2], perModel: 1, sampling });
    assert.deepEqual([r.prompts, r.items, r.rejected], [2, 2, false]);
    const items = store.projectItems(p.id);
    assert.deepEqual(items.map((i) => [i.promptExternalId, i.a.model, i.b?.model]), [['x', 'policy-a', 'policy-b'], ['line-2', 'policy-a', 'policy-b']]);
    const model = loadModel(m1, { trainable: false });
    try {
      assert.equal(items[0].a.text, sampleResponses(model, loadTokenizer(m1), 'Hello', 1, sampling)[0]);
    } finally {
      model.dispose();
    }
    assert.throws(() => generateCandidates(store, p.id, prompts, { models: [m1], perModel: 1, sampling }), /at least 2 responses/);
  });

  it('reads .txt and JSONL prompt files, naming a bad line', () => {
    writeFileSync(join(dir, 'p.txt'), 'one\n\ntwo\n');
    assert.deepEqual(readPromptFile(join(dir, 'p.txt')), [{ prompt: 'one' }, { prompt: 'two' }]);
    writeFileSync(join(dir, 'p.jsonl'), '{"prompt": "a", "id": 7}\n{"prompt": 3}\n');
    assert.throws(() => readPromptFile(join(dir, 'p.jsonl')), /p\.jsonl:2: field 'prompt'/);
  });
});
