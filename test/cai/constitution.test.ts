import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ConstitutionError, DEFAULT_CONSTITUTION, fillTemplate, loadConstitution, parseConstitution, placeholdersOf, PrincipleSampler,
} from '../../src/cai/constitution.ts';

const P = (name: string, extra = '') =>
  `  - name: ${name}\n    critique_request: "Critique {response} to {prompt}"\n    revision_request: "Revise {response} given {critique}"\n${extra}`;

describe('constitution files', () => {
  it('ships the six principles of the seed, each with both templates', () => {
    const c = loadConstitution();
    assert.equal(c.file, DEFAULT_CONSTITUTION);
    assert.deepEqual(c.principles.map((p) => p.name), ['truthful', 'respectful', 'safety_and_wellbeing', 'no_help_with_harm', 'transparent_about_limits', 'impartial']);
    for (const p of c.principles) {
      assert.deepEqual(placeholdersOf(p.critiqueRequest).sort(), ['prompt', 'response']);
      assert.deepEqual(placeholdersOf(p.revisionRequest).sort(), ['critique', 'prompt', 'response']);
      assert.equal(p.weight, 1);
      assert.ok(p.description.length > 10 && p.category);
    }
  });

  it('reads weights, categories and descriptions, with defaults', () => {
    const c = parseConstitution(`name: mine\nprinciples:\n${P('a', '    weight: 3\n    category: x\n    description: Be nice.\n')}${P('b')}`, 'mine.yaml');
    assert.equal(c.name, 'mine');
    assert.deepEqual(c.principles.map((p) => [p.name, p.weight, p.category, p.description]), [['a', 3, 'x', 'Be nice.'], ['b', 1, null, 'b']]);
    assert.match(c.judgeTemplate, /\{response_a\}/);
  });

  it('a missing template field: the message names the file, the line, the principle and the field', () => {
    const src = `principles:\n${P('ok')}  - name: honest\n    critique_request: "Is {response} honest?"\n`;
    assert.throws(() => parseConstitution(src, 'bad.yaml'), (e: Error) => {
      assert.ok(e instanceof ConstitutionError);
      assert.equal(e.message, "bad.yaml:5: principle 'honest' (principles[1]): field 'revision_request' required");
      return true;
    });
  });

  it('reports every problem at once: unknown placeholder, missing placeholder, bad weight, unknown field, duplicate name', () => {
    const src = [
      'principles:',
      '  - name: a',
      '    critique_request: "Look at {respnse}"',
      '    revision_request: "Revise {response}"',
      '  - name: b',
      P('c', '    weight: -1\n').trimEnd(),
      P('d', '    colour: red\n').trimEnd(),
      P('d').trimEnd(),
      '',
    ].join('\n');
    assert.throws(() => parseConstitution(src, 'many.yaml'), (e: Error) => {
      const lines = e.message.split('\n').map((l) => l.trim());
      assert.equal(lines[0], 'many.yaml: 7 problems:');
      assert.ok(lines.includes("many.yaml:3: principle 'a' (principles[0]): field 'critique_request' unknown placeholder {respnse} (allowed: {prompt} {response})"), e.message);
      assert.ok(lines.includes("many.yaml:4: principle 'a' (principles[0]): field 'revision_request' must contain {critique}"), e.message);
      assert.ok(lines.some((l) => /^many\.yaml:5: principle 'b' \(principles\[1\]\): field 'critique_request' required$/.test(l)), e.message);
      assert.ok(lines.some((l) => /^many\.yaml:5: principle 'b' \(principles\[1\]\): field 'revision_request' required$/.test(l)), e.message);
      assert.ok(lines.some((l) => /^many\.yaml:9: principle 'c' \(principles\[2\]\): field 'weight' must be > 0$/.test(l)), e.message);
      assert.ok(lines.some((l) => /^many\.yaml:\d+: principle 'd' \(principles\[3\]\): unknown field 'colour'/.test(l)), e.message);
      assert.ok(lines.some((l) => /principle 'd' \(principles\[4\]\): the name 'd' is already used by principles\[3\]/.test(l)), e.message);
      return true;
    });
  });

  it('rejects non-YAML, a missing principles list and unreadable files with the file name', () => {
    assert.throws(() => parseConstitution('principles:\n  - name: a\n  bad: [1, {', 'x.yaml'), /^ConstitutionError: x\.yaml:3: not valid YAML: /);
    assert.throws(() => parseConstitution('name: x\n', 'y.yaml'), /y\.yaml:?\d*: 'principles' required: a list of principles/);
    assert.throws(() => parseConstitution('- a\n', 'z.yaml'), /z\.yaml: expected a mapping with a 'principles' list, got a list/);
    assert.throws(() => loadConstitution(path.join(os.tmpdir(), 'no-such-constitution.yaml')), /no-such-constitution\.yaml: cannot read the constitution: ENOENT/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-const-'));
    try {
      fs.writeFileSync(path.join(dir, 'c.yaml'), `principles:\n${P('a')}judge_template: "Pick {response_a}"\n`);
      assert.throws(() => loadConstitution(path.join(dir, 'c.yaml')), /c\.yaml:5: 'judge_template' must contain \{response_b\}/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fills templates, leaving no placeholder unfilled', () => {
    assert.equal(fillTemplate('Q: {prompt} A: {response} {prompt}', { prompt: 'p', response: '{critique}' }), 'Q: p A: {critique} p');
    assert.throws(() => fillTemplate('{critique}', { prompt: 'p' }), /placeholder \{critique\} has no value \(known: \{prompt\}\)/);
  });
});

describe('principle sampling', () => {
  const c = parseConstitution(`principles:\n${P('a')}${P('b', '    weight: 3\n')}${P('c', '    weight: 0.5\n')}`, 'w.yaml');

  it('is seeded: a literal sequence for seed 7, the same again, another for seed 8', () => {
    const draw = (seed: number, n: number) => {
      const s = new PrincipleSampler(c, seed);
      return Array.from({ length: n }, () => s.next().name).join('');
    };
    assert.equal(draw(7, 16), 'cbbcbcbbbbbbbaba');
    assert.equal(draw(7, 16), draw(7, 16));
    assert.notEqual(draw(8, 16), draw(7, 16));
  });

  it('follows the weights (1 : 3 : 0.5) over many draws', () => {
    const s = new PrincipleSampler(c, 1);
    const n = 9000;
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < n; i++) counts[s.next().name]++;
    const expected = { a: n / 4.5, b: (3 * n) / 4.5, c: (0.5 * n) / 4.5 };
    // Binomial standard deviations are ~40, ~45 and ~30: 4 sigma bounds.
    for (const k of ['a', 'b', 'c'] as const) assert.ok(Math.abs(counts[k] - expected[k]) < 4 * Math.sqrt(expected[k]), `${k}: ${counts[k]} vs ${expected[k]}`);
  });
});
