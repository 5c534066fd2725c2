// alignkit studio front end: plain ES modules, no build step. Every piece of user data (prompts, responses,
// names, guidelines) reaches the page through textContent or DOM nodes built from the server's Markdown tree;
// nothing is ever assigned to innerHTML. The token lives in sessionStorage and goes out only in the
// Authorization header.
import { lineChart, formatNumber } from './charts.js';

const TOKEN_KEY = 'alignkit-studio-token';
// gen counts route() calls: a view whose route is no longer current registers no handlers or timers.
const state = { token: sessionStorage.getItem(TOKEN_KEY), me: null, cleanup: [], gen: 0 };
const app = document.getElementById('app');
const nav = document.getElementById('nav');
const statusBox = document.getElementById('status');

// ------------------------------------------------------------------------------------------------ DOM helpers

/** el('div', {class: 'x', onclick: fn}, 'text', child, ...): text children become text nodes. */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'value') e.value = v;
    else if (k === 'checked') e.checked = Boolean(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

let sayTimer = null;
function say(message, kind = 'info') {
  statusBox.textContent = message;
  statusBox.dataset.kind = kind;
  clearTimeout(sayTimer);
  // Confirmations fade; errors stay until the next message.
  if (kind !== 'error') sayTimer = setTimeout(() => (statusBox.textContent = ''), 4000);
}

/** Builds DOM from the server's Markdown tree (src/studio/markdown.ts): fixed tags, text as text nodes. */
const MD_TAGS = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'p', 'ul', 'ol', 'li', 'blockquote', 'pre', 'code', 'hr', 'br', 'strong', 'em', 'a']);
function mdNodes(nodes) {
  return nodes.map((n) => {
    if ('text' in n) return document.createTextNode(n.text);
    const tag = MD_TAGS.has(n.tag) ? n.tag : 'span';
    const e = document.createElement(tag);
    if (tag === 'a' && typeof n.href === 'string' && /^(https?:\/\/|mailto:)/i.test(n.href)) {
      e.href = n.href;
      e.rel = 'noopener noreferrer';
      e.target = '_blank';
    }
    e.append(...mdNodes(n.children ?? []));
    return e;
  });
}

const fmt = (x, digits = 3) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : typeof x === 'number' ? x.toFixed(digits) : String(x));

