// The Porter stemmer exactly as NLTK implements it (nltk 3.10, nltk/stem/porter.py), in its three modes:
// NLTK_EXTENSIONS (NLTK's default, and what rouge-score and NLTK's METEOR use), ORIGINAL_ALGORITHM (Porter
// 1980 as published) and MARTIN_EXTENSIONS (Martin Porter's later reference implementation).
//
// NLTK's extensions over the 1980 paper: a small table of irregular forms (skies -> sky, dying -> die, ...),
// words of up to 2 letters unchanged, 4-letter -ies/-ied -> -ie, -ied -> -i, "y -> i" only after a consonant
// (and not for a one-letter stem), alli -> al applied recursively, fulli -> ful, logi -> log, bli -> ble, and
// a two-letter vowel-consonant stem counting as ending in cvc.

export type PorterMode = 'NLTK_EXTENSIONS' | 'ORIGINAL_ALGORITHM' | 'MARTIN_EXTENSIONS';

const IRREGULAR: Record<string, string[]> = {
  sky: ['sky', 'skies'],
  die: ['dying'],
  lie: ['lying'],
  tie: ['tying'],
  news: ['news'],
  inning: ['innings', 'inning'],
  outing: ['outings', 'outing'],
  canning: ['cannings', 'canning'],
  howe: ['howe'],
  proceed: ['proceed'],
  exceed: ['exceed'],
  succeed: ['succeed'],
};

const VOWELS = new Set(['a', 'e', 'i', 'o', 'u']);

type Condition = ((stem: string) => boolean) | null;
type Rule = [suffix: string, replacement: string, condition: Condition];

export class PorterStemmer {
  private readonly pool = new Map<string, string>();

  constructor(readonly mode: PorterMode = 'NLTK_EXTENSIONS') {
    if (mode === 'NLTK_EXTENSIONS') for (const [key, forms] of Object.entries(IRREGULAR)) for (const f of forms) this.pool.set(f, key);
  }

  /** NLTK's _is_consonant: 'y' is a consonant unless preceded by a consonant (counting back over 'y's). */
  private isConsonant(word: string, i: number): boolean {
    if (VOWELS.has(word[i])) return false;
    if (word[i] === 'y') {
      let negate = false;
      while (i > 0 && word[i] === 'y') {
        negate = !negate;
        i--;
      }
      return !VOWELS.has(word[i]) !== negate;
    }
    return true;
  }

  /** NLTK's _consonant_flags (used by the measure and vowel tests). */
  private consonantFlags(word: string): boolean[] {
    const flags: boolean[] = [];
    for (let i = 0; i < word.length; i++) {
      const ch = word[i];
      if (VOWELS.has(ch)) flags.push(false);
      else if (ch === 'y') flags.push(i === 0 ? true : !flags[i - 1]);
      else flags.push(true);
    }
    return flags;
  }

  /** m in [C](VC)^m[V]: the number of vowel-consonant transitions. */
  measure(stem: string): number {
    const f = this.consonantFlags(stem);
    let m = 0;
    for (let i = 0; i + 1 < f.length; i++) if (!f[i] && f[i + 1]) m++;
    return m;
  }

  private hasPositiveMeasure = (stem: string): boolean => this.measure(stem) > 0;

  private containsVowel(stem: string): boolean {
    return this.consonantFlags(stem).some((c) => !c);
  }

  private endsDoubleConsonant(word: string): boolean {
    const n = word.length;
    return n >= 2 && word[n - 1] === word[n - 2] && this.isConsonant(word, n - 1);
  }

  private endsCvc(word: string): boolean {
    const n = word.length;
    return (
      (n >= 3 && this.isConsonant(word, n - 3) && !this.isConsonant(word, n - 2) && this.isConsonant(word, n - 1) && !['w', 'x', 'y'].includes(word[n - 1])) ||
      (this.mode === 'NLTK_EXTENSIONS' && n === 2 && !this.isConsonant(word, 0) && this.isConsonant(word, 1))
    );
  }

  private replaceSuffix(word: string, suffix: string, replacement: string): string {
    return suffix === '' ? word + replacement : word.slice(0, word.length - suffix.length) + replacement;
  }

  /** The first rule whose suffix matches decides: its replacement if the condition holds, else no change. */
  private applyRuleList(word: string, rules: readonly Rule[]): string {
    for (const [suffix, replacement, condition] of rules) {
      if (suffix === '*d' && this.endsDoubleConsonant(word)) {
        const stem = word.slice(0, -2);
        return condition === null || condition(stem) ? stem + replacement : word;
      }
      if (word.endsWith(suffix)) {
        const stem = this.replaceSuffix(word, suffix, '');
        return condition === null || condition(stem) ? stem + replacement : word;
      }
    }
    return word;
  }

  private step1a(word: string): string {
    if (this.mode === 'NLTK_EXTENSIONS' && word.endsWith('ies') && word.length === 4) return this.replaceSuffix(word, 'ies', 'ie');
    return this.applyRuleList(word, [
      ['sses', 'ss', null],
      ['ies', 'i', null],
      ['ss', 'ss', null],
      ['s', '', null],
    ]);
  }

