/**
 * console-users - the web console's user pages, on the directory of dovecot.conf's first passdb
 * through lib-auth/user-directory-write.ts (the code of `postern user add|passwd|del`): the
 * embedded SQLite directory and a passwd-file with a fixed path can be changed; any other
 * directory (SQL server, LDAP, per-domain passwd-files) is listed read-only with the reason.
 *
 *   /console/users  (administrators)  list; POST op=add (user, password, admin),
 *                   op=password (user, password), op=admin (user, admin=yes|no), op=delete (user)
 *   /console/me     (any user)         POST op=password (current, password, password2);
 *                                      op=vacation (on=yes|no, subject, text) when Sieve is in
 *                                      use (console-vacation.ts)
 *
 * New passwords are hashed with SHA512-CRYPT (as `postern user add`), at least 8 and at most
 * 1024 characters. Changing or deleting a user ends that user's other console sessions.
 * An administrator cannot delete or demote themselves (so the console is never left without
 * one by a slip).
 */
import type { HttpResponse } from '../lib-http/http-route.ts';
import { passwordHash } from '../lib-auth/password-scheme.ts';
import { checkNewUserName, openUserWriter, UserWriteError, type StoredUser, type UserWriter } from '../lib-auth/user-directory-write.ts';
import { button, csrfField, h, page, table } from './console-html.ts';
import { flash, respond, takeFlash, type ConsoleRequest } from './console-route.ts';
import { MAX_SUBJECT, MAX_TEXT, setVacation, storageFor, vacationState } from './console-vacation.ts';

const SCHEME = 'SHA512-CRYPT';
const LIST_LIMIT = 2000;

function badPassword(p: string): string | undefined {
  if (p.length < 8) return 'the password must have at least 8 characters';
  if (p.length > 1024) return 'the password is longer than 1024 characters';
  if (/[\x00-\x1f\x7f]/.test(p)) return 'the password holds a control character';
  return undefined;
}

function withWriter<T>(cr: ConsoleRequest, f: (w: UserWriter) => T): T {
  const w = openUserWriter(cr.ctx.dovecot);
  try { return f(w); } finally { w.close(); }
}

export async function userAdminPage(cr: ConsoleRequest): Promise<HttpResponse> {
  if (cr.req.method === 'POST') return userAction(cr);
  let users: StoredUser[] = [];
  let where = '';
  let readOnly = '';
  try {
    const r = withWriter(cr, (w) => ({ list: w.list(), where: w.where }));
    users = r.list;
    where = r.where;
  } catch (e) {
    readOnly = (e as Error).message;
    try {
      const dir = await cr.directory();
      for await (const u of dir.iterate()) { users.push({ user: u, admin: false, active: true }); if (users.length >= LIST_LIMIT) break; }
    } catch (e2) { readOnly += `; listing failed: ${(e2 as Error).message}`; }
  }
  const shown = users.slice(0, LIST_LIMIT);
  const rows = shown.map((u) => [
    h(u.user), u.admin ? 'yes' : '', u.active ? '' : 'disabled',
    readOnly ? '' : [
      `<form class="inline" method="post" action="/console/users">${csrfField(cr.user)}<input type="hidden" name="op" value="password"><input type="hidden" name="user" value="${h(u.user)}"><input type="password" name="password" autocomplete="new-password" placeholder="new password" maxlength="1024"> <button type="submit">set password</button></form>`,
      button(cr.user, '/console/users', u.admin ? 'remove admin' : 'make admin', { op: 'admin', user: u.user, admin: u.admin ? 'no' : 'yes' }),
      button(cr.user, '/console/users', 'delete', { op: 'delete', user: u.user }),
    ].join(' '),
  ]);
  const add = readOnly ? `<p class="err">Read-only here: ${h(readOnly)}</p>`
    : `<h2>Add a user</h2><form method="post" action="/console/users">${csrfField(cr.user)}<input type="hidden" name="op" value="add">`
      + '<label>Address <input name="user" required maxlength="255" placeholder="alice@example.com"></label> '
      + '<label>Password <input name="password" type="password" required maxlength="1024" autocomplete="new-password"></label> '
      + '<label><input type="checkbox" name="admin" value="yes"> console administrator</label> <button type="submit">Add</button></form>';
  const body = `<p>${where ? `Directory: ${h(where)}. ` : ''}<span id="user-count">${users.length}</span> user${users.length === 1 ? '' : 's'}.</p>${add}`
    + table(['user', 'admin', 'state', ''], rows, shown.map((u) => `data-user="${h(u.user)}"`))
    + (users.length > LIST_LIMIT ? `<p>Only the first ${LIST_LIMIT} are shown.</p>` : '');
  return respond(200, page('Users', body, cr.user, '/console/users', takeFlash(cr)));
}

