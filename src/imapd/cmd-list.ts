/**
 * cmd-list - LIST (RFC 3501 §6.3.8) with LIST-EXTENDED (RFC 5258: selection SUBSCRIBED,
 * RECURSIVEMATCH, SPECIAL-USE; return SUBSCRIBED, CHILDREN, SPECIAL-USE, STATUS of RFC 5819),
 * SPECIAL-USE attributes (RFC 6154) from dovecot.conf `namespace inbox { mailbox X
 * { special_use = \Sent } }` and from CREATE ... (USE (...)) (cmd-create.ts), and LSUB (RFC 3501 §6.3.9). Attribute order as Dovecot:
 * `(\Subscribed \HasNoChildren \Sent)`; LSUB shows special-use but not children.
 * `LIST "" ""` answers the hierarchy delimiter: `* LIST (\Noselect) "/" ""`. After ENABLE
 * IMAP4rev2: names in UTF-8, and \NonExistent instead of \Noselect for names that are not mailboxes.
 */
import { parseListArgs, type StatusItem } from '../lib-imap/imap-command-args.ts';
import { argBytes } from '../lib-imap/imap-parser.ts';
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import { decodeMailboxName } from '../lib-imap/imap-utf7.ts';
import type { MailboxInfo } from '../lib-storage/mail-storage.ts';
import { aclOn, myRights } from './imapd-acl.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxOut, utf8Names } from './imapd-names.ts';
import { statusLine } from './cmd-status.ts';

/**
 * A LIST pattern (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the separator; a
 * leading INBOX matches in any case (RFC 3501 §5.1). Matched as a set of positions in the
 * pattern (no regular expression, no backtracking), so a 64 KB pattern of `]` or `*a*a*...`
 * costs name length × pattern length at most.
 */
export function listPattern(pattern: string, sep: string): (name: string) => boolean {
  const p: string[] = [];
  for (const ch of pattern) {
    if (ch === '*' && (p[p.length - 1] === '*' || p[p.length - 1] === '%')) { p[p.length - 1] = '*'; continue; }
    if (ch === '%' && (p[p.length - 1] === '*' || p[p.length - 1] === '%')) continue;
    p.push(ch);
  }
  const inboxChars = /^inbox/i.test(pattern) ? 5 : 0;
  const n = p.length;
  return (name: string): boolean => {
    let cur: number[] = [];
    const mark = new Uint32Array(n + 1);
    let gen = 1;
    const add = (list: number[], i: number): void => {
      // i and, through wildcards that match nothing, the positions after it
      for (; i <= n && mark[i] !== gen; i++) {
        mark[i] = gen;
        list.push(i);
        if (p[i] !== '*' && p[i] !== '%') break;
      }
    };
    add(cur, 0);
    for (const c of name) {
      gen++;
      const next: number[] = [];
      for (const i of cur) {
        if (i === n) continue;
        const t = p[i]!;
        if (t === '*') add(next, i);
        else if (t === '%') { if (c !== sep) add(next, i); }
        else if (t === c || (i < inboxChars && t.toLowerCase() === c.toLowerCase())) add(next, i + 1);
      }
      if (next.length === 0) return false;
      cur = next;
    }
    return cur.includes(n);
  };
}

function specialUse(s: ImapSession, name: string): string[] {
  return s.shared.settings.specialMailboxes.find((m) => m.name === name)?.specialUse ?? [];
}

function decodePattern(raw: Buffer, utf8: boolean): string {
  try { return decodeMailboxName(raw, utf8); } catch { return raw.toString('latin1'); }
}