// ------------------------------------------------------------------------------------------------ API

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body, headers = {}) {
  const init = { method, headers: { Authorization: `Bearer ${state.token ?? ''}`, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const type = res.headers.get('content-type') ?? '';
  const data = type.includes('application/json') ? await res.json() : await res.text();
  if (res.status === 401 && path !== '/api/me') {
    signOut('Your session is no longer valid; sign in again.');
  }
  if (!res.ok && !(res.status === 422 && path.endsWith('/import'))) throw new ApiError(res.status, data);
  return { status: res.status, data, headers: res.headers };
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  location.hash = '#/login';
  if (message) say(message, 'error');
}

// ------------------------------------------------------------------------------------------------ routing

const can = (...roles) => state.me && roles.includes(state.me.role);

function renderNav() {
  nav.replaceChildren();
  if (!state.me) return;
  const links = [['#/', 'Projects']];
  if (can('admin', 'auditor')) links.push(['#/runs', 'Runs']);
  if (can('admin')) links.push(['#/admin', 'Admin']);
  for (const [href, label] of links) nav.append(el('a', { href }, label));
  nav.append(el('span', { class: 'who' }, `${state.me.name} (${state.me.role})`), el('button', { type: 'button', onclick: () => signOut('Signed out.') }, 'Sign out'));
}

/** Runs f when the current view goes away, or at once if it already has (the user navigated meanwhile). */
function onLeave(gen, f) {
  if (gen === state.gen) state.cleanup.push(f);
  else f();
}

async function route() {
  state.gen++;
  for (const f of state.cleanup.splice(0)) f();
  const hash = location.hash || '#/';
  if (!state.token) return showLogin();
  if (!state.me) {
    try {
      state.me = (await api('GET', '/api/me')).data.user;
    } catch {
      return signOut('That token was not accepted.');
    }
  }
  renderNav();
  const parts = hash.slice(2).split('/');
  try {
    if (parts[0] === 'annotate' && parts[1]) return await showAnnotate(Number(parts[1]));
    if (parts[0] === 'review' && parts[1]) return await showReview(Number(parts[1]));
    if (parts[0] === 'runs') return await showRuns();
    if (parts[0] === 'admin') return await showAdmin();
    if (parts[0] === 'login') return showLogin();
    return await showProjects();
  } catch (e) {
    app.replaceChildren(el('p', { class: 'error' }, `Error: ${e.message}`));
  }
}

window.addEventListener('hashchange', route);
route(); // a module script runs once the document is parsed

// ------------------------------------------------------------------------------------------------ login

function showLogin() {
  nav.replaceChildren();
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  const form = el(
    'form',
    { class: 'card narrow', onsubmit: async (ev) => {
      ev.preventDefault();
      state.token = input.value.trim();
      state.me = null;
      try {
        state.me = (await api('GET', '/api/me')).data.user;
        sessionStorage.setItem(TOKEN_KEY, state.token);
        say(`Signed in as ${state.me.name}.`);
        if (location.hash === '#/' || location.hash === '') route();
        else location.hash = '#/'; // hashchange routes
      } catch {
        state.token = null;
        say('That token was not accepted.', 'error');
      }
    } },
    el('h1', {}, 'Sign in'),
    el('label', { for: 'token' }, 'Access token'),
    input,
    el('p', { id: 'token-help', class: 'hint' }, 'Ask an admin for a token (alignkit studio user add <name> --role annotator). It is kept only for this browser tab.'),
    el('button', { type: 'submit' }, 'Sign in'),
  );
  app.replaceChildren(form);
  input.focus();
}

// ------------------------------------------------------------------------------------------------ projects

async function showProjects() {
  const { projects } = (await api('GET', '/api/projects')).data;
  const rows = projects.map((p) =>
    el(
      'li',
      { class: 'project' },
      el('h2', {}, p.name),
      el('p', { class: 'meta' }, `${p.taskType} · ${p.items} items · ${p.annotations} annotations · ${p.annotationsPerItem} annotators per item`),
      el(
        'p',
        { class: 'actions' },
        can('admin', 'annotator') ? el('a', { class: 'button', href: `#/annotate/${p.id}` }, 'Annotate') : null,
        can('admin', 'auditor') ? el('a', { class: 'button secondary', href: `#/review/${p.id}` }, 'Review & export') : null,
      ),
    ),
  );
  app.replaceChildren(el('h1', {}, 'Projects'), projects.length ? el('ul', { class: 'projects' }, rows) : el('p', {}, can('admin') ? 'No projects yet: create one under Admin.' : 'No projects yet.'));
}

// ------------------------------------------------------------------------------------------------ annotation

function guidelinesBlock(project) {
  if (!project.guidelines.trim()) return null;
  return el('details', { class: 'guidelines' }, el('summary', {}, 'Guidelines'), el('div', { class: 'md' }, mdNodes(project.guidelinesTree)));
}

async function showAnnotate(projectId) {
  const gen = state.gen;
  const { project } = (await api('GET', `/api/projects/${projectId}`)).data;
  let done = 0;
  const header = el('div', { class: 'annotate-head' }, el('h1', {}, project.name), el('span', { class: 'counter', 'aria-live': 'polite' }, ''));
  const area = el('section', { class: 'task', 'aria-label': 'Current item' });
  app.replaceChildren(header, guidelinesBlock(project) ?? '', area);
  let keyHandler = null;
  const setKeys = (h) => {
    if (keyHandler) document.removeEventListener('keydown', keyHandler);
    keyHandler = gen === state.gen ? h : null;
    if (keyHandler) document.addEventListener('keydown', keyHandler);
  };
  onLeave(gen, () => setKeys(null));

  async function submit(task, payload, key) {
    // The same key on every retry: the server stores the annotation once however often this is sent.
    for (let attempt = 0; ; attempt++) {
      try {
        await api('POST', `/api/assignments/${task.assignmentId}/submit`, payload, { 'Idempotency-Key': key });
        done++;
        header.querySelector('.counter').textContent = `${done} submitted this session`;
        say('Saved.');
        return true;
      } catch (e) {
        if (e instanceof ApiError && e.status < 500) {
          say(`Not saved: ${e.message}`, 'error');
          return false;
        }
        if (attempt >= 3) {
          say(`Not saved (network): ${e.message}. Press the key again to retry.`, 'error');
          return false;
        }
        await new Promise((r) => setTimeout(r, 300 * 2 ** attempt));
      }
    }
  }

  async function next() {
    const { task } = (await api('POST', `/api/projects/${projectId}/next`)).data;
    if (!task) {
      setKeys(null);
      area.replaceChildren(el('p', { class: 'done' }, 'Nothing left to annotate in this project. Thank you!'));
      return;
    }
    const key = crypto.randomUUID();
    let busy = false;
    const send = async (payload) => {
      if (busy) return;
      busy = true;
      const ok = await submit(task, payload, key);
      busy = false;
      if (ok) await next();
    };
    const prompt = el('div', { class: 'prompt' }, el('h2', {}, 'Prompt'), el('pre', { class: 'text' }, task.prompt));
    if (task.taskType === 'pairwise') renderPairwise(task, prompt, send);
    else if (task.taskType === 'likert') renderLikert(task, prompt, send);
    else renderEdit(task, prompt, send);
  }

  function renderPairwise(task, prompt, send) {
    let strength = 0; // 0 = not given
    const strengthNames = ['not given', 'slightly', 'clearly', 'much'];
    const radios = [1, 2, 3].map((s) =>
      el('label', {}, el('input', { type: 'radio', name: 'strength', value: String(s), onchange: () => (strength = s) }), ` ${strengthNames[s]} better`),
    );
    const syncRadios = () => radios.forEach((r, i) => (r.querySelector('input').checked = strength === i + 1));
    const choose = (choice) => send(strength && choice !== 'tie' ? { taskType: 'pairwise', choice, strength } : { taskType: 'pairwise', choice });
    area.replaceChildren(
      prompt,
      el(
        'div',
        { class: 'pair' },
        el('article', { class: 'pane', 'aria-labelledby': 'left-h' }, el('h2', { id: 'left-h' }, 'Response 1 (left)'), el('pre', { class: 'text', 'data-side': 'left' }, task.left)),
        el('article', { class: 'pane', 'aria-labelledby': 'right-h' }, el('h2', { id: 'right-h' }, 'Response 2 (right)'), el('pre', { class: 'text', 'data-side': 'right' }, task.right)),
      ),
      el('fieldset', { class: 'strength' }, el('legend', {}, 'How much better (optional; ↑/↓)'), radios),
      el(
        'div',
        { class: 'choices', role: 'group', 'aria-label': 'Which response is better?' },
        el('button', { type: 'button', 'data-choice': 'left', 'aria-keyshortcuts': '1 ArrowLeft', onclick: () => choose('left') }, el('kbd', {}, '1'), ' Left is better'),
        el('button', { type: 'button', 'data-choice': 'tie', 'aria-keyshortcuts': '=', onclick: () => choose('tie') }, el('kbd', {}, '='), ' Tie'),
        el('button', { type: 'button', 'data-choice': 'right', 'aria-keyshortcuts': '2 ArrowRight', onclick: () => choose('right') }, el('kbd', {}, '2'), ' Right is better'),
      ),
      el('p', { class: 'hint' }, 'Keys: 1 or ← left, 2 or → right, = tie, ↑/↓ strength.'),
    );
    setKeys((ev) => {
      if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === '1' || ev.key === 'ArrowLeft') choose('left');
      else if (ev.key === '2' || ev.key === 'ArrowRight') choose('right');
      else if (ev.key === '=' || ev.key === '0') choose('tie');
      else if (ev.key === 'ArrowUp') { strength = Math.min(3, strength + 1); syncRadios(); }
      else if (ev.key === 'ArrowDown') { strength = Math.max(0, strength - 1); syncRadios(); }
      else return;
      ev.preventDefault();
    });
  }

  function renderLikert(task, prompt, send) {
    const ratings = {};
    let current = 0;
    const groups = task.criteria.map((c, ci) =>
      el(
        'fieldset',
        { class: 'likert', 'data-criterion': c },
        el('legend', {}, c),
        Array.from({ length: task.likertMax }, (_, i) =>
          el('label', {}, el('input', { type: 'radio', name: `crit-${ci}`, value: String(i + 1), onchange: () => { ratings[c] = i + 1; current = ci; } }), ` ${i + 1}`),
        ),
      ),
    );
    const focusGroup = () => groups.forEach((g, i) => g.classList.toggle('current', i === current));
    const trySubmit = () => {
      const missing = task.criteria.filter((c) => !ratings[c]);
      if (missing.length) return say(`Rate ${missing.join(', ')} first.`, 'error');
      send({ taskType: 'likert', ratings: { ...ratings } });
    };
    area.replaceChildren(
      prompt,
      el('article', { class: 'pane' }, el('h2', {}, 'Response'), el('pre', { class: 'text' }, task.response)),
      el('form', { class: 'likert-form', onsubmit: (ev) => { ev.preventDefault(); trySubmit(); } }, groups, el('button', { type: 'submit' }, 'Submit (Enter)')),
      el('p', { class: 'hint' }, `Keys: 1–${task.likertMax} rate the highlighted criterion and move on, ↑/↓ change criterion, Enter submits.`),
    );
    focusGroup();
    setKeys((ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const n = Number(ev.key);
      if (Number.isInteger(n) && n >= 1 && n <= task.likertMax) {
        const c = task.criteria[current];
        ratings[c] = n;
        groups[current].querySelectorAll('input')[n - 1].checked = true;
        current = Math.min(task.criteria.length - 1, current + 1);
      } else if (ev.key === 'ArrowDown') current = Math.min(task.criteria.length - 1, current + 1);
      else if (ev.key === 'ArrowUp') current = Math.max(0, current - 1);
      else if (ev.key === 'Enter') trySubmit();
      else return;
      ev.preventDefault();
      focusGroup();
    });
  }

  function renderEdit(task, prompt, send) {
    const box = el('textarea', { id: 'edit', rows: 12, 'aria-describedby': 'edit-help' });
    box.value = task.response;
    const go = () => send({ taskType: 'edit', text: box.value });
    area.replaceChildren(
      prompt,
      el('label', { for: 'edit' }, 'Improve the response'),
      box,
      el('p', { id: 'edit-help', class: 'hint' }, 'Ctrl+Enter submits.'),
      el('button', { type: 'button', onclick: go }, 'Submit'),
    );
    setKeys((ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        go();
      }
    });
    box.focus();
  }

  await next();
}

