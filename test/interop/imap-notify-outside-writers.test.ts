/**
 * NOTIFY (RFC 5465) and IDLE for changes made by OTHER PROCESSES: real Dovecot 2.3's doveadm
 * (`save`, `flags add`, `expunge`, `mailbox create/delete`, each a process of its own, running
 * as the mail user on the same Maildir, as on a site where Dovecot's LDA or doveadm share the
 * mail store with Postern) while a Python imaplib client, with raw NOTIFY commands, waits on
 * Postern's imapd. What is asserted is what the client receives:
 *   - a delivery, a \Seen flag, an expunge in the 150th of 200 mailboxes (far beyond the 32 the
 *     first version watched): `* STATUS f00150 (...)` with the right counts each time;
 *   - a folder created by doveadm: `* LIST` and, after a delivery into it, its STATUS (the new
 *     folder is watched from then on); a folder deleted and re-created under a watch: the
 *     deletion, then a delivery into the new folder of the same name, reported; the same when a
 *     shell removes and re-creates a folder in one instant;
 *   - imapflow in IDLE on the 190th mailbox is told of doveadm's delivery (`exists`);
 *   - the kernel's inotify limits exhausted: Postern in a process of its own under a user
 *     namespace whose max_inotify_watches is 40 (or max_inotify_instances 0): the mailboxes past
 *     the limit are looked at every mailbox_idle_check_interval (1 s here), the deliveries are still
 *     reported, a folder Dovecot creates is announced and watched (without any inotify instance,
 *     through the root's mtime), and the log names the sysctl to raise, once.
 * Skipped, with the reason, when doveadm is missing or the tests do not run as root (Dovecot
 * runs as the mail user 5000 on these files), or (the last two) when unshare -U is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ImapFlow } from 'imapflow';
import { startFixture, type Fixture } from '../harness/imapd-testkit.ts';
import { DOVECOT_MAIL_UID } from '../harness/real-dovecot.ts';
import { DOVEADM, haveDoveadm } from '../harness/dovecot-verify.ts';

const skip = !haveDoveadm ? 'doveadm (dovecot-core) is not installed' : process.getuid?.() !== 0 ? 'needs root (Dovecot runs as the mail user)' : false;
const userns = skip ? 'skipped' : spawnSync('unshare', ['-U', '-r', 'true']).status === 0 ? false : 'unshare -U refused here (user namespaces disabled)';

/** Maildir++ folders f00000 ... made on disk, as a migration leaves them. */
function makeFolders(root: string, n: number): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(root, sub), { recursive: true });
  for (let i = 0; i < n; i++) {
    const d = join(root, `.f${String(i).padStart(5, '0')}`);
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, 'maildirfolder'), '');
  }
}