async function userAction(cr: ConsoleRequest): Promise<HttpResponse> {
  const f = cr.form;
  const op = f.get('op') ?? '';
  const back = '/console/users';
  let user: string;
  try { user = checkNewUserName(f.get('user') ?? ''); } catch (e) { return flash(cr, { err: (e as Error).message }, back); }
  const self = user === cr.user.user;
  try {
    switch (op) {
      case 'add': case 'password': {
        const p = f.get('password') ?? '';
        const bad = badPassword(p);
        if (bad) return flash(cr, { err: `${user}: ${bad}` }, back);
        const hash = await passwordHash(SCHEME, p);
        if (op === 'add') {
          const admin = f.get('admin') === 'yes';
          const where = withWriter(cr, (w) => { w.add({ user, password: hash, admin }); return w.where; });
          cr.ctx.log.info(`console: ${cr.user.user} added ${user}${admin ? ' (administrator)' : ''} to ${where}`);
          return flash(cr, { ok: `${user} added to ${where}.` }, back);
        }
        withWriter(cr, (w) => w.setPassword(user, hash));
        cr.sessions.endUser(user, cr.session.id);
        cr.ctx.log.info(`console: ${cr.user.user} set the password of ${user}`);
        return flash(cr, { ok: `${user}: password changed.` }, back);
      }
      case 'admin': {
        const yes = f.get('admin') === 'yes';
        if (self && !yes) return flash(cr, { err: 'you cannot remove your own administrator flag' }, back);
        withWriter(cr, (w) => w.setAdmin(user, yes));
        cr.sessions.endUser(user, cr.session.id);
        cr.ctx.log.info(`console: ${cr.user.user} ${yes ? 'made' : 'removed'} ${user} ${yes ? 'an administrator' : 'from the administrators'}`);
        return flash(cr, { ok: `${user}: ${yes ? 'now an administrator' : 'no longer an administrator'}.` }, back);
      }
      case 'delete': {
        if (self) return flash(cr, { err: 'you cannot delete yourself' }, back);
        withWriter(cr, (w) => w.remove(user));
        cr.sessions.endUser(user);
        cr.ctx.log.info(`console: ${cr.user.user} deleted ${user} (the mailbox stays on disk)`);
        return flash(cr, { ok: `${user} deleted (the mailbox stays on disk).` }, back);
      }
      default:
        return flash(cr, { err: `unknown operation ${JSON.stringify(op.slice(0, 40))}` }, back);
    }
  } catch (e) {
    if (e instanceof UserWriteError) return flash(cr, { err: e.message }, back);
    throw e;
  }
}

/** Is Sieve run at delivery or served by ManageSieve here? */
function sieveInUse(cr: ConsoleRequest): boolean {
  const d = cr.ctx.dovecot;
  const plugins = ['lmtp', 'lda'].map((p) => d.getFor('mail_plugins', { protocol: p }) ?? '').join(' ');
  return d.protocols.includes('sieve') || /\bsieve\b/.test(plugins);
}

async function vacationSection(cr: ConsoleRequest): Promise<string> {
  if (!sieveInUse(cr)) return '';
  let state;
  try {
    const rec = await (await cr.directory()).lookup(cr.user.user);
    if (!rec) return '';
    state = await vacationState(storageFor(cr.ctx.dovecot, rec));
  } catch (e) {
    return `<h2>Automatic reply</h2><p class="err">${h((e as Error).message)}</p>`;
  }
  return `<h2>Automatic reply (vacation): <span id="vacation-state">${state.on ? 'on' : 'off'}</span></h2>`
    + (state.otherActive ? `<p>Your own Sieve script <code>${h(state.otherActive)}</code> is active; manage your vacation reply in it with a ManageSieve client.</p>` : '')
    + `<form method="post" action="/console/me">${csrfField(cr.user)}<input type="hidden" name="op" value="vacation">`
    + `<p><label>Subject <input name="subject" maxlength="${MAX_SUBJECT}" value="${h(state.subject)}"></label></p>`
    + `<p><label>Text<br><textarea name="text" rows="5" cols="60" maxlength="${MAX_TEXT}">${h(state.text)}</textarea></label></p>`
    + `<p><button type="submit" name="on" value="yes">Turn on</button> <button type="submit" name="on" value="no">Turn off</button></p></form>`;
}

