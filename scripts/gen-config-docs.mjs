// Regenerates the field tables of docs/training-config.md and docs/rl.md from the zod schemas in src/train/config.ts (the
// `.describe()` texts, types, ranges and defaults). Only the regions between
// `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->` are rewritten; the prose around them is
// kept. Run it after changing a field:
//
//   node scripts/gen-config-docs.mjs           # rewrite the docs
//   node scripts/gen-config-docs.mjs --check   # exit 1 if a doc is out of date (test/train/cli_flags.test.ts)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register(); // the sources are TypeScript, run through tsx as bin/alignkit.mjs does
const { writeAtomically } = await import('../src/io/file.ts');
const config = await import('../src/train/config.ts');
const { renderConfigTable, updateGeneratedSections } = await import('../src/train/cli_flags.ts');

// The RL trainers' learning_rate and temperature defaults differ by method: they are listed in each method's table,
// not in the shared one.
const PER_METHOD = ['learning_rate', 'temperature'];
const rlShared = Object.keys(config.onPolicyShape).filter((k) => !PER_METHOD.includes(k));

const docs = {
  'docs/training-config.md': {
    'training-arguments': () => renderConfigTable(config.TrainingArgumentsSchema, Object.keys(config.trainingArgumentsShape)),
    sft: () => renderConfigTable(config.SftConfigSchema, Object.keys(config.sftConfigShape)),
  },
  'docs/rl.md': {
    'rl-shared': () => renderConfigTable(config.PpoConfigSchema, rlShared),
    'rl-ppo': () => renderConfigTable(config.PpoConfigSchema, [...PER_METHOD, ...Object.keys(config.ppoConfigShape)]),
    'rl-grpo': () => renderConfigTable(config.GrpoConfigSchema, [...PER_METHOD, ...Object.keys(config.grpoConfigShape)]),
    'rl-rloo': () => renderConfigTable(config.RlooConfigSchema, [...PER_METHOD, ...Object.keys(config.rlooConfigShape)]),
  },
};

let stale = false;
for (const [rel, sections] of Object.entries(docs)) {
  const docPath = fileURLToPath(new URL(`../${rel}`, import.meta.url));
  const current = readFileSync(docPath, 'utf8');
  const updated = updateGeneratedSections(current, (name) => sections[name]?.());
  if (process.argv.includes('--check')) {
    if (updated !== current) {
      console.error(`${rel} is out of date: run node scripts/gen-config-docs.mjs`);
      stale = true;
    } else console.log(`${rel} is up to date`);
  } else if (updated !== current) {
    writeAtomically('markdown', docPath, (f) => f.write(new TextEncoder().encode(updated)));
    console.log(`updated ${rel}`);
  } else console.log(`${rel} was already up to date`);
}
if (stale) process.exit(1);
