// End to end in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core; nothing is downloaded):
// an admin creates a project and users and imports prompts (one bad line, skipped and reported; responses that
// carry <script> and onerror markup), two annotators annotate with the keyboard (one on a phone-sized screen),
// an auditor adjudicates the one disagreement, the review page shows Cohen's κ (checked against the hand value),
// the DPO export downloads and loads with the DPO trainer's loader, and the runs dashboard draws its charts.
// Screenshots of the annotation page and the dashboard go to .test-artifacts/studio/ (gitignored).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { PreferenceDataset } from '../../src/data/preference_dataset.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { MetricsLogger } from '../../src/train/logging.ts';
import { createUser } from '../../src/studio/auth.ts';
import { startStudio, type RunningStudio } from '../../src/studio/server.ts';
import * as A from '../shared_assets.ts';

const CHROMIUM = '/usr/bin/chromium';
// The page's globals, as seen by functions that run in the browser (the test compiles without the DOM library).
interface PageNode {
  textContent: string | null;
}
interface PageGlobals {
  document: { querySelector(s: string): PageNode | null; querySelectorAll(s: string): Iterable<PageNode> };
  __xss?: number;
}
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install chromium; .ci/run installs it): browser test skipped`;
if (skip) console.log(`# ${skip}`);
const artifacts = join(A.repoRoot, '.test-artifacts', 'studio');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-e2e-'));
let studio: RunningStudio | null = null;
let browser: Browser | null = null;
after(async () => {
  await browser?.close();
  await studio?.close();
  rmSync(dir, { recursive: true, force: true });
});

// The good response is first (a) except in p4. Annotator 2 disagrees on p2 only. Canonical labels:
//   ann1: a a a a b      ann2: a a b a b
// Cohen's κ: p_o = 4/5; marginals ann1 (a 4, b 1), ann2 (a 3, b 2): p_e = (12 + 2)/25; κ = (0.8 - 0.56)/0.44 = 6/11.
const ROWS = [
  { id: 'p0', prompt: 'Greet the user.', responses: [' good: Hello! How can I help?', ' bad: What.'] },
  { id: 'p1', prompt: 'Name a colour.', responses: [' good: Blue.', ' bad: Seven.'] },
  { id: 'p2', prompt: 'Add 2 and 2.', responses: [' good: 4', ' bad: 5'] },
  { id: 'p3', prompt: 'Show some HTML.', responses: [' good: <script>window.__xss = 1</script>', ' bad: <img src=x onerror="window.__xss = 2">'] },
  { id: 'p4', prompt: 'Say thanks.', responses: [' bad: No.', ' good: Thank you!'] },
];

async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('nav .who');
}

/** Annotates until the project is done; `prefer` says which text to pick. Returns the prompts seen. */
async function annotate(page: Page, projectId: number, prefer: (prompt: string) => 'good' | 'bad', keys: { left: string; right: string }, shot?: string): Promise<string[]> {
  await page.goto(`${page.url().split('#')[0]}#/annotate/${projectId}`);
  const seen: string[] = [];
  for (;;) {
    await page.waitForSelector('.prompt pre, .done');
    if (await page.$('.done')) return seen;
    const prompt = (await page.textContent('.prompt pre'))!;
    const left = (await page.textContent('pre[data-side=left]'))!;
    const right = (await page.textContent('pre[data-side=right]'))!;
    if (prompt === 'Show some HTML.') {
      // Markup in responses is text: shown verbatim, no element created, nothing executed.
      assert.ok([left, right].some((t) => t.includes('<script>window.__xss = 1</script>')));
      assert.equal(await page.$$eval('.pane img, .pane script', (els) => els.length), 0);
      assert.equal(await page.evaluate(() => typeof (globalThis as unknown as PageGlobals).__xss), 'undefined');
    }
    if (shot && seen.length === 0) await page.screenshot({ path: join(artifacts, shot), fullPage: true });
    const want = prefer(prompt);
    await page.keyboard.press(left.includes(` ${want}:`) ? keys.left : keys.right);
    seen.push(prompt);
    await page.waitForFunction((p) => {
      const d = (globalThis as unknown as PageGlobals).document;
      return d.querySelector('.done') !== null || d.querySelector('.prompt pre')?.textContent !== p;
    }, prompt);
  }
}

