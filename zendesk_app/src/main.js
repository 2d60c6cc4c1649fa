// The sidebar: reads the ticket through ZAF, talks to the backend over Socket.IO
// (docs/protocol.md), and keeps the thread whole across reconnects, restarts and tab sleep.
import ZAFClient from 'zendesk_app_framework_sdk';
import { io } from 'socket.io-client';
import { plainText, renderMarkdown, replyMarkdown, safeUrl } from './markdown.js';
import { readTicket, TICKET_EVENTS } from './ticket.js';
import { initBrief } from './brief.js';

const config = JSON.parse(document.getElementById('sidebar-config').textContent);
const $ = (id) => document.getElementById(id);
const ui = { ticket: $('ticket'), status: $('status'), thread: $('thread'), empty: $('empty'),
  composer: $('composer'), question: $('question'), send: $('send') };

const state = {
  token: config.token,
  tokenExpiresAt: Date.now() + config.expiresIn * 1000,
  ticket: null,
  joined: false,
  sessionId: null,
  messages: new Map(), // id -> Message (docs/protocol.md)
  order: [],
  outbox: new Map(), // user messages not yet acknowledged: id -> text (resent with the same id)
  seq: new Map(), // user message id -> last delta seq applied
  thinking: new Map(), // user message id -> [{text, agent}]
  feedback: new Map(), // reply id -> {rating, saved, open}
  agents: [], // [{name, title}]: the enabled agents, offered when a reply is flagged "wrong sources"
  refusals: 0,
  resend: new Map(), // id -> timer: a message or retry refused for now, sent again after retry_after
  confirmInsert: new Set(), // reply ids whose "Insert into reply" waits for the agent to confirm internal content
};
const elements = new Map();

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function newId(prefix) {
  const rand = globalThis.crypto && crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
  return `${prefix}-${rand}`;
}

// --- status ---------------------------------------------------------------------------------
const STATUS_TEXT = {
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting… your conversation will resume.',
  online: '',
  expired: 'Your session expired. Reload the ticket to continue.',
  outside: 'Open this app from a Zendesk ticket.',
  refused: 'The assistant refused the connection. Reload the ticket to try again.',
};
function setStatus(name, text) {
  ui.status.dataset.state = name;
  ui.status.textContent = text ?? STATUS_TEXT[name] ?? '';
  ui.status.hidden = name === 'online';
  document.body.dataset.connection = name;
}

// --- token refresh --------------------------------------------------------------------------
let refreshTimer = null;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const due = Math.max(5000, state.tokenExpiresAt - Date.now() - 60000);
  refreshTimer = setTimeout(() => refreshToken().catch(() => setTimeout(scheduleRefresh, 5000)), due);
}
async function refreshToken() {
  const resp = await fetch(config.refreshUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: state.token }),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (resp.status === 401) {
    setStatus('expired');
    return false;
  }
  if (!resp.ok) throw new Error(`refresh failed: ${resp.status}`);
  const body = await resp.json();
  state.token = body.token;
  state.tokenExpiresAt = Date.now() + body.expires_in * 1000;
  scheduleRefresh();
  return true;
}

// --- socket ---------------------------------------------------------------------------------
const socket = io({
  path: config.socketPath,
  autoConnect: false,
  // WebSocket first: one connection for the whole session, so it works whichever instance the
  // load balancer picks. Long-polling is several requests that must all reach the instance that
  // holds the session, and Cloud Run's session affinity is best effort (a cookie, which a
  // cross-site iframe may not even keep): "Session ID unknown". Polling only when the WebSocket
  // cannot open (a proxy that strips Upgrade): tryAllTransports then moves on to it, on every
  // (re)connect. docs/deploy.md, "Socket.IO on Cloud Run".
  transports: ['websocket', 'polling'],
  tryAllTransports: true,
  // A function, so every reconnect presents the current (refreshed) token.
  auth: (cb) => cb({ token: state.token }),
  reconnectionDelay: 500,
  reconnectionDelayMax: 4000,
});

function join() {
  if (state.ticket && socket.connected) socket.emit('session:join', { ticket: state.ticket });
}

