// Insights page for team leads (backend/insights.py, docs/insights.md).
// Charts are small inline SVGs built with DOM calls: every text reaches the page through
// textContent or setAttribute, never as markup, so nothing an agent typed can run here.

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f73b7', '#038153', '#ad5918', '#6a27b8', '#c72a1c', '#17494d', '#9c6500', '#5d3c91'];
const config = JSON.parse(document.getElementById('insights-config').textContent);
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const fmt = {
  int: (n) => Number(n || 0).toLocaleString('en-US'),
  pct: (x) => (x === null || x === undefined ? '–' : `${Math.round(x * 100)} %`),
  usd: (x) => `$${Number(x || 0).toFixed(Number(x || 0) < 1 ? 4 : 2)}`,
  s: (x) => (x === null || x === undefined ? '–' : x < 1 ? `${Math.round(x * 1000)} ms` : `${Number(x).toFixed(2)} s`),
  day: (d) => d.slice(5),
};

// --- charts ---------------------------------------------------------------------------------------

// Vertical bars per day: `series` [{name, values}], stacked or side by side, with a legend.
function barChart(days, series, { stacked = false, money = false, title = '' } = {}) {
  const W = 640, H = 220, L = money ? 62 : 44, B = 34, T = 10, R = 8;
  const totals = days.map((_, i) => (stacked
    ? series.reduce((a, s) => a + (s.values[i] || 0), 0)
    : Math.max(0, ...series.map((s) => s.values[i] || 0))));
  const max = Math.max(...totals, money ? 0.0001 : 1);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'in-svg', 'aria-label': title });
  root.append(svg('title', {}, title));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: 'in-grid' }));
    root.append(svg('text', { x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end', class: 'in-axis' },
      money ? fmt.usd(max * f) : fmt.int(Math.round(max * f))));
  }
  const slot = (W - L - R) / Math.max(days.length, 1);
  const groups = stacked ? 1 : series.length;
  const bw = Math.max(2, (slot * 0.8) / groups);
  days.forEach((d, i) => {
    let base = 0;
    series.forEach((s, k) => {
      const v = s.values[i] || 0;
      if (!v) return;
      const x = L + slot * i + slot * 0.1 + (stacked ? 0 : k * bw);
      const top = stacked ? base + v : v;
      const rect = svg('rect', { x, y: y(top), width: stacked ? slot * 0.8 : bw, height: Math.max(0, y(stacked ? base : 0) - y(top)),
        fill: COLORS[k % COLORS.length], 'data-series': s.name, 'data-day': d, 'data-value': v });
      rect.append(svg('title', {}, `${s.name} · ${d}: ${money ? fmt.usd(v) : fmt.int(v)}`));
      root.append(rect);
      if (stacked) base += v;
    });
    const every = Math.ceil(days.length / 14);
    if (i % every === 0) {
      root.append(svg('text', { x: L + slot * (i + 0.5), y: H - B + 14, 'text-anchor': 'middle', class: 'in-axis' }, fmt.day(d)));
    }
  });
  return el('figure', { class: 'in-figure' }, root, legend(series.map((s) => s.name)));
}

// Horizontal bars: items [{label, value, note}] (routing mix, gap topics).
function hbarChart(items, { title = '', valueText = fmt.int } = {}) {
  const W = 640, row = 24, L = 220, R = 90;
  const H = Math.max(row * items.length + 8, 32);
  const max = Math.max(1, ...items.map((i) => i.value));
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'in-svg in-svg--h', 'aria-label': title });
  root.append(svg('title', {}, title));
  items.forEach((item, n) => {
    const yy = 4 + n * row;
    const label = item.label.length > 34 ? `${item.label.slice(0, 33)}…` : item.label;
    root.append(svg('text', { x: L - 6, y: yy + 15, 'text-anchor': 'end', class: 'in-label' }, label));
    const rect = svg('rect', { x: L, y: yy + 3, height: row - 8, width: Math.max(1, ((W - L - R) * item.value) / max),
      fill: COLORS[n % COLORS.length], 'data-label': item.label, 'data-value': item.value });
    rect.append(svg('title', {}, `${item.label}: ${valueText(item.value)}${item.note ? ` · ${item.note}` : ''}`));
    root.append(rect);
    root.append(svg('text', { x: L + ((W - L - R) * item.value) / max + 6, y: yy + 15, class: 'in-axis' },
      `${valueText(item.value)}${item.note ? ` · ${item.note}` : ''}`));
  });
  return el('figure', { class: 'in-figure' }, root);
}