function chownTree(p: string): void {
  chownSync(p, DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
  if (!statSync(p).isDirectory()) return;
  for (const e of readdirSync(p)) chownTree(join(p, e));
}

const workDirs: string[] = [];
after(() => { for (const d of workDirs) rmSync(d, { recursive: true, force: true }); });

/** doveadm on the Maildir `root` as its mail user, as Dovecot's own tools would run on it. */
function doveadmOn(root: string): (args: string[], input?: string) => void {
  const work = mkdtempSync(join(tmpdir(), 'postern-doveadm-'));
  workDirs.push(work);
  chownTree(root);
  for (let d = resolve(dirname(root)); d.startsWith(resolve(tmpdir()) + '/'); d = dirname(d)) chmodSync(d, statSync(d).mode | 0o011);
  const conf = join(work, 'dovecot.conf');
  writeFileSync(conf, [
    `base_dir = ${work}/run`, `state_dir = ${work}/state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
    `mail_location = maildir:${root}`, `mail_uid = ${DOVECOT_MAIL_UID}`, `mail_gid = ${DOVECOT_MAIL_UID}`,
    'first_valid_uid = 1', 'first_valid_gid = 1', 'namespace inbox {', '  inbox = yes', '  separator = /', '}', '',
  ].join('\n'));
  return (args, input) => {
    const r = spawnSync(DOVEADM, ['-c', conf, ...args], { input, encoding: 'utf8', env: { ...process.env, USER: 'u', HOME: root }, timeout: 30_000 });
    assert.equal(r.status, 0, `doveadm ${args.join(' ')}: ${r.stderr}`);
  };
}

/** Python imaplib logged in, NOTIFY sent raw; every line the server sends afterwards is kept. */
class PyNotify {
  private readonly p: ChildProcess;
  private out = '';
  private constructor(p: ChildProcess) {
    this.p = p;
    p.stdout!.on('data', (d: Buffer) => { this.out += d.toString('utf8'); });
    p.stderr!.on('data', (d: Buffer) => { this.out += d.toString('utf8'); });
  }
  static async start(port: number, user: string, notify: string): Promise<PyNotify> {
    const py = `
import imaplib, sys, threading
m = imaplib.IMAP4('127.0.0.1', ${port})
m.login(${JSON.stringify(user)}, 'pw')
m.send(b'n1 ' + ${JSON.stringify(notify)}.encode() + b'\\r\\n')
def reader():
    while True:
        line = m.readline()
        if not line:
            return
        sys.stdout.write('S: ' + line.decode('utf-8', 'replace'))
        sys.stdout.flush()
threading.Thread(target=reader, daemon=True).start()
sys.stdin.readline()
`;
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'pipe'] });
    const c = new PyNotify(p);
    await c.waitFor(/S: n1 (OK|NO|BAD)[^\n]*\n/, 60_000);
    return c;
  }
  /** Waits for `re` in what arrived since the last match; returns that part. */
  async waitFor(re: RegExp, ms = 20_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out);
      if (m) { const got = this.out.slice(0, m.index + m[0].length); this.out = this.out.slice(m.index + m[0].length); return got; }
      if (Date.now() > end) throw new Error(`no ${re} within ${ms} ms; got:\n${this.out.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  quit(): void { this.p.stdin!.end(); setTimeout(() => this.p.kill(), 2000).unref(); }
}

const msg = (s: string): string => `From: dovecot@x.test\nSubject: ${s}\n\nbody\n`;

let fx: Fixture;
before(async () => {
  if (skip) return;
  fx = await startFixture({ users: [['out@x.test', 'pw'], ['idle@x.test', 'pw']] });
});
after(async () => { await fx?.stop(); });

test('doveadm (real Dovecot) delivers, flags, expunges, creates and deletes folders: a NOTIFY client (Python imaplib) is told, 150th of 200 mailboxes', { skip, timeout: 90_000 }, async () => {
  const root = fx.maildir('out@x.test');
  makeFolders(root, 200);
  const doveadm = doveadmOn(root);
  const py = await PyNotify.start(fx.port, 'out@x.test', 'NOTIFY SET (personal (MessageNew MessageExpunge FlagChange MailboxName))');
  try {
    doveadm(['save', '-m', 'f00150'], msg('one'));
    assert.match(await py.waitFor(/S: \* STATUS f00150 [^\n]*\n/), /\* STATUS f00150 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
    doveadm(['flags', 'add', '\\Seen', 'mailbox', 'f00150', 'all']);
    assert.match(await py.waitFor(/S: \* STATUS f00150 [^\n]*\n/), /\* STATUS f00150 \(UNSEEN 0\)/);
    doveadm(['expunge', 'mailbox', 'f00150', 'all']);
    assert.match(await py.waitFor(/S: \* STATUS f00150 [^\n]*\n/), /\* STATUS f00150 \(MESSAGES 0 UIDNEXT 2 UNSEEN 0\)/);
    // the last mailbox of the list too
    doveadm(['save', '-m', 'f00199'], msg('last'));
    assert.match(await py.waitFor(/S: \* STATUS f00199 [^\n]*\n/), /\* STATUS f00199 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
    // a folder made by Dovecot: announced, then watched
    doveadm(['mailbox', 'create', 'Brandnew']);
    assert.match(await py.waitFor(/S: \* LIST [^\n]*Brandnew[^\n]*\n/), /\* LIST \(\) "\/" Brandnew/);
    await new Promise((r) => setTimeout(r, 300));
    doveadm(['save', '-m', 'Brandnew'], msg('into the new one'));
    assert.match(await py.waitFor(/S: \* STATUS Brandnew [^\n]*\n/), /\* STATUS Brandnew \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
    // deleted and re-created under the watch, then delivered into
    doveadm(['mailbox', 'delete', 'f00010']);
    assert.match(await py.waitFor(/S: \* LIST [^\n]*f00010[^\n]*\n/), /\* LIST \(\\NonExistent\) "\/" f00010/);
    doveadm(['mailbox', 'create', 'f00010']);
    assert.match(await py.waitFor(/S: \* LIST [^\n]*f00010[^\n]*\n/), /\* LIST \(\) "\/" f00010/);
    await new Promise((r) => setTimeout(r, 300));
    doveadm(['save', '-m', 'f00010'], msg('after re-creation'));
    assert.match(await py.waitFor(/S: \* STATUS f00010 [^\n]*\n/), /\* STATUS f00010 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
    // a shell removes a folder and makes it again in the same instant (no list change in between
    // to notice), then a file is delivered into it: the watch follows the new directory
    const race = join(root, '.f00020');
    rmSync(race, { recursive: true, force: true });
    for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(race, sub), { recursive: true });
    chownTree(race);
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(join(race, 'tmp', '1700000002.M2P2.shell'), msg('by hand'));
    renameSync(join(race, 'tmp', '1700000002.M2P2.shell'), join(race, 'new', '1700000002.M2P2.shell'));
    // (the new directory itself is reported first: MESSAGES 0 with its new UIDVALIDITY)
    assert.match(await py.waitFor(/S: \* STATUS f00020 \(MESSAGES 1 [^\n]*\n/), /\* STATUS f00020 \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
  } finally { py.quit(); }
});

test('imapflow in IDLE on the 190th mailbox is told of doveadm\'s delivery', { skip, timeout: 60_000 }, async () => {
  const root = fx.maildir('idle@x.test');
  makeFolders(root, 200);
  const doveadm = doveadmOn(root);
  const client = new ImapFlow({ host: '127.0.0.1', port: fx.port, secure: false, auth: { user: 'idle@x.test', pass: 'pw' }, logger: false });
  await client.connect();
  try {
    const lock = await client.getMailboxLock('f00190');
    try {
      const told = new Promise<number>((res) => client.on('exists', (d: { count: number }) => res(d.count)));
      void client.idle();
      await new Promise((r) => setTimeout(r, 300));
      doveadm(['save', '-m', 'f00190'], msg('for the idler'));
      const count = await Promise.race([told, new Promise<number>((_, rej) => setTimeout(() => rej(new Error('no EXISTS within 20 s')), 20_000))]);
      assert.equal(count, 1);
    } finally { lock.release(); }
  } finally { await client.logout(); }
});

/** Postern's imapd in its own process under a user namespace with lowered inotify limits. */
async function limitedImapd(limit: 'max_inotify_watches' | 'max_inotify_instances', value: number, users: string[]): Promise<{ port: number; maildirs: Record<string, string>; log: () => string; stop: () => void }> {
  const conf = 'mailbox_idle_check_interval = 1 s\n';
  const child = join(import.meta.dirname, '..', 'harness', 'imapd-child.ts');
  const p = spawn('unshare', ['-U', '-r', 'sh', '-c', `echo ${value} > /proc/sys/user/${limit} && exec "$0" "$1" "$2"`, process.execPath, child,
    JSON.stringify({ users: users.map((u) => [u, 'pw']), conf })], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const end = Date.now() + 30_000;
  while (!out.includes('\n')) {
    if (p.exitCode !== null || Date.now() > end) throw new Error(`imapd child: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const info = JSON.parse(out.split('\n')[0]!) as { port: number; maildirs: Record<string, string> };
  return { ...info, log: () => err, stop: () => { p.stdin!.end(); setTimeout(() => p.kill(), 3000).unref(); } };
}

for (const [limit, value, sysctl] of [['max_inotify_watches', 40, 'fs.inotify.max_user_watches'], ['max_inotify_instances', 0, 'fs.inotify.max_user_instances']] as const) {
  test(`inotify exhausted (${limit} = ${value} in a user namespace): mailboxes past the limit are looked at every mailbox_idle_check_interval, the log names ${sysctl}`, { skip: skip || userns, timeout: 90_000 }, async () => {
    const srv = await limitedImapd(limit, value, ['lim@x.test']);
    try {
      const root = srv.maildirs['lim@x.test']!;
      makeFolders(root, 100);
      const doveadm = doveadmOn(root);
      const py = await PyNotify.start(srv.port, 'lim@x.test', 'NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))');
      try {
        await new Promise((r) => setTimeout(r, 500)); // the watches are set up after the reply
        for (const box of ['f00090', 'f00005']) {
          doveadm(['save', '-m', box], msg(box));
          assert.match(await py.waitFor(new RegExp(`S: \\* STATUS ${box} [^\\n]*\\n`)), new RegExp(`\\* STATUS ${box} \\(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \\d+ UNSEEN 1\\)`));
        }
        // a folder made by Dovecot (the root watched, or its mtime looked at), then delivered into
        doveadm(['mailbox', 'create', 'Made']);
        assert.match(await py.waitFor(/S: \* LIST [^\n]*Made[^\n]*\n/), /\* LIST \(\) "\/" Made/);
        doveadm(['save', '-m', 'Made'], msg('made'));
        assert.match(await py.waitFor(/S: \* STATUS Made [^\n]*\n/), /\* STATUS Made \(MESSAGES 1 UIDNEXT 2 UIDVALIDITY \d+ UNSEEN 1\)/);
      } finally { py.quit(); }
      const warnings = srv.log().split('\n').filter((l) => l.includes(sysctl));
      assert.equal(warnings.length, 1, srv.log().slice(-3000));
      assert.match(warnings[0]!, /warning: inotify: .*every 1 s \(mailbox_idle_check_interval\)/);
    } finally { srv.stop(); }
  });
}