// ------------------------------------------------------------------------------------------------ review

function table(headers, rows, caption) {
  return el(
    'table',
    {},
    caption ? el('caption', {}, caption) : null,
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c))))),
  );
}

async function showReview(projectId) {
  const { project } = (await api('GET', `/api/projects/${projectId}`)).data;
  const agreementBox = el('section', { class: 'card', 'aria-labelledby': 'agr-h' });
  const queueBox = el('section', { class: 'card', 'aria-labelledby': 'dis-h' });
  const sections = [el('h1', {}, `Review: ${project.name}`), el('p', { class: 'meta' }, `${project.taskType} · ${project.progress.items} items (${project.progress.goldItems} gold) · ${project.progress.annotations} annotations · ${project.progress.completeItems} items fully annotated`), agreementBox, queueBox];
  if (can('admin')) sections.push(exportSection(project), importSection(project), guidelinesSection(project));
  app.replaceChildren(...sections);

  async function loadAgreement() {
    const { agreement: a } = (await api('GET', `/api/projects/${projectId}/agreement`)).data;
    const blocks = a.overall ? [{ name: 'choice', ...a.overall }] : a.criteria.map((c) => ({ name: c.criterion, ...c }));
    agreementBox.replaceChildren(
      el('h2', { id: 'agr-h' }, 'Agreement'),
      blocks.length
        ? table(['labels', "Cohen's κ", "Fleiss' κ", "Krippendorff's α", '% agreement', 'items'], blocks.map((b) => [b.name, el('span', { 'data-stat': `cohen-${b.name}` }, fmt(b.cohenKappa)), fmt(b.fleissKappa), fmt(b.krippendorffAlpha), fmt(b.percentAgreement), String(b.items)]))
        : el('p', {}, 'Free-text edits have no agreement statistics.'),
      table(
        ['annotator', 'annotations', 'agrees with majority', 'gold accuracy', 'left chosen (p)', 'median s/item'],
        a.annotators.map((u) => [u.name, String(u.annotations), u.majority.total ? `${fmt(u.majority.rate)} of ${u.majority.total}` : '—', u.gold.total ? `${fmt(u.gold.rate)} of ${u.gold.total}` : '—', u.positionBias ? `${fmt(u.positionBias.leftRate)} (${fmt(u.positionBias.pValue)})` : '—', fmt(u.medianSeconds, 1)]),
        'Annotators',
      ),
    );
  }

  async function loadQueue() {
    const { items } = (await api('GET', `/api/projects/${projectId}/disagreements`)).data;
    queueBox.replaceChildren(el('h2', { id: 'dis-h' }, `Disagreements (${items.length})`));
    if (!items.length) queueBox.append(el('p', {}, 'No open disagreements.'));
    for (const it of items) queueBox.append(adjudicationCard(project, it, async () => { await loadQueue(); await loadAgreement(); }));
  }

  await Promise.all([loadAgreement(), loadQueue()]);
}

