// Runs `alignkit eval-bench ...` the way bin/alignkit.mjs runs the real program (commander with exitOverride,
// usage errors -> exit code), with only this command registered: the tests spawn it as a user would.
import { Command, CommanderError } from 'commander';
import { registerEvalBenchStandalone } from '../../../src/cli/commands/eval_bench.ts';

const program = new Command().name('alignkit').exitOverride();
registerEvalBenchStandalone(program);
try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode;
  else {
    console.error(`alignkit: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
