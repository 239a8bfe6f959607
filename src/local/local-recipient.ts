/**
 * local-recipient - one recipient through local(8), in Postfix local/recipient.c's order:
 * the Delivered-To: loop check, then for each address of the expansion: a domain that is not
 * ours is forwarded (local-forward.ts); a local name is checked for loops, nesting and
 * duplicates, then tried as an alias (local-alias.ts), a UNIX account's ~/.forward
 * (local-dotforward.ts) and mailbox (local-mailbox.ts); a name that is none of these is
 * unknown (local-unknown.ts). A name in its own expansion skips its alias (from its alias) or
 * goes straight to its mailbox (from its .forward, or written \name). The forwards collected
 * are queued when the recipient is done, and the result says so.
 */
import { extensionIndex } from '../global/mail-addr-find.ts';
import { hasDeliveredTo } from '../global/delivered-hdr.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { getpwnam } from '../util/dict-unix.ts';
import { deliverAlias } from './local-alias.ts';
import { deliverDotForward } from './local-dotforward.ts';
import { flushForwards, forward } from './local-forward.ts';
import { deliverMailbox } from './local-mailbox.ts';
import { MAX_LEVEL, SENT, traced, worst, type Outcome, type State, type Walk } from './local-state.ts';
import { deliverUnknown } from './local-unknown.ts';

export async function deliverRecipient(st: State, r: QueueRecipient): Promise<Outcome> {
  if (hasDeliveredTo(st.content, r.address)) return { status: 'bounced', dsn: '5.4.6', text: `mail forwarding loop for ${r.address}` };
  const out = await deliverAddress(st, r.address, { sender: st.req.qf.sender, level: 0, path: [] });
  const fw = await flushForwards(st);
  if (!fw) return out;
  if (out.status === 'sent' && fw.status === 'sent') return out.text === 'forwarded' ? fw : { ...out, text: `${out.text}; ${fw.text}` };
  return worst(out, fw);
}

/** One address: local → recursion, remote → forward. */
export async function deliverAddress(st: State, address: string, w: Walk, noExpand = false): Promise<Outcome> {
  const at = address.lastIndexOf('@');
  const domain = at < 0 ? '' : address.slice(at + 1);
  if (domain !== '' && !st.lc.isLocalDomain(domain)) {
    const key = address.toLowerCase();
    if (st.seen.has(key)) return SENT('duplicate suppressed');
    st.seen.add(key);
    return forward(st, w.sender, address);
  }
  const localPart = at < 0 ? address : address.slice(0, at);
  return deliverLocal(st, localPart, domain || st.lc.s.myorigin, w, noExpand);
}

async function deliverLocal(st: State, localPart: string, domain: string, w: Walk, noExpand: boolean): Promise<Outcome> {
  const { s } = st.lc;
  const name = localPart.toLowerCase();
  const x = extensionIndex(name, s.delim);
  const user = x < 0 ? name : name.slice(0, x);
  const extension = x < 0 ? '' : localPart.slice(x + 1);
  // A name in its own expansion: from its alias → skip the alias (then .forward, mailbox);
  // from its .forward (or written \name) → straight to the mailbox (Postfix recipient.c).
  const self = w.expFrom !== undefined && (w.expFrom === name || w.expFrom === user);
  const mode = noExpand || (self && w.context === 'forward') ? '\\' : self ? '\\a' : '';
  const key = `${name}@${domain.toLowerCase()}${mode}`;
  if (w.path.includes(key)) return { status: 'bounced', dsn: '5.4.6', text: `mail forwarding loop for ${name}@${domain}` };
  if (w.level > MAX_LEVEL) return { status: 'bounced', dsn: '5.4.6', text: `unreasonable alias or .forward nesting for ${name}@${domain}` };
  if (st.seen.has(key)) return SENT('duplicate suppressed');
  st.seen.add(key);
  const ww: Walk = { ...w, path: [...w.path, key], level: w.level + 1 };

  // 1. aliases
  if (mode === '') {
    const a = await deliverAlias(st, name, user, x >= 0, ww);
    if (a) return a;
  }
  const pw = getpwnam(user);
  if (!pw) {   // not an alias, not a UNIX account
    const u = await deliverUnknown(st, name, user, extension, domain, w, ww);
    return u.status === 'bounced' ? traced(st, `${name}@${domain}`, u) : u;
  }
  // 2. ~/.forward (not for a name reached by \name or by its own .forward)
  if (mode !== '\\') {
    const f = await deliverDotForward(st, pw, name, user, extension, domain, ww);
    if (f) return f;
  }
  // 3. mailbox
  const m = await deliverMailbox(st, pw, user, name, extension, domain, ww);
  return st.req.verify && !m.text.startsWith('forwards to ') ? traced(st, `${name}@${domain}`, m) : m;
}
