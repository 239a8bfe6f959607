/**
 * cmd-misc - the small commands: CAPABILITY, NOOP, CHECK, LOGOUT (RFC 3501 §6.1, §6.4.1),
 * NAMESPACE (RFC 2342), ID (RFC 2971), ENABLE (RFC 5161: CONDSTORE, QRESYNC, IMAP4rev2), CREATE, DELETE,
 * RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 3501 §6.3.3-7), GETQUOTA / GETQUOTAROOT (RFC 9208, limits
 * from the userdb quota_rule), COMPRESS=DEFLATE (RFC 4978, node:zlib raw deflate) and STARTTLS
 * (RFC 3501 §6.2.1, dovecot.conf ssl_cert/ssl_key). Texts as Dovecot 2.3.
 */
import { argAtom, argString, ImapParseError, type ImapArg } from '../lib-imap/imap-parser.ts';
import { isIP } from 'node:net';
import { removeMailboxMetadata } from './cmd-metadata.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import { imapString } from '../lib-imap/imap-compose.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { capabilityList } from './imapd-capability.ts';
import { syncToClient } from './imapd-sync.ts';
import { mailboxArg, mailboxOut, mailboxText } from './imapd-names.ts';
import { enableRev2, IMAP4REV2 } from './imapd-rev2.ts';
import { aclOn, requireCreate, requireRights } from './imapd-acl.ts';

const QUOTA_ROOT = 'User quota';

export async function cmdCapability(s: ImapSession, _c: CommandContext): Promise<Reply> {
  s.send(`* CAPABILITY ${capabilityList(s).join(' ')}\r\n`);
  return s.state === 'nonauth'
    ? { status: 'OK', text: 'Pre-login capabilities listed, post-login capabilities have more.' }
    : { status: 'OK', text: 'Capability completed' };
}

export async function cmdNoop(s: ImapSession, _c: CommandContext): Promise<Reply> {
  return { status: 'OK', text: s.state === 'nonauth' ? 'NOOP completed.' : 'NOOP completed' };
}

export async function cmdCheck(_s: ImapSession, _c: CommandContext): Promise<Reply> {
  return { status: 'OK', text: 'Check completed' };
}

export async function cmdLogout(s: ImapSession, _c: CommandContext): Promise<Reply> {
  const pre = s.state === 'nonauth';
  s.send('* BYE Logging out\r\n');
  s.state = 'logout';
  return { status: 'OK', text: pre ? 'Logout completed.' : 'Logout completed', noTiming: pre, noSync: true, after: () => s.close() };
}

export async function cmdNamespace(s: ImapSession, _c: CommandContext): Promise<Reply> {
  const { prefix, separator } = s.shared.settings;
  const sep = imapString(separator).toString('latin1');
  const shared = s.shared.settings.sharedNamespace;
  const other = shared ? `((${imapString(shared.prefix).toString('latin1')} ${sep}))` : 'NIL';
  const pubs = s.shared.settings.publicNamespaces;
  const pub = pubs.length > 0 ? `(${pubs.map((p) => `(${imapString(p.prefix).toString('latin1')} ${sep})`).join('')})` : 'NIL';
  s.send(`* NAMESPACE ((${imapString(prefix).toString('latin1')} ${sep})) ${other} ${pub}\r\n`);
  return { status: 'OK', text: 'Namespace completed' };
}

/**
 * A proxy in login_trusted_networks forwards its client's address with ID before LOGIN, as
 * Dovecot's imap-login proxy sends it and imap-login honours it (x-originating-ip,
 * x-originating-port, x-connected-ip, x-connected-port): logs, the auth penalty, %r and %l
 * then see the real client. From anyone else these keys are ignored.
 */