socket.on('connect', () => {
  state.refusals = 0;
  join();
});
socket.on('disconnect', (reason) => {
  state.joined = false;
  if (reason === 'io server disconnect') socket.connect();
  if (ui.status.dataset.state !== 'expired') setStatus('reconnecting');
});
socket.io.on('reconnect_attempt', () => {
  if (ui.status.dataset.state !== 'expired') setStatus('reconnecting');
});
socket.on('connect_error', async () => {
  if (socket.active) {
    setStatus(state.sessionId ? 'reconnecting' : 'connecting');
    return; // a network failure: socket.io retries on its own
  }
  // Refused by the server (expired or invalid token): refresh once, then connect again.
  state.refusals += 1;
  if (state.refusals > 3) {
    setStatus('refused');
    return;
  }
  try {
    if (await refreshToken()) setTimeout(() => socket.connect(), 300 * state.refusals);
  } catch {
    setStatus('reconnecting');
    setTimeout(() => socket.connect(), 2000);
  }
});

socket.on('session:state', (s) => {
  if (state.sessionId && s.session_id !== state.sessionId) resetThread();
  state.sessionId = s.session_id;
  restoreSourceChips(s.session_id);
  state.agents = Array.isArray(s.agents) ? s.agents : [];
  const onServer = new Set();
  for (const m of s.thread) {
    onServer.add(m.id);
    const local = state.messages.get(m.id);
    // Deltas are not stored server-side: keep what this tab already streamed of a live reply.
    const keepText = m.role === 'assistant' && m.status === 'streaming' && local && local.status === 'streaming';
    state.messages.set(m.id, keepText ? { ...m, text: local.text } : m);
    if (m.role === 'user') state.outbox.delete(m.id);
  }
  const pending = state.order.filter((id) => !onServer.has(id) && state.outbox.has(id));
  for (const id of state.order) {
    if (!onServer.has(id) && !state.outbox.has(id)) forget(id);
  }
  state.order = [...s.thread.map((m) => m.id), ...pending];
  state.joined = true;
  setStatus('online');
  renderAll();
  // Unacknowledged messages go again with the same id: the server stores each id once.
  for (const [id, text] of state.outbox) socket.emit('chat:message', messagePayload(id, text));
});

socket.on('chat:ack', ({ id, message }) => {
  state.outbox.delete(id);
  cancelResend(id);
  upsert({ ...message, meta: { ...(message.meta || {}), error: undefined } });
  ensureReply(id);
});

socket.on('chat:thinking', ({ id, text, agent }) => {
  const reply = ensureReply(id);
  const lines = state.thinking.get(id) || [];
  lines.push({ text, agent });
  state.thinking.set(id, lines);
  render(reply.id);
});

socket.on('chat:delta', ({ id, text, seq }) => {
  const reply = ensureReply(id);
  const last = state.seq.get(id) || 0;
  if (seq === 1) reply.text = text; // a new attempt starts over
  else if (seq <= last) return; // already applied (a duplicate after a reconnect)
  else reply.text += text;
  state.seq.set(id, seq);
  reply.status = 'streaming';
  render(reply.id);
});

socket.on('chat:done', ({ id, message, citations }) => {
  state.seq.delete(id);
  upsert({ ...message, citations: message.citations && message.citations.length ? message.citations : citations });
});

// Every error a client event caused names that event and, where there is one, the message
// (docs/protocol.md): the sidebar shows it on that message, never on whatever was sent last.
socket.on('chat:error', (err) => {
  if (err.code === 'not_joined' || err.code === 'session_expired') {
    join(); // unacknowledged messages are sent again once the session is back
  } else if (err.event === 'chat:message' && err.id && state.messages.has(err.id)) {
    messageRefused(err);
  } else if (err.event === 'chat:feedback' && err.id && state.feedback.has(err.id)) {
    state.feedback.set(err.id, { ...state.feedback.get(err.id), saved: false });
    notice(err.message || 'The feedback was not saved.');
  } else if (err.id && (!err.event || err.event === 'chat:retry')) {
    // A turn's own failure (no event: sent to the whole session) or a refused retry.
    const reply = ensureReply(err.id);
    reply.status = err.code === 'turn_timeout' ? 'interrupted' : 'error';
    reply.meta = { ...(reply.meta || {}), error: errorInfo(err) };
    state.seq.delete(err.id);
    if (err.event === 'chat:retry' && err.code === 'rate_limited') scheduleResend(err.id, err, () => retry(err.id));
    render(reply.id);
  } else {
    notice(err.message || 'Something went wrong.');
  }
});

