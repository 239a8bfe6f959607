/**
 * cmd-idle - IDLE (RFC 2177): `+ idling`, then untagged EXISTS/EXPUNGE/FETCH pushed as soon as
 * the store signals a change (Mailbox.watch: the in-process bus for deliveries by this process,
 * inotify for other writers — no polling), `* OK Still here` every imap_idle_notify_interval
 * (Dovecot's keepalive; the only timer a session holds), and `OK Idle completed` after DONE.
 * Anything but DONE (or a line over imap_max_line_length): `BAD Expected DONE`. IDLE in the authenticated state just waits for DONE.
 */
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { syncToClient } from './imapd-sync.ts';

export async function cmdIdle(s: ImapSession, _c: CommandContext): Promise<Reply | undefined> {
  const box = s.box;
  let syncing = false;
  let again = false;
  let stopped = false;
  const push = async (): Promise<void> => {
    if (stopped) return;
    if (syncing) { again = true; return; }
    syncing = true;
    try {
      do { again = false; await syncToClient(s, true); } while (again && !stopped);
    } catch (e) {
      s.shared.log.warn(`${s.who()}: IDLE sync: ${(e as Error).message}`);
    } finally { syncing = false; }
  };
  const unwatch = box ? box.watch(() => { void push(); }) : undefined;
  const notifyMs = s.shared.settings.idleNotifyMs;
  const timer = notifyMs > 0 ? setInterval(() => { s.send('* OK Still here\r\n'); }, notifyMs) : undefined;
  timer?.unref();
  s.send('+ idling\r\n');
  s.inIdle = true;
  s.notify?.commandDone(); // NOTIFY (RFC 5465): other mailboxes' events are pushed during IDLE too
  if (box) await push(); // anything that happened just before IDLE
  const line = await s.readLine();
  s.inIdle = false;
  stopped = true;
  unwatch?.();
  if (timer) clearInterval(timer);
  if (line === undefined) return undefined;
  while (syncing) await new Promise((r) => setImmediate(r));
  // Dovecot: "BAD Expected DONE" (its timing text follows), also for a line too long to read
  if (line === 'too-long' || line.toString('latin1').toUpperCase() !== 'DONE') return { status: 'BAD', text: 'Expected DONE' };
  return { status: 'OK', text: 'Idle completed' };
}
