/**
 * pipe-argv - expansion of pipe(8)'s `argv=` command line (Postfix pipe.c expand_argv()).
 *
 * Macros: `$name`, `${name}`, `$(name)`; `$$` is a literal `$`. Per-message macros expand once:
 *   sender nexthop size queue_id client_address client_hostname client_helo client_port
 *   client_protocol sasl_method sasl_sender sasl_username
 * Per-recipient macros make the whole argument repeat once per recipient (so
 * `($recipient)` gives `(a@x)` `(b@y)`):
 *   recipient original_recipient user extension mailbox domain
 * Flags: `u` folds the localpart of $recipient/$original_recipient and $user/$mailbox to lower
 * case; `h` folds their domain, $domain and $nexthop; `q` quotes a localpart with RFC 5322
 * specials as a quoted string. An unknown macro name is a configuration error (pipe.c
 * "unknown macro name" → mail deferred 4.3.5).
 */
import { extensionIndex } from '../global/mail-addr-find.ts';

export interface ArgvRecipient { address: string; orig?: string }

export interface ArgvContext {
  sender: string;
  nexthop: string;
  size: number;
  queueId: string;
  attrs: Record<string, string | undefined>;
  recipients: ArgvRecipient[];
  flags: string;
  recipientDelimiter: string;
}

const PER_MESSAGE = new Set(['sender', 'nexthop', 'size', 'queue_id', 'client_address', 'client_hostname', 'client_helo',
  'client_port', 'client_protocol', 'sasl_method', 'sasl_sender', 'sasl_username']);
const PER_RECIPIENT = new Set(['recipient', 'original_recipient', 'user', 'extension', 'mailbox', 'domain']);

export class ArgvError extends Error {}

const MACRO = /\$(?:\{([^}]*)\}|\(([^)]*)\)|([A-Za-z0-9_]+)|(\$))/g;

function namesIn(arg: string): string[] {
  const out: string[] = [];
  for (const m of arg.matchAll(MACRO)) if (!m[4]) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

/** RFC 5322 quoting of a localpart with specials (Postfix quote_822_local). */
function quoteLocal(local: string): string {
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/.test(local)) return local;
  return `"${local.replace(/(["\\])/g, '\\$1')}"`;
}

function foldAddress(addr: string, flags: string): string {
  const at = addr.lastIndexOf('@');
  let local = at < 0 ? addr : addr.slice(0, at);
  let domain = at < 0 ? undefined : addr.slice(at + 1);
  if (flags.includes('u')) local = local.toLowerCase();
  if (flags.includes('h') && domain !== undefined) domain = domain.toLowerCase();
  if (flags.includes('q')) local = quoteLocal(local);
  return domain === undefined ? local : `${local}@${domain}`;
}

function recipientValues(r: ArgvRecipient, c: ArgvContext): Record<string, string> {
  const at = r.address.lastIndexOf('@');
  const mailbox = at < 0 ? r.address : r.address.slice(0, at);
  const domain = at < 0 ? '' : r.address.slice(at + 1);
  const x = extensionIndex(mailbox, c.recipientDelimiter);
  let user = x < 0 ? mailbox : mailbox.slice(0, x);
  const extension = x < 0 ? '' : mailbox.slice(x + 1);
  let mbox = mailbox;
  if (c.flags.includes('u')) { user = user.toLowerCase(); mbox = mbox.toLowerCase(); }
  return {
    recipient: foldAddress(r.address, c.flags),
    original_recipient: foldAddress(r.orig ?? r.address, c.flags),
    user, extension, mailbox: mbox,
    domain: c.flags.includes('h') ? domain.toLowerCase() : domain,
  };
}

function expandOne(arg: string, values: Record<string, string>): string {
  return arg.replace(MACRO, (_m, a?: string, b?: string, c?: string, dollar?: string) => (dollar ? '$' : values[(a ?? b ?? c)!] ?? ''));
}

/** The command's argv for this request. Throws ArgvError for an unknown macro name. */
export function expandArgv(argv: readonly string[], c: ArgvContext): string[] {
  const msg: Record<string, string> = {
    sender: c.sender,
    nexthop: c.flags.includes('h') ? c.nexthop.toLowerCase() : c.nexthop,
    size: String(c.size),
    queue_id: c.queueId,
    client_address: c.attrs.client_address ?? '',
    client_hostname: c.attrs.client_name ?? '',
    client_helo: c.attrs.helo_name ?? '',
    client_port: c.attrs.client_port ?? '',
    client_protocol: c.attrs.protocol_name ?? '',
    sasl_method: c.attrs.sasl_method ?? '',
    sasl_sender: c.attrs.sasl_sender ?? '',
    sasl_username: c.attrs.sasl_username ?? '',
  };
  const out: string[] = [];
  for (const arg of argv) {
    const names = namesIn(arg);
    for (const n of names) if (!PER_MESSAGE.has(n) && !PER_RECIPIENT.has(n)) throw new ArgvError(`unknown macro name "${n}" in command line argument "${arg}"`);
    if (!names.some((n) => PER_RECIPIENT.has(n))) { out.push(expandOne(arg, msg)); continue; }
    for (const r of c.recipients) out.push(expandOne(arg, { ...msg, ...recipientValues(r, c) }));
  }
  return out;
}
