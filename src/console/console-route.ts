/**
 * console-route - the web console (docs/console.md): server-rendered pages under /console/ on
 * the HTTPS listeners of the HTTP service (httpd/httpd.ts), when postern_console = yes.
 *
 *   /console/login, /console/logout      log in with a user of the directory (dovecot.conf's
 *                                        passdb), through the shared auth penalty
 *   /console/                            dashboard: services, queue sizes, activity charts
 *   /console/checklist?domain=D          `postern dns D --check` live, green/amber/red + fix
 *   /console/users                       users of the directory: add, password, admin, delete
 *   /console/aliases                     virtual_alias_maps's hash: table: add, delete
 *   /console/queue, /console/queue/show  `postern queue` list/show/hold/release/delete/flush
 *   /console/log?q=TEXT                  maillog_file lines naming a queue ID or an address
 *   /console/me                          one's own password
 *
 * SECURITY
 *   - HTTPS only (the route is not on plain-HTTP listeners); answered only to clients in
 *     postern_console_networks (default loopback), others get 403 whatever they send.
 *   - Administrators: the passdb extra field postern_admin=yes (embedded SQLite: the column
 *     postern_admin; passwd-file: the extra field), or a name in postern_console_admins. Any
 *     other user who logs in sees only /console/me; every other page answers 403.
 *   - Sessions: console-session.ts (HttpOnly, Secure, SameSite=Strict cookie). Every POST must
 *     be a form (application/x-www-form-urlencoded) carrying the session's CSRF token, and is
 *     refused when the browser says it comes from another site (Sec-Fetch-Site, Origin).
 *   - Every answer: Content-Security-Policy (no script, nothing from another host,
 *     frame-ancestors 'none'), X-Frame-Options DENY, nosniff, same-origin referrers, no-store.
 *   - Parameters are checked before use: queue IDs (isQueueId), user names
 *     (checkNewUserName), domains (checkDomainName), searches (length, control characters);
 *     httpd already refused "." / ".." path segments, NUL and encoded slashes.
 *
 * PARAMETERS
 *   postern_console, postern_console_networks, postern_console_admins,
 *   postern_console_session_timeout, maillog_file, queue_directory
 */
import { BlockList, isIP } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import type { Logger } from '../util/msg.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { HttpRequest, HttpResponse, HttpRoute } from '../lib-http/http-route.ts';
import { SECURITY_HEADERS, STYLE, h, page, type PageUser } from './console-html.ts';
import { SessionStore, clearCookie, sameSecret, setCookie, type Session } from './console-session.ts';
import { adminPage } from './console-pages.ts';
import { userPage } from './console-users.ts';

export interface ServiceState { key: string; impl: string; mode: string; running: boolean }

/** What the master gives the console (master/master-httpd.ts). */
export interface ConsoleContext {
  config: MainConfig;
  dovecot: DovecotConfig;
  log: Logger;
  /** The services and whether they run (the master's status list). */
  services(): ServiceState[];
  /** The shared auth penalty (anvil/auth-penalty.ts). */
  authPenalty?: { directory(dir: UserDirectory, clientAddr: string): UserDirectory };
}

/** What a page handler gets. */
export interface ConsoleRequest {
  req: HttpRequest;
  form: URLSearchParams;
  session: Session & { flash?: { ok?: string; err?: string } };
  user: PageUser;
  ctx: ConsoleContext;
  queue: MailQueue;
  directory(): Promise<UserDirectory>;
  sessions: SessionStore;
}

// Sessions outlive a reload (the route table is rebuilt then); the directory is reopened.
let sessions: SessionStore | undefined;
let openDir: { dovecot: DovecotConfig; dir: Promise<UserDirectory> } | undefined;

export function respond(status: number, body: string, headers: Record<string, string> = {}, type = 'text/html; charset=utf-8'): HttpResponse {
  return { status, type, headers: { ...SECURITY_HEADERS, ...headers }, body };
}

export function redirect(to: string, headers: Record<string, string> = {}): HttpResponse {
  return respond(303, '', { Location: to, ...headers });
}

function forbidden(why: string, u?: PageUser): HttpResponse {
  return respond(403, page('Forbidden', `<p>${h(why)}</p>`, u));
}

function networks(cf: MainConfig): BlockList {
  const b = new BlockList();
  for (const raw of cf.list('postern_console_networks')) {
    const item = raw.replace(/^\[([^\]]+)\](\/\d+)?$/, '$1$2');
    const [addr, bits] = item.split('/');
    const v = isIP(addr ?? '');
    if (v === 0) throw new Error(`postern_console_networks: "${raw}" is not an address or network`);
    const type = v === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) b.addAddress(addr!, type);
    else b.addSubnet(addr!, Number(bits), type);
  }
  return b;
}

function loginPage(err?: string): HttpResponse {
  const body = `<form method="post" action="/console/login"><p><label>User <input name="user" autocomplete="username" required maxlength="255"></label></p>`
    + `<p><label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label></p>`
    + '<p><button type="submit">Log in</button></p></form>';
  return respond(err ? 403 : 200, page('Log in', body, undefined, '', err ? { err } : undefined));
}

/** Is the POST from a page of this console (as far as the browser tells)? */
function sameOrigin(req: HttpRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers['origin'];
  if (typeof origin === 'string' && origin !== 'null') {
    try { if (new URL(origin).hostname.replace(/^\[|\]$/g, '').toLowerCase() !== req.host.replace(/^\[|\]$/g, '')) return false; } catch { return false; }
  } else if (origin === 'null') return false;
  return true;
}

