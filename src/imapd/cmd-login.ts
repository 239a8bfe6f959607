/**
 * cmd-login - LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE (RFC 3501 §6.2.2) with PLAIN (RFC 4616)
 * and LOGIN (draft-murchison-sasl-login), OAUTHBEARER (RFC 7628) and XOAUTH2 (lib-auth/
 * sasl-oauth2.ts: a failure is first an error challenge, then NO after the client's dummy
 * response, as Dovecot), SASL-IR initial responses (RFC 4959), against the shared user directory. Dovecot 2.3's texts:
 *   OK [CAPABILITY ...] Logged in
 *   NO [AUTHENTICATIONFAILED] Authentication failed.       (after the per-IP failure delay)
 *   NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.
 *   NO [UNAVAILABLE] Temporary authentication failure.
 *   NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=N)
 *   BAD Authentication aborted by client.
 * An AUTHENTICATE response line over 8192 bytes closes the connection without a reply, as
 * imap-login does ("Authentication response too large").
 * disable_plaintext_auth refuses both commands unless the connection is TLS or loopback
 * (Dovecot counts loopback as secure).
 * A passdb answer with `proxy` / `proxy_maybe` sends the session to its backend
 * (lib-login/login-proxy.ts): the client gets the backend's reply, `NO [UNAVAILABLE] Account is
 * temporarily unavailable.` when the backend cannot be reached; `nologin` with `reason=` answers
 * `NO [CONTACTADMIN] reason` (as real Dovecot answers).
 */
import { withAutoSubscribe } from '../lib-storage/mail-autosubscribe.ts';
import { argAstring, argBytes, argString, type ImapArg } from '../lib-imap/imap-parser.ts';
import { SharedNamespaceUser } from '../lib-storage/mail-namespace.ts';
import type { MailUser } from '../lib-storage/mail-storage.ts';
import type { UserRecord } from '../lib-auth/user-directory.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { capabilityList } from './imapd-capability.ts';
import { isOAuth2Mechanism, oauth2ErrorChallenge, parseOAuth2Message } from '../lib-auth/sasl-oauth2.ts';
import { PROXY_FAILURE_MSG, proxyDestination, proxyLogin, proxySplice, type ProxyError } from '../lib-login/login-proxy.ts';

