/**
 * local-sieve - local(8)'s home_mailbox Maildir delivery through the user's Sieve scripts
 * (Pigeonhole in Dovecot's LDA, which sites run as local(8)'s mailbox_command): enabled by
 * dovecot.conf `protocol lda { mail_plugins = $mail_plugins sieve }`. The home is the UNIX
 * account's home ($HOME/.dovecot.sieve, $HOME/sieve/), the INBOX the home_mailbox Maildir.
 *
 * SECURITY: as for every home_mailbox write (local-file.ts), when Postern runs as root the
 * scripts run and the Maildir is written in a child process with the user's uid and gid
 * (local-sieve-child.ts): a script or a symlink in the user's home can reach nothing the user
 * cannot. The child returns what Sieve wants sent (redirects, vacation replies, rejections,
 * notifications) and this process queues them through cleanup, as forwarded mail is.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { deliverToMaildirWithSieve, MailError, type SieveSend } from '../lib-storage/mail-deliver.ts';
import type { SieveSettings } from '../lib-sieve/sieve-settings.ts';
import type { FileOutcome, Privs } from './local-file.ts';
import { isRoot, log, type State } from './local-state.ts';

const CHILD = join(import.meta.dirname, 'local-sieve-child.ts');

/** What the child is told (JSON in POSTERN_SIEVE_JOB). */
export interface SieveJob {
  maildir: string;
  home: string;
  user: string;
  envelope: { from: string; to: string; origTo?: string };
  settings: Omit<SieveSettings, 'extensions'> & { extensions: string[] };
}

export async function deliverMaildirSieve(st: State, home: string, maildir: string, user: string, sender: string, msg: Buffer, privs: Privs): Promise<FileOutcome> {
  const s = st.lc.sieve!;
  const qid = st.req.qf.queueId;
  const envelope = { from: sender, to: st.top.address, ...(st.top.orig ? { origTo: st.top.orig } : {}) };
  const submit = async (m: SieveSend): Promise<void> => {
    const r = await st.lc.forwarder(m.sender, m.recipients, m.content, qid);
    if ('reject' in r) throw new Error(r.reject);
    log.info(`${qid}: sieve ${m.kind} from <${m.sender}> to <${m.recipients.join('>, <')}> queued as ${r.queueId}`);
  };
  const what = `maildir ${maildir}/`;
  if (!isRoot) {
    try {
      const r = await deliverToMaildirWithSieve(maildir, {
        user, home, settings: s, envelope, content: msg, submit,
        log: { info: (l) => log.info(`${qid}: ${l}`), warn: (l) => log.warn(`${qid}: ${l}`), error: (l) => log.warn(`${qid}: ${l}`) },
      });
      return { status: 'sent', dsn: '2.0.0', text: `delivered to ${what}${r.stored.length ? ` (${r.stored.join(', ')})` : ' by sieve (no mailbox stored)'}` };
    } catch (e) {
      const soft = !(e instanceof MailError) || e.code === 'TEMP' || e.code === 'NOQUOTA' || e.code === 'INUSE';
      return { status: soft ? 'deferred' : 'bounced', dsn: soft ? '4.2.0' : '5.2.0', text: `cannot append message to ${what}: ${e instanceof MailError ? (e.detail ?? e.message) : (e as Error).message}` };
    }
  }
  if (privs.uid === 0) return { status: 'deferred', dsn: '4.3.0', text: `refusing delivery to ${what} with root privileges` };
  const job: SieveJob = { maildir, home, user, envelope, settings: { ...s, extensions: [...s.extensions] } };
  const r = await runChild(job, msg, privs);
  if (r.code !== 0) {
    const soft = r.code === 75 || r.code === null;
    return { status: soft ? 'deferred' : 'bounced', dsn: soft ? '4.2.0' : '5.2.0', text: `cannot append message to ${what}: ${r.err || `exit status ${r.code}`}` };
  }
  let stored = '';
  for (const line of r.out.split('\n')) {
    if (line === '') continue;
    const m = JSON.parse(line) as { log?: string; stored?: string[]; send?: { kind: SieveSend['kind']; sender: string; recipients: string[]; content: string } };
    if (m.log) log.info(`${qid}: ${m.log}`);
    if (m.stored) stored = m.stored.join(', ');
    if (m.send) {
      try { await submit({ ...m.send, content: Buffer.from(m.send.content, 'base64') }); } catch (e) { log.warn(`${qid}: sieve: failed to queue ${m.send.kind}: ${(e as Error).message}`); }
    }
  }
  return { status: 'sent', dsn: '2.0.0', text: `delivered to ${what}${stored ? ` (${stored})` : ' by sieve (no mailbox stored)'}` };
}

function runChild(job: SieveJob, content: Buffer, privs: Privs): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD], {
      uid: privs.uid, gid: privs.gid, cwd: '/', stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', POSTERN_SIEVE_JOB: JSON.stringify(job) },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { if (err.length < 1000) err += b.toString(); });
    child.stdin!.on('error', () => {});
    child.on('error', (e) => resolve({ code: null, out, err: e.message }));
    child.on('close', (code) => resolve({ code, out, err: err.trim() }));
    child.stdin!.end(content);
  });
}