function forwardedAddress(s: ImapSession, items: ImapArg[]): void {
  for (let i = 0; i + 1 < items.length; i += 2) {
    const k = argString(items[i])?.toLowerCase();
    const v = argString(items[i + 1]);
    if (k === undefined || v === undefined || v.length > 64) continue;
    const port = Number(v);
    if (k === 'x-originating-ip' && isIP(v)) s.remoteIp = v;
    else if (k === 'x-connected-ip' && isIP(v)) s.localIp = v;
    else if (k === 'x-originating-port' && Number.isInteger(port) && port > 0 && port < 65536) s.remotePort = port;
    else if (k === 'x-connected-port' && Number.isInteger(port) && port > 0 && port < 65536) s.localPort = port;
  }
}

export async function cmdId(s: ImapSession, c: CommandContext): Promise<Reply> {
  const a = c.args[0];
  if (c.args.length !== 1 || (a?.type !== 'list' && a?.type !== 'nil')) throw new ImapParseError('Invalid arguments');
  if (a.type === 'list' && (a.items.length % 2 !== 0 || a.items.length > 60)) throw new ImapParseError('Invalid ID parameters');
  if (a.type === 'list' && s.state === 'nonauth' && s.trustedPeer) forwardedAddress(s, a.items);
  s.send('* ID ("name" "Postern")\r\n');
  return { status: 'OK', text: s.state === 'nonauth' ? 'ID completed.' : 'ID completed' };
}

export async function cmdEnable(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length === 0) throw new ImapParseError('Invalid arguments');
  const done: string[] = [];
  for (const a of c.args) {
    const name = argAtom(a)?.toUpperCase();
    if (!name) throw new ImapParseError('Invalid arguments');
    if (name === 'IMAP4REV2') { if (enableRev2(s)) done.push(IMAP4REV2); continue; } // RFC 9051 §6.3.1
    // RFC 6855 §3: UTF-8 mailbox names and UTF8 APPEND from now on (imapd-names.ts)
    if (name === 'UTF8=ACCEPT') { if (!s.enabled.has(name)) { s.enabled.add(name); done.push(name); } continue; }
    if (name !== 'CONDSTORE' && name !== 'QRESYNC') continue; // RFC 5161 §3.1: unknown ones are ignored
    if (name === 'QRESYNC' && !s.condstore && !done.includes('CONDSTORE')) enableCondstore(s, done);
    if (name === 'CONDSTORE') { enableCondstore(s, done); continue; }
    if (!s.enabled.has(name)) { s.enabled.add(name); done.push(name); }
  }
  s.send(`* ENABLED${done.length ? ' ' + done.join(' ') : ''}\r\n`);
  return { status: 'OK', text: 'Enabled' };
}

function enableCondstore(s: ImapSession, done: string[]): void {
  if (s.condstore) return;
  s.enabled.add('CONDSTORE');
  done.push('CONDSTORE');
  if (s.box) s.send(`* OK [HIGHESTMODSEQ ${Math.max(1, s.box.highestModseq)}] Highest\r\n`);
}

export function stripSep(s: ImapSession, name: string): string {
  const sep = s.shared.settings.separator;
  return name.length > 1 && name.endsWith(sep) ? name.slice(0, -sep.length) : name;
}

export async function cmdDelete(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  const name = mailboxArg(s, c.args[0]);
  if (name === 'INBOX') return { status: 'NO', code: 'CANNOT', text: 'INBOX can\'t be deleted.' };
  if (s.box && s.box.name === name) {
    // Dovecot closes the selected mailbox it deletes, answers OK, and ends the session with
    // `* BYE Selected mailbox was deleted, have to disconnect.` at the next command
    const box = s.box;
    s.box = undefined;
    s.state = 'auth';
    await box.close();
    s.selectedDeleted = true;
  }
  if (aclOn(s) && (await s.user!.exists(name))) await requireRights(s, name, 'x');
  try {
    if (await s.user!.exists(name)) await removeMailboxMetadata(s, name);
    await s.user!.delete(name);
  } catch (e) {
    if (e instanceof MailError && e.code === 'NOTFOUND') return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
    throw e;
  }
  return { status: 'OK', text: 'Delete completed' };
}

