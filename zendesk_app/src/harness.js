// Dev harness: plays Zendesk's parent frame for the real ZAF SDK inside the sidebar iframe.
// The SDK's protocol (zendesk_app_framework_sdk/lib/client.js): the app posts JSON strings —
// {key: 'iframe.handshake'}, {id, request: 'get'|'set'|'invoke', params}, {key: 'iframe.on:<event>'} —
// and the parent answers {key: 'zaf.app.registered', message: {context, metadata}}, {id, result},
// and triggers events with {key: 'zaf.<event>', message}.
const tickets = JSON.parse(document.getElementById('demo-tickets').textContent);
const $ = (id) => document.getElementById(id);
const frame = $('app-frame');
const origin = window.location.origin;
const params = new URLSearchParams(window.location.search);
let appGuid = null;
let current = null;
const subscriptions = new Map();

const currentUser = { id: 1, name: 'Demo Agent', email: 'agent@demo.invalid', role: 'admin', locale: 'en-US' };
const currentAccount = { subdomain: 'demo', planName: 'dev' };

function customFieldDefs(ticket) {
  return Object.keys(ticket.custom_fields || {}).map((label, i) => ({ name: `custom_field_${i + 1}`, label, type: 'text' }));
}

function zafTicket(t) {
  return {
    id: t.id, subject: t.subject, description: t.description, status: t.status, priority: t.priority,
    type: t.type, tags: t.tags || [], requester: t.requester || {}, comments: t.comments || [],
  };
}

function lookup(path) {
  const t = current;
  if (path === 'currentUser') return [true, currentUser];
  if (path === 'currentAccount') return [true, currentAccount];
  if (path === 'ticketFields') return [true, customFieldDefs(t)];
  const custom = /^ticket\.customField:(custom_field_\d+)$/.exec(path);
  if (custom) {
    const def = customFieldDefs(t).find((f) => f.name === custom[1]);
    return def ? [true, t.custom_fields[def.label]] : [false, null];
  }
  let value = { ticket: zafTicket(t), currentUser, currentAccount };
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || !(part in value)) return [false, null];
    value = value[part];
  }
  return [true, value];
}

function post(msg) {
  frame.contentWindow.postMessage(JSON.stringify(msg), origin);
}

function record(name, args) {
  const li = document.createElement('li');
  li.dataset.action = name;
  li.textContent = `${name}(${args.map((a) => JSON.stringify(a)).join(', ')})`;
  $('invocations').append(li);
  window.__harness.invocations.push({ name, args });
}

const editor = $('reply-editor');
function invoke(name, args) {
  switch (name) {
    case 'comment.appendText': case 'ticket.comment.appendText':
    case 'comment.appendMarkdown': case 'ticket.comment.appendMarkdown':
    case 'comment.appendHtml': case 'ticket.comment.appendHtml':
      editor.value += (editor.value ? '\n' : '') + String(args[0] ?? '');
      record(name, args);
      return [true, null];
    case 'resize':
      if (args[0] && args[0].height) frame.style.height = args[0].height;
      record(name, args);
      return [true, null];
    default:
      record(name, args);
      return [false, null];
  }
}

window.addEventListener('message', (event) => {
  if (event.source !== frame.contentWindow || event.origin !== origin) return;
  let data;
  try { data = typeof event.data === 'string' ? JSON.parse(event.data) : event.data; } catch { return; }
  if (!data || (appGuid && data.appGuid !== appGuid)) return;
  if (data.key === 'iframe.handshake') {
    post({ key: 'zaf.app.registered', message: {
      context: { product: 'support', location: 'ticket_sidebar', instanceGuid: appGuid, account: currentAccount, ticketId: current.id },
      metadata: { appId: 0, installationId: 1, name: 'Sidebar Assistant (dev)', settings: { backend_url: origin } },
    } });
  } else if (typeof data.key === 'string' && data.key.startsWith('iframe.on:')) {
    const name = data.key.slice('iframe.on:'.length);
    subscriptions.set(name, (data.message && data.message.subscriberCount) || 1);
    renderSubscriptions();
  } else if (data.request === 'get') {
    const result = { errors: {} };
    for (const path of data.params) {
      const [ok, value] = lookup(path);
      if (ok) result[path] = value;
      else result.errors[path] = { name: 'APIUnavailable', message: `"${path}" is not available in the dev harness` };
    }
    post({ id: data.id, result });
  } else if (data.request === 'invoke') {
    const result = { errors: {} };
    for (const [name, args] of Object.entries(data.params)) {
      const [ok] = invoke(name, args);
      if (!ok) result.errors[name] = { name: 'APIUnavailable', message: `"${name}" is not available in the dev harness` };
    }
    post({ id: data.id, result });
  } else if (data.request === 'set') {
    post({ id: data.id, result: { errors: {} } });
  }
});

function renderSubscriptions() {
  $('subscriptions').replaceChildren(...[...subscriptions.keys()].map((n) => {
    const li = document.createElement('li');
    li.textContent = n;
    return li;
  }));
}

function trigger(name, message) {
  if (subscriptions.has(name)) post({ key: `zaf.${name}`, message });
}

function showTicket() {
  $('hx-subject').textContent = `#${current.id} ${current.subject}`;
  $('hx-description').textContent = current.description;
}

// Each load gets a fresh dev-signed ZAF JWT, posted to the sidebar URL like Zendesk does.
async function launch() {
  appGuid = `dev-${Math.random().toString(36).slice(2, 10)}`;
  subscriptions.clear();
  renderSubscriptions();
  const resp = await fetch('/dev/sidebar/zaf-token', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params.get('user') ? { user_id: params.get('user'), user_name: params.get('user') } : {}),
  });
  const { token, action } = await resp.json();
  const form = document.createElement('form');
  form.method = 'POST';
  form.target = frame.name;
  form.action = `${action}?origin=${encodeURIComponent(origin)}&app_guid=${encodeURIComponent(appGuid)}`;
  const input = document.createElement('input');
  input.type = 'hidden';
  input.name = 'token';
  input.value = token;
  form.append(input);
  document.body.append(form);
  form.submit();
  form.remove();
}

const picker = $('ticket-picker');
for (const t of tickets) {
  const opt = document.createElement('option');
  opt.value = String(t.id);
  opt.textContent = `#${t.id} ${t.subject}`.slice(0, 80);
  picker.append(opt);
}
function pick(id) {
  current = tickets.find((t) => String(t.id) === String(id)) || tickets[0];
  picker.value = String(current.id);
  editor.value = '';
  showTicket();
  launch();
}
picker.addEventListener('change', () => pick(picker.value));
$('reload').addEventListener('click', () => launch());
$('edit-subject').addEventListener('click', () => {
  const subject = window.prompt('New subject', current.subject);
  if (subject !== null) window.__harness.setSubject(subject);
});

window.__harness = {
  invocations: [],
  tickets,
  get ticket() { return current; },
  pick,
  reload: launch,
  // Changes the ticket like an agent editing it, and fires ZAF's change events.
  setSubject(subject) {
    current.subject = subject;
    showTicket();
    trigger('ticket.subject.changed', subject);
    trigger('ticket.updated', zafTicket(current));
  },
};

pick(params.get('ticket') || (tickets[0] && tickets[0].id));
