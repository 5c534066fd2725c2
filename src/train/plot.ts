// Small, dependency-free SVG line plots for training reports (the lr range test curve). Deterministic output:
// numbers are printed with fixed precision so the same curve gives the same file.

import type { LrFindResult } from './lr_find.ts';

export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  logX: boolean;
  series: { name: string; color: string; points: [number, number][] }[];
  /** Vertical markers (e.g. the suggested learning rate). */
  markers?: { x: number; label: string }[];
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders a line plot to an SVG document (640×400). */
export function svgLinePlot(p: LinePlot): string {
  const W = 640;
  const H = 400;
  const m = { l: 64, r: 16, t: 32, b: 48 };
  const all = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.logX || x > 0));
  const fx = (x: number): number => (p.logX ? Math.log10(x) : x);
  let [x0, x1] = all.length ? [Math.min(...all.map(([x]) => fx(x))), Math.max(...all.map(([x]) => fx(x)))] : [0, 1];
  let [y0, y1] = all.length ? [Math.min(...all.map(([, y]) => y)), Math.max(...all.map(([, y]) => y))] : [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number): number => m.l + ((fx(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number): number => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const n = (v: number): string => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(p.title)}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${esc(p.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    const yv = y0 + ((y1 - y0) * i) / 4;
    const xPix = m.l + ((W - m.l - m.r) * i) / 4;
    const yPix = H - m.b - ((H - m.t - m.b) * i) / 4;
    out.push(`<text x="${n(xPix)}" y="${H - m.b + 16}" text-anchor="middle">${p.logX ? `1e${xv.toFixed(1)}` : xv.toPrecision(3)}</text>`);
    out.push(`<text x="${m.l - 6}" y="${n(yPix + 4)}" text-anchor="end">${yv.toPrecision(3)}</text>`);
  }
  for (const s of p.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!p.logX || x > 0));
    if (pts.length) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts.map(([x, y]) => `${n(sx(x))},${n(sy(y))}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`);
  }
  for (const mk of p.markers ?? [])
    if (Number.isFinite(mk.x) && (!p.logX || mk.x > 0))
      out.push(`<line x1="${n(sx(mk.x))}" y1="${m.t}" x2="${n(sx(mk.x))}" y2="${H - m.b}" stroke="red" stroke-dasharray="4 3"/><text x="${n(sx(mk.x) + 4)}" y="${m.t + 12}" fill="red">${esc(mk.label)}</text>`);
  out.push('</svg>\n');
  return out.join('\n');
}

export function lrFindSvg(r: LrFindResult): string {
  return svgLinePlot({
    title: 'learning-rate range test',
    xLabel: 'learning rate (log scale)',
    yLabel: 'loss',
    logX: true,
    series: [
      { name: 'loss', color: '#bbbbbb', points: r.points.map((p) => [p.lr, p.loss]) },
      { name: 'smoothed loss', color: '#1f77b4', points: r.points.map((p) => [p.lr, p.smoothedLoss]) },
    ],
    markers: r.suggestedLr !== null ? [{ x: r.suggestedLr, label: `suggested ${r.suggestedLr.toExponential(1)}` }] : [],
  });
}
