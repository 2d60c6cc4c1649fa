// The ticket brief and suggestions (docs/brief.md): shown on open, before any question.
// The server streams them after session:join as brief:start → brief:section… → brief:done
// (docs/protocol.md); a new ticket version (a new comment) starts over. A failing brief shows a
// small note and nothing else: the chat never depends on it.
import { safeUrl } from './markdown.js';

const KIND = { article: 'Article', ticket: 'Solved ticket', macro: 'Macro' };
const ENTITY = { order: 'Order', product: 'Product', customer: 'Customer' };
const OWNER = { us: 'our reply is due', customer: 'waiting on the customer', 'as we said': 'as we said' };
const RECAP = [['problem', 'Problem'], ['ask', 'Customer wants'], ['done', 'Done so far'],
  ['promised', 'Promised'], ['next_step', 'Next step']];

export function initBrief({ socket, el, before, insertText }) {
  const root = el('section', { id: 'brief', class: 'sa-brief', 'aria-label': 'Ticket brief', hidden: true,
    'data-state': 'empty' });
  before.before(root);
  const view = { version: null, state: 'empty', recap: null, entities: null, signals: null,
    suggestions: null, confirm: null, flashed: new Map() };

  function reset() {
    Object.assign(view, { version: null, state: 'empty', recap: null, entities: null, signals: null,
      suggestions: null, confirm: null });
    render();
  }

  function start(version) {
    if (version === view.version && view.state !== 'error') return;
    reset();
    Object.assign(view, { version, state: 'loading' });
    render();
  }

  socket.on('brief:start', ({ version }) => start(version));
  socket.on('brief:section', ({ version, section, data }) => {
    if (version !== view.version) return; // a late part of an older version of the ticket
    if (section in view) view[section] = data;
    render();
  });
  socket.on('brief:done', ({ version, brief }) => {
    if (view.version && version !== view.version && view.state === 'loading') return;
    view.version = version;
    view.state = 'ready';
    view.recap = { ...(brief.recap || {}), mode: brief.mode };
    view.entities = { items: brief.entities || [], notes: brief.entity_notes || [] };
    view.signals = brief.signals || null;
    view.suggestions = brief.suggestions || { items: [], notes: [] };
    render();
  });
  socket.on('brief:error', ({ version, message }) => {
    if (view.version && version !== view.version) return;
    view.version = version;
    view.state = 'error';
    view.error = message || 'The ticket brief could not be prepared.';
    render();
  });

  function pills(s) {
    if (!s) return null;
    return el('span', { class: 'sa-brief__signals' },
      el('span', { class: 'sa-pill', 'data-signal': 'language', title: `From ${s.language.from}`, text: s.language.name }),
      el('span', { class: `sa-pill sa-pill--urgency-${s.urgency.level}`, 'data-signal': 'urgency',
        title: (s.urgency.why || []).join(', ') || 'no urgency cues', text: `${s.urgency.level} urgency` }),
      el('span', { class: `sa-pill sa-pill--mood-${s.sentiment.label}`, 'data-signal': 'sentiment',
        title: (s.sentiment.why || []).join(', ') || 'no sentiment cues', text: s.sentiment.label }));
  }

  function recapList(r) {
    const rows = RECAP.filter(([key]) => r[key]).map(([key, label]) => {
      const owner = key === 'next_step' && OWNER[r.waiting_on] ? ` (${OWNER[r.waiting_on]})` : '';
      const name = key === 'ask' && r.ask_stated === false ? 'Customer reports' : label;
      return [el('dt', { text: `${name}${owner}` }), el('dd', { 'data-recap': key, text: r[key] })];
    });
    const list = el('dl', { class: 'sa-brief__recap' }, ...rows.flat());
    const internal = (r.internal || []).map((line) => el('p', { class: 'sa-brief__internal' },
      el('span', { class: 'sa-internal', text: 'Internal' }), ` ${line}`));
    return [list, ...internal];
  }

  function entityList(e) {
    if (!e || !(e.items || []).length) return null;
    return el('ul', { class: 'sa-brief__entities', 'aria-label': 'Detected in the ticket' },
      ...e.items.map((x) => el('li', { 'data-kind': x.kind, 'data-id': x.id, title: x.detail || '' },
        el('span', { class: 'sa-kind', text: ENTITY[x.kind] || x.kind }), el('span', { text: x.state }))));
  }

  function suggestionItem(s, i) {
    const url = safeUrl(s.url);
    const key = `${s.kind}:${s.id}`;
    const li = el('li', { class: 'sa-suggestion', 'data-kind': s.kind, 'data-id': s.id },
      el('p', { class: 'sa-suggestion__head' },
        el('span', { class: 'sa-kind', text: KIND[s.kind] || s.kind }),
        url ? el('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: s.title })
          : el('span', { class: 'sa-suggestion__title', text: s.title }),
        s.internal ? el('span', { class: 'sa-internal', text: 'Internal' }) : null),
      s.preview ? el('p', { class: 'sa-suggestion__preview', text: s.preview }) : null,
      el('p', { class: 'sa-suggestion__why', 'data-why': 'true', text: `Why: ${s.why}` }),
      s.insert ? el('button', { type: 'button', class: 'sa-btn sa-btn--small', 'data-action': 'insert-suggestion',
        onclick: () => insert(s, key) }, view.flashed.get(key) || 'Insert') : null);
    if (view.confirm === key) {
      li.append(el('div', { class: 'sa-confirm', role: 'group', 'aria-label': 'Confirm insert', 'data-confirm': 'insert' },
        el('p', { class: 'sa-confirm__text', text: `“${s.title}” is internal content customers must not see. Check the reply before sending. Insert anyway?` }),
        el('button', { type: 'button', class: 'sa-btn sa-btn--small sa-btn--primary', 'data-action': 'confirm-insert',
          onclick: () => insert(s, key, true) }, 'Insert anyway'),
        el('button', { type: 'button', class: 'sa-btn sa-btn--small', 'data-action': 'cancel-insert',
          onclick: () => { view.confirm = null; render(); } }, 'Cancel')));
    }
    li.dataset.index = String(i);
    return li;
  }

  async function insert(s, key, confirmed = false) {
    if (s.internal && !(confirmed && view.confirm === key)) {
      view.confirm = key; // nothing reaches the reply until the agent confirms this one
      render();
      const button = root.querySelector('[data-action="confirm-insert"]');
      if (button) button.focus();
      return;
    }
    view.confirm = null;
    let label = 'Inserted ✓';
    try {
      await insertText(s.insert, s.kind === 'article');
    } catch {
      label = 'Could not insert';
    }
    view.flashed.set(key, label);
    render();
    setTimeout(() => { view.flashed.delete(key); render(); }, 1500);
  }

  function render() {
    root.hidden = view.state === 'empty';
    root.dataset.state = view.state;
    if (view.version) root.dataset.version = view.version;
    if (root.hidden) {
      root.replaceChildren();
      return;
    }
    const parts = [];
    const head = el('h2', { class: 'sa-brief__title' }, el('span', { text: 'Ticket brief' }), pills(view.signals));
    parts.push(head);
    if (view.state === 'error') {
      parts.push(el('p', { class: 'sa-brief__note', role: 'status', 'data-brief': 'error', text: view.error }));
    }
    if (view.recap) parts.push(...recapList(view.recap));
    else if (view.state === 'loading') parts.push(el('p', { class: 'sa-hint', 'aria-busy': 'true', text: 'Preparing the brief…' }));
    const entities = entityList(view.entities);
    if (entities) parts.push(entities);
    const sug = view.suggestions;
    if (sug) {
      const items = sug.items || [];
      parts.push(el('details', { class: 'sa-suggestions', open: true },
        el('summary', { text: `Suggestions (${items.length})` }),
        items.length ? el('ol', { class: 'sa-suggestions__list' }, ...items.map(suggestionItem))
          : el('p', { class: 'sa-hint', text: (sug.notes || [])[0] || 'Nothing in the Help Center, solved tickets or macros fits this ticket.' })));
    } else if (view.state === 'loading' && view.recap) {
      parts.push(el('p', { class: 'sa-hint', 'aria-busy': 'true', text: 'Finding articles, solved tickets and macros…' }));
    }
    if (view.recap && view.recap.mode && view.recap.mode !== 'extractive') {
      parts.push(el('p', { class: 'sa-hint', text: view.recap.mode === 'gemini' ? 'Recap by Gemini from the ticket.' : 'Recap quoted from the ticket (Gemini unavailable).' }));
    }
    root.replaceChildren(...parts);
  }

  return { reset };
}
