/**
 * Quota the way Dovecot sites run it, against real Dovecot 2.3 (Debian dovecot-core, its quota
 * plugin and /usr/lib/dovecot/quota-status) started privately by test/harness/real-dovecot.ts:
 *  - quota-status: the same Postfix policy requests (under quota, over quota, too large, within
 *    quota_grace, message limit, unknown user, no recipient, recipient with +detail or <>, bad
 *    and 64-bit-overflowing size=) get the same `action=` from Postern's quota-status as from
 *    Dovecot's, with the users' Maildirs filled alike (doveadm save / Postern's store);
 *  - quota_warning: the same deliveries run the same warning scripts with the same arguments
 *    (only the first matching warning, as Dovecot; none when no threshold is crossed), and the
 *    `-storage=100%%` one when an expunge takes usage back below the limit; COPY is checked and
 *    warned like an APPEND (doveadm copy).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../../src/global/dovecot-conf.ts';
import { openUserDirectory } from '../../src/lib-auth/user-directory-open.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';
import { handleQuotaStatus, quotaStatusSettings } from '../../src/quota-status/quota-status.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { freePort } from '../harness/free-port.ts';
import { DOVECOT_MAIL_UID, RealDovecot } from '../harness/real-dovecot.ts';

setLogSink(() => {});
const skip = RealDovecot.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-quota-'));
chmodSync(dir, 0o755);
const script = join(dir, 'quota-warning.sh');
const dcOut = join(dir, 'dovecot-warnings.txt');
const pOut = join(dir, 'postern-warnings.txt');

const USERS = [
  { user: 'a@x.test', extra: 'userdb_quota_rule=*:storage=10K' },
  { user: 'b@x.test', extra: '' },
  { user: 'c@x.test', extra: 'userdb_quota_rule=*:messages=2' },
  { user: 'w@x.test', extra: 'userdb_quota_rule=*:storage=10K' },
  { user: 'v@x.test', extra: 'userdb_quota_rule=*:storage=10K' },
  { user: 'z@x.test', extra: 'userdb_quota_rule=*:storage=10K' },
  { user: 'y@x.test', extra: 'userdb_quota_rule=*:storage=10K' },
];
const conf = (qsPort: number, out: string) => `
plugin {
  quota = maildir:User quota
  quota_status_success = DUNNO
  quota_status_nouser = REJECT Unknown user here
  quota_status_overquota = "552 5.2.2 Mailbox is full"
  quota_warning = storage=50%% quota-warning 50 %u
  quota_warning2 = storage=80%% quota-warning 80 %u
  quota_warning3 = messages=3 quota-warning msgs %u %n
  quota_warning4 = -storage=100%% quota-warning below %u
}
service quota-warning {
  executable = script ${script} ${out}
  user = root
  unix_listener quota-warning {
    mode = 0666
  }
}
service quota-status {
  executable = quota-status -p postfix
  inet_listener {
    address = 127.0.0.1
    port = ${qsPort}
  }
}
`;

let dc: RealDovecot | undefined;
let pServer: Server | undefined;
let pPort = 0;
let dcPort = 0;
let directory: UserDirectory | undefined;
const store = new MaildirStore();

before(async () => {
  if (skip) return;
  writeFileSync(script, '#!/bin/sh\nout="$1"; shift\necho "$*" >> "$out"\n');
  chmodSync(script, 0o755);
  for (const f of [dcOut, pOut]) { writeFileSync(f, ''); chmodSync(f, 0o666); }
  dcPort = await freePort();
  dc = await RealDovecot.start({
    protocols: ['lmtp'], mailPlugins: 'quota',
    users: USERS.map((u) => ({ user: u.user, pass: 'pw', extra: u.extra })),
    extraConf: conf(dcPort, dcOut),
  });
  // Postern: the same users and plugin settings in its own dovecot.conf, its own Maildirs.
  const mail = join(dir, 'pmail');
  mkdirSync(mail, { mode: 0o755 });
  chownSync(mail, DOVECOT_MAIL_UID, DOVECOT_MAIL_UID);
  writeFileSync(join(dir, 'users'), USERS.map((u) => `${u.user}:{PLAIN}pw:${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}::${join(mail, u.user)}::${u.extra}`).join('\n') + '\n');
  const text = `mail_location = maildir:~/Maildir\npassdb {\n  driver = passwd-file\n  args = ${join(dir, 'users')}\n}\nuserdb {\n  driver = passwd-file\n  args = ${join(dir, 'users')}\n}\n${conf(0, pOut)}`;
  const dconf = parseDovecotConf(text, join(dir, 'dovecot.conf'));
  directory = await openUserDirectory(dconf);
  const deps = { directory, store, settings: quotaStatusSettings(dconf), log: { info() {}, warn() {}, error() {} } };
  pServer = createServer((s) => { void handleQuotaStatus(s, deps); });
  await new Promise<void>((r) => pServer!.listen(0, '127.0.0.1', r));
  pPort = (pServer.address() as { port: number }).port;
});
after(async () => {
  pServer?.close();
  await directory?.close();
  await dc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function ask(port: number, req: string, answers = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let b = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => { b += d; if (b.endsWith('\n\n') && b.split('action=').length > answers) { s.end(); resolve(b); } });
    s.on('error', reject);
    s.on('close', () => resolve(b));
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error(`no answer to ${JSON.stringify(req)}`)); });
    s.write(req);
  });
}

const message = (n: number) => `Subject: fill\n\n${'x'.repeat(Math.max(0, n - 15))}\n`;

/** The same message into both sides: doveadm save for Dovecot, Postern's store (quota checked) for Postern. */
async function saveBoth(user: string, n: number): Promise<void> {
  const content = message(n);
  const r = spawnSync('/usr/bin/doveadm', ['-c', dc!.confFile, 'save', '-u', user], { input: content, encoding: 'utf8' });
  assert.equal(r.status, 0, `doveadm save: ${r.stderr}`);
  const rec = await directory!.lookup(user);
  const u = await store.forUser(rec!);
  try { await u.deliver('INBOX', content); } finally { await u.close(); }
}

