// A preference task a tiny byte-level model (src/demo/tiny_chat.ts: one token per byte) can learn in minutes and a
// program can judge exactly, for demos and end-to-end tests of the reward / DPO / KTO trainers.
//
// Two instructions, each applied to a lowercase word:
//   "Write in uppercase: <word>\nAnswer:"     the response must be " <WORD>"           (e.g. " CAT")
//   "Ask politely for: <word>\nAnswer:"       the response must be " <word>, please."  (e.g. " cat, please.")
// Rejected responses break the rule in a few fixed ways (lowercase, capitalised, ...; rude or curt), so a reward
// model has to learn the rule rather than one bad string. Learning the rule needs copying the word from the prompt
// (a byte-level induction pattern) plus a per-instruction transformation; the preferred / rejected responses
// differ from their first or second byte on, which DPO sees at once.
//
// The data files in data/preference/ are made by makeRulePreferenceData() (scripts/make-preference-data.mjs writes
// them); the train and held-out words are disjoint, so the held-out set measures whether the rule was learned.
import { Xoshiro128 } from '../data/loader.ts';

export type RuleKind = 'uppercase' | 'polite';

export const RULE_KINDS: readonly RuleKind[] = ['uppercase', 'polite'];

const INSTRUCTION: Record<RuleKind, string> = {
  uppercase: 'Write in uppercase: ',
  polite: 'Ask politely for: ',
};
const PROMPT_END = '\nAnswer:';

/** The prompt asking for `word` under rule `kind`. */
export function rulePrompt(kind: RuleKind, word: string): string {
  checkWord(word);
  return `${INSTRUCTION[kind]}${word}${PROMPT_END}`;
}

/** The response that follows the rule (with the leading space that separates it from "Answer:"). */
export function ruleAnswer(kind: RuleKind, word: string): string {
  checkWord(word);
  return kind === 'uppercase' ? ` ${word.toUpperCase()}` : ` ${word}, please.`;
}

/** Responses that break the rule, in a fixed order (variant v of makeRulePreferenceData). */
export function ruleViolations(kind: RuleKind, word: string): string[] {
  checkWord(word);
  const up = word.toUpperCase();
  if (kind === 'uppercase') {
    return [` ${word}`, ` ${up[0]}${word.slice(1)}`, ` ${up.slice(0, -1)}${word.slice(-1)}`, ` ${up}!`];
  }
  return [` ${word}!`, ` Give me ${word}.`, ` ${word}, now.`, ` No.`];
}

function checkWord(word: string): void {
  if (!/^[a-z]{2,}$/.test(word)) throw new RangeError(`preference rule: a word must be two or more lowercase letters a-z, got ${JSON.stringify(word)}`);
}

/** The rule and word a prompt asks for, or null when it is not a rule prompt. */
export function parseRulePrompt(prompt: string): { kind: RuleKind; word: string } | null {
  for (const kind of RULE_KINDS) {
    const head = INSTRUCTION[kind];
    if (!prompt.startsWith(head) || !prompt.endsWith(PROMPT_END)) continue;
    const word = prompt.slice(head.length, prompt.length - PROMPT_END.length);
    if (/^[a-z]{2,}$/.test(word)) return { kind, word };
  }
  return null;
}

/**
 * Whether `response` follows the rule `prompt` states. Surrounding whitespace is ignored (a generated answer may
 * end with a newline); everything else must match exactly. Throws on a prompt that states no rule (judging it
 * would be meaningless).
 */
export function ruleJudge(prompt: string, response: string): boolean {
  const rule = parseRulePrompt(prompt);
  if (rule === null) throw new RangeError(`ruleJudge: not a rule prompt: ${JSON.stringify(prompt.slice(0, 80))}`);
  return response.trim() === ruleAnswer(rule.kind, rule.word).trim();
}