function adjudicationCard(project, it, after) {
  const note = el('input', { type: 'text', 'aria-label': `note for item ${it.id}`, placeholder: 'note (optional)' });
  const decide = async (payload) => {
    try {
      await api('POST', `/api/items/${it.id}/adjudicate`, { ...payload, note: note.value });
      say(`Item ${it.id} adjudicated.`);
      await after();
    } catch (e) {
      say(`Not saved: ${e.message}`, 'error');
    }
  };
  const votes = it.annotations.map((a) => el('li', {}, `${a.userName}: `, project.taskType === 'pairwise' ? `${a.choice}${a.strength ? ` (strength ${a.strength})` : ''}` : JSON.stringify(a.ratings)));
  const controls =
    project.taskType === 'pairwise'
      ? el(
          'div',
          { class: 'choices', role: 'group', 'aria-label': `decision for item ${it.id}` },
          el('button', { type: 'button', 'data-adjudicate': 'a', onclick: () => decide({ choice: 'a' }) }, 'A is better'),
          el('button', { type: 'button', 'data-adjudicate': 'tie', onclick: () => decide({ choice: 'tie' }) }, 'Tie'),
          el('button', { type: 'button', 'data-adjudicate': 'b', onclick: () => decide({ choice: 'b' }) }, 'B is better'),
        )
      : likertDecision(project, it, decide);
  return el(
    'article',
    { class: 'adjudicate', 'data-item': String(it.id) },
    el('h3', {}, `Item ${it.id} (prompt ${it.promptExternalId})`),
    el('pre', { class: 'text' }, it.prompt),
    el('div', { class: 'pair' }, el('div', { class: 'pane' }, el('h4', {}, 'A'), el('pre', { class: 'text' }, it.a.text)), it.b ? el('div', { class: 'pane' }, el('h4', {}, 'B'), el('pre', { class: 'text' }, it.b.text)) : null),
    el('ul', { class: 'votes', 'aria-label': 'annotations' }, votes),
    note,
    controls,
  );
}

