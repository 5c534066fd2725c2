// Regenerates the synthetic preference data in data/preference/ (see its README.md) from
// makeRulePreferenceData() in src/demo/preference_rule.ts. Deterministic: the same seed gives byte-identical files
// (test/demo/preference_rule.test.ts checks that the shipped files are exactly what seed 0 produces).
//
//   node scripts/make-preference-data.mjs            # seed 0, into data/preference/
//   node scripts/make-preference-data.mjs --seed 7 --out /tmp/pref
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register(); // the sources are TypeScript, run through tsx as bin/alignkit.mjs does
const { writeAtomically } = await import('../src/io/file.ts');
const { makeRulePreferenceData, ruleJudge } = await import('../src/demo/preference_rule.ts');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const seed = Number(arg('--seed', '0'));
if (!Number.isSafeInteger(seed)) {
  console.error(`make-preference-data: --seed must be an integer, got ${arg('--seed', '')}`);
  process.exit(1);
}
const out = arg('--out', fileURLToPath(new URL('../data/preference/', import.meta.url)));
mkdirSync(out, { recursive: true });

const data = makeRulePreferenceData(seed);
// The data must say what the judge says: every chosen / desirable response follows the rule, every other breaks it.
for (const p of [...data.train, ...data.eval]) {
  if (!ruleJudge(p.prompt, p.chosen) || ruleJudge(p.prompt, p.rejected)) throw new Error(`judge disagrees with pair ${JSON.stringify(p)}`);
}
for (const r of data.kto) if (ruleJudge(r.prompt, r.completion) !== r.label) throw new Error(`judge disagrees with row ${JSON.stringify(r)}`);

const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const files = { 'rule_pairs.jsonl': data.train, 'rule_pairs_eval.jsonl': data.eval, 'rule_kto.jsonl': data.kto };
for (const [name, rows] of Object.entries(files)) {
  const bytes = new TextEncoder().encode(jsonl(rows));
  writeAtomically('JSON Lines', join(out, name), (f) => f.write(bytes));
  console.log(`${join(out, name)}: ${rows.length} rows, ${bytes.length} bytes`);
}
