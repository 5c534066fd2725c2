// `alignkit pipeline FILE`: a declarative list of stages (docs/pipeline.md), validated as a whole before anything
// runs, then run stage by stage — finished stages are skipped, an interrupted one resumes — ending with a report.
// `alignkit demo`: the bundled pipeline data/demo/pipeline.yaml (tiny model → SFT → reward model → PPO → DPO → eval).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadPipeline } from '../../pipeline/spec.ts';
import { runPipeline, targetLine } from '../../pipeline/run.ts';
import { writeReport } from '../../pipeline/report.ts';
import { STAGE_REGISTRY } from '../../pipeline/registry.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The demo pipeline shipped in the repository. */
export const DEMO_PIPELINE = path.join(ROOT, 'data', 'demo', 'pipeline.yaml');

interface PipelineFlags {
  output?: string;
  profile?: string;
  var?: string[];
  dryRun?: boolean;
  progress?: boolean;
  json?: boolean;
}

function parseVars(list: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new Error(`--var ${item}: expected NAME=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

async function execute(file: string, o: PipelineFlags): Promise<void> {
  const spec = loadPipeline(file, { outputDir: o.output, profile: o.profile, vars: parseVars(o.var) });
  const quiet = o.json || o.progress === false;
  const log = (l: string) => process.stderr.write(`${l}\n`);
  if (o.dryRun) {
    const r = await runPipeline(spec, { dryRun: true });
    if (o.json) console.log(JSON.stringify({ file, output_dir: spec.outputDir, plan: r.plan }));
    else for (const p of r.plan) console.log(`${p.action.padEnd(6)} ${p.name} (${p.type})`);
    return;
  }
  if (!o.json) log(`alignkit pipeline: ${spec.stages.length} stages from ${file} -> ${spec.outputDir}`);
  const r = await runPipeline(spec, { console: !quiet, log: o.json ? () => {} : log });
  const files = writeReport(r);
  if (o.json) {
    console.log(JSON.stringify({ file, output_dir: r.outputDir, seconds: r.seconds, report: files, stages: r.stages.map((s) => ({ name: s.name, type: s.type, status: s.status, seconds: s.seconds, target: s.target, metrics: s.metrics, outputs: s.outputs })) }));
    return;
  }
  console.log(`pipeline finished in ${r.seconds.toFixed(1)} s:`);
  for (const s of r.stages) console.log(`  ${s.name.padEnd(12)} ${s.status.padEnd(8)} ${s.target ? targetLine(s.target) : ''}`);
  console.log(`report: ${files.html}`);
}

const varOption = (v: string, prev: string[] = []) => [...prev, v];

export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .description(
      `run a declarative pipeline of stages from a YAML/JSON file (docs/pipeline.md): each stage's config is the config of its trainer or tool, stages reference each other's outputs as \${stages.NAME.output}; everything is validated before any training starts; each stage writes <output_dir>/<name>/, a finished stage is skipped on a rerun (rerun when its config changed), an interrupted one resumes from its last checkpoint; ends with report.{json,md,html}. Stage types: ${[...STAGE_REGISTRY.keys()].join(', ')}.`,
    )
    .argument('<file>', 'the pipeline file (YAML or JSON)')
    .option('--output <dir>', "output folder (instead of the file's output_dir)")
    .option('--profile <name>', "apply a profile: a named set of var values from the file's profiles")
    .option('--var <name=value>', 'set one of the file\'s vars (repeatable)', varOption)
    .option('--dry-run', 'validate and print what would run, resume or be skipped; run nothing')
    .option('--no-progress', 'no progress bars or stage lines')
    .option('--json', 'print the result (stages, metrics, report paths) as one JSON object')
    .action(async (file: string, o: PipelineFlags) => execute(file, o));

  program
    .command('demo')
    .description(
      'the one-command tour: runs the bundled pipeline data/demo/pipeline.yaml on bundled tiny data — create a tiny model, SFT, a reward model, PPO, DPO, evaluation — in a few minutes on a laptop CPU, with progress bars, and writes an HTML report (before/after numbers of every stage, plots). Rerunning skips finished stages.',
    )
    .option('--quick', "a smaller, faster run (the pipeline's 'quick' profile)")
    .option('--output <dir>', 'output folder', 'runs/demo')
    .option('--var <name=value>', 'set one of the demo pipeline\'s vars (repeatable)', varOption)
    .option('--no-progress', 'no progress bars or stage lines')
    .option('--json', 'print the result as one JSON object')
    .action(async (o: PipelineFlags & { quick?: boolean }) => execute(DEMO_PIPELINE, { ...o, profile: o.quick ? 'quick' : undefined }));
}
