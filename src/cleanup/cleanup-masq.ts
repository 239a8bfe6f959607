/**
 * cleanup-masq - address masquerading (Postfix cleanup/cleanup_masq.c, ADDRESS_REWRITING_README
 * "Address masquerading"): `user@host.sub.example.com` becomes `user@example.com` when
 * masquerade_domains lists example.com. The list is tried in order and the first domain that
 * equals or is a parent of the address's domain decides: an equal domain stops without change,
 * a `!domain` entry stops without change (an exception), a parent domain replaces the address's
 * domain. Local parts listed in masquerade_exceptions are never masqueraded. Which addresses are
 * masqueraded is masquerade_classes (default envelope_sender, header_sender, header_recipient).
 */

export function masquerade(address: string, domains: readonly string[], exceptions: ReadonlySet<string>): string {
  const at = address.lastIndexOf('@');
  if (at < 0 || domains.length === 0) return address;
  const user = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (exceptions.has(user.toLowerCase())) return address;
  const d = domain.toLowerCase();
  for (const entry of domains) {
    const excluded = entry.startsWith('!');
    const masq = (excluded ? entry.slice(1) : entry).toLowerCase();
    if (!masq) continue;
    if (masq.length === d.length) {
      if (masq === d) break;
    } else if (masq.length < d.length) {
      const parent = d.slice(d.length - masq.length);
      if (d[d.length - masq.length - 1] === '.' && parent === masq) {
        return excluded ? address : `${user}@${masq}`;
      }
    }
  }
  return address;
}