function likertDecision(project, it, decide) {
  const inputs = project.criteria.map((c) => el('input', { type: 'number', min: 1, max: project.likertMax, required: true, 'aria-label': `${c} for item ${it.id}`, 'data-criterion': c }));
  return el(
    'form',
    { onsubmit: (ev) => { ev.preventDefault(); decide({ ratings: Object.fromEntries(inputs.map((i) => [i.dataset.criterion, Number(i.value)])) }); } },
    project.criteria.map((c, i) => el('label', {}, `${c} `, inputs[i])),
    el('button', { type: 'submit' }, 'Decide'),
  );
}

function exportSection(project) {
  const formats = project.taskType === 'pairwise' ? [['dpo', 'DPO / reward pairs']] : project.taskType === 'likert' ? [['kto', 'KTO labels']] : [['sft', 'SFT from edits']];
  const format = el('select', { id: 'exp-format' }, formats.map(([v, l]) => el('option', { value: v }, l)));
  const ties = el('select', { id: 'exp-ties' }, el('option', { value: 'skip' }, 'skip split votes'), el('option', { value: 'strength' }, 'break by strength'));
  const minAgreement = el('input', { id: 'exp-min', type: 'number', min: 0, max: 1, step: 0.05, value: '0' });
  const requireAdj = el('input', { id: 'exp-adj', type: 'checkbox' });
  const result = el('p', { class: 'hint', 'aria-live': 'polite' });
  const download = async () => {
    const q = new URLSearchParams({ format: format.value });
    if (project.taskType === 'pairwise') {
      q.set('ties', ties.value);
      q.set('minAgreement', minAgreement.value || '0');
      q.set('requireAdjudication', String(requireAdj.checked));
    }
    try {
      const { data, headers } = await api('GET', `/api/projects/${project.id}/export?${q}`);
      const rows = headers.get('x-export-rows');
      result.textContent = `${rows} rows; left out: ${headers.get('x-export-skipped')}`;
      const url = URL.createObjectURL(new Blob([data], { type: 'application/x-ndjson' }));
      const a = el('a', { href: url, download: `${project.name.replace(/[^\w.-]+/g, '_')}.${format.value}.jsonl` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      result.textContent = `Export failed: ${e.message}`;
    }
  };
  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'exp-h' },
    el('h2', { id: 'exp-h' }, 'Export'),
    el('label', { for: 'exp-format' }, 'Format '), format,
    project.taskType === 'pairwise' ? [el('label', { for: 'exp-ties' }, ' Split votes '), ties, el('label', { for: 'exp-min' }, ' Min. agreement '), minAgreement, el('label', {}, requireAdj, ' only adjudicated disagreements')] : null,
    el('p', {}, el('button', { type: 'button', id: 'export-button', onclick: download }, 'Download JSONL')),
    result,
  );
}

