/**
 * console-pages - the administrator's pages of the web console (console-route.ts checks the
 * session, the admin flag and the CSRF token before any of these runs):
 *
 *   /console/               dashboard: the master's services (running or down), messages per
 *                           queue, deliveries/deferrals/bounces/rejections over the last hour
 *                           and day from maillog_file (console-maillog.ts), as SVG bar charts
 *   /console/checklist      the deliverability checklist of lib-checklist/domain-checklist.ts
 *                           (the code of `postern dns D --check`) for one domain, live
 *   /console/queue          global/queue-admin.ts (the code of `postern queue`): the showq
 *                           listing, and POST hold | release | delete | flush
 *   /console/queue/show?id  postcat -q of one message (global/queue-cat.ts), 256 KiB at most
 *   /console/log?q=         maillog_file search
 *
 * Users are console-users.ts, aliases console-aliases.ts.
 */
import type { HttpResponse } from '../lib-http/http-route.ts';
import { isQueueId, type QueueName } from '../global/mail-queue.ts';
import { queueCommand, showq, type ShowqMessage } from '../global/queue-admin.ts';
import { showQueueFile } from '../global/queue-cat.ts';
import { checkDomainName } from '../lib-checklist/dns-plan.ts';
import { domainChecklist } from '../lib-checklist/domain-checklist.ts';
import { barChart, button, h, page, table } from './console-html.ts';
import { activity, badQuery, readTail, search, tailLines } from './console-maillog.ts';
import { flash, respond, takeFlash, type ConsoleRequest } from './console-route.ts';
import { userAdminPage } from './console-users.ts';
import { aliasPage } from './console-aliases.ts';

const LIST_LIMIT = 500;
const SHOW_LIMIT = 256 << 10;
const QUEUES: QueueName[] = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];

export async function adminPage(cr: ConsoleRequest): Promise<HttpResponse | undefined> {
  switch (cr.req.path) {
    case '/console/': return cr.req.method === 'POST' ? undefined : dashboard(cr);
    case '/console/checklist': return cr.req.method === 'POST' ? undefined : checklist(cr);
    case '/console/queue': return cr.req.method === 'POST' ? queueAction(cr) : queuePage(cr);
    case '/console/queue/show': return cr.req.method === 'POST' ? undefined : queueShow(cr);
    case '/console/log': return cr.req.method === 'POST' ? undefined : logPage(cr);
    case '/console/users': return userAdminPage(cr);
    case '/console/aliases': return aliasPage(cr);
    default: return undefined;
  }
}

async function queueCounts(cr: ConsoleRequest): Promise<Map<QueueName, number>> {
  const m = new Map<QueueName, number>();
  for (const q of QUEUES) {
    let n = 0;
    try { for await (const _ of cr.queue.list(q)) n++; } catch { /* unreadable: 0 */ }
    m.set(q, n);
  }
  return m;
}

async function dashboard(cr: ConsoleRequest): Promise<HttpResponse> {
  const services = cr.ctx.services();
  const svc = table(['service', 'program', 'runs as', 'state'],
    services.map((s) => [h(s.key), h(s.impl), h(s.mode), s.running ? 'running' : 'DOWN']),
    services.map((s) => `class="${s.running ? 'green' : 'red'}" data-service="${h(s.key)}"`));
  const counts = await queueCounts(cr);
  const q = table(['queue', 'messages'], QUEUES.map((n) => [h(n), `<span id="queue-${n}">${counts.get(n) ?? 0}</span>`]));
  const logFile = cr.ctx.config.get('maillog_file').trim();
  let charts: string;
  if (logFile === '' || logFile.startsWith('/dev/')) {
    charts = `<p class="err">Activity charts read maillog_file, which is ${logFile === '' ? 'not set' : h(logFile)}: set maillog_file = /var/log/postern.log in main.cf.</p>`;
  } else {
    const a = activity(await tailLines(logFile));
    const hl = Array.from({ length: 12 }, (_, i) => `${(11 - i) * 5}-${(12 - i) * 5} min ago`);
    const dl = Array.from({ length: 24 }, (_, i) => `${23 - i}-${24 - i} h ago`);
    charts = '<h2>Last hour</h2><div class="charts">'
      + barChart('hour-delivered', 'Delivered', a.hour.delivered, hl) + barChart('hour-rejected', 'Rejected', a.hour.rejected, hl, '#c55')
      + barChart('hour-deferred', 'Deferred', a.hour.deferred, hl, '#d93') + barChart('hour-bounced', 'Bounced', a.hour.bounced, hl, '#a3a')
      + '</div><h2>Last day</h2><div class="charts">'
      + barChart('day-delivered', 'Delivered', a.day.delivered, dl) + barChart('day-rejected', 'Rejected', a.day.rejected, dl, '#c55')
      + barChart('day-deferred', 'Deferred', a.day.deferred, dl, '#d93') + barChart('day-bounced', 'Bounced', a.day.bounced, dl, '#a3a')
      + '</div>';
  }
  const up = services.filter((s) => s.running).length;
  return respond(200, page('Dashboard', `<h2>Services: <span id="services-up">${up}</span> of ${services.length} running</h2>${svc}<h2>Queues</h2>${q}${charts}`, cr.user, '/console/', takeFlash(cr)));
}