function legend(names) {
  // CSSOM, not a style attribute: the page's CSP allows no inline styles.
  const swatch = (k) => { const s = el('span', { class: 'in-swatch' }); s.style.background = COLORS[k % COLORS.length]; return s; };
  return el('figcaption', { class: 'in-legend' }, ...names.map((n, k) => el('span', { class: 'in-legend__item' },
    swatch(k), el('span', { text: n }))));
}

function empty(text) { return el('p', { class: 'in-empty', text }); }

// --- rendering ------------------------------------------------------------------------------------

function kpi(label, value, note) {
  return el('div', { class: 'in-kpi' }, el('div', { class: 'in-kpi__value', text: value }),
    el('div', { class: 'in-kpi__label', text: label }), note ? el('div', { class: 'in-kpi__note', text: note }) : null);
}

function ticketLink(id) {
  if (config.ticketBase && /^[0-9]{1,20}$/.test(id)) {
    return el('a', { href: `${config.ticketBase}${id}`, target: '_blank', rel: 'noopener noreferrer', text: `#${id}` });
  }
  return el('span', { class: 'in-ticket', text: `#${id}` });
}

function render(r) {
  const t = r.totals;
  const days = r.range.days;
  $('kpis').replaceChildren(
    kpi('Questions', fmt.int(t.questions)),
    kpi('Agents using it', fmt.int(t.agents)),
    kpi('Tickets touched', fmt.int(t.tickets)),
    kpi('Helpful (thumbs up)', fmt.pct(t.helpful_rate), `${fmt.int(t.thumbs_up)} up · ${fmt.int(t.thumbs_down)} down`),
    kpi('Answers inserted', fmt.int(t.inserted)),
    kpi('Drafts used', `${fmt.int(t.drafts_inserted)} / ${fmt.int(t.drafts)}`),
    kpi('Declined · wrong sources', `${fmt.int(t.declined)} · ${fmt.int(t.wrong_sources)}`),
    kpi('Model cost', fmt.usd(t.cost_usd), `${fmt.int(t.input_tokens)} in · ${fmt.int(t.output_tokens)} out tokens`),
  );

  const a = r.adoption;
  const top = a.by_agent.filter((x) => a.top_agents.includes(x.user_id));
  const rest = a.by_agent.filter((x) => !a.top_agents.includes(x.user_id));
  const series = top.map((x) => ({ name: x.name, values: x.per_day }));
  if (rest.length) series.push({ name: `${rest.length} others`, values: days.map((_, i) => rest.reduce((s, x) => s + x.per_day[i], 0)) });
  $('chart-adoption').replaceChildren(t.questions
    ? barChart(days, series, { stacked: true, title: 'Questions per agent per day' }) : empty('No questions in this range.'));
  $('agents-table').replaceChildren(
    el('thead', {}, el('tr', {}, ...['Agent', 'Questions', 'Tickets touched', 'Active days', 'Questions per active day', 'Inserted']
      .map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...a.by_agent.map((x) => el('tr', { 'data-agent': x.user_id },
      el('th', { scope: 'row', text: x.name }), el('td', { text: fmt.int(x.questions) }), el('td', { text: fmt.int(x.tickets) }),
      el('td', { text: fmt.int(x.active_days) }), el('td', { text: String(x.per_active_day) }), el('td', { text: fmt.int(x.inserted) })))));

  const h = r.helpfulness;
  $('chart-helpfulness').replaceChildren(t.questions ? barChart(days, [
    { name: 'Thumbs up', values: h.thumbs_up }, { name: 'Thumbs down', values: h.thumbs_down },
    { name: 'Answers inserted', values: h.inserted }, { name: 'Drafts used', values: h.drafts_inserted },
  ], { title: 'Helpfulness per day' }) : empty('No answers in this range.'));

  const topics = r.gaps.topics;
  $('chart-gaps').replaceChildren(topics.length
    ? hbarChart(topics.slice(0, 10).map((g) => ({ label: g.topic, value: g.count })), { title: 'Gap topics by questions' })
    : empty('No declined or “wrong sources” questions in this range.'));
  $('topics').replaceChildren(...topics.map((g) => el('li', { class: 'in-topic', 'data-topic': g.topic },
    el('div', { class: 'in-topic__head' }, el('strong', { text: g.topic }),
      el('span', { class: 'in-hint', text: ` ${fmt.int(g.count)} questions · ${fmt.int(g.declined)} declined · ${fmt.int(g.wrong_sources)} wrong sources · last ${g.last_asked}` })),
    el('p', { class: 'in-topic__todo', text: g.suggestion }),
    el('ul', { class: 'in-examples', 'aria-label': 'Example questions' }, ...g.examples.map((q) => el('li', { text: q }))),
    el('p', { class: 'in-tickets' }, el('span', { class: 'in-hint', text: 'Tickets: ' }),
      ...g.tickets.flatMap((id, n) => (n ? [', ', ticketLink(id)] : [ticketLink(id)]))))));

  const mix = r.routing.mix;
  $('chart-routing').replaceChildren(mix.length
    ? hbarChart(mix.map((m) => ({ label: m.route, value: m.questions, note: fmt.pct(m.share) })), { title: 'Routing mix' })
    : empty('No routed questions in this range.'));
  $('routing-table').replaceChildren(
    el('thead', {}, el('tr', {}, ...['Route', 'Questions', 'Share', 'p50', 'p95'].map((x) => el('th', { scope: 'col', text: x })))),
    el('tbody', {}, ...mix.map((m) => el('tr', {}, el('th', { scope: 'row', text: m.route }), el('td', { text: fmt.int(m.questions) }),
      el('td', { text: fmt.pct(m.share) }), el('td', { text: fmt.s(m.p50_s) }), el('td', { text: fmt.s(m.p95_s) })))),
    el('tfoot', {}, el('tr', {}, el('th', { scope: 'row', text: 'All answers' }), el('td'), el('td'),
      el('td', { text: fmt.s(r.routing.latency.p50_s) }), el('td', { text: fmt.s(r.routing.latency.p95_s) }))));

  $('chart-cost').replaceChildren(t.questions
    ? barChart(days, [{ name: 'Model cost (USD)', values: r.cost.usd }], { money: true, title: 'Model cost per day' })
    : empty('No model calls in this range.'));
}

// --- data -----------------------------------------------------------------------------------------

function rangeQuery() {
  return new URLSearchParams({ start: $('start').value, end: $('end').value }).toString();
}

async function api(path) {
  const resp = await fetch(`${config.api}/${path}`, { headers: { Authorization: `Bearer ${config.token}` }, cache: 'no-store' });
  if (!resp.ok) {
    let message = `HTTP ${resp.status}`;
    try { message = (await resp.json()).error || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

function status(text, state) {
  const node = $('status');
  node.textContent = text;
  node.dataset.state = state;
  node.hidden = state === 'ready';
}

async function load() {
  status('Loading…', 'loading');
  try {
    const report = await (await api(`report?${rangeQuery()}`)).json();
    render(report);
    $('report').hidden = false;
    document.body.dataset.loaded = `${report.range.start}..${report.range.end}`;
    status('', 'ready');
  } catch (err) {
    status(`Could not load insights: ${err.message}`, 'error');
  }
}

async function download(kind, button) {
  try {
    const blob = await (await api(`export.csv?${rangeQuery()}&kind=${encodeURIComponent(kind)}`)).blob();
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: `insights-${kind}-${$('start').value}-${$('end').value}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (err) {
    status(`Could not export: ${err.message}`, 'error');
  }
  button.blur();
}

function init() {
  $('tenant').textContent = config.tenant;
  const params = new URLSearchParams(window.location.search);
  const today = new Date().toISOString().slice(0, 10);
  const from = new Date(Date.now() - (config.defaultDays - 1) * 86400000).toISOString().slice(0, 10);
  $('start').value = /^\d{4}-\d{2}-\d{2}$/.test(params.get('start') || '') ? params.get('start') : from;
  $('end').value = /^\d{4}-\d{2}-\d{2}$/.test(params.get('end') || '') ? params.get('end') : today;
  $('range').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  for (const b of document.querySelectorAll('[data-export]')) b.addEventListener('click', () => download(b.dataset.export, b));
  load();
}

init();
