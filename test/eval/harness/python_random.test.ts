// CPython's random.Random, bit for bit: draws of random.Random(seed).sample(range(n), k) and getrandbits recorded
// by CPython (fixtures/harness/python_random.json), covering both of sample()'s algorithms (pool and set) and
// successive draws from one generator (how the harness's few-shot sampler uses it).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { PythonRandom } from '../../../src/eval/harness/index.ts';
import { repoRoot } from '../../shared_assets.ts';

const fx = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'harness', 'python_random.json'), 'utf8')) as {
  cases: { seed: number; draws: { n: number; k: number; sample: number[] }[] }[];
  getrandbits_1234: number[];
};

test('PythonRandom.sample equals CPython for several seeds and sizes', () => {
  let checked = 0;
  for (const c of fx.cases) {
    const r = new PythonRandom(BigInt(c.seed));
    for (const d of c.draws) {
      const pop = Array.from({ length: d.n }, (_, i) => i);
      assert.deepEqual(r.sample(pop, d.k), d.sample, `seed ${c.seed}, sample(range(${d.n}), ${d.k})`);
      checked++;
    }
  }
  assert.ok(checked >= 14, `${checked} draws checked`);
});

test('PythonRandom.getrandbits equals CPython; bad arguments are errors', () => {
  const r = new PythonRandom(1234);
  assert.deepEqual([1, 5, 31, 32, 7, 32].map((k) => r.getrandbits(k)), fx.getrandbits_1234);
  assert.throws(() => r.sample([1, 2], 3), /larger than population/);
  assert.throws(() => new PythonRandom(0.5), /integer/);
  assert.throws(() => r.randbelow(0), /positive/);
});
