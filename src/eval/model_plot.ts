// Scatter plots of 2-D maps (PCA, t-SNE) as standalone SVG: one colour per label with a legend, optional point
// captions, axes scaled to the data. Written atomically (temporary file + rename).
import { AtomicFile } from '../io/file.ts';

export interface ScatterOptions {
  title?: string;
  /** One label per point (colour + legend); omitted: one colour. */
  labels?: readonly string[];
  /** Short caption drawn next to each point (e.g. the text's first words); long ones are cut to 40 characters. */
  captions?: readonly string[];
  width?: number;
  height?: number;
}

/** Colour-blind-safe palette (Okabe & Ito), then greys. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** An SVG document plotting points [x, y]. */
export function scatterSvg(points: readonly (readonly [number, number] | readonly number[])[], opts: ScatterOptions = {}): string {
  if (opts.labels && opts.labels.length !== points.length) throw new RangeError(`scatterSvg: ${points.length} points but ${opts.labels.length} labels`);
  if (opts.captions && opts.captions.length !== points.length) throw new RangeError(`scatterSvg: ${points.length} points but ${opts.captions.length} captions`);
  points.forEach((p, i) => {
    if (p.length < 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new RangeError(`scatterSvg: point ${i} is not a finite [x, y]`);
  });
  const W = opts.width ?? 640;
  const Hh = opts.height ?? 480;
  const margin = { left: 50, right: 160, top: opts.title ? 40 : 20, bottom: 40 };
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const span = (v: number[]): [number, number] => {
    if (v.length === 0) return [-1, 1];
    const lo = Math.min(...v);
    const hi = Math.max(...v);
    const pad = hi > lo ? (hi - lo) * 0.05 : 1;
    return [lo - pad, hi + pad];
  };
  const [x0, x1] = span(xs);
  const [y0, y1] = span(ys);
  const px = (x: number): number => margin.left + ((x - x0) / (x1 - x0)) * (W - margin.left - margin.right);
  const py = (y: number): number => Hh - margin.bottom - ((y - y0) / (y1 - y0)) * (Hh - margin.top - margin.bottom);
  const groups = opts.labels ? [...new Set(opts.labels)] : [''];
  const colour = (i: number): string => PALETTE[i % PALETTE.length];
  const f = (v: number): string => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" viewBox="0 0 ${W} ${Hh}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${Hh}" fill="white"/>`,
  ];
  if (opts.title) out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(opts.title)}</text>`);
  const plotB = Hh - margin.bottom;
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${W - margin.left - margin.right}" height="${plotB - margin.top}" fill="none" stroke="#888"/>`);
  for (const [v, at] of [[x0, margin.left], [x1, W - margin.right]] as const) out.push(`<text x="${f(at)}" y="${plotB + 15}" text-anchor="middle" fill="#555">${v.toPrecision(3)}</text>`);
  for (const [v, at] of [[y0, plotB], [y1, margin.top]] as const) out.push(`<text x="${margin.left - 5}" y="${f(at)}" text-anchor="end" fill="#555">${v.toPrecision(3)}</text>`);
  points.forEach((p, i) => {
    const g = opts.labels ? groups.indexOf(opts.labels[i]) : 0;
    out.push(`<circle cx="${f(px(p[0]))}" cy="${f(py(p[1]))}" r="4" fill="${colour(g)}" fill-opacity="0.8"><title>${escapeXml(opts.captions?.[i] ?? opts.labels?.[i] ?? String(i))}</title></circle>`);
    if (opts.captions) {
      const c = opts.captions[i];
      out.push(`<text x="${f(px(p[0]) + 6)}" y="${f(py(p[1]) + 4)}" fill="#333">${escapeXml(c.length > 40 ? `${c.slice(0, 39)}…` : c)}</text>`);
    }
  });
  if (opts.labels)
    groups.forEach((g, i) => {
      const y = margin.top + 10 + i * 16;
      out.push(`<circle cx="${W - margin.right + 15}" cy="${y}" r="5" fill="${colour(i)}"/><text x="${W - margin.right + 25}" y="${y + 4}">${escapeXml(g)}</text>`);
    });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Writes a text file (an SVG) atomically. */
export function writeTextAtomic(path: string, text: string): void {
  const f = new AtomicFile('svg', path);
  try {
    f.write(Buffer.from(text, 'utf8'));
    f.publish();
  } catch (e) {
    f.abort();
    throw e;
  }
}