async function compare(requests: string[]): Promise<void> {
  for (const req of requests) {
    const d = await ask(dcPort, req);
    const p = await ask(pPort, req);
    assert.equal(p, d, `request ${JSON.stringify(req)}`);
  }
}

const REQUESTS = (user: string) => [
  `request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=${user}\nsize=100\n\n`,
  `recipient=${user}\nsize=1000\n\n`,
  `recipient=${user}\nsize=238\n\n`,
  `recipient=${user}\nsize=239\n\n`,
  `recipient=${user}\nsize=1262\n\n`,
  `recipient=${user}\nsize=1263\n\n`,
  `recipient=${user}\nsize=5000\n\n`,
  `recipient=${user}\nsize=10240\n\n`,
  `recipient=${user}\nsize=10241\n\n`,
  `recipient=${user}\nsize=11264\n\n`,
  `recipient=${user}\nsize=11265\n\n`,
  `recipient=${user}\nsize=20000\n\n`,
  `recipient=${user}\n\n`,
  `recipient=${user}\nsize=abc\n\n`,
  `recipient=${user}\nsize=-5\n\n`,
  `recipient=${user}\nsize=99999999999999999999999\n\n`,
  `recipient=${user}\nsize=18446744073709551615\n\n`,
];

test('quota-status answers as Dovecot\'s: under, within grace, over, too large, unknown user, no recipient', { skip }, async () => {
  await compare([
    ...REQUESTS('a@x.test'), ...REQUESTS('b@x.test'), ...REQUESTS('c@x.test'),
    'recipient=nobody@x.test\nsize=1\n\n', 'recipient=a\nsize=5\n\n', 'size=5\n\n', 'garbage\n\n', 'recipient=\nsize=5\n\n',
    'recipient=a+detail@x.test\nsize=20000\n\n', 'recipient=<a@x.test>\nsize=20000\n\n', 'recipient=A@X.TEST\nsize=20000\n\n',
    'recipient=a@x.test\nrecipient=nobody@x.test\nsize=5\n\n', 'recipient=nobody@x.test\nrecipient=a@x.test\nsize=5\n\n',
    'recipient=a@x.test\r\nsize=20000\r\n\r\n',
  ]);
  // Fill: a to 9001 bytes, c to 1 of its 2 messages; then a to 10002 bytes (238 under the
  // limit: quota_grace lets a delivery of up to 1262 bytes through, not 1263), c to 2.
  await saveBoth('a@x.test', 9000);
  await saveBoth('c@x.test', 100);
  await compare([...REQUESTS('a@x.test'), ...REQUESTS('c@x.test')]);
  await saveBoth('c@x.test', 100);
  await saveBoth('a@x.test', 1000);
  await compare([...REQUESTS('a@x.test'), ...REQUESTS('c@x.test')]);
});

test('quota-status: several requests on one connection, answered in order', { skip }, async () => {
  const reqs = 'recipient=b@x.test\nsize=1\n\nrecipient=nobody@x.test\n\nsize=1\n\n';
  assert.equal(await ask(pPort, reqs, 3), await ask(dcPort, reqs, 3));
});

