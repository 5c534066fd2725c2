// A small Markdown parser for annotation guidelines. It produces a tree of a few fixed node kinds (parseMarkdown)
// which the browser turns into DOM nodes with createElement / textContent (web/app.js), so no guideline text is
// ever parsed as HTML; renderMarkdown serialises the same tree to HTML with every text escaped, for other
// clients. Raw HTML in the Markdown (a <script>, an onerror attribute) is therefore shown as text, and links
// keep only http(s) and mailto targets.
//
// Supported: ATX headings (#..######), paragraphs, '-'/'*'/'+' and '1.' lists, '>' quotes, fenced code blocks
// (```), horizontal rules (---), inline `code`, **bold**, *italic* / _italic_, [text](url).

export type MdTag = 'h1' | 'h2' | 'h3' | 'h4' | 'h5' | 'h6' | 'p' | 'ul' | 'ol' | 'li' | 'blockquote' | 'pre' | 'code' | 'hr' | 'br' | 'strong' | 'em' | 'a';
export type MdNode = { text: string } | { tag: MdTag; children: MdNode[]; href?: string };

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const INLINE = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|(?<!\w)_([^_\s][^_]*)_(?!\w)|\[([^\]]+)\]\(([^)\s]+)\)/g;
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function parseInline(s: string): MdNode[] {
  const out: MdNode[] = [];
  let last = 0;
  for (const m of s.matchAll(INLINE)) {
    if (m.index > last) out.push({ text: s.slice(last, m.index) });
    if (m[1] !== undefined) out.push({ tag: 'code', children: [{ text: m[1] }] });
    else if (m[2] !== undefined) out.push({ tag: 'strong', children: parseInline(m[2]) });
    else if (m[3] !== undefined || m[4] !== undefined) out.push({ tag: 'em', children: parseInline(m[3] ?? m[4]) });
    else if (SAFE_URL.test(m[6])) out.push({ tag: 'a', href: m[6], children: parseInline(m[5]) });
    else out.push(...parseInline(m[5])); // an unsafe link keeps its text only
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push({ text: s.slice(last) });
  return out;
}

/** Lines joined with line breaks, each parsed for inline markup. */
function inlineLines(lines: readonly string[]): MdNode[] {
  return lines.flatMap((l, i) => (i === 0 ? parseInline(l) : [{ tag: 'br' as const, children: [] }, ...parseInline(l)]));
}

export function parseMarkdown(md: string): MdNode[] {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const out: MdNode[] = [];
  let para: string[] = [];
  let list: { tag: 'ul' | 'ol'; items: string[] } | null = null;
  let quote: string[] = [];
  const flush = () => {
    if (para.length) out.push({ tag: 'p', children: inlineLines(para) });
    if (list) out.push({ tag: list.tag, children: list.items.map((i) => ({ tag: 'li' as const, children: parseInline(i) })) });
    if (quote.length) out.push({ tag: 'blockquote', children: [{ tag: 'p', children: inlineLines(quote) }] });
    para = [];
    list = null;
    quote = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (/^\s*```/.test(line)) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
      out.push({ tag: 'pre', children: [{ tag: 'code', children: [{ text: code.join('\n') }] }] });
      continue;
    }
    if (line.trim() === '') {
      flush();
      continue;
    }
    const heading = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flush();
      out.push({ tag: `h${heading[1].length}` as MdTag, children: parseInline(heading[2]) });
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      flush();
      out.push({ tag: 'hr', children: [] });
      continue;
    }
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (bullet || numbered) {
      const tag = bullet ? 'ul' : 'ol';
      if (para.length || quote.length || (list && list.tag !== tag)) flush();
      list ??= { tag, items: [] };
      list.items.push((bullet ?? numbered)![1]);
      continue;
    }
    const quoted = /^\s*>\s?(.*)$/.exec(line);
    if (quoted) {
      if (para.length || list) flush();
      quote.push(quoted[1]);
      continue;
    }
    if (list) {
      const items: string[] = (list as { items: string[] }).items;
      items[items.length - 1] += ` ${line.trim()}`; // a continuation line of the last item
      continue;
    }
    if (quote.length) flush();
    para.push(line);
  }
  flush();
  return out;
}

const VOID: ReadonlySet<MdTag> = new Set(['hr', 'br']);

export function markdownToHtml(nodes: readonly MdNode[]): string {
  return nodes
    .map((n) => {
      if ('text' in n) return escapeHtml(n.text);
      if (VOID.has(n.tag)) return `<${n.tag}>`;
      const attrs = n.tag === 'a' && n.href ? ` href="${escapeHtml(n.href)}" rel="noopener noreferrer" target="_blank"` : '';
      return `<${n.tag}${attrs}>${markdownToHtml(n.children)}</${n.tag}>`;
    })
    .join(n0(nodes));
}

/** Block-level siblings go on their own lines (readability of the HTML only). */
function n0(nodes: readonly MdNode[]): string {
  return nodes.length && !('text' in nodes[0]) && /^(h\d|p|ul|ol|pre|hr|blockquote)$/.test(nodes[0].tag) ? '\n' : '';
}

/** Markdown to HTML in which only the parser's own tags appear and every text is escaped. */
export function renderMarkdown(md: string): string {
  return markdownToHtml(parseMarkdown(md));
}