describe('studio in a browser', { skip }, () => {
  it('import, annotate as two annotators, adjudicate, κ, export DPO, load it; dashboard', { timeout: 240_000 }, async () => {
    mkdirSync(artifacts, { recursive: true });
    // Two training runs for the dashboard (one with samples).
    for (const [name, scale] of [['run-a', 1], ['run-b', 1.5]] as const) {
      const log = new MetricsLogger(join(dir, 'runs', name), { tensorboard: false, console: false, totalSteps: 20 });
      for (let s = 1; s <= 20; s++) log.log(s, { loss: scale * (2 + Math.exp(-s / 5)), learning_rate: 1e-4 * (1 - s / 20), tokens_per_second: 900 + 10 * s, 'objective/kl': 0.01 * s, 'objective/entropy': 3 - s / 20, 'objective/rlhf_reward': s / 10 });
      log.close();
    }
    writeFileSync(join(dir, 'runs', 'run-a', 'samples.jsonl'), `${JSON.stringify({ step: 10, iteration: 1, prompt: 'Say yes', response: 'yes <b>bold?</b>', score: 1 })}\n`);

    studio = await startStudio({ dbFile: join(dir, 'studio.sqlite'), port: 0, runsDir: join(dir, 'runs'), seed: 4 });
    const adminToken = createUser(studio.store.db, 'root', 'admin').token; // what `alignkit studio user add` does
    browser = await launch();
    const errors: string[] = [];
    const newPage = async (viewport = { width: 1280, height: 900 }) => {
      const ctx = await browser!.newContext({ viewport, acceptDownloads: true });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      page.setDefaultTimeout(60_000);
      return page;
    };

    // --- admin: project, users, import
    const admin = await newPage();
    await signIn(admin, studio.url, adminToken);
    await admin.goto(`${studio.url}/#/admin`);
    await admin.fill('#p-name', 'e2e');
    await admin.fill('#p-gold', '0');
    await admin.click('text=Create project');
    await admin.waitForSelector('#import-button');
    const projectId = Number(admin.url().split('/').pop());
    const bad = '{"prompt": "no responses"}';
    await admin.fill('#imp-text', [JSON.stringify(ROWS[0]), JSON.stringify(ROWS[1]), bad, ...ROWS.slice(2).map((r) => JSON.stringify(r))].join('\n'));
    await admin.selectOption('#imp-onerror', 'skip');
    await admin.click('#import-button');
    await admin.waitForSelector('.import-result .issues');
    assert.match((await admin.textContent('.import-result'))!, /Imported 5 prompt\(s\) as 5 item\(s\)\. Skipped 1 bad line/);
    assert.match((await admin.textContent('.import-result .issues'))!, /line 3, responses: Invalid input: expected array/);
    const tokens: Record<string, string> = {};
    await admin.goto(`${studio.url}/#/admin`);
    for (const [name, role] of [['ann1', 'annotator'], ['ann2', 'annotator'], ['aud', 'auditor']]) {
      await admin.fill('#u-name', name);
      await admin.selectOption('#u-role', role);
      await admin.click('text=Create user');
      tokens[name] = (await admin.textContent(`code.token[data-user="${name}"]`))!;
    }

    // --- two annotators, keyboard only (ann2 on a phone-sized screen, with the arrow keys)
    const ann1 = await newPage();
    await signIn(ann1, studio.url, tokens.ann1);
    const seen1 = await annotate(ann1, projectId, () => 'good', { left: '1', right: '2' }, 'annotate-laptop.png');
    const ann2 = await newPage({ width: 390, height: 844 });
    await signIn(ann2, studio.url, tokens.ann2);
    const seen2 = await annotate(ann2, projectId, (p) => (p === 'Add 2 and 2.' ? 'bad' : 'good'), { left: 'ArrowLeft', right: 'ArrowRight' }, 'annotate-phone.png');
    assert.equal(seen1.length, 5);
    assert.deepEqual([...seen2].sort(), [...seen1].sort());
    assert.equal(studio.store.annotationCount(projectId), 10);

    // --- auditor: adjudicate the disagreement, read κ
    const aud = await newPage();
    await signIn(aud, studio.url, tokens.aud);
    await aud.goto(`${studio.url}/#/review/${projectId}`);
    await aud.waitForSelector('article.adjudicate');
    assert.equal(await aud.$$eval('article.adjudicate', (els) => els.length), 1);
    const panes = await aud.$$eval('article.adjudicate .pane pre', (els) => els.map((e) => e.textContent ?? ''));
    await aud.click(`article.adjudicate button[data-adjudicate="${panes[0].includes('good') ? 'a' : 'b'}"]`);
    await aud.waitForSelector('text=No open disagreements.');
    const kappa = (await aud.textContent('[data-stat="cohen-choice"]'))!;
    assert.equal(kappa, (6 / 11).toFixed(3));
    await aud.screenshot({ path: join(artifacts, 'review.png'), fullPage: true });

    // --- admin: export DPO through the page, load it with the DPO loader
    await admin.goto(`${studio.url}/#/review/${projectId}`);
    await admin.waitForSelector('#export-button');
    const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('#export-button')]);
    const file = join(dir, 'e2e.dpo.jsonl');
    await download.saveAs(file);
    const rows = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
    assert.equal(rows.length, 5);
    for (const r of rows) assert.ok(r.chosen.includes('good') && r.rejected.includes('bad'), JSON.stringify(r));
    const tok = loadTokenizer(writeTinyChatModel(join(dir, 'tiny')));
    const ds = await PreferenceDataset.open(file, tok, { maxLength: 128 });
    try {
      assert.equal(ds.length, 5);
      const pair = await ds.get(2);
      assert.equal(tok.decode(Array.from(pair.chosenIds)), ' good: 4<|im_end|>');
    } finally {
      await ds.close();
    }

    // --- runs dashboard: charts for one run, then two compared, samples as text
    await admin.goto(`${studio.url}/#/runs`);
    await admin.waitForSelector('svg.chart');
    const titles = await admin.$$eval('svg.chart > title', (els) => els.map((e) => e.textContent));
    assert.deepEqual(titles, ['Loss', 'Reward', 'KL', 'Entropy', 'Learning rate', 'Tokens/s']);
    assert.match((await admin.textContent('.sample'))!, /yes <b>bold\?<\/b>/);
    await admin.check('input[value="run-b"]');
    await admin.waitForFunction(() => [...(globalThis as unknown as PageGlobals).document.querySelectorAll('svg.chart .legend')].some((e) => e.textContent?.startsWith('run-b')));
    await admin.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    assert.deepEqual(errors, []);
    for (const f of ['annotate-laptop.png', 'annotate-phone.png', 'review.png', 'dashboard.png']) assert.ok(existsSync(join(artifacts, f)), f);
  });

  it('Likert ratings and edits with the keyboard', { timeout: 120_000 }, async () => {
    const s = await startStudio({ dbFile: join(dir, 'kb.sqlite'), port: 0, seed: 9 });
    const b = await launch();
    try {
      const token = createUser(s.store.db, 'rater', 'annotator').token;
      const likert = s.store.createProject({ name: 'rate', taskType: 'likert', annotationsPerItem: 1, criteria: ['helpfulness', 'honesty'], goldRate: 0 });
      s.store.importJsonl(likert.id, `${JSON.stringify({ prompt: 'Q', responses: ['R <i>x</i>'] })}\n`, 'reject');
      const edit = s.store.createProject({ name: 'fix', taskType: 'edit', annotationsPerItem: 1, goldRate: 0, guidelines: '# Fix typos\n\nKeep **meaning**. <script>bad()</script>' });
      s.store.importJsonl(edit.id, `${JSON.stringify({ prompt: 'Fix it', responses: ['teh cat'] })}\n`, 'reject');
      const page = await (await b.newContext()).newPage();
      page.setDefaultTimeout(60_000);
      await signIn(page, s.url, token);
      await page.goto(`${s.url}/#/annotate/${likert.id}`);
      await page.waitForSelector('fieldset.likert.current');
      assert.equal(await page.textContent('.pane pre'), 'R <i>x</i>');
      await page.keyboard.press('4'); // helpfulness, then focus moves to honesty
      await page.keyboard.press('2');
      await page.keyboard.press('Enter');
      await page.waitForSelector('.done');
      await page.goto(`${s.url}/#/annotate/${edit.id}`);
      await page.waitForSelector('textarea#edit');
      // Guidelines: Markdown turned into elements, the script tag shown as text.
      assert.equal(await page.textContent('.guidelines h1'), 'Fix typos');
      assert.equal(await page.textContent('.guidelines strong'), 'meaning');
      assert.equal(await page.$$eval('.guidelines script', (els) => els.length), 0);
      assert.match((await page.textContent('.guidelines p'))!, /<script>bad\(\)<\/script>/);
      await page.fill('textarea#edit', 'the cat');
      await page.keyboard.press('Control+Enter');
      await page.waitForSelector('.done');
      const [rating] = s.store.projectItems(likert.id)[0].annotations;
      assert.deepEqual(rating.ratings, { helpfulness: 4, honesty: 2 });
      assert.equal(s.store.projectItems(edit.id)[0].annotations[0].editedText, 'the cat');
    } finally {
      await b.close();
      await s.close();
    }
  });
});