async function waitLines(file: string, n: number): Promise<string[]> {
  for (let i = 0; i < 200; i++) {
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    if (lines.length >= n) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

test('quota_warning scripts run at the same thresholds with the same arguments as Dovecot\'s', { skip }, async () => {
  // w: 3000 (none), 3000 (crosses 50%), 1000 (none), 1500 (crosses 80%), 100 (4th message: msgs).
  const steps: [string, number][] = [['w@x.test', 3000], ['w@x.test', 3000], ['w@x.test', 1000], ['w@x.test', 1500], ['w@x.test', 100],
    // v: one message crossing 50% and 80% at once: only the first matching warning runs.
    ['v@x.test', 9000]];
  let expected = 0;
  for (const [user, n] of steps) {
    await saveBoth(user, n);
    // Wait for Dovecot's script (asynchronous there too), then compare everything so far.
    const d = await waitLines(dcOut, expected);
    const p = await waitLines(pOut, d.length);
    assert.deepEqual(p, d, `after ${n} bytes to ${user}`);
    expected = d.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await waitLines(pOut, 0), await waitLines(dcOut, 0), `after ${n} bytes to ${user} (settled)`);
  }
  // a@x.test crossed 50% in the first test; w's third message reached messages=3.
  assert.deepEqual(await waitLines(dcOut, 0), ['50 a@x.test', '50 w@x.test', 'msgs w@x.test w', '80 w@x.test', '50 v@x.test']);
});

test('quota_warning -storage=100%%: an expunge that takes usage below the limit runs the "below" warning, as Dovecot', { skip }, async () => {
  const before = (await waitLines(dcOut, 0)).length;
  await saveBoth('z@x.test', 10239);     // exactly the 10240-byte limit
  const d1 = await waitLines(dcOut, before + 1);
  assert.deepEqual(await waitLines(pOut, d1.length), d1);
  const r = spawnSync('/usr/bin/doveadm', ['-c', dc!.confFile, 'expunge', '-u', 'z@x.test', 'mailbox', 'INBOX', 'all'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const u = await store.forUser((await directory!.lookup('z@x.test'))!);
  try {
    const mb = await u.open('INBOX');
    try { assert.equal((await mb.expunge(mb.messages().map((m) => m.uid))).length, 1); } finally { await mb.close(); }
  } finally { await u.close(); }
  const d2 = await waitLines(dcOut, d1.length + 1);
  assert.deepEqual(d2.slice(before), ['50 z@x.test', 'below z@x.test']);
  assert.deepEqual(await waitLines(pOut, d2.length), d2);
});

test('COPY: quota checked and warnings run as for an APPEND, as Dovecot\'s doveadm copy', { skip }, async () => {
  const before = (await waitLines(dcOut, 0)).length;
  await saveBoth('y@x.test', 3000);
  const dcMk = spawnSync('/usr/bin/doveadm', ['-c', dc!.confFile, 'mailbox', 'create', '-u', 'y@x.test', 'Other'], { encoding: 'utf8' });
  assert.equal(dcMk.status, 0, dcMk.stderr);
  const u = await store.forUser((await directory!.lookup('y@x.test'))!);
  try {
    await u.create('Other');
    const results: [number | null, string][] = [];
    for (let i = 0; i < 3; i++) {
      const d = spawnSync('/usr/bin/doveadm', ['-c', dc!.confFile, 'copy', '-u', 'y@x.test', 'Other', 'mailbox', 'INBOX', 'all'], { encoding: 'utf8' });
      const mb = await u.open('INBOX');
      let p = 'ok';
      try { await mb.copy(mb.messages().map((m) => m.uid), 'Other'); } catch (e) { p = (e as Error).message; } finally { await mb.close(); }
      results.push([d.status, p]);
      const dl = await waitLines(dcOut, before + Math.min(i + 1, 2));
      assert.deepEqual(await waitLines(pOut, dl.length), dl, `copy ${i + 1}`);
    }
    // 3001 → 6002 (50%), → 9003 (80%), → 12004 refused by both.
    assert.deepEqual(results.map(([d]) => d === 0), [true, true, false]);
    assert.deepEqual(results.map(([, p]) => p), ['ok', 'ok', 'Quota exceeded (mailbox for user is full)']);
    assert.deepEqual((await waitLines(dcOut, 0)).slice(before), ['50 y@x.test', '80 y@x.test']);
    assert.deepEqual(await waitLines(pOut, 0), await waitLines(dcOut, 0));
  } finally { await u.close(); }
});
