/**
 * mail-trigger - wake a service up (Postfix global/mail_trigger.c: a byte written to
 * public/qmgr or public/pickup). Services run in the master's process, so a trigger is an
 * in-process call: cleanup triggers qmgr with the new queue ID ("I" = incoming), postdrop/pickup
 * and `postern queue flush` trigger the same way. When nobody listens (the daemons are down), a
 * trigger is a no-op: the queue file is safe on disk and qmgr scans it at start.
 *
 * Services in a thread or child process of their own (master-thread.ts, master-process.ts):
 * the master listens for their service name and passes the trigger on (postMessage / IPC);
 * inside such a thread or child, a trigger nobody listens to there goes to the master through
 * the forwarder that setTriggerForwarder() installed, which passes it on in turn.
 */

/**
 * The trigger file of qmgr in $queue_directory/public (Postfix's public/qmgr fifo), for writers in
 * another process (`postern queue flush`): qmgr watches it and reads the letters appended.
 */
export const QMGR_TRIGGER = 'qmgr.trigger';

export type TriggerHandler = (what: string) => void;

const listeners = new Map<string, Set<TriggerHandler>>();
let forwarder: ((service: string, what: string) => boolean) | undefined;

/** Where triggers without a listener in this thread go (the master, from a service's thread or child). */
export function setTriggerForwarder(f: ((service: string, what: string) => boolean) | undefined): void {
  forwarder = f;
}

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
  if (!s || s.size === 0) return forwarder?.(service, what) ?? false;
  for (const h of s) {
    try { h(what); } catch { /* a listener's failure is its own business */ }
  }
  return true;
}
