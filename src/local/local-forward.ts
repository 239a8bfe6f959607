/**
 * local-forward - re-submission of the addresses an expansion sends elsewhere (Postfix
 * local/forward.c: forward_append, forward_finish). Addresses are collected per envelope
 * sender while one recipient is expanded; then each sender's addresses go into ONE new queue
 * file through cleanup, with `Delivered-To: <recipient>` prepended (frozen_delivered_to), and
 * the recipient is "forwarded as QID[, QID]". A failure to queue defers the recipient.
 * The queue file itself is made by cleanup(8), through the Forwarder local.ts gives.
 */
import { SENT, traced, type Outcome, type State } from './local-state.ts';

/** One new queue file through cleanup: its queue ID, or cleanup's rejection text. Throws on failure. */
export type Forwarder = (sender: string, recipients: Iterable<string>, message: Buffer, logIdent: string) => Promise<{ queueId: string } | { reject: string }>;

/**
 * A redirect names no address: it stands for the top-level recipient. An address reached
 * through an expansion that needs another transport is re-submitted instead (a new queue
 * file), so that qmgr sees it as a recipient of its own and local(8) redirects it then.
 */
export function forward(st: State, sender: string, address: string): Outcome {
  // An address verification probe is not forwarded (Postfix indirect.c).
  if (st.req.verify) return traced(st, address, SENT(`forwards to ${address}`));
  let set = st.forwards.get(sender);
  if (!set) st.forwards.set(sender, set = new Set());
  set.add(address);
  return SENT('forwarded');
}

/** Queue what forward() collected for this recipient; undefined when nothing was. */
export async function flushForwards(st: State): Promise<Outcome | undefined> {
  if (st.forwards.size === 0) return undefined;
  const ids: string[] = [];
  const headers = Buffer.from(`Delivered-To: ${st.top.address.toLowerCase()}\n`);
  try {
    for (const [sender, rcpts] of st.forwards) {
      const r = await st.lc.forwarder(sender, rcpts, Buffer.concat([headers, st.content]), st.req.qf.queueId);
      if ('reject' in r) return { status: 'deferred', dsn: '4.3.0', text: `cannot forward: ${r.reject}` };
      ids.push(r.queueId);
    }
  } catch (e) {
    return { status: 'deferred', dsn: '4.3.0', text: `cannot forward: ${(e as Error).message}` };
  } finally {
    st.forwards.clear();
  }
  return SENT(`forwarded as ${ids.join(', ')}`);
}