function errorInfo(err) {
  const info = { code: err.code, message: err.message };
  if (err.retryable && err.retry_after > 0) info.retryAt = Date.now() + err.retry_after * 1000;
  return info;
}

function messageRefused(err) {
  const m = state.messages.get(err.id);
  m.meta = { ...(m.meta || {}), error: errorInfo(err) };
  if (err.retryable) {
    // Not stored by the server: it stays in the outbox and goes again, same id, after the delay.
    m.status = 'waiting';
    scheduleResend(err.id, err, () => {
      if (!state.outbox.has(err.id)) return;
      const msg = state.messages.get(err.id);
      if (msg) {
        msg.status = 'sending';
        render(err.id);
      }
      if (state.joined) socket.emit('chat:message', messagePayload(err.id, state.outbox.get(err.id)));
    });
  } else {
    // Refused for good (too long, invalid): never resent.
    state.outbox.delete(err.id);
    cancelResend(err.id);
    m.status = 'failed';
  }
  render(err.id);
}

function scheduleResend(id, err, fn) {
  cancelResend(id);
  const delay = Math.max(0.5, Number(err.retry_after) || 2) * 1000;
  state.resend.set(id, setTimeout(() => {
    state.resend.delete(id);
    fn();
  }, delay));
}
function cancelResend(id) {
  clearTimeout(state.resend.get(id));
  state.resend.delete(id);
}
function retryCountdown(error) {
  if (!error || !error.retryAt) return '';
  return ` Retrying in ${Math.max(1, Math.ceil((error.retryAt - Date.now()) / 1000))} s…`;
}
// Countdowns on refused messages tick once a second while any is waiting.
setInterval(() => {
  for (const id of state.resend.keys()) {
    render(id);
    render(`${id}.reply`);
  }
}, 1000);

socket.on('chat:feedback:ack', ({ message_id: id }) => {
  const fb = state.feedback.get(id);
  if (fb) {
    fb.saved = true;
    fb.open = false;
    render(id);
  }
});

// --- thread model ---------------------------------------------------------------------------
function resetThread() {
  for (const id of [...state.order]) forget(id);
  state.order = [];
  state.outbox.clear();
  state.seq.clear();
  state.thinking.clear();
}
function forget(id) {
  state.messages.delete(id);
  const node = elements.get(id);
  if (node) node.remove();
  elements.delete(id);
}
function upsert(m) {
  const known = state.messages.has(m.id);
  state.messages.set(m.id, { ...(state.messages.get(m.id) || {}), ...m });
  if (!known) {
    const after = m.reply_to ? state.order.indexOf(m.reply_to) : -1;
    if (after >= 0) state.order.splice(after + 1, 0, m.id);
    else state.order.push(m.id);
  }
  renderAll();
  return state.messages.get(m.id);
}
function ensureReply(userId) {
  const id = `${userId}.reply`;
  return state.messages.get(id)
    || upsert({ id, role: 'assistant', text: '', status: 'streaming', reply_to: userId, citations: [], meta: {} });
}

function send(text) {
  const id = newId('m');
  state.outbox.set(id, text);
  const sources = chosenSources();
  if (sources.length) sourcesByMessage.set(id, sources);
  upsert({ id, role: 'user', text, status: 'sending', reply_to: null, citations: [], meta: sources.length ? { sources } : {} });
  if (state.joined) socket.emit('chat:message', messagePayload(id, text));
}

function retry(userId) {
  cancelResend(userId);
  const reply = ensureReply(userId);
  reply.status = 'streaming';
  reply.text = '';
  reply.meta = { ...(reply.meta || {}), error: undefined };
  state.thinking.delete(userId);
  state.seq.delete(userId);
  render(reply.id);
  socket.emit('chat:retry', { id: userId });
}