function importSection(project) {
  const text = el('textarea', { id: 'imp-text', rows: 6, placeholder: '{"prompt": "...", "responses": ["...", "..."]}', 'aria-describedby': 'imp-help' });
  const file = el('input', { id: 'imp-file', type: 'file', accept: '.jsonl,.ndjson,application/x-ndjson' });
  const onError = el('select', { id: 'imp-onerror' }, el('option', { value: 'reject' }, 'reject the file'), el('option', { value: 'skip' }, 'skip bad lines'));
  const out = el('div', { class: 'import-result', 'aria-live': 'polite' });
  file.addEventListener('change', async () => {
    if (file.files?.[0]) text.value = await file.files[0].text();
  });
  const go = async () => {
    try {
      const { data } = await api('POST', `/api/projects/${project.id}/import`, { jsonl: text.value, onError: onError.value });
      out.replaceChildren(
        el('p', {}, data.rejected ? `Rejected: ${data.issues.length} bad line(s); nothing was imported.` : `Imported ${data.prompts} prompt(s) as ${data.items} item(s).${data.issues.length ? ` Skipped ${data.issues.length} bad line(s).` : ''}`),
        data.issues.length ? el('ul', { class: 'issues' }, data.issues.map((i) => el('li', {}, `line ${i.line}${i.field ? `, ${i.field}` : ''}: ${i.message}`))) : '',
      );
    } catch (e) {
      out.replaceChildren(el('p', { class: 'error' }, `Import failed: ${e.message}`));
    }
  };
  return el(
    'section',
    { class: 'card', 'aria-labelledby': 'imp-h' },
    el('h2', { id: 'imp-h' }, 'Import'),
    el('label', { for: 'imp-text' }, 'JSON Lines'), text,
    el('p', { id: 'imp-help', class: 'hint' }, 'One prompt per line: {"id"?, "prompt", "responses": [...], "gold"?}. Or pick a file:'),
    file,
    el('p', {}, el('label', { for: 'imp-onerror' }, 'On a bad line: '), onError, ' ', el('button', { type: 'button', id: 'import-button', onclick: go }, 'Import')),
    out,
  );
}

function guidelinesSection(project) {
  const box = el('textarea', { id: 'gl-text', rows: 8 });
  box.value = project.guidelines;
  const preview = el('div', { class: 'md' }, mdNodes(project.guidelinesTree));
  const save = async () => {
    try {
      const { project: p } = (await api('PUT', `/api/projects/${project.id}/guidelines`, { markdown: box.value })).data;
      preview.replaceChildren(...mdNodes(p.guidelinesTree));
      say('Guidelines saved.');
    } catch (e) {
      say(`Not saved: ${e.message}`, 'error');
    }
  };
  return el('section', { class: 'card', 'aria-labelledby': 'gl-h' }, el('h2', { id: 'gl-h' }, 'Guidelines (Markdown)'), el('label', { for: 'gl-text', class: 'sr-only' }, 'Guidelines'), box, el('p', {}, el('button', { type: 'button', onclick: save }, 'Save guidelines')), el('h3', {}, 'Preview'), preview);
}

