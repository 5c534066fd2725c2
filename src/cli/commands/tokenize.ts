// `alignkit tokenize --model DIR --text T`: ids and tokens exactly as the model's tokenizer produces them.
import type { Command } from 'commander';
import { loadTokenizer } from '../../tokenizer/index.ts';

export function registerTokenize(program: Command): void {
  program
    .command('tokenize')
    .description("encode text with a model folder's tokenizer.json (special tokens added as its post-processor says)")
    .requiredOption('--model <dir>', 'Hugging Face model folder with tokenizer.json and tokenizer_config.json')
    .requiredOption('--text <text>', 'text to encode')
    .option('--no-special-tokens', 'do not add BOS/EOS or other special tokens')
    .option('--json', 'print {"ids":[...],"tokens":[...]}')
    .action((opts: { model: string; text: string; specialTokens: boolean; json?: boolean }) => {
      const tok = loadTokenizer(opts.model);
      const ids = tok.encode(opts.text, { addSpecialTokens: opts.specialTokens });
      const tokens = tok.tokens(ids);
      if (opts.json) console.log(JSON.stringify({ ids, tokens }));
      else {
        console.log(`${ids.length} tokens`);
        ids.forEach((id, i) => console.log(`${String(id).padStart(8)}  ${JSON.stringify(tokens[i])}`));
      }
    });
}