/** Lowercase words of the training set (3-6 letters, common English). */
export const TRAIN_WORDS: readonly string[] = (
  'cat dog sun hat cup pen box map car bus red tea egg ice jam key leg lip mud net owl pig rat sea toy van web zoo ' +
  'ant bag bat bed bee bow cow den ear fan fig fox gem gum hen hut ink jar jet kid lab log mat mop nut oak pan pea ' +
  'pot ram rug saw ski sky tin tub yak apple bread chair cloud dream field glass grape honey juice knife lemon ' +
  'money night ocean paper queen river sheep storm table tiger train water whale wheel zebra bird cake door fish ' +
  'frog gold hill kite lamp leaf milk moon nest ring rose salt ship snow star tree wind wolf book boat coat corn ' +
  'desk drum duck farm fork goat harp lake lion mask nose park pear rain road rock sand seed shoe sock soup'
).split(' ');

/** Lowercase words of the held-out set (none of them in TRAIN_WORDS). */
export const EVAL_WORDS: readonly string[] = (
  'arm axe bib cab dot elf fin gap hog jaw kit lid mug nap orb pin rib sip tap urn vet wig yam ' +
  'bench brick candy cliff crown daisy flame ghost horse jewel lemur melon onion piano robin skirt spoon towel ' +
  'beak bell claw dune fern gate hose iris lace'
).split(' ');

export interface RulePair {
  prompt: string;
  chosen: string;
  rejected: string;
}

export interface RuleUnpaired {
  prompt: string;
  completion: string;
  label: boolean;
}

export interface RuleData {
  train: RulePair[];
  eval: RulePair[];
  kto: RuleUnpaired[];
}

/** Fisher-Yates shuffle with the library's seeded generator. */
function shuffle<T>(items: T[], rng: Xoshiro128): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * The shipped data sets, a pure function of the seed (the files in data/preference/ use seed 0):
 *   train: `trainPairs` distinct (word, rule, violation) pairs over TRAIN_WORDS,
 *   eval:  one pair per (word, rule) over EVAL_WORDS with a random violation,
 *   kto:   `ktoRows` unpaired rows over TRAIN_WORDS, half desirable (distinct prompts with the rule's answer), half
 *          undesirable (distinct (word, rule, violation) triples), shuffled.
 */
export function makeRulePreferenceData(seed = 0, trainPairs = 400, ktoRows = 400): RuleData {
  const rng = Xoshiro128.fromSeed([seed, 0x70726566 /* 'pref' */]);
  const combos = (words: readonly string[]): RulePair[] =>
    words.flatMap((word) => RULE_KINDS.flatMap((kind) => ruleViolations(kind, word).map((rejected) => ({ prompt: rulePrompt(kind, word), chosen: ruleAnswer(kind, word), rejected }))));
  const all = combos(TRAIN_WORDS);
  if (trainPairs > all.length) throw new RangeError(`makeRulePreferenceData: at most ${all.length} distinct train pairs, asked for ${trainPairs}`);
  const train = shuffle(all.slice(), rng).slice(0, trainPairs);
  const evalPairs = shuffle(
    EVAL_WORDS.flatMap((word) =>
      RULE_KINDS.map((kind) => {
        const bad = ruleViolations(kind, word);
        return { prompt: rulePrompt(kind, word), chosen: ruleAnswer(kind, word), rejected: bad[rng.below(bad.length)] };
      }),
    ),
    rng,
  );
  const prompts = shuffle(
    TRAIN_WORDS.flatMap((word) => RULE_KINDS.map((kind) => ({ kind, word }))),
    rng,
  );
  const half = Math.floor(ktoRows / 2);
  if (half > prompts.length) throw new RangeError(`makeRulePreferenceData: at most ${2 * prompts.length} KTO rows, asked for ${ktoRows}`);
  const good: RuleUnpaired[] = prompts.slice(0, half).map(({ kind, word }) => ({ prompt: rulePrompt(kind, word), completion: ruleAnswer(kind, word), label: true }));
  const bad: RuleUnpaired[] = shuffle(all.slice(), rng)
    .slice(0, ktoRows - half)
    .map((p) => ({ prompt: p.prompt, completion: p.rejected, label: false }));
  return { train, eval: evalPairs, kto: shuffle([...good, ...bad], rng) };
}