// ------------------------------------------------------------------------------------------------ admin

async function showAdmin() {
  const { users } = (await api('GET', '/api/users')).data;
  const name = el('input', { id: 'u-name', required: true });
  const role = el('select', { id: 'u-role' }, ['annotator', 'auditor', 'admin'].map((r) => el('option', { value: r }, r)));
  const tokenOut = el('div', { 'aria-live': 'polite' });
  const userForm = el(
    'form',
    { class: 'card', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const { data } = await api('POST', '/api/users', { name: name.value, role: role.value });
        tokenOut.replaceChildren(el('p', {}, `Token for ${data.user.name} (shown once — copy it now):`), el('code', { class: 'token', 'data-user': data.user.name }, data.token));
        list.append(el('li', {}, `${data.user.name} (${data.user.role})`));
      } catch (e) {
        tokenOut.replaceChildren(el('p', { class: 'error' }, e.message));
      }
    } },
    el('h2', {}, 'Add a user'),
    el('label', { for: 'u-name' }, 'Name'), name,
    el('label', { for: 'u-role' }, 'Role'), role,
    el('button', { type: 'submit' }, 'Create user'),
    tokenOut,
  );
  const list = el('ul', {}, users.map((u) => el('li', {}, `${u.name} (${u.role})`)));
  const pName = el('input', { id: 'p-name', required: true });
  const pType = el('select', { id: 'p-type' }, ['pairwise', 'likert', 'edit'].map((t) => el('option', { value: t }, t)));
  const pK = el('input', { id: 'p-k', type: 'number', min: 1, max: 20, value: '2' });
  const pGold = el('input', { id: 'p-gold', type: 'number', min: 0, max: 1, step: 0.05, value: '0.1' });
  const pCriteria = el('input', { id: 'p-criteria', placeholder: 'helpfulness, harmlessness, honesty' });
  const projectForm = el(
    'form',
    { class: 'card', onsubmit: async (ev) => {
      ev.preventDefault();
      const criteria = pCriteria.value.split(',').map((s) => s.trim()).filter(Boolean);
      try {
        const { data } = await api('POST', '/api/projects', { name: pName.value, taskType: pType.value, annotationsPerItem: Number(pK.value), goldRate: Number(pGold.value), ...(criteria.length ? { criteria } : {}) });
        location.hash = `#/review/${data.project.id}`;
      } catch (e) {
        say(`Not created: ${e.message}`, 'error');
      }
    } },
    el('h2', {}, 'New project'),
    el('label', { for: 'p-name' }, 'Name'), pName,
    el('label', { for: 'p-type' }, 'Task'), pType,
    el('label', { for: 'p-k' }, 'Annotators per item'), pK,
    el('label', { for: 'p-gold' }, 'Gold (audit) rate'), pGold,
    el('label', { for: 'p-criteria' }, 'Likert criteria (comma-separated)'), pCriteria,
    el('button', { type: 'submit' }, 'Create project'),
  );
  app.replaceChildren(el('h1', {}, 'Admin'), el('div', { class: 'grid2' }, userForm, projectForm), el('section', { class: 'card' }, el('h2', {}, 'Users'), list));
}

// ------------------------------------------------------------------------------------------------ runs dashboard

const GROUPS = [
  ['Loss', (k) => /loss/i.test(k)],
  ['Reward', (k) => /reward|score/i.test(k)],
  ['KL', (k) => /(^|[/_])kl($|[/_])|approxkl/i.test(k)],
  ['Entropy', (k) => /entropy/i.test(k)],
  ['Learning rate', (k) => /learning_rate|^lr$/i.test(k)],
  ['Tokens/s', (k) => /tokens_per_second|tokens\/s/i.test(k)],
];
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

