// Line charts as inline SVG, built with DOM calls only (no chart library, no innerHTML).
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Round numbers for the axis: about `count` ticks over [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

export function formatNumber(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/**
 * series: [{name, color, dash?, points: [[x, y], ...]}]. Non-finite values break the line.
 * Returns an <svg> with axes, ticks, a legend and an accessible title.
 */
export function lineChart(title, series, opts = {}) {
  const W = opts.width ?? 520, H = opts.height ?? 240;
  const m = { l: 56, r: 12, t: 24, b: 40 };
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'chart' });
  root.append(svg('title', {}, title));
  root.append(svg('text', { x: m.l, y: 16, class: 'chart-title' }, title));
  const pts = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (pts.length === 0) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no data yet'));
    return root;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const axes = svg('g', { class: 'axes' });
  axes.append(svg('line', { x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }), svg('line', { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b }));
  for (const t of niceTicks(x0, x1)) {
    axes.append(svg('line', { x1: X(t), y1: H - m.b, x2: X(t), y2: H - m.b + 4 }));
    axes.append(svg('text', { x: X(t), y: H - m.b + 16, 'text-anchor': 'middle' }, formatNumber(t)));
  }
  for (const t of niceTicks(y0, y1, 4)) {
    axes.append(svg('line', { x1: m.l - 4, y1: Y(t), x2: W - m.r, y2: Y(t), class: 'grid' }));
    axes.append(svg('text', { x: m.l - 6, y: Y(t) + 4, 'text-anchor': 'end' }, formatNumber(t)));
  }
  axes.append(svg('text', { x: (m.l + W - m.r) / 2, y: H - 6, 'text-anchor': 'middle' }, opts.xLabel ?? 'step'));
  root.append(axes);
  series.forEach((s, i) => {
    let d = '';
    let pen = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      pen = true;
    }
    const path = svg('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 1.6 });
    if (s.dash) path.setAttribute('stroke-dasharray', '5 3');
    path.append(svg('title', {}, s.name));
    root.append(path);
    const ly = m.t + 4 + i * 14;
    root.append(svg('line', { x1: W - m.r - 150, y1: ly, x2: W - m.r - 132, y2: ly, stroke: s.color, 'stroke-width': 2, ...(s.dash ? { 'stroke-dasharray': '5 3' } : {}) }));
    root.append(svg('text', { x: W - m.r - 128, y: ly + 4, class: 'legend' }, s.name.length > 26 ? `${s.name.slice(0, 25)}…` : s.name));
  });
  return root;
}