async function vacationAction(cr: ConsoleRequest): Promise<HttpResponse> {
  if (!sieveInUse(cr)) return flash(cr, { err: 'Sieve is not in use on this server' }, '/console/me');
  const f = cr.form;
  try {
    const rec = await (await cr.directory()).lookup(cr.user.user);
    if (!rec) return flash(cr, { err: 'your user is not in the user directory' }, '/console/me');
    const said = await setVacation(storageFor(cr.ctx.dovecot, rec), rec.user, f.get('on') === 'yes', f.get('subject') ?? '', f.get('text') ?? '');
    cr.ctx.log.info(`console: ${cr.user.user}: ${said}`);
    return flash(cr, { ok: said }, '/console/me');
  } catch (e) {
    return flash(cr, { err: (e as Error).message }, '/console/me');
  }
}

export async function userPage(cr: ConsoleRequest): Promise<HttpResponse> {
  if (cr.req.method === 'POST') {
    const f = cr.form;
    if (f.get('op') === 'vacation') return vacationAction(cr);
    if (f.get('op') !== 'password') return flash(cr, { err: 'unknown operation' }, '/console/me');
    const current = f.get('current') ?? '';
    const p = f.get('password') ?? '';
    if (p !== (f.get('password2') ?? '')) return flash(cr, { err: 'the two new passwords differ' }, '/console/me');
    const bad = badPassword(p);
    if (bad) return flash(cr, { err: bad }, '/console/me');
    const base = await cr.directory();
    const dir = cr.ctx.authPenalty ? cr.ctx.authPenalty.directory(base, cr.req.remoteAddress) : base;
    const r = await dir.verifyPlain(cr.user.user, current.slice(0, 1024), { service: 'console', remoteIp: cr.req.remoteAddress });
    if (r.result !== 'ok') return flash(cr, { err: 'the current password is wrong' }, '/console/me');
    try {
      const hash = await passwordHash(SCHEME, p);
      withWriter(cr, (w) => w.setPassword(cr.user.user, hash));
    } catch (e) {
      if (e instanceof UserWriteError) return flash(cr, { err: e.message }, '/console/me');
      throw e;
    }
    cr.sessions.endUser(cr.user.user, cr.session.id);
    cr.ctx.log.info(`console: ${cr.user.user} changed their password from ${cr.req.remoteAddress}`);
    return flash(cr, { ok: 'Your password is changed (IMAP, POP3, SMTP and this console).' }, '/console/me');
  }
  // Client set-up (docs/autoconfig.md): the Apple profile for this address, when it is served.
  const domain = cr.user.user.slice(cr.user.user.lastIndexOf('@') + 1);
  const profile = cr.ctx.config.bool('postern_autoconfig') && cr.ctx.config.list('postern_autoconfig_domains').map((d) => d.toLowerCase()).includes(domain)
    ? `<p><a id="mobileconfig" href="/apple/postern.mobileconfig?emailaddress=${encodeURIComponent(cr.user.user)}">Set up Mail on iPhone, iPad or Mac</a> (a configuration profile; Thunderbird and Outlook set themselves up from the address).</p>` : '';
  const body = `<p>Logged in as <strong id="me">${h(cr.user.user)}</strong>${cr.user.admin ? ' (administrator)' : ''}.</p>${profile}`
    + `<h2>Change my password</h2><form method="post" action="/console/me">${csrfField(cr.user)}<input type="hidden" name="op" value="password">`
    + '<p><label>Current password <input type="password" name="current" required autocomplete="current-password" maxlength="1024"></label></p>'
    + '<p><label>New password <input type="password" name="password" required autocomplete="new-password" minlength="8" maxlength="1024"></label></p>'
    + '<p><label>New password again <input type="password" name="password2" required autocomplete="new-password" minlength="8" maxlength="1024"></label></p>'
    + '<p><button type="submit">Change password</button></p></form>' + await vacationSection(cr);
  return respond(200, page('My account', body, cr.user, '/console/me', takeFlash(cr)));
}
