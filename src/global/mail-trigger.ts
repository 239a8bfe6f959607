/**
 * mail-trigger - wake a service up (Postfix global/mail_trigger.c: a byte written to
 * public/qmgr or public/pickup). Services run in the master's process, so a trigger is an
 * in-process call: cleanup triggers qmgr with the new queue ID ("I" = incoming), postdrop/pickup
 * and `postern queue flush` trigger the same way. When nobody listens (the daemons are down), a
 * trigger is a no-op: the queue file is safe on disk and qmgr scans it at start.
 */

export type TriggerHandler = (what: string) => void;

const listeners = new Map<string, Set<TriggerHandler>>();

/** Register a listener for `service` ("qmgr", "pickup"); returns the function that removes it. */
export function onTrigger(service: string, h: TriggerHandler): () => void {
  let s = listeners.get(service);
  if (!s) { s = new Set(); listeners.set(service, s); }
  s.add(h);
  return () => { s!.delete(h); };
}

/** Wake `service` up; `what` is e.g. a queue ID or Postfix's trigger letter ("I", "F", "W"). */
export function trigger(service: string, what: string): boolean {
  const s = listeners.get(service);
  if (!s || s.size === 0) return false;
  for (const h of s) {
    try { h(what); } catch { /* a listener's failure is its own business */ }
  }
  return true;
}
