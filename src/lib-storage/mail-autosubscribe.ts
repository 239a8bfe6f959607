/**
 * mail-autosubscribe - Dovecot's `mailbox NAME { auto = subscribe }` (dovecot.conf namespace
 * section, doc/wiki MailboxSettings): the mailbox is subscribed without being written into the
 * user's `subscriptions` file. Dovecot 2.3 lists it as subscribed (LSUB, LIST (SUBSCRIBED), the
 * \Subscribed attribute, NOTIFY's `subscribed`) whatever the file says: UNSUBSCRIBE of it answers
 * OK and it stays listed; an explicit SUBSCRIBE writes it into the file as any other name.
 *
 * `withAutoSubscribe(user, names)` wraps a MailUser so that subscriptions() and list() add the
 * names; everything else (and the file) is the user's own.
 */
import type { MailboxInfo, MailUser } from './mail-storage.ts';

export function withAutoSubscribe(u: MailUser, names: readonly string[]): MailUser {
  if (names.length === 0) return u;
  const auto = new Set(names);
  const subscriptions = async (): Promise<string[]> => {
    const subs = await u.subscriptions();
    const have = new Set(subs);
    return [...subs, ...names.filter((n) => !have.has(n))];
  };
  const list = async (): Promise<MailboxInfo[]> => (await u.list()).map((m) => (auto.has(m.name) && !m.subscribed
    ? { ...m, subscribed: true, attributes: [...m.attributes, '\\Subscribed'] }
    : m));
  return new Proxy(u, {
    get(t, p) {
      if (p === 'subscriptions') return subscriptions;
      if (p === 'list') return list;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