export function consoleRoutes(ctx: ConsoleContext): HttpRoute[] {
  const cf = ctx.config;
  if (!cf.bool('postern_console')) return [];
  const allowed = networks(cf);
  const admins = new Set(cf.list('postern_console_admins').map((u) => u.toLowerCase()));
  const idle = cf.time('postern_console_session_timeout') * 1000;
  sessions ??= new SessionStore(idle);
  const store = sessions;
  const queue = MailQueue.fromConfig(cf);
  if (openDir && openDir.dovecot !== ctx.dovecot) {
    const old = openDir.dir;
    void old.then((d) => d.close()).catch(() => {});
    openDir = undefined;
  }
  const directory = (): Promise<UserDirectory> => {
    if (!openDir) {
      const p = import('../lib-auth/user-directory-open.ts').then((m) => m.openUserDirectory(ctx.dovecot));
      openDir = { dovecot: ctx.dovecot, dir: p };
      p.catch(() => { if (openDir?.dir === p) openDir = undefined; });
    }
    return openDir.dir;
  };

  async function login(req: HttpRequest, form: URLSearchParams): Promise<HttpResponse> {
    const user = (form.get('user') ?? '').trim();
    const password = form.get('password') ?? '';
    if (user === '' || user.length > 255 || password.length > 1024 || /[\x00-\x1f]/.test(user)) return loginPage('Wrong user name or password.');
    const base = await directory();
    const dir = ctx.authPenalty ? ctx.authPenalty.directory(base, req.remoteAddress) : base;
    let r;
    try { r = await dir.verifyPlain(user, password, { service: 'console', remoteIp: req.remoteAddress }); } catch (e) {
      ctx.log.warn(`console: login of ${JSON.stringify(user)} from ${req.remoteAddress}: ${(e as Error).message}`);
      return respond(503, page('Log in', '<p>The user directory is not answering; try again later.</p>'));
    }
    if (r.result !== 'ok') {
      ctx.log.info(`console: login failed for ${JSON.stringify(user)} from ${req.remoteAddress}`);
      return loginPage('Wrong user name or password.');
    }
    const name = (r.user ?? user).toLowerCase();
    const admin = r.fields?.['postern_admin'] === 'yes' || admins.has(name);
    const s = store.create(name, admin);
    ctx.log.info(`console: ${name} logged in from ${req.remoteAddress}${admin ? ' (administrator)' : ''}`);
    return redirect(admin ? '/console/' : '/console/me', { 'Set-Cookie': setCookie(s.id) });
  }

  async function handle(req: HttpRequest): Promise<HttpResponse> {
    if (!allowed.check(req.remoteAddress, isIP(req.remoteAddress) === 6 ? 'ipv6' : 'ipv4')) {
      return respond(403, 'the console does not answer this address (postern_console_networks)\n', {}, 'text/plain; charset=utf-8');
    }
    if (req.path === '/console') return redirect('/console/');
    if (req.path === '/console/style.css') return respond(200, STYLE, { 'Cache-Control': 'max-age=3600' }, 'text/css; charset=utf-8');
    let form = new URLSearchParams();
    if (req.method === 'POST') {
      const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') return respond(415, page('Unsupported', '<p>Forms only.</p>'));
      if (!sameOrigin(req)) return forbidden('This request came from another site.');
      form = new URLSearchParams(req.body.toString('utf8'));
    }
    if (req.path === '/console/login') {
      if (req.method === 'POST') return login(req, form);
      return store.get(req.headers['cookie']) ? redirect('/console/') : loginPage();
    }
    const session = store.get(req.headers['cookie']) as ConsoleRequest['session'] | undefined;
    if (!session) return req.method === 'POST' ? forbidden('Log in first.') : redirect('/console/login');
    const user: PageUser = { user: session.user, admin: session.admin, csrf: session.csrf };
    if (req.method === 'POST') {
      const token = form.get('csrf') ?? '';
      if (!sameSecret(token, session.csrf)) {
        ctx.log.warn(`console: POST ${req.path} by ${session.user} from ${req.remoteAddress} without a valid CSRF token: refused`);
        return forbidden('The form is stale or did not come from this console (CSRF token missing or wrong); reload the page.', user);
      }
    }
    if (req.path === '/console/logout') {
      if (req.method !== 'POST') return redirect('/console/');
      store.end(session.id);
      return redirect('/console/login', { 'Set-Cookie': clearCookie() });
    }
    const cr: ConsoleRequest = { req, form, session, user, ctx, queue, directory, sessions: store };
    if (req.path === '/console/me') return userPage(cr);
    if (!session.admin) return forbidden(`${session.user} is not an administrator (postern_admin); only "My account" is open to you.`, user);
    return (await adminPage(cr)) ?? respond(404, page('Not found', '<p>No such page.</p>', user));
  }

  const route = { scheme: 'https' as const, methods: ['GET', 'HEAD', 'POST'], maxBody: 65536, handle };
  return [
    { name: 'console', path: '/console', ...route },
    { name: 'console', path: '/console/', prefix: true, ...route },
  ];
}

/** A one-shot message for the next page of this session. */
export function flash(cr: ConsoleRequest, f: { ok?: string; err?: string }, to: string): HttpResponse {
  cr.session.flash = f;
  return redirect(to);
}

export function takeFlash(cr: ConsoleRequest): { ok?: string; err?: string } | undefined {
  const f = cr.session.flash;
  cr.session.flash = undefined;
  return f;
}