// --- rendering ------------------------------------------------------------------------------
function renderAll() {
  const nearBottom = ui.thread.scrollHeight - ui.thread.scrollTop - ui.thread.clientHeight < 80;
  for (const id of state.order) {
    render(id);
    ui.thread.append(elements.get(id)); // moves nodes into thread order
  }
  ui.empty.hidden = state.order.length > 0;
  if (nearBottom) ui.thread.scrollTop = ui.thread.scrollHeight;
}

function render(id) {
  const m = state.messages.get(id);
  if (!m) return;
  let li = elements.get(id);
  if (!li) {
    li = el('li', { 'data-id': id });
    elements.set(id, li);
    ui.thread.append(li);
  }
  li.className = `sa-msg sa-msg--${m.role}`;
  li.dataset.status = m.status;
  if (m.role === 'user') {
    li.replaceChildren(...[
      el('span', { class: 'sa-visually-hidden', text: 'You asked:' }),
      el('p', { class: 'sa-msg__text', text: m.text }),
      sourceFilterNote(m),
      m.status === 'sending' ? el('span', { class: 'sa-msg__meta', 'data-pending': 'true', text: 'Sending…' }) : null,
      m.status === 'failed' ? el('span', { class: 'sa-msg__meta sa-msg__meta--error', role: 'alert',
        text: `Not sent: ${(m.meta && m.meta.error && m.meta.error.message) || 'refused'}` }) : null,
      m.status === 'waiting' ? el('span', { class: 'sa-msg__meta sa-msg__meta--error', role: 'status',
        'data-error': m.meta.error.code,
        text: `Not sent yet: ${m.meta.error.message || 'refused for now'}${retryCountdown(m.meta.error)}` }) : null,
    ].filter(Boolean));
  } else {
    li.replaceChildren(...assistantView(m));
    li.setAttribute('aria-busy', m.status === 'streaming' ? 'true' : 'false');
  }
  const nearBottom = ui.thread.scrollHeight - ui.thread.scrollTop - ui.thread.clientHeight < 120;
  if (nearBottom) ui.thread.scrollTop = ui.thread.scrollHeight;
}

const KIND_LABEL = { article: 'Article', ticket: 'Ticket', macro: 'Macro' };

