// Regenerates the field tables of docs/training-config.md from the zod schemas in src/train/config.ts (the
// `.describe()` texts, types, ranges and defaults). Only the regions between
// `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->` are rewritten; the prose around them is
// kept. Run it after changing a field:
//
//   node scripts/gen-config-docs.mjs           # rewrite the doc
//   node scripts/gen-config-docs.mjs --check   # exit 1 if the doc is out of date (test/train/cli_flags.test.ts)
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register(); // the sources are TypeScript, run through tsx as bin/alignkit.mjs does
const { writeAtomically } = await import('../src/io/file.ts');
const { SftConfigSchema, TrainingArgumentsSchema, sftConfigShape, trainingArgumentsShape } = await import('../src/train/config.ts');
const { renderConfigTable, updateGeneratedSections } = await import('../src/train/cli_flags.ts');

const docPath = fileURLToPath(new URL('../docs/training-config.md', import.meta.url));

const sections = {
  'training-arguments': () => renderConfigTable(TrainingArgumentsSchema, Object.keys(trainingArgumentsShape)),
  sft: () => renderConfigTable(SftConfigSchema, Object.keys(sftConfigShape)),
};

const current = readFileSync(docPath, 'utf8');
const updated = updateGeneratedSections(current, (name) => sections[name]?.());

if (process.argv.includes('--check')) {
  if (updated !== current) {
    console.error('docs/training-config.md is out of date: run node scripts/gen-config-docs.mjs');
    process.exit(1);
  }
  console.log('docs/training-config.md is up to date');
} else if (updated !== current) {
  writeAtomically('markdown', docPath, (f) => f.write(new TextEncoder().encode(updated)));
  console.log('updated docs/training-config.md');
} else console.log('docs/training-config.md was already up to date');