/** The domains offered on the checklist page: mydomain, the autoconfig domains, the users' domains. */
async function knownDomains(cr: ConsoleRequest): Promise<string[]> {
  const cf = cr.ctx.config;
  const set = new Set<string>([cf.get('mydomain'), ...cf.list('postern_autoconfig_domains'), ...cf.list('virtual_mailbox_domains').filter((d) => !d.includes(':'))].map((d) => d.toLowerCase()));
  try {
    const dir = await cr.directory();
    let n = 0;
    for await (const u of dir.iterate()) {
      const at = u.lastIndexOf('@');
      if (at > 0) set.add(u.slice(at + 1).toLowerCase());
      if (++n >= 10000) break;
    }
  } catch { /* the directory cannot be listed: the configured domains only */ }
  return [...set].filter((d) => d !== '' && checkDomainName(d) === undefined).sort();
}

async function checklist(cr: ConsoleRequest): Promise<HttpResponse> {
  const domains = await knownDomains(cr);
  const asked = cr.req.query.get('domain');
  const links = `<p>Domain: ${domains.map((d) => `<a href="/console/checklist?domain=${encodeURIComponent(d)}">${h(d)}</a>`).join(' · ')}</p>`
    + `<form method="get" action="/console/checklist"><label>Other domain <input name="domain" maxlength="253" value="${h(asked ?? '')}"></label> <button type="submit">Check</button></form>`;
  if (asked === null) return respond(200, page('Deliverability checklist', links + '<p>Pick a domain.</p>', cr.user, '/console/checklist'));
  const d = asked.trim().toLowerCase().replace(/\.$/, '');
  const bad = checkDomainName(d);
  if (bad) return respond(400, page('Deliverability checklist', links + `<p class="err">${h(bad)}</p>`, cr.user, '/console/checklist'));
  let rows;
  try { rows = await domainChecklist(cr.ctx.config, d); } catch (e) {
    return respond(200, page('Deliverability checklist', links + `<p class="err">${h((e as Error).message)}</p>`, cr.user, '/console/checklist'));
  }
  const red = rows.filter((r) => r.colour === 'red').length;
  const t = table(['check', 'name', 'status', 'detail', 'fix'],
    rows.map((r) => [h(r.what), h(r.name), h(r.status), h(r.detail), r.fix ? `<code>${h(r.fix)}</code>` : '']),
    rows.map((r) => `class="${r.colour}" data-what="${h(r.what)}" data-name="${h(r.name)}" data-colour="${r.colour}"`));
  return respond(200, page('Deliverability checklist', `${links}<h2>${h(d)}: <span id="red-count">${red}</span> to fix</h2>${t}<p>The same checks as <code>postern dns ${h(d)} --check</code>, asked now.</p>`, cr.user, '/console/checklist'));
}

function queueRow(cr: ConsoleRequest, m: ShowqMessage): string[] {
  const actions = [
    `<a href="/console/queue/show?id=${encodeURIComponent(m.qid)}">show</a>`,
    m.queue === 'hold' ? button(cr.user, '/console/queue', 'release', { op: 'release', id: m.qid }) : button(cr.user, '/console/queue', 'hold', { op: 'hold', id: m.qid }),
    button(cr.user, '/console/queue', 'delete', { op: 'delete', id: m.qid }),
  ];
  return [h(m.qid), h(m.queue), `<span class="num">${m.size}</span>`, h(new Date(m.arrival).toISOString()), h(m.sender),
    m.recipients.map((r) => h(r.address) + (r.why ? ` <small>(${h(r.why)})</small>` : '')).join('<br>'), actions.join(' ')];
}