async function showRuns() {
  const gen = state.gen;
  const { runs, root } = (await api('GET', '/api/runs')).data;
  const selected = new Set(runs.slice(0, 1).map((r) => r.name));
  const data = new Map(); // run -> records
  const charts = el('div', { class: 'charts' });
  const samples = el('section', { class: 'card', 'aria-labelledby': 'samples-h' });
  const picker = el(
    'fieldset',
    { class: 'runs' },
    el('legend', {}, `Runs under ${root ?? '(none)'} — pick one, or two to compare`),
    runs.map((r) =>
      el('label', {}, el('input', { type: 'checkbox', value: r.name, checked: selected.has(r.name), onchange: (ev) => {
        if (ev.target.checked) {
          if (selected.size >= 2) { ev.target.checked = false; return say('Compare at most two runs.', 'error'); }
          selected.add(r.name);
        } else selected.delete(r.name);
        refresh(true);
      } }), ` ${r.name} (${r.records} records${r.lastStep !== null ? `, step ${r.lastStep}` : ''})`),
    ),
  );
  app.replaceChildren(el('h1', {}, 'Training runs'), runs.length ? picker : el('p', {}, 'No run folders with metrics.jsonl found.'), charts, samples);

  async function poll(name) {
    const have = data.get(name) ?? [];
    const after = have.length ? have[have.length - 1].step : -1;
    const { records } = (await api('GET', `/api/runs/metrics?${new URLSearchParams({ run: name, after: String(after) })}`)).data;
    data.set(name, have.concat(records));
    return records.length > 0;
  }

  function draw() {
    const names = [...selected];
    charts.replaceChildren();
    for (const [title, match] of GROUPS) {
      const series = [];
      names.forEach((run, ri) => {
        const recs = data.get(run) ?? [];
        const keys = [...new Set(recs.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'step' && k !== 'time' && k !== 'epoch' && match(k));
        keys.forEach((k, ki) => series.push({ name: names.length > 1 ? `${run}: ${k}` : k, color: COLORS[(ki + ri * 3) % COLORS.length], dash: ri === 1, points: recs.filter((r) => k in r).map((r) => [r.step, r[k]]) }));
      });
      if (series.length) charts.append(el('figure', { class: 'chart-box' }, lineChart(title, series)));
    }
    if (!charts.childNodes.length) charts.append(el('p', {}, 'No loss, reward, KL, entropy, learning-rate or tokens/s metrics logged yet.'));
  }

  async function drawSamples() {
    const names = [...selected].filter((n) => runs.find((r) => r.name === n)?.hasSamples);
    samples.replaceChildren(el('h2', { id: 'samples-h' }, 'Sample generations'));
    if (!names.length) return samples.append(el('p', {}, 'The selected runs logged no samples.jsonl.'));
    const per = await Promise.all(names.map(async (n) => [n, (await api('GET', `/api/runs/samples?${new URLSearchParams({ run: n })}`)).data.samples]));
    const steps = [...new Set(per.flatMap(([, s]) => s.map((x) => x.step)))].sort((a, b) => a - b);
    const stepSel = el('select', { id: 'sample-step' }, steps.map((s) => el('option', { value: String(s) }, `step ${s}`)));
    stepSel.value = String(steps[steps.length - 1]);
    const cols = el('div', { class: 'pair' });
    const show = () => {
      const step = Number(stepSel.value);
      cols.replaceChildren(...per.map(([n, s]) => el('div', { class: 'pane' }, el('h3', {}, n), s.filter((x) => x.step === step).map((x) => el('div', { class: 'sample' }, el('pre', { class: 'text prompt-text' }, x.prompt), el('pre', { class: 'text' }, x.response), el('p', { class: 'meta' }, `score ${x.score === null ? 'n/a' : formatNumber(x.score)}`))))));
    };
    stepSel.addEventListener('change', show);
    samples.append(el('label', { for: 'sample-step' }, 'Step '), stepSel, cols);
    show();
  }

  async function refresh(full) {
    if (full) {
      await drawSamples();
    }
    const changed = await Promise.all([...selected].map(poll));
    if (full || changed.some(Boolean)) draw();
  }
  await refresh(true);
  const timer = setInterval(() => refresh(false).catch((e) => say(`Refresh failed: ${e.message}`, 'error')), 2000);
  onLeave(gen, () => clearInterval(timer));
}
