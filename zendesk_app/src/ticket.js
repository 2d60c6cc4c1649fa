// The open ticket, read through the ZAF client and shaped for `session:join` (docs/protocol.md).
const FIELDS = [
  'ticket.id', 'ticket.subject', 'ticket.description', 'ticket.status', 'ticket.priority',
  'ticket.type', 'ticket.tags', 'ticket.requester', 'ticket.comments', 'ticketFields',
];
// The server refuses ticket context over 64 KB; stay well under it.
const MAX_JSON = 48000;
const MAX_COMMENT = 2000;

function htmlToText(value) {
  if (typeof value !== 'string') return '';
  // DOMParser never runs scripts or loads images: a safe way to strip comment HTML.
  return new DOMParser().parseFromString(value, 'text/html').body.textContent.trim();
}

function clip(s, n) {
  s = typeof s === 'string' ? s : '';
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export async function readTicket(client) {
  const data = await client.get(FIELDS);
  const id = data['ticket.id'];
  if (id === undefined || id === null) throw new Error('no ticket in this location');
  const requester = data['ticket.requester'] || {};
  const comments = (data['ticket.comments'] || []).map((c) => ({
    author: clip(c.author && c.author.name, 128),
    role: (c.author && c.author.role) || '',
    public: c.public !== false,
    text: clip(htmlToText(c.value ?? c.body), MAX_COMMENT),
  }));
  const custom = {};
  const fields = (data.ticketFields || []).filter((f) => /^custom_field_/.test(f.name || ''));
  if (fields.length) {
    const paths = fields.map((f) => `ticket.customField:${f.name}`);
    try {
      const values = await client.get(paths);
      fields.forEach((f, i) => {
        const v = values[paths[i]];
        if (v !== null && v !== undefined && v !== '') custom[clip(f.label || f.name, 200)] = clip(String(v), 500);
      });
    } catch {
      // Custom fields are context, not essential: a failed read leaves them out.
    }
  }
  const ticket = {
    id: String(id),
    subject: clip(data['ticket.subject'], 1000),
    description: clip(data['ticket.description'], 20000),
    status: clip(data['ticket.status'] || '', 32) || null,
    priority: data['ticket.priority'] || null,
    type: data['ticket.type'] || null,
    tags: (data['ticket.tags'] || []).slice(0, 100).map(String),
    requester: { name: clip(requester.name, 200), email: clip(requester.email, 200) },
    // REST's name for the requester: the order lookup finds a customer without an e-mail by it.
    requester_id: requester.id ?? null,
    // The requester's language (ZAF user object): the knowledge base searches it first.
    locale: clip(requester.locale, 16) || null,
    comments,
    custom_fields: custom,
  };
  // Oldest comments go first when the ticket is too large to send.
  while (ticket.comments.length && JSON.stringify(ticket).length > MAX_JSON) ticket.comments.shift();
  return ticket;
}

export const TICKET_EVENTS = ['ticket.updated', 'ticket.subject.changed', 'ticket.status.changed', 'ticket.tags.changed'];
