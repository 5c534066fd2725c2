// Guidelines Markdown: the supported subset renders to the expected HTML, and raw HTML or script URLs in the
// source come out as inert text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, parseMarkdown, renderMarkdown } from '../../src/studio/markdown.ts';

describe('guidelines Markdown', () => {
  it('renders headings, paragraphs, lists, quotes, code, rules and inline markup', () => {
    const md = ['# Rate *honestly*', '', 'Prefer the **more helpful** answer;', 'see `rules`.', '', '- one', '- two', '  continued', '', '1. first', '', '> quoted', '', '```', 'a < b', '```', '---'].join('\n');
    assert.equal(
      renderMarkdown(md),
      [
        '<h1>Rate <em>honestly</em></h1>',
        '<p>Prefer the <strong>more helpful</strong> answer;<br>see <code>rules</code>.</p>',
        '<ul><li>one</li><li>two continued</li></ul>',
        '<ol><li>first</li></ol>',
        '<blockquote><p>quoted</p></blockquote>',
        '<pre><code>a &lt; b</code></pre>',
        '<hr>',
      ].join('\n'),
    );
  });

  it('shows raw HTML as text and drops unsafe link targets', () => {
    const html = renderMarkdown('Hi <script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3)) [ok](https://example.org/a?b="c")');
    assert.ok(!/<script|<img/i.test(html), html);
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(html.includes('&lt;img src=x onerror=&quot;alert(2)&quot;&gt;'));
    assert.ok(!html.includes('href="javascript'), html);
    assert.ok(html.includes('<a href="https://example.org/a?b=&quot;c&quot;" rel="noopener noreferrer" target="_blank">ok</a>'), html);
  });

  it('the tree keeps text as text nodes (the browser builds DOM from it)', () => {
    assert.deepEqual(parseMarkdown('**<b>**'), [{ tag: 'p', children: [{ tag: 'strong', children: [{ text: '<b>' }] }] }]);
    assert.equal(escapeHtml(`<&"'>`), '&lt;&amp;&quot;&#39;&gt;');
  });
});