function assistantView(m) {
  const userId = m.reply_to || m.id.replace(/\.reply$/, '');
  const parts = [el('span', { class: 'sa-visually-hidden', text: 'Assistant answered:' })];
  const lines = state.thinking.get(userId) || (m.meta && m.meta.thinking) || [];
  if (lines.length) {
    const list = el('ul', { class: 'sa-thinking', 'aria-label': 'What the assistant did' },
      ...lines.map((l) => el('li', {}, l.agent ? el('span', { class: 'sa-thinking__agent', text: l.agent }) : null,
        el('span', { text: l.text }))));
    parts.push(m.status === 'streaming' ? list
      : el('details', { class: 'sa-steps' }, el('summary', { text: `${lines.length} step${lines.length > 1 ? 's' : ''}` }), list));
  }
  const body = el('div', { class: 'sa-answer' });
  if (m.text) renderMarkdown(body, m.text, m.citations);
  else if (m.status === 'streaming') body.append(el('p', { class: 'sa-typing', text: 'Thinking…' }));
  parts.push(body);

  const cites = (m.citations || []).filter((c) => c && c.title !== undefined);
  if (m.status === 'complete' && cites.length) {
    parts.push(el('ol', { class: 'sa-sources', 'aria-label': 'Sources' }, ...cites.map((c) => {
      const href = safeUrl(c.url);
      const title = String(c.title || c.url || 'Untitled');
      return el('li', { value: Number(c.n) || undefined, 'data-internal': c.internal === true ? 'true' : undefined },
        el('span', { class: `sa-kind sa-kind--${KIND_LABEL[c.kind] ? c.kind : 'other'}`, text: KIND_LABEL[c.kind] || 'Source' }),
        // Internal notes, restricted articles, agent-only macros: never for the customer's eyes.
        c.internal === true ? el('span', { class: 'sa-internal', title: 'Internal: not visible to customers', text: 'Internal' }) : null,
        href ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', text: title }) : el('span', { text: title }));
    })));
  }
  if (m.status === 'interrupted' || m.status === 'error') {
    const error = m.meta && m.meta.error;
    const why = m.status === 'interrupted' ? 'This reply was interrupted.'
      : `The assistant could not answer: ${(error && error.message) || 'unknown error'}${state.resend.has(userId) ? retryCountdown(error) : ''}`;
    parts.push(el('div', { class: 'sa-interrupted', role: 'alert' }, el('span', { text: why }),
      el('button', { type: 'button', class: 'sa-btn sa-btn--small', 'data-action': 'retry', onclick: () => retry(userId) }, 'Retry')));
  }
  if (m.status === 'complete') parts.push(actions(m));
  return parts;
}

function actions(m) {
  const fb = state.feedback.get(m.id) || {};
  const bar = el('div', { class: 'sa-actions', role: 'group', 'aria-label': 'Answer actions' },
    el('button', { type: 'button', class: 'sa-btn sa-btn--small sa-btn--primary', 'data-action': 'insert',
      onclick: (e) => insertIntoReply(m, e.currentTarget) }, 'Insert into reply'),
    el('button', { type: 'button', class: 'sa-btn sa-btn--small', 'data-action': 'copy',
      onclick: (e) => copyAnswer(m, e.currentTarget) }, 'Copy'),
    el('button', { type: 'button', class: 'sa-btn sa-btn--icon', 'data-action': 'up', 'aria-label': 'Helpful',
      'aria-pressed': fb.rating === 'up' ? 'true' : 'false', onclick: () => rate(m.id, 'up') }, thumb(false)),
    el('button', { type: 'button', class: 'sa-btn sa-btn--icon', 'data-action': 'down', 'aria-label': 'Not helpful',
      'aria-pressed': fb.rating === 'down' ? 'true' : 'false', 'aria-expanded': fb.open ? 'true' : 'false',
      onclick: () => openDown(m.id) }, thumb(true)));
  const wrap = el('div', {}, bar);
  if (state.confirmInsert.has(m.id)) wrap.append(confirmInsertPanel(m));
  if (fb.open) wrap.append(downForm(m.id));
  if (fb.saved) wrap.append(el('p', { class: 'sa-hint', role: 'status', 'data-feedback': 'saved', text: 'Thanks — feedback saved.' }));
  return wrap;
}

function rate(id, rating, extra = {}) {
  state.feedback.set(id, { ...(state.feedback.get(id) || {}), rating, saved: false, open: false });
  socket.emit('chat:feedback', { message_id: id, rating, ...extra });
  render(id);
}
function openDown(id) {
  state.feedback.set(id, { ...(state.feedback.get(id) || {}), open: true, saved: false });
  render(id);
  const first = elements.get(id).querySelector('.sa-feedback input');
  if (first) first.focus();
}
const REASONS = [['wrong_sources', 'Wrong sources'], ['incorrect', 'Incorrect'], ['incomplete', 'Incomplete']];
// Besides agents, a reviewer may say no source was needed, or the question was too vague to route.
const PSEUDO_AGENTS = [['respond', 'None: no sources needed'], ['clarify', 'None: the question was unclear']];
const MAX_EXPECTED = 5; // the server refuses more (docs/protocol.md)

// "Which sources should it have used?": shown once "Wrong sources" is ticked; the answer becomes
// a labelled routing example (docs/learning_loop.md).
function sourcePicker(id) {
  const options = [...state.agents.map((a) => [a.name, a.title || a.name]), ...PSEUDO_AGENTS];
  const box = el('fieldset', { class: 'sa-picker', 'data-picker': 'sources', hidden: true },
    el('legend', { text: 'Which sources should it have used?' }),
    ...options.map(([value, label]) => el('label', { class: 'sa-check' },
      el('input', { type: 'checkbox', name: 'expected', value }), ` ${label}`)));
  box.addEventListener('change', (e) => {
    const picked = e.target;
    if (!picked.checked) return;
    const pseudo = PSEUDO_AGENTS.some(([v]) => v === picked.value);
    for (const input of box.querySelectorAll('input[name=expected]:checked')) {
      // "None" options stand alone; agents exclude them.
      if (input !== picked && (pseudo || PSEUDO_AGENTS.some(([v]) => v === input.value))) input.checked = false;
    }
    if (box.querySelectorAll('input[name=expected]:checked').length > MAX_EXPECTED) picked.checked = false;
  });
  box.id = `fb-sources-${id}`;
  return box;
}

function downForm(id) {
  const picker = sourcePicker(id);
  const form = el('form', { class: 'sa-feedback', 'aria-label': 'Why was this not helpful?' },
    el('fieldset', {}, el('legend', { text: 'What was wrong?' }),
      ...REASONS.map(([value, label]) => el('label', { class: 'sa-check' },
        el('input', { type: 'checkbox', name: 'reason', value,
          ...(value === 'wrong_sources' ? { 'aria-controls': picker.id } : {}) }), ` ${label}`))),
    picker,
    el('label', { class: 'sa-visually-hidden', for: `fb-${id}`, text: 'Comment (optional)' }),
    el('textarea', { id: `fb-${id}`, name: 'comment', rows: 2, maxlength: 2000, placeholder: 'Comment (optional)',
      class: 'c-txt__input c-txt__input--area' }),
    el('button', { type: 'submit', class: 'sa-btn sa-btn--small sa-btn--primary' }, 'Send feedback'));
  form.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    state.feedback.set(id, { ...(state.feedback.get(id) || {}), open: false });
    render(id);
    elements.get(id).querySelector('[data-action="down"]').focus();
  });
  const wrongSources = form.querySelector('input[value=wrong_sources]');
  wrongSources.addEventListener('change', () => {
    picker.hidden = !wrongSources.checked;
    if (!wrongSources.checked) for (const i of picker.querySelectorAll('input')) i.checked = false;
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const reasons = [...form.querySelectorAll('input[name=reason]:checked')].map((i) => i.value);
    const comment = form.querySelector('textarea').value.trim();
    const expected = reasons.includes('wrong_sources')
      ? [...picker.querySelectorAll('input[name=expected]:checked')].map((i) => i.value) : [];
    rate(id, 'down', { reasons, ...(comment ? { comment } : {}), ...(expected.length ? { expected_agents: expected } : {}) });
  });
  return form;
}