export async function cmdRename(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 2) throw new ImapParseError('Invalid arguments');
  const from = mailboxArg(s, c.args[0]);
  const to = stripSep(s, mailboxArg(s, c.args[1]));
  const owner = (n: string): string => s.user!.mailboxOwner?.(n) ?? s.user!.user;
  if (owner(from) !== owner(to) || owner(from) !== s.user!.user) return { status: 'NO', code: 'CANNOT', text: 'Renaming not supported across non-private namespaces' };
  if (aclOn(s) && (await s.user!.exists(from))) {
    await requireRights(s, from, 'x');
    await requireCreate(s, to);
  }
  try { await s.user!.rename(from, to); } catch (e) {
    if (e instanceof MailError && e.code === 'NOTFOUND') return { status: 'NO', code: 'NONEXISTENT', text: `Mailbox doesn't exist: ${mailboxText(from)}` };
    if (e instanceof MailError && e.code === 'EXISTS') return { status: 'NO', code: 'ALREADYEXISTS', text: 'Target mailbox already exists' };
    throw e;
  }
  return { status: 'OK', text: 'Rename completed' };
}

export async function cmdSubscribe(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  const name = mailboxArg(s, c.args[0]);
  // Dovecot subscribes only to mailboxes that exist (RFC 3501 §6.3.6 leaves it to the server)
  if (name !== 'INBOX' && !(await s.user!.list()).some((m) => m.name === name && !m.nonExistent)) {
    return { status: 'NO', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  }
  await s.user!.setSubscribed(name, true);
  return { status: 'OK', text: 'Subscribe completed' };
}

export async function cmdUnsubscribe(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  await s.user!.setSubscribed(mailboxArg(s, c.args[0]), false);
  return { status: 'OK', text: 'Unsubscribe completed' };
}

async function quotaLine(s: ImapSession): Promise<string | undefined> {
  const q = await s.user!.quota();
  const res: string[] = [];
  // RFC 9208 §5.1: STORAGE in units of 1024 octets
  if (q.limitBytes !== undefined) res.push(`STORAGE ${Math.ceil(q.bytes / 1024)} ${Math.floor(q.limitBytes / 1024)}`);
  if (q.limitMessages !== undefined) res.push(`MESSAGE ${q.messages} ${q.limitMessages}`);
  if (res.length === 0) return undefined;
  return `* QUOTA "${QUOTA_ROOT}" (${res.join(' ')})\r\n`;
}

export async function cmdGetQuotaRoot(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  const name = mailboxArg(s, c.args[0]);
  if (!(await s.user!.exists(name))) return { status: 'NO', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  const line = await quotaLine(s);
  const mb = mailboxOut(s, name).toString('latin1');
  s.send(line ? `* QUOTAROOT ${mb} "${QUOTA_ROOT}"\r\n${line}` : `* QUOTAROOT ${mb}\r\n`);
  return { status: 'OK', text: 'Getquotaroot completed' };
}

export async function cmdGetQuota(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  const root = argString(c.args[0]);
  const line = root === QUOTA_ROOT ? await quotaLine(s) : undefined;
  if (!line) return { status: 'NO', text: 'Quota root does not exist' };
  s.send(line);
  return { status: 'OK', text: 'Getquota completed' };
}

export async function cmdCompress(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 1) throw new ImapParseError('Invalid arguments');
  if (argAtom(c.args[0])?.toUpperCase() !== 'DEFLATE') return { status: 'NO', text: `Unknown compression mechanism: ${String(argAtom(c.args[0]) ?? '').slice(0, 30)}` };
  if (s.compressed) return { status: 'NO', code: 'COMPRESSIONACTIVE', text: 'Compression already enabled.' };
  if (s.box) await syncToClient(s, true);
  return { status: 'OK', text: 'Begin compression.', noSync: true, noTiming: true, after: () => s.startCompression() };
}

export async function cmdStartTls(s: ImapSession, _c: CommandContext): Promise<Reply> {
  if (s.secure) return { status: 'BAD', text: 'TLS is already active.' };
  if (!s.shared.settings.starttls) return { status: 'BAD', text: 'TLS support isn\'t enabled.' };
  return { status: 'OK', text: 'Begin TLS negotiation now.', after: () => s.startTls() };
}
