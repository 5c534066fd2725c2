// `npm run bench [-- --json] [-- --filter <substr>] [-- --quick]`: runs every registered bench.
//   --json          one JSON object per measurement on stdout ({"bench","shape","unit","value","peer",
//                   "peer_value","ratio"}) and nothing else on stdout (notes go to stderr)
//   --filter <s>    only cases whose "bench shape" contains s
//   --quick         fewer repeats / rounds (a smoke run; numbers are noisier)
import { makeContext, registeredBenches, Reporter, type BenchOptions } from './common.ts';
import './gemm.ts';
import './kernels.ts';
import './models.ts';
import './data_prep.ts';
import './eval.ts';
import './harness.ts';
import './dpo.ts';
import './sft.ts';
import './ppo.ts';

function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { json: false, quick: false, filter: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--filter') {
      const v = argv[++i];
      if (v === undefined) throw new Error('bench: --filter needs a value');
      o.filter = v;
    } else if (a.startsWith('--filter=')) o.filter = a.slice('--filter='.length);
    else if (a === '--help' || a === '-h') {
      process.stderr.write('usage: npm run bench -- [--json] [--quick] [--filter <substr>]\n');
      process.exit(0);
    } else throw new Error(`bench: unknown argument '${a}'`);
  }
  return o;
}

const options = parseArgs(process.argv.slice(2));
const reporter = new Reporter(options);
const ctx = makeContext(options, reporter);
for (const { name, fn } of registeredBenches()) {
  try {
    await fn(ctx);
  } catch (e) {
    process.stderr.write(`bench: ${name} failed: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}
if (reporter.records.length === 0) ctx.note(options.filter ? `no case matched --filter '${options.filter}'` : 'no measurements');