// Thumb icons drawn as SVG: emoji fonts are missing on many agent machines.
const THUMB = 'M2 7h2.5v7H2zM5.5 14V7.2L8.6 2c.9 0 1.6.8 1.4 1.7L9.5 6H13c.8 0 1.4.7 1.2 1.5l-1.1 5.4c-.1.6-.7 1.1-1.3 1.1z';
function thumb(down) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  if (down) svg.setAttribute('transform', 'rotate(180)');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', THUMB);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

function flash(button, text) {
  const old = button.textContent;
  button.textContent = text;
  setTimeout(() => { button.textContent = old; }, 1500);
}

// Citations of internal content the answer draws on (the server marks them `internal`).
function internalCitations(m) {
  return (m.citations || []).filter((c) => c && c.internal === true && c.cited !== false);
}

function confirmInsertPanel(m) {
  const cites = internalCitations(m);
  const names = cites.map((c) => String(c.title || c.id || 'Untitled')).join('; ');
  return el('div', { class: 'sa-confirm', role: 'group', 'aria-label': 'Confirm insert', 'data-confirm': 'insert' },
    el('p', { class: 'sa-confirm__text', text: `This answer uses internal content customers must not see (${names}). Check the reply before sending. Insert anyway?` }),
    el('button', { type: 'button', class: 'sa-btn sa-btn--small sa-btn--primary', 'data-action': 'confirm-insert',
      onclick: (e) => insertIntoReply(m, e.currentTarget, true) }, 'Insert anyway'),
    el('button', { type: 'button', class: 'sa-btn sa-btn--small', 'data-action': 'cancel-insert',
      onclick: () => { state.confirmInsert.delete(m.id); render(m.id); } }, 'Cancel'));
}

