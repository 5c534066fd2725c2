// Loader for test/eval/golden/reference_tools.json: outputs of sacreBLEU, NLTK, scikit-learn, SciPy,
// statsmodels and NumPy on synthetic inputs, written by test/eval/golden/make_golden.py (versions inside).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const path = fileURLToPath(new URL('./golden/reference_tools.json', import.meta.url));

// The file's sections are typed loosely: each test reads the fields it checks.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

let cache: Json | null = null;
export function golden(): Json {
  cache ??= JSON.parse(readFileSync(path, 'utf8')) as Json;
  return cache;
}
