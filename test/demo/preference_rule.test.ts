// The synthetic preference rule: the judge on hand-written cases, the generator's guarantees, and that the shipped
// files in data/preference/ are exactly what scripts/make-preference-data.mjs produces for seed 0.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  EVAL_WORDS,
  TRAIN_WORDS,
  makeRulePreferenceData,
  parseRulePrompt,
  ruleAnswer,
  ruleJudge,
  rulePrompt,
  ruleViolations,
} from '../../src/demo/preference_rule.ts';
import { repoRoot } from '../shared_assets.ts';

const DATA = join(repoRoot, 'data', 'preference');

describe('ruleJudge', () => {
  it('uppercase: exactly the word in capitals', () => {
    const p = 'Write in uppercase: cat\nAnswer:';
    assert.equal(rulePrompt('uppercase', 'cat'), p);
    assert.equal(ruleJudge(p, ' CAT'), true);
    assert.equal(ruleJudge(p, 'CAT\n'), true); // surrounding whitespace is ignored
    for (const bad of [' cat', ' Cat', ' CAt', ' CAT!', ' DOG', ' CATS', '', ' C A T']) assert.equal(ruleJudge(p, bad), false, bad);
  });

  it('polite: the word followed by ", please."', () => {
    const p = 'Ask politely for: tea\nAnswer:';
    assert.equal(rulePrompt('polite', 'tea'), p);
    assert.equal(ruleJudge(p, ' tea, please.'), true);
    for (const bad of [' tea!', ' Give me tea.', ' tea, now.', ' No.', ' tea please.', ' TEA, please.', ' cup, please.']) assert.equal(ruleJudge(p, bad), false, bad);
  });

  it('parses only its own prompts; judging anything else is an error', () => {
    assert.deepEqual(parseRulePrompt('Ask politely for: kite\nAnswer:'), { kind: 'polite', word: 'kite' });
    assert.equal(parseRulePrompt('Write in uppercase: Cat\nAnswer:'), null);
    assert.equal(parseRulePrompt('Write in uppercase: cat'), null);
    assert.throws(() => ruleJudge('What is 2+2?', ' 4'), /not a rule prompt/);
    assert.throws(() => rulePrompt('polite', 'two words'), /lowercase letters/);
  });

  it('every listed violation breaks the rule, every answer keeps it', () => {
    for (const word of [...TRAIN_WORDS, ...EVAL_WORDS]) {
      for (const kind of ['uppercase', 'polite'] as const) {
        const p = rulePrompt(kind, word);
        assert.equal(ruleJudge(p, ruleAnswer(kind, word)), true);
        const bad = ruleViolations(kind, word);
        assert.equal(new Set(bad).size, 4);
        for (const b of bad) assert.equal(ruleJudge(p, b), false, `${kind} ${word}: ${b}`);
      }
    }
  });
});

describe('makeRulePreferenceData', () => {
  it('sizes, disjoint words, distinct pairs, balanced KTO labels, and judge agreement', () => {
    const d = makeRulePreferenceData(0);
    assert.deepEqual([d.train.length, d.eval.length, d.kto.length], [400, 100, 400]);
    assert.equal(EVAL_WORDS.filter((w) => TRAIN_WORDS.includes(w)).length, 0);
    assert.equal(new Set(TRAIN_WORDS).size, TRAIN_WORDS.length);
    const wordOf = (prompt: string): string => parseRulePrompt(prompt)?.word ?? '';
    assert.ok(d.train.every((p) => TRAIN_WORDS.includes(wordOf(p.prompt))));
    assert.ok(d.eval.every((p) => EVAL_WORDS.includes(wordOf(p.prompt))));
    assert.equal(new Set(d.train.map((p) => JSON.stringify(p))).size, 400);
    assert.equal(new Set(d.eval.map((p) => p.prompt)).size, 100); // one pair per held-out prompt
    assert.equal(d.kto.filter((r) => r.label).length, 200);
    for (const p of [...d.train, ...d.eval]) assert.ok(ruleJudge(p.prompt, p.chosen) && !ruleJudge(p.prompt, p.rejected));
    for (const r of d.kto) assert.equal(ruleJudge(r.prompt, r.completion), r.label);
    // both rules are represented in each split
    for (const split of [d.train, d.eval]) assert.ok(split.filter((p) => p.prompt.startsWith('Write')).length > split.length / 4);
  });

  it('deterministic: the same seed gives the same data, another seed a different order', () => {
    assert.deepEqual(makeRulePreferenceData(3), makeRulePreferenceData(3));
    assert.notDeepEqual(makeRulePreferenceData(3).train, makeRulePreferenceData(4).train);
  });

  it('the shipped files are exactly the seed-0 output (regenerate with scripts/make-preference-data.mjs)', () => {
    const d = makeRulePreferenceData(0);
    const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
    let total = 0;
    for (const [name, rows] of [['rule_pairs.jsonl', d.train], ['rule_pairs_eval.jsonl', d.eval], ['rule_kto.jsonl', d.kto]] as const) {
      assert.equal(readFileSync(join(DATA, name), 'utf8'), jsonl(rows), `${name} is out of date`);
      total += statSync(join(DATA, name)).size;
    }
    assert.ok(total < 200 * 1024, `${total} bytes`);
  });
});
