// The pipeline's summary report, in three forms written atomically into the output folder: report.json (every
// stage's outcome), report.md (tables) and report.html (the same tables plus inline SVG plots of each stage's
// metrics.jsonl: training loss, the target metric when it is logged, and the RL reward / KL curves).

import fs from 'node:fs';
import path from 'node:path';
import { writeAtomically } from '../io/file.ts';
import { readMetrics } from '../train/logging.ts';
import { svgLinePlot } from '../train/plot.ts';
import { fmtNumber, type PipelineResult, type StageOutcome } from './run.ts';

export interface ReportFiles {
  json: string;
  markdown: string;
  html: string;
}

const PLOT_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** The curves plotted for a stage: (metric, title) present in its metrics.jsonl. */
function curves(s: StageOutcome): { metric: string; points: [number, number][] }[] {
  const recs = readMetrics(s.outputDir, { skipInvalid: true });
  const keys = ['loss', ...(s.target ? [s.target.metric] : []), 'objective/scores', 'objective/kl'];
  const out: { metric: string; points: [number, number][] }[] = [];
  for (const k of [...new Set(keys)]) {
    const pts = recs.filter((r) => Number.isFinite(r[k])).map((r): [number, number] => [r.step, r[k]]);
    if (pts.length >= 2) out.push({ metric: k, points: pts });
  }
  return out;
}

function verdict(s: StageOutcome): string {
  if (!s.target || s.target.improved === null) return '';
  return s.target.improved ? 'yes' : 'no';
}

function stageRows(r: PipelineResult): string[][] {
  return r.stages.map((s) => [
    s.name, s.type, s.status, s.seconds.toFixed(1),
    s.target ? s.target.metric : '', s.target ? fmtNumber(s.target.before) : '', s.target ? fmtNumber(s.target.after) : '', verdict(s),
  ]);
}

const STAGE_COLUMNS = ['stage', 'type', 'status', 'seconds', 'target metric', 'before', 'after', 'improved'];

function mdTable(columns: string[], rows: (string | number | null)[][]): string {
  const cell = (v: string | number | null) => (typeof v === 'number' ? fmtNumber(v) : (v ?? '–')).toString().replace(/\|/g, '\\|');
  return [`| ${columns.join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function reportMarkdown(r: PipelineResult): string {
  const out = [`# Pipeline report: ${r.file}`, '', `Output folder: \`${r.outputDir}\` — ${r.stages.length} stages, ${r.seconds.toFixed(1)} s in this run.`, '', '## Stages', '', mdTable(STAGE_COLUMNS, stageRows(r)), ''];
  for (const s of r.stages) {
    out.push(`## ${s.name} (${s.type})`, '');
    if (s.target) out.push(`Target: ${s.target.label} — \`${s.target.metric}\` ${fmtNumber(s.target.before)} → ${fmtNumber(s.target.after)}${s.target.improved === null ? '' : s.target.improved ? ' (improved)' : ' (not improved)'}.`, '');
    const metrics = Object.entries(s.metrics);
    if (metrics.length) out.push(mdTable(['metric', 'value'], metrics.map(([k, v]) => [k, v])), '');
    for (const t of s.tables) out.push(`**${t.title}**`, '', mdTable(t.columns, t.rows), '');
    out.push(`Outputs: ${Object.entries(s.outputs).map(([k, v]) => `${k} = \`${v}\``).join(', ')}`, '');
  }
  return out.join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function htmlTable(columns: string[], rows: (string | number | null)[][]): string {
  const cell = (v: string | number | null) => `<td${typeof v === 'number' ? ' class="num"' : ''}>${esc(typeof v === 'number' ? fmtNumber(v) : (v ?? '–'))}</td>`;
  return `<table><thead><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('')}</tbody></table>`;
}

export function reportHtml(r: PipelineResult): string {
  const parts: string[] = [
    '<!doctype html>',
    `<html lang="en"><head><meta charset="utf-8"><title>alignkit pipeline report</title>`,
    '<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:0.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}.yes{color:#080;font-weight:bold}.no{color:#b00;font-weight:bold}.plots svg{width:480px;height:300px;margin-right:8px}section{border-top:1px solid #ddd;margin-top:1.5em}</style>',
    '</head><body>',
    `<h1>Pipeline report</h1><p><code>${esc(r.file)}</code> → <code>${esc(r.outputDir)}</code>: ${r.stages.length} stages, ${r.seconds.toFixed(1)} s in this run.</p>`,
    '<h2>Stages</h2>',
    htmlTable(STAGE_COLUMNS, stageRows(r)).replace(/<td>(yes|no)<\/td>/g, '<td class="$1">$1</td>'),
  ];
  const evalTables = r.stages.flatMap((s) => s.tables.map((t) => ({ stage: s.name, t })));
  if (evalTables.length) {
    parts.push('<h2>Evaluations</h2>');
    for (const { stage, t } of evalTables) parts.push(`<h3>${esc(stage)}: ${esc(t.title)}</h3>`, htmlTable(t.columns, t.rows));
  }
  for (const s of r.stages) {
    parts.push(`<section><h2>${esc(s.name)} <small>(${esc(s.type)}, ${esc(s.status)}, ${s.seconds.toFixed(1)} s)</small></h2>`);
    if (s.target)
      parts.push(`<p>Target: ${esc(s.target.label)} — <code>${esc(s.target.metric)}</code> ${esc(fmtNumber(s.target.before))} → ${esc(fmtNumber(s.target.after))}${s.target.improved === null ? '' : s.target.improved ? ' <span class="yes">improved</span>' : ' <span class="no">not improved</span>'}</p>`);
    const metrics = Object.entries(s.metrics);
    if (metrics.length) parts.push(htmlTable(['metric', 'value'], metrics.map(([k, v]) => [k, v])));
    const cs = curves(s);
    if (cs.length) {
      parts.push('<div class="plots">');
      cs.forEach((c, i) => parts.push(svgLinePlot({ title: `${s.name}: ${c.metric}`, xLabel: 'optimizer step', yLabel: c.metric, logX: false, series: [{ name: c.metric, color: PLOT_COLORS[i % PLOT_COLORS.length], points: c.points }] })));
      parts.push('</div>');
    }
    parts.push(`<p>Outputs: ${Object.entries(s.outputs).map(([k, v]) => `${esc(k)} = <code>${esc(v)}</code>`).join(', ')}</p></section>`);
  }
  parts.push('</body></html>', '');
  return parts.join('\n');
}

/** Writes report.json, report.md and report.html into the pipeline's output folder. */
export function writeReport(r: PipelineResult): ReportFiles {
  const files = { json: path.join(r.outputDir, 'report.json'), markdown: path.join(r.outputDir, 'report.md'), html: path.join(r.outputDir, 'report.html') };
  fs.mkdirSync(r.outputDir, { recursive: true });
  const write = (file: string, text: string) => writeAtomically('report', file, (f) => f.write(new TextEncoder().encode(text)));
  write(files.json, `${JSON.stringify(r, null, 2)}\n`);
  write(files.markdown, reportMarkdown(r));
  write(files.html, reportHtml(r));
  return files;
}