async function queuePage(cr: ConsoleRequest): Promise<HttpResponse> {
  const rows: string[][] = [];
  const attrs: string[] = [];
  let more = false;
  for await (const m of showq(cr.queue)) {
    if (rows.length >= LIST_LIMIT) { more = true; break; }
    rows.push(queueRow(cr, m));
    attrs.push(`data-qid="${h(m.qid)}" data-queue="${h(m.queue)}"`);
  }
  const body = `<p>${button(cr.user, '/console/queue', 'Flush (retry deferred mail now)', { op: 'flush' })}</p>`
    + (rows.length ? table(['queue ID', 'queue', 'size', 'arrival', 'sender', 'recipients', ''], rows, attrs) : '<p id="queue-empty">Mail queue is empty</p>')
    + (more ? `<p>Only the first ${LIST_LIMIT} messages are listed; <code>postern queue</code> lists all.</p>` : '');
  return respond(200, page('Queue', body, cr.user, '/console/queue', takeFlash(cr)));
}

async function queueAction(cr: ConsoleRequest): Promise<HttpResponse> {
  const op = cr.form.get('op') ?? '';
  const id = cr.form.get('id') ?? '';
  if (!['hold', 'release', 'delete', 'flush'].includes(op)) return flash(cr, { err: `unknown queue operation ${JSON.stringify(op.slice(0, 40))}` }, '/console/queue');
  if (op !== 'flush' && !isQueueId(id)) return flash(cr, { err: `not a queue ID: ${JSON.stringify(id.slice(0, 40))}` }, '/console/queue');
  let said = '';
  const code = await queueCommand(cr.queue, op === 'flush' ? ['flush'] : [op, id], { out: (s) => { said += s; }, err: (s) => { said += s; } });
  const text = said.replace(/postern: /g, '').trim() || (op === 'flush' ? 'Deferred mail is being retried.' : 'Done.');
  cr.ctx.log.info(`console: ${cr.user.user}: queue ${op}${op === 'flush' ? '' : ' ' + id}: ${text.replace(/\n/g, '; ')}`);
  return flash(cr, code === 0 && !/warning/.test(text) ? { ok: text } : { err: text }, '/console/queue');
}

async function queueShow(cr: ConsoleRequest): Promise<HttpResponse> {
  const id = cr.req.query.get('id') ?? '';
  if (!isQueueId(id)) return respond(400, page('Queue', `<p class="err">not a queue ID: ${h(JSON.stringify(id.slice(0, 40)))}</p>`, cr.user, '/console/queue'));
  let out = '';
  let cut = false;
  for (const q of QUEUES) {
    try {
      await showQueueFile(cr.queue, q, id, (s) => { if (out.length < SHOW_LIMIT) out += s; else cut = true; });
      break;
    } catch { out = ''; }
  }
  if (out === '') return respond(404, page('Queue', `<p class="err">${h(id)}: no such message in the queue</p>`, cr.user, '/console/queue'));
  return respond(200, page(`Message ${id}`, `<pre>${h(out.slice(0, SHOW_LIMIT))}</pre>${cut ? '<p>(cut at 256 KiB: <code>postern queue show</code> prints all)</p>' : ''}`, cr.user, '/console/queue'));
}

async function logPage(cr: ConsoleRequest): Promise<HttpResponse> {
  const q = cr.req.query.get('q') ?? '';
  const file = cr.ctx.config.get('maillog_file').trim();
  const form = `<form method="get" action="/console/log"><label>Queue ID or address <input name="q" maxlength="256" value="${h(q)}"></label> <button type="submit">Search</button></form>`;
  if (file === '' || file.startsWith('/dev/')) return respond(200, page('Mail log', `${form}<p class="err">maillog_file is ${file === '' ? 'not set' : h(file)}: set maillog_file = /var/log/postern.log in main.cf.</p>`, cr.user, '/console/log'));
  if (q === '') return respond(200, page('Mail log', form, cr.user, '/console/log'));
  const bad = badQuery(q);
  if (bad) return respond(400, page('Mail log', `${form}<p class="err">${h(bad)}</p>`, cr.user, '/console/log'));
  const r = search(await readTail(file), q);
  const body = `${form}<p><span id="hits">${r.lines.length}</span> line${r.lines.length === 1 ? '' : 's'}${r.more ? ' (the newest 500)' : ''} in ${h(file)}</p><pre id="log-lines">${h(r.lines.join('\n'))}</pre>`;
  return respond(200, page('Mail log', body, cr.user, '/console/log'));
}