// The ticket brief and suggestions above the thread (brief.js); inserts go through ZAF like answers.
function startBrief() {
  return initBrief({
    socket,
    el,
    before: ui.thread,
    insertText: async (text, markdown) => {
      if (markdown) {
        try {
          await zaf.invoke('ticket.comment.appendMarkdown', text);
          return;
        } catch {
          // fall through to plain text
        }
      }
      await zaf.invoke('ticket.comment.appendText', markdown ? plainText(text) : text);
    },
  });
}

async function insertIntoReply(m, button, confirmed = false) {
  if (internalCitations(m).length && !(confirmed && state.confirmInsert.has(m.id))) {
    // Nothing reaches the reply until the agent confirms, in this sidebar, for this answer.
    state.confirmInsert.add(m.id);
    render(m.id);
    const confirm = elements.get(m.id) && elements.get(m.id).querySelector('[data-action="confirm-insert"]');
    if (confirm) confirm.focus();
    return;
  }
  if (confirmed) {
    state.confirmInsert.delete(m.id);
    render(m.id);
    button = elements.get(m.id).querySelector('[data-action="insert"]') || button;
  }
  const markdown = replyMarkdown(m.text, m.citations);
  try {
    try {
      await zaf.invoke('ticket.comment.appendMarkdown', markdown);
    } catch {
      await zaf.invoke('ticket.comment.appendText', plainText(markdown));
    }
    flash(button, 'Inserted ✓');
    reportInsert(m);
  } catch {
    flash(button, 'Could not insert');
  }
}

// Insights (docs/insights.md): the server counts answers that reached the reply editor. Only the
// id travels; a lost event costs a count, never the insert, so nothing waits for the ack.
function reportInsert(m) {
  if (socket.connected && state.joined) socket.emit('chat:insert', { message_id: m.id });
}

