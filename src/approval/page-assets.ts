/**
 * The approvers' page: one HTML document, a script and a style, served from
 * memory with a strict content security policy (no inline script or style,
 * nothing from elsewhere). No framework: the page lists waiting requests as
 * cards that update live (server-sent events), each with Approve and Deny
 * buttons (a reason is optional), operable by keyboard and read by screen
 * readers (an aria-live status line announces what happened).
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mintfs approvals</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header><h1>Requests waiting for approval</h1><p id="who" class="who"></p></header>
<main>
<p id="status" role="status" aria-live="polite"></p>
<p id="empty" hidden>No request is waiting.</p>
<ul id="pending" class="cards" aria-label="Waiting requests"></ul>
</main>
</body>
</html>
`;

export const PAGE_CSS = `:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0 auto; max-width: 52rem; padding: 1rem; }
h1 { font-size: 1.4rem; margin-bottom: 0.2rem; }
.who { margin-top: 0; color: GrayText; }
.cards { list-style: none; padding: 0; display: grid; gap: 1rem; }
.card { border: 1px solid GrayText; border-radius: 0.5rem; padding: 0.8rem 1rem; }
.card h2 { font-size: 1.05rem; margin: 0 0 0.4rem; font-family: ui-monospace, monospace; word-break: break-all; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.8rem; margin: 0 0 0.6rem; }
.card dt { color: GrayText; }
.card dd { margin: 0; word-break: break-all; }
.card pre { white-space: pre-wrap; word-break: break-all; max-height: 10rem; overflow: auto; background: Canvas; border: 1px dashed GrayText; padding: 0.4rem; margin: 0 0 0.6rem; }
.actions { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
.actions input { flex: 1 1 12rem; padding: 0.4rem; }
button { padding: 0.4rem 0.9rem; font-size: 1rem; border-radius: 0.3rem; border: 1px solid GrayText; cursor: pointer; }
button.approve { background: #1a7f37; color: white; }
button.deny { background: #b42318; color: white; }
button:focus-visible, input:focus-visible { outline: 3px solid Highlight; outline-offset: 2px; }
#status:empty { display: none; }
#status { padding: 0.4rem 0.6rem; border-left: 4px solid Highlight; }
`;

export const PAGE_JS = `'use strict';
(async () => {
  const $ = (id) => document.getElementById(id);
  const say = (text) => { $('status').textContent = text; };
  if (location.pathname === '/enrol' && location.hash.length > 1) {
    const code = location.hash.slice(1);
    history.replaceState(null, '', '/');
    const r = await fetch('/api/enrol', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) });
    if (!r.ok) { say((await r.json()).message || 'enrolment failed'); return; }
  }
  const s = await fetch('/api/session');
  if (!s.ok) { say('Not enrolled: open the link \\'mintfs approvers add NAME\\' printed.'); return; }
  const session = await s.json();
  $('who').textContent = 'Signed in as ' + session.approver;
  const decide = async (id, decision, reason) => {
    const r = await fetch('/api/decide', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mintfs-csrf': session.csrf },
      body: JSON.stringify(reason ? { id, decision, reason } : { id, decision }),
    });
    const body = await r.json();
    say(r.ok ? (decision === 'approve' ? 'Approved ' : 'Denied ') + id : body.message || 'failed');
  };
  const field = (dl, name, value) => {
    const dt = document.createElement('dt'); dt.textContent = name;
    const dd = document.createElement('dd'); dd.textContent = value;
    dl.append(dt, dd);
  };
  const card = (p) => {
    const li = document.createElement('li');
    li.className = 'card';
    li.dataset.id = p.id;
    const h = document.createElement('h2');
    h.id = 'h-' + p.id;
    h.textContent = p.method + ' ' + p.host + p.path + p.query;
    li.setAttribute('aria-labelledby', h.id);
    const dl = document.createElement('dl');
    field(dl, 'Agent', p.agent + (p.reader ? ' (read by ' + p.reader + ')' : ''));
    field(dl, 'Service', p.service);
    field(dl, 'Token', p.tokenId);
    field(dl, 'Body', p.bodyBytes + ' bytes');
    field(dl, 'Times out', new Date(p.timesOutAt).toLocaleTimeString());
    li.append(h, dl);
    if (p.bodyPreview) { const pre = document.createElement('pre'); pre.textContent = p.bodyPreview; li.append(pre); }
    const actions = document.createElement('div');
    actions.className = 'actions';
    const approve = document.createElement('button');
    approve.className = 'approve'; approve.textContent = 'Approve';
    approve.addEventListener('click', () => decide(p.id, 'approve'));
    const reason = document.createElement('input');
    reason.type = 'text'; reason.placeholder = 'Reason (optional)';
    reason.setAttribute('aria-label', 'Reason for denying ' + h.textContent);
    reason.maxLength = 500;
    const deny = document.createElement('button');
    deny.className = 'deny'; deny.textContent = 'Deny';
    deny.addEventListener('click', () => decide(p.id, 'deny', reason.value.trim()));
    reason.addEventListener('keydown', (e) => { if (e.key === 'Enter') deny.click(); });
    actions.append(approve, reason, deny);
    li.append(actions);
    return li;
  };
  const render = (pending) => {
    const list = $('pending');
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('li');
    const keep = focused ? focused.dataset.id : undefined;
    list.replaceChildren(...pending.map(card));
    $('empty').hidden = pending.length > 0;
    document.title = (pending.length ? '(' + pending.length + ') ' : '') + 'mintfs approvals';
    const again = keep && list.querySelector('li[data-id="' + CSS.escape(keep) + '"] button');
    if (again) again.focus();
  };
  const events = new EventSource('/api/events');
  events.onmessage = (e) => render(JSON.parse(e.data).pending);
  events.onerror = () => say('Connection to the gateway lost; retrying...');
})();
`;
