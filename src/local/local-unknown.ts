/**
 * local-unknown - a local name that is neither an alias nor a UNIX account (Postfix
 * local/unknown.c): fallback_transport (a redirect of the recipient, or a forward when the name
 * was reached through an expansion), else luser_relay (expanded with $user $local $extension
 * $domain $recipient $recipient_delimiter, and delivered as \name so it is not expanded
 * again), else bounce 5.1.1 `unknown user: "name"`.
 */
import { parseTransportNexthop } from '../global/deliver-redirect.ts';
import { macExpand } from '../util/mac-expand.ts';
import { forward } from './local-forward.ts';
import { deliverAddress } from './local-recipient.ts';
import { redirectTo, type Outcome, type State, type Walk } from './local-state.ts';

/** `w` is the step that reached the name, `ww` the step below it. */
export async function deliverUnknown(st: State, name: string, user: string, extension: string, domain: string, w: Walk, ww: Walk): Promise<Outcome> {
  const { config, s } = st.lc;
  const fb = parseTransportNexthop(config.get('fallback_transport'), st.req.nexthop);
  if (fb) return ww.path.length > 1 ? forward(st, w.sender, `${name}@${domain}`) : redirectTo(fb);
  const relay = config.get('luser_relay');
  if (relay) {
    const to = macExpand(relay, (n) => ({ user, local: name, extension, domain, recipient: `${name}@${domain}`, recipient_delimiter: s.delim } as Record<string, string>)[n] || undefined, { recurse: false });
    if (to && to.toLowerCase() !== `${name}@${domain}`.toLowerCase()) return deliverAddress(st, to.includes('@') ? to : `${to}@${s.myorigin}`, { ...ww, expFrom: name }, true);
  }
  return { status: 'bounced', dsn: '5.1.1', text: `unknown user: "${name}"` };
}