async function list(s: ImapSession, c: CommandContext, lsub: boolean): Promise<Reply> {
  const cmd = lsub
    ? { selection: [] as string[], reference: argBytes(c.args[0]), patterns: [argBytes(c.args[1])], returnOpts: { subscribed: false, children: false, specialUse: false, status: undefined as StatusItem[] | undefined }, extended: false }
    : parseListArgs(c.args);
  if (lsub && (c.args.length !== 2 || !cmd.reference || !cmd.patterns[0])) throw new ImapParseError('Invalid arguments');
  const sep = s.shared.settings.separator;
  const ref = decodePattern(cmd.reference!, utf8Names(s));
  const verb = lsub ? 'LSUB' : 'LIST';
  const out: Buffer[] = [];
  const u = s.user!;
  const patterns = cmd.patterns.map((p) => decodePattern(p!, utf8Names(s)));
  if (!lsub && patterns.length === 1 && patterns[0] === '' && !cmd.extended) {
    await s.send(`* LIST (\\Noselect) "${sep}" ""\r\n`);
    return { status: 'OK', text: 'List completed' };
  }
  const res = patterns.map((p) => listPattern(p.toUpperCase().startsWith('INBOX') ? p : ref + p, sep));
  const prefix = s.shared.settings.prefix;
  const matches = (full: string): boolean => res.some((r) => r(prefix && full !== 'INBOX' ? prefix + full : full));
  const recursive = cmd.selection.includes('RECURSIVEMATCH');
  const specialOnly = cmd.selection.includes('SPECIAL-USE');
  let all: MailboxInfo[] = await u.list();
  // ACL (imapd-acl.ts): mailboxes without the l right are not listed
  if (aclOn(s)) {
    const seen = await Promise.all(all.map(async (m) => m.nonExistent || (await myRights(s, m.name)).includes('l')));
    all = all.filter((_, i) => seen[i]);
    // a namespace level (shared, shared/OWNER, Public) shows only with a visible child
    all = all.filter((m) => !(m.nonExistent && m.attributes.includes('\\HasChildren')) || all.some((k) => !k.nonExistent && k.name.startsWith(m.name + sep)));
  }
  const subs = new Set(await u.subscriptions());
  const byName = new Map(all.map((m) => [m.name, m]));
  const subscribedOnly = lsub || cmd.selection.includes('SUBSCRIBED');
  // children: mailboxes that exist, and with the SUBSCRIBED selection subscribed names too (Dovecot)
  const hasChildren = (n: string): boolean => {
    const pre = n + sep;
    for (const m of all) if ((!m.nonExistent || (subscribedOnly && subs.has(m.name))) && m.name.startsWith(pre)) return true;
    return false;
  };
  const status = cmd.returnOpts.status;
  const showChildren = lsub ? false : !cmd.extended || cmd.returnOpts.children;
  // RFC 5258 §3.4 / RFC 6154 §5.1: with LIST-EXTENDED syntax, children and special-use
  // attributes only when asked for (as Dovecot)
  const showSpecial = !cmd.extended || cmd.returnOpts.specialUse || specialOnly;
  // RFC 3501 §6.3.9 (LSUB) and RFC 5258 §3.5 (RECURSIVEMATCH): a subscribed name the patterns
  // do not match makes its nearest matching parent show up (LSUB: \Noselect unless subscribed
  // itself; LIST: CHILDINFO ("SUBSCRIBED")), as Dovecot walks the subscriptions
  const childInfo = new Set<string>();
  let names: string[];
  if (subscribedOnly) {
    const listed = new Set<string>();
    for (const n of [...subs].sort()) {
      const self = matches(n);
      if (self) listed.add(n);
      if (!lsub && !recursive) continue;
      // the nearest matching parent has a subscribed child; it is listed for it only when the
      // child itself is not (so `*` lists a/b/c alone, `%` lists a with CHILDINFO)
      for (let p = n, i = p.lastIndexOf(sep); i > 0; i = p.lastIndexOf(sep)) {
        p = p.slice(0, i);
        if (matches(p)) { childInfo.add(p); if (!self) listed.add(p); break; }
      }
    }
    names = [...listed].sort((a, b) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  } else {
    names = all.filter((m) => matches(m.name) && !(m.nonExistent && !hasChildren(m.name))).map((m) => m.name);
  }
  for (const full of names) {
    const m = byName.get(full);
    const exists = m !== undefined && !m.nonExistent;
    const subscribed = subs.has(full);
    const selfListed = !subscribedOnly || (subscribed && matches(full));
    // dovecot.conf's special_use, then those given at CREATE (RFC 6154 §3, cmd-create.ts)
    const su = [...specialUse(s, full)];
    if (exists && (showSpecial || specialOnly) && u.specialUse) for (const a of await u.specialUse(full).catch(() => [])) if (!su.includes(a)) su.push(a);
    if (specialOnly && su.length === 0) continue;
    const attrs: string[] = [];
    if (lsub) {
      if (!selfListed) attrs.push('\\Noselect');
    } else {
      if ((cmd.selection.includes('SUBSCRIBED') || cmd.returnOpts.subscribed) && subscribed) attrs.push('\\Subscribed');
      // not a mailbox: \NonExistent with LIST-EXTENDED syntax or IMAP4rev2 (RFC 5258 §3, RFC 9051 §7.3.1), else \Noselect
      if (!exists) attrs.push(cmd.extended || s.rev2 ? '\\NonExistent' : '\\Noselect');
      for (const a of m?.attributes ?? []) {
        if (a === '\\Noselect' || a === '\\NonExistent' || a === '\\Subscribed' || a === '\\HasChildren' || a === '\\HasNoChildren') continue;
        if (!attrs.includes(a)) attrs.push(a);
      }
      if (showChildren) attrs.push(hasChildren(full) ? '\\HasChildren' : '\\HasNoChildren');
    }
    if (showSpecial && selfListed) for (const a of su) if (!attrs.includes(a)) attrs.push(a);
    const extra = !lsub && recursive && childInfo.has(full) ? ' (CHILDINFO ("SUBSCRIBED"))' : '';
    out.push(Buffer.concat([Buffer.from(`* ${verb} (${attrs.join(' ')}) "${sep === '"' || sep === '\\' ? '\\' + sep : sep}" `), mailboxOut(s, full), Buffer.from(`${extra}\r\n`)]));
    // ACL: no STATUS without the r right (Dovecot answers its NO untagged)
    if (status && exists && aclOn(s) && !(await myRights(s, full)).includes('r')) out.push(Buffer.from('* NO [NOPERM] Permission denied\r\n'));
    else if (status && exists) {
      try { out.push(await statusLine(s, full, status)); } catch { /* RFC 5819 §2: omit STATUS for mailboxes that fail */ }
    }
  }
  await s.send(Buffer.concat(out));
  return { status: 'OK', text: lsub ? 'Lsub completed' : 'List completed' };
}

export function cmdList(s: ImapSession, c: CommandContext): Promise<Reply> { return list(s, c, false); }
export function cmdLsub(s: ImapSession, c: CommandContext): Promise<Reply> { return list(s, c, true); }