const FAILED: Reply = { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication failed.' };
const PRIVACY: Reply = { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Plaintext authentication disallowed on non-secure (SSL/TLS) connections.' };

async function delayed(s: ImapSession, r: Reply): Promise<Reply> {
  const ms = s.shared.failureDelay(s.remoteIp);
  if (ms > 0) await new Promise((res) => setTimeout(res, ms));
  return r;
}

/** Verify, look up, open the mail user (or proxy to the user's backend); the reply to send. */
async function authenticate(s: ImapSession, c: CommandContext, user: string, pass: string, method: string): Promise<Reply | undefined> {
  if (s.shared.settings.disablePlaintextAuth && !s.secured) return PRIVACY;
  if (user.length === 0 || user.length > 255 || user.includes('\0') || pass.includes('\0')) return delayed(s, FAILED);
  let v;
  const pen = s.shared.penalty;
  try { v = await (pen ? pen.directory(s.shared.directory, s.remoteIp) : s.shared.directory).verifyPlain(user, pass, {
    service: 'imap', remoteIp: s.remoteIp, localIp: s.localIp, remotePort: s.remotePort, localPort: s.localPort, mechanism: method,
  }); } catch (e) {
    s.shared.log.warn(`${s.who()}: auth: ${(e as Error).message}`);
    return { status: 'NO', code: 'UNAVAILABLE', text: 'Temporary authentication failure.' };
  }
  if (v.result === 'tempfail') return { status: 'NO', code: 'UNAVAILABLE', text: 'Temporary authentication failure.' };
  if (v.result === 'disabled' && v.fields?.reason) {
    // nologin + reason (login-common: CLIENT_AUTH_RESULT_AUTHFAILED_REASON)
    return delayed(s, v.fields.reason.startsWith('[') ? { status: 'NO', text: v.fields.reason } : { status: 'NO', code: 'CONTACTADMIN', text: v.fields.reason });
  }
  if (v.result === 'ok' && v.fields && ('proxy' in v.fields || 'proxy_maybe' in v.fields)) {
    const r = await proxyImap(s, c, v.user ?? user, pass, v.fields);
    if (r !== 'local') return r;
  }
  if (v.result !== 'ok') {
    s.shared.log.info(`imap-login: Disconnected... auth failed: user=<${user.slice(0, 64)}>, method=${method}, rip=${s.remoteIp}, lip=${s.localIp}, session=<${s.id}>`);
    return pen ? FAILED : delayed(s, FAILED);   // the auth penalty has held the failure already
  }
  const name = v.user ?? user;
  let rec;
  try { rec = await s.shared.directory.lookup(name); } catch (e) {
    s.shared.log.warn(`${s.who()}: userdb lookup: ${(e as Error).message}`);
    return { status: 'NO', code: 'UNAVAILABLE', text: 'Temporary authentication failure.' };
  }
  if (!rec) return delayed(s, FAILED);
  const max = s.shared.settings.maxUserIpConnections;
  if (max > 0 && (await s.shared.userIp.count(`${rec.user}\0${s.remoteIp}`)) >= max) {
    return { status: 'NO', code: 'LIMIT', text: `Maximum number of connections from user+IP exceeded (mail_max_userip_connections=${max})` };
  }
  // auto = subscribe: subscribed without a line in the subscriptions file, as Dovecot
  const autoSubscribed = s.shared.settings.specialMailboxes.filter((m) => m.auto === 'subscribe').map((m) => m.name);
  const mailUser = withAutoSubscribe(withSharedNamespace(s, rec, await s.shared.store.forUser(rec)), autoSubscribed);
  s.shared.loginSucceeded(s.remoteIp);
  await s.loggedIn(rec, mailUser, method);
  autoCreatePending.add(s);
  return { status: 'OK', code: `CAPABILITY ${capabilityList(s).join(' ')}`, text: 'Logged in', noTiming: true };
}

/** With a shared namespace (mail-namespace.ts): other users' mailboxes under its prefix. */
function withSharedNamespace(s: ImapSession, rec: UserRecord, u: MailUser): MailUser {
  const ns = s.shared.settings.sharedNamespace;
  const pubs = s.shared.settings.publicNamespaces;
  if (!ns && pubs.length === 0) return u;
  const publics = pubs.map((p) => ({
    prefix: p.prefix,
    // a public namespace's Maildir belongs to nobody: opened as a user named after its prefix
    open: () => s.shared.store.forUser({ user: `public:${p.prefix}`, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, home: '', mail: p.location }),
  }));
  const groups = (rec.extra?.['acl_groups'] ?? '').split(',').map((g) => g.trim()).filter((g) => g !== '');
  // INDEXPVT=~/Maildir/shared/%%u: this reader's private \Seen of each owner (mail-private-flags.ts)
  const pvt = ns?.indexPvt;
  const indexPvt = pvt && rec.home ? (owner: string): string => pvt.replace(/%%?u/g, owner.replace(/[/\0]/g, '_')).replace(/^~(?=\/|$)/, rec.home) : undefined;
  return new SharedNamespaceUser(u, { prefix: ns?.prefix ?? '', ...(ns?.dictPath ? { dictPath: ns.dictPath } : {}), groups, publics, ...(indexPvt ? { indexPvt } : {}) }, async (owner) => {
    const rec = await s.shared.directory.lookup(owner);
    return rec ? s.shared.store.forUser(rec) : undefined;
  });
}

/** Sessions logged in whose `auto` mailboxes are not made yet (autoCreateBeforeCommand). */
const autoCreatePending = new WeakSet<ImapSession>();

/** Commands that look at no mailbox but the selected one: `auto` mailboxes are not made for them. */
const NO_OTHER_MAILBOX = new Set(['LOGOUT', 'NOOP', 'CAPABILITY', 'ID', 'ENABLE', 'NAMESPACE', 'CHECK', 'CLOSE', 'UNSELECT',
  'IDLE', 'FETCH', 'STORE', 'SEARCH', 'SORT', 'THREAD', 'EXPUNGE', 'UID FETCH', 'UID STORE', 'UID SEARCH', 'UID SORT',
  'UID THREAD', 'UID EXPUNGE']);

/**
 * dovecot.conf `mailbox X { auto = create | subscribe }`: made before the first command after
 * login that may look at mailboxes other than INBOX (Dovecot makes them when first listed or
 * opened), so a LOGIN + LOGOUT, or a session that only reads INBOX, writes nothing: a new user's
 * first LOGIN costs what a later one does (making two mailboxes is a dozen directory and file
 * writes, each flushed: 10-15x the rest of a LOGIN). `subscribe` is not written into the
 * subscriptions file (lib-storage/mail-autosubscribe.ts lists it as subscribed). Called by the
 * session before every command.
 */
export async function autoCreateBeforeCommand(s: ImapSession, name: string, args: readonly ImapArg[]): Promise<void> {
  if (!autoCreatePending.has(s) || NO_OTHER_MAILBOX.has(name)) return;
  if ((name === 'SELECT' || name === 'EXAMINE') && argString(args[0])?.toUpperCase() === 'INBOX') return;
  autoCreatePending.delete(s);
  if (s.user) await autoCreate(s);
}

async function autoCreate(s: ImapSession): Promise<void> {
  const u = s.user!;
  for (const mb of s.shared.settings.specialMailboxes) {
    if (mb.auto !== 'create' && mb.auto !== 'subscribe') continue;
    try {
      if (!(await u.exists(mb.name))) await u.create(mb.name);
    } catch (e) {
      s.shared.log.warn(`${s.who()}: autocreate ${mb.name}: ${(e as Error).message}`);
    }
  }
}

export async function cmdLogin(s: ImapSession, c: CommandContext): Promise<Reply | undefined> {
  if (c.args.length !== 2) return { status: 'BAD', text: 'Error in IMAP command received by server.' };
  const user = argAstring(c.args[0], 'user name');
  const pass = argBytes(c.args[1])?.toString('utf8');
  if (pass === undefined) return { status: 'BAD', text: 'Error in IMAP command received by server.' };
  return authenticate(s, c, user, pass, 'PLAIN');
}

/**
 * The passdb said proxy: log in at the backend (lib-login/login-proxy.ts), give the client the
 * backend's tagged reply and relay the connection. 'local' when proxy_maybe points here.
 */
async function proxyImap(s: ImapSession, c: CommandContext, user: string, pass: string, fields: Record<string, string>): Promise<Reply | undefined | 'local'> {
  const client = { remoteIp: s.remoteIp, remotePort: s.remotePort, localIp: s.localIp, localPort: s.localPort, sessionId: s.id };
  const unavailable: Reply = { status: 'NO', code: 'UNAVAILABLE', text: PROXY_FAILURE_MSG };
  let dest;
  try {
    dest = proxyDestination('imap', fields, { user, password: pass }, client);
  } catch (e) {
    s.shared.log.error(`proxy(${user}): ${(e as Error).message}: rip=${s.remoteIp}, lip=${s.localIp}, session=<${s.id}>`);
    return unavailable;
  }
  if (!dest) return 'local';
  let b;
  try {
    b = await proxyLogin('imap', dest, client, s.shared.log, user);
  } catch (e) {
    const err = e as ProxyError;
    if (s.isClosed) return undefined;
    if (err.kind === 'authfailed') {
      if (err.backendReply) { s.send(`${c.tag} ${err.backendReply}\r\n`); return undefined; }
      return delayed(s, FAILED);
    }
    return unavailable;
  }
  if (s.isClosed) { b.sock.destroy(); return undefined; }
  s.shared.loginSucceeded(s.remoteIp);
  s.send(`${c.tag} ${b.reply}\r\n`);
  const { sock, rest } = s.handOff();
  void proxySplice(sock, rest, b.sock, b.rest, { log: s.shared.log, user, remoteIp: s.remoteIp });
  return undefined;
}

function b64(line: string): Buffer | undefined {
  if (line === '=') return Buffer.alloc(0); // RFC 4959: empty initial response
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length % 4 !== 0) return undefined;
  return Buffer.from(line, 'base64');
}

export async function cmdAuthenticate(s: ImapSession, c: CommandContext): Promise<Reply | undefined> {
  const mech = argString(c.args[0])?.toUpperCase();
  if (!mech || c.args.length > 2) return { status: 'BAD', text: 'Error in IMAP command received by server.' };
  if (!s.shared.settings.mechanisms.includes(mech)) return { status: 'NO', text: 'Unsupported authentication mechanism.' };
  if (s.shared.settings.disablePlaintextAuth && !s.secured) return PRIVACY;
  const initial = c.args[1] !== undefined ? argString(c.args[1]) : undefined;
  const ask = async (challenge: string): Promise<Buffer | Reply> => {
    s.send(`+ ${challenge}\r\n`);
    const line = await s.readLine();
    if (line === undefined) return { status: 'BAD', text: 'Disconnected' };
    if (line === 'too-long') {
      // imap-login: over LOGIN_MAX_AUTH_BUF_SIZE (8192) the connection closes without a reply
      s.shared.log.info(`imap-login: Disconnected: Authentication response too large (client didn't finish SASL auth): user=<>, method=${mech}, rip=${s.remoteIp}, lip=${s.localIp}, session=<${s.id}>`);
      s.close();
      return { status: 'BAD', text: 'Authentication response too large' };
    }
    const t = line.toString('latin1');
    if (t === '*') return { status: 'BAD', text: 'Authentication aborted by client.' };
    const d = b64(t);
    if (!d) return { status: 'BAD', text: 'Invalid base64 data in continued response' };
    return d;
  };
  if (isOAuth2Mechanism(mech)) {
    let resp: Buffer | Reply;
    if (initial !== undefined) resp = b64(initial) ?? { status: 'BAD', text: 'Invalid base64 data in initial response' };
    else resp = await ask('');
    if (!Buffer.isBuffer(resp)) return resp;
    const m = parseOAuth2Message(mech, resp);
    if ('error' in m) {
      s.shared.log.info(`imap-login: ${mech}: ${m.error}: rip=${s.remoteIp}, session=<${s.id}>`);
      return delayed(s, FAILED);
    }
    const r = await authenticate(s, c, m.user, m.token, mech);
    if (!r || r.code !== 'AUTHENTICATIONFAILED' || s.isClosed) return r;
    // RFC 7628 §3.2.2: the error as a challenge; the client's dummy response ends the exchange
    const dummy = await ask(oauth2ErrorChallenge(mech));
    if (!Buffer.isBuffer(dummy) && dummy.text === 'Disconnected') return dummy;
    return r;
  }
  if (mech === 'PLAIN') {
    let resp: Buffer | Reply;
    if (initial !== undefined) resp = b64(initial) ?? { status: 'BAD', text: 'Invalid base64 data in initial response' };
    else resp = await ask('');
    if (!Buffer.isBuffer(resp)) return resp;
    // RFC 4616: [authzid] NUL authcid NUL passwd
    const parts = resp.toString('utf8').split('\0');
    if (parts.length !== 3) return delayed(s, FAILED);
    const [authz, authc, pass] = parts as [string, string, string];
    if (authz !== '' && authz !== authc) return delayed(s, FAILED); // no master users
    return authenticate(s, c, authc, pass, 'PLAIN');
  }
  // LOGIN: "Username:" then "Password:"
  let user: Buffer | Reply;
  if (initial !== undefined) user = b64(initial) ?? { status: 'BAD', text: 'Invalid base64 data in initial response' };
  else user = await ask(Buffer.from('Username:').toString('base64'));
  if (!Buffer.isBuffer(user)) return user;
  const pass = await ask(Buffer.from('Password:').toString('base64'));
  if (!Buffer.isBuffer(pass)) return pass;
  return authenticate(s, c, user.toString('utf8'), pass.toString('utf8'), 'LOGIN');
}