async function copyAnswer(m, button) {
  const text = replyMarkdown(m.text, m.citations);
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Sandboxed frames often lack clipboard permission; the selection fallback still works.
    const area = el('textarea', { class: 'sa-visually-hidden', 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  flash(button, 'Copied ✓');
}

let noticeTimer = null;
function notice(text) {
  let node = $('notice');
  if (!node) {
    node = el('div', { id: 'notice', class: 'sa-notice', role: 'alert' });
    ui.thread.after(node);
  }
  node.textContent = text;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => node.remove(), 6000);
}

function renderTicket(t) {
  ui.ticket.dataset.state = 'ready';
  ui.ticket.replaceChildren(...[
    el('p', { class: 'sa-ticket__meta' },
      el('span', { text: `#${t.id}` }), t.status ? el('span', { class: `sa-pill sa-pill--${t.status}`, text: t.status }) : null),
    el('h1', { class: 'sa-ticket__subject', id: 'ticket-subject', text: t.subject || '(no subject)' }),
    t.requester && t.requester.name ? el('p', { class: 'sa-ticket__requester', text: `Requester: ${t.requester.name}` }) : null,
    t.tags.length ? el('ul', { class: 'sa-tags', 'aria-label': 'Tags' }, ...t.tags.slice(0, 8).map((g) => el('li', { text: g }))) : null,
  ].filter(Boolean));
}

// --- source filter chips --------------------------------------------------------------------
// The agent can restrict a question to some sources (docs/protocol.md, chat:message `sources`).
// The choice is kept per assistant session (sessionStorage, keyed by the session id).
const SOURCE_CHIPS = [['help_center', 'Help Center'], ['tickets', 'Tickets'], ['macros', 'Macros'], ['store', 'Store systems']];
const sourcesByMessage = new Map(); // message id -> the groups it was asked with (resends keep them)
const chipState = new Set();

function sourceChipsKey(sessionId) {
  return `sa-sources:${sessionId}`;
}

function chosenSources() {
  return SOURCE_CHIPS.map(([g]) => g).filter((g) => chipState.has(g));
}

function messagePayload(id, text) {
  const sources = sourcesByMessage.get(id);
  return sources && sources.length ? { id, text, sources } : { id, text };
}

function renderSourceChips() {
  let group = $('source-chips');
  if (!group) {
    group = el('div', { id: 'source-chips', class: 'sa-chips', role: 'group', 'aria-label': 'Search only in' },
      el('span', { class: 'sa-chips__label', text: 'Only:' }));
    for (const [g, title] of SOURCE_CHIPS) {
      group.append(el('button', { type: 'button', class: 'sa-chip', 'data-source': g, 'aria-pressed': 'false',
        onclick: () => toggleSourceChip(g) }, title));
    }
    // After the question box, so Shift+Tab from the composer still reaches the last reply's actions.
    ui.question.after(group);
  }
  for (const chip of group.querySelectorAll('[data-source]')) {
    chip.setAttribute('aria-pressed', chipState.has(chip.dataset.source) ? 'true' : 'false');
  }
}

function toggleSourceChip(group) {
  if (chipState.has(group)) chipState.delete(group);
  else chipState.add(group);
  if (state.sessionId) {
    try {
      sessionStorage.setItem(sourceChipsKey(state.sessionId), JSON.stringify(chosenSources()));
    } catch { /* storage may be unavailable in a sandboxed frame: the choice lasts for this page */ }
  }
  renderSourceChips();
}

function sourceFilterNote(m) {
  // The filter a question was asked with (the server keeps it in the user message's meta).
  const groups = (m.meta && Array.isArray(m.meta.sources) && m.meta.sources) || [];
  const titles = SOURCE_CHIPS.filter(([g]) => groups.includes(g)).map(([, t]) => t);
  return titles.length ? el('span', { class: 'sa-msg__meta', 'data-sources': groups.join(' '), text: `Only: ${titles.join(', ')}` }) : null;
}

function restoreSourceChips(sessionId) {
  let saved = [];
  try {
    saved = JSON.parse(sessionStorage.getItem(sourceChipsKey(sessionId)) || '[]');
  } catch { saved = []; }
  chipState.clear();
  for (const g of Array.isArray(saved) ? saved : []) if (SOURCE_CHIPS.some(([k]) => k === g)) chipState.add(g);
  renderSourceChips();
}

renderSourceChips();

// --- composer -------------------------------------------------------------------------------
ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.question.value.trim();
  if (!text || !state.ticket) return;
  send(text);
  ui.question.value = '';
  ui.question.focus();
});
ui.question.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composer.requestSubmit();
  }
});

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible') return;
  // Timers sleep with the tab: catch up on the token and the connection when it wakes.
  if (state.tokenExpiresAt - Date.now() < 90000) refreshToken().catch(() => {});
  if (!socket.connected && !socket.active && ui.status.dataset.state !== 'expired') socket.connect();
});

// --- start ----------------------------------------------------------------------------------
const zaf = ZAFClient.init();
const brief = startBrief();
let ticketTimer = null;

async function loadTicket() {
  const t = await readTicket(zaf);
  const changedTicket = state.ticket && state.ticket.id !== t.id;
  const changed = JSON.stringify(t) !== JSON.stringify(state.ticket);
  state.ticket = t;
  renderTicket(t);
  if (changedTicket) {
    resetThread();
    brief.reset();
  }
  if (changed && state.joined) join(); // the server refreshes the ticket context on every join
  return t;
}

if (!zaf) {
  setStatus('outside');
  ui.ticket.replaceChildren(el('p', { text: 'No ticket: this page runs inside Zendesk.' }));
} else {
  setStatus('connecting');
  scheduleRefresh();
  zaf.invoke('resize', { width: '100%', height: '640px' }).catch(() => {});
  for (const name of TICKET_EVENTS) {
    zaf.on(name, () => {
      clearTimeout(ticketTimer);
      ticketTimer = setTimeout(() => loadTicket().catch(() => {}), 300);
    });
  }
  loadTicket()
    .then(() => socket.connect())
    .catch((err) => {
      ui.ticket.dataset.state = 'error';
      ui.ticket.replaceChildren(el('p', { role: 'alert', text: `Could not read the ticket: ${err.message}` }));
    });
}
