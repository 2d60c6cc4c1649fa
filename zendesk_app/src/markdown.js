// Safe Markdown: marked renders, DOMPurify sanitises, and citation markers become real links
// built with DOM APIs (never string concatenation), so nothing from an answer can run.
import { marked } from 'marked';
import DOMPurify from 'dompurify';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

marked.setOptions({ gfm: true, breaks: true });
// Raw HTML in an answer is shown as text, never parsed: answers are Markdown. (Parsing it, even
// in DOMPurify's inert document, makes Chrome report CSP violations for its event handlers.)
marked.use({ renderer: { html: ({ text }) => escapeHtml(text) } });

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const PURIFY = {
  USE_PROFILES: { html: true },
  // No images (beacons), no forms, no styles: an answer is text, lists, code and links.
  FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'svg', 'math'],
  FORBID_ATTR: ['style', 'class', 'id'],
};

export function safeUrl(url) {
  if (typeof url !== 'string') return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
  } catch {
    return null;
  }
}

const MARKER = /\[(\d{1,3})\]/g;

// Replace [n] in text nodes with links to citation n (outside code and existing links).
function linkCitations(root, citations) {
  const byN = new Map((citations || []).map((c) => [Number(c.n), c]));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const parent = n.parentElement; // null for text at the top of the fragment
    if (!(parent && parent.closest('a, code, pre')) && MARKER.test(n.nodeValue)) nodes.push(n);
    MARKER.lastIndex = 0;
  }
  for (const node of nodes) {
    const frag = document.createDocumentFragment();
    let last = 0;
    const text = node.nodeValue;
    for (const m of text.matchAll(MARKER)) {
      frag.append(text.slice(last, m.index));
      const cite = byN.get(Number(m[1]));
      const href = cite && safeUrl(cite.url);
      if (href) {
        const a = document.createElement('a');
        a.className = 'sa-cite';
        a.href = href;
        a.target = '_blank';
        a.rel = 'noopener noreferrer';
        a.textContent = `[${m[1]}]`;
        a.setAttribute('aria-label', `Source ${m[1]}: ${cite.title || 'untitled'}`);
        frag.append(a);
      } else {
        frag.append(m[0]);
      }
      last = m.index + m[0].length;
    }
    frag.append(text.slice(last));
    node.replaceWith(frag);
  }
}

export function renderMarkdown(target, text, citations) {
  const html = DOMPurify.sanitize(marked.parse(text || ''), { ...PURIFY, RETURN_DOM_FRAGMENT: true });
  linkCitations(html, citations);
  target.replaceChildren(html);
}

// The text that goes into the customer reply: internal sources (tickets, macros) are dropped,
// public articles are listed at the end.
// The assistant's own label lines ("Offline mode: …", "Draft reply (…):") speak to the support
// agent; they never go into the customer's reply.
const LABEL = /^(?:Offline mode:[^\n]*|Draft reply \([^\n]*\):)\s*\n*/;

export function replyMarkdown(text, citations) {
  // Restricted (internal) articles are never linked: the customer could not open them anyway.
  // Only public articles the text actually cites ([n] in it) are listed under the reply.
  const cites = (c) => new RegExp(`\\[${Number(c.n)}\\]`).test(text || '');
  const publicCites = (citations || []).filter((c) => (c.kind || 'article') === 'article' && c.internal !== true && safeUrl(c.url) && cites(c));
  const keep = new Set(publicCites.map((c) => Number(c.n)));
  const body = (text || '').replace(LABEL, '').replace(MARKER, (m, n) => (keep.has(Number(n)) ? m : '')).replace(/[ \t]+\n/g, '\n').trim();
  if (!publicCites.length) return body;
  const sources = publicCites.map((c) => `[${c.n}] [${(c.title || c.url).replace(/[[\]]/g, '')}](${safeUrl(c.url)})`);
  return `${body}\n\n${sources.join('\n')}`;
}

export function plainText(markdown) {
  const div = document.createElement('div');
  renderMarkdown(div, markdown, []);
  return div.textContent;
}