  private step1b(word: string): string {
    if (this.mode === 'NLTK_EXTENSIONS' && word.endsWith('ied')) return this.replaceSuffix(word, 'ied', word.length === 4 ? 'ie' : 'i');
    if (word.endsWith('eed')) {
      const stem = this.replaceSuffix(word, 'eed', '');
      return this.measure(stem) > 0 ? stem + 'ee' : word;
    }
    let intermediate: string | null = null;
    for (const suffix of ['ed', 'ing']) {
      if (word.endsWith(suffix)) {
        const s = this.replaceSuffix(word, suffix, '');
        if (this.containsVowel(s)) {
          intermediate = s;
          break;
        }
      }
    }
    if (intermediate === null) return word;
    const last = intermediate[intermediate.length - 1];
    return this.applyRuleList(intermediate, [
      ['at', 'ate', null],
      ['bl', 'ble', null],
      ['iz', 'ize', null],
      ['*d', last, () => !['l', 's', 'z'].includes(last)],
      ['', 'e', (stem) => this.measure(stem) === 1 && this.endsCvc(stem)],
    ]);
  }

  private step1c(word: string): string {
    const nltk = (stem: string) => stem.length > 1 && this.isConsonant(stem, stem.length - 1);
    const original = (stem: string) => this.containsVowel(stem);
    return this.applyRuleList(word, [['y', 'i', this.mode === 'NLTK_EXTENSIONS' ? nltk : original]]);
  }

  private step2(word: string): string {
    if (this.mode === 'NLTK_EXTENSIONS' && word.endsWith('alli') && this.hasPositiveMeasure(this.replaceSuffix(word, 'alli', ''))) {
      return this.step2(this.replaceSuffix(word, 'alli', 'al'));
    }
    const pos = this.hasPositiveMeasure;
    const rules: Rule[] = [
      ['ational', 'ate', pos],
      ['tional', 'tion', pos],
      ['enci', 'ence', pos],
      ['anci', 'ance', pos],
      ['izer', 'ize', pos],
      this.mode === 'ORIGINAL_ALGORITHM' ? ['abli', 'able', pos] : ['bli', 'ble', pos],
      ['alli', 'al', pos],
      ['entli', 'ent', pos],
      ['eli', 'e', pos],
      ['ousli', 'ous', pos],
      ['ization', 'ize', pos],
      ['ation', 'ate', pos],
      ['ator', 'ate', pos],
      ['alism', 'al', pos],
      ['iveness', 'ive', pos],
      ['fulness', 'ful', pos],
      ['ousness', 'ous', pos],
      ['aliti', 'al', pos],
      ['iviti', 'ive', pos],
      ['biliti', 'ble', pos],
    ];
    if (this.mode === 'NLTK_EXTENSIONS') {
      rules.push(['fulli', 'ful', pos]);
      // NLTK tests the measure of the word minus 'ogi' here, not of the stem.
      rules.push(['logi', 'log', () => this.hasPositiveMeasure(word.slice(0, -3))]);
    }
    if (this.mode === 'MARTIN_EXTENSIONS') rules.push(['logi', 'log', pos]);
    return this.applyRuleList(word, rules);
  }

  private step3(word: string): string {
    const pos = this.hasPositiveMeasure;
    return this.applyRuleList(word, [
      ['icate', 'ic', pos],
      ['ative', '', pos],
      ['alize', 'al', pos],
      ['iciti', 'ic', pos],
      ['ical', 'ic', pos],
      ['ful', '', pos],
      ['ness', '', pos],
    ]);
  }

  private step4(word: string): string {
    const gt1 = (stem: string) => this.measure(stem) > 1;
    return this.applyRuleList(word, [
      ['al', '', gt1],
      ['ance', '', gt1],
      ['ence', '', gt1],
      ['er', '', gt1],
      ['ic', '', gt1],
      ['able', '', gt1],
      ['ible', '', gt1],
      ['ant', '', gt1],
      ['ement', '', gt1],
      ['ment', '', gt1],
      ['ent', '', gt1],
      ['ion', '', (stem) => this.measure(stem) > 1 && (stem.endsWith('s') || stem.endsWith('t'))],
      ['ou', '', gt1],
      ['ism', '', gt1],
      ['ate', '', gt1],
      ['iti', '', gt1],
      ['ous', '', gt1],
      ['ive', '', gt1],
      ['ize', '', gt1],
    ]);
  }

  private step5a(word: string): string {
    if (word.endsWith('e')) {
      const stem = this.replaceSuffix(word, 'e', '');
      const m = this.measure(stem);
      if (m > 1) return stem;
      if (m === 1 && !this.endsCvc(stem)) return stem;
    }
    return word;
  }

  private step5b(word: string): string {
    return this.applyRuleList(word, [['ll', 'l', () => this.measure(word.slice(0, -1)) > 1]]);
  }

  /** The stem of one word (lowercased first unless toLowercase is false). */
  stem(word: string, toLowercase = true): string {
    let stem = toLowercase ? word.toLowerCase() : word;
    if (this.mode === 'NLTK_EXTENSIONS') {
      const irregular = this.pool.get(stem);
      if (irregular !== undefined) return irregular;
    }
    if (this.mode !== 'ORIGINAL_ALGORITHM' && word.length <= 2) return stem;
    stem = this.step1a(stem);
    stem = this.step1b(stem);
    stem = this.step1c(stem);
    stem = this.step2(stem);
    stem = this.step3(stem);
    stem = this.step4(stem);
    stem = this.step5a(stem);
    stem = this.step5b(stem);
    return stem;
  }
}
