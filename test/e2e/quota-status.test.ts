/**
 * The quota-status policy service end to end, as a Postfix + Dovecot site configures it:
 * dovecot.conf `service quota-status { executable = quota-status -p postfix; inet_listener }`
 * with plugin { quota_status_* }, main.cf `check_policy_service inet:127.0.0.1:PORT` in
 * smtpd_recipient_restrictions. Python's smtplib talks to Postern's smtpd (whole system,
 * `postern start`, then reload) and to the real Postfix (test/harness/real-postfix.ts) pointed
 * at the same Postern quota-status: a full mailbox is refused at RCPT with 552 5.2.2 and the
 * same text from both, a roomy one gets 250, SIZE= counts. Hostile clients of the service
 * (garbage, over-long lines, endless attributes, a slow client) are cut off or answered while
 * the next client is still served. quota_warning: an IMAP APPEND (Python imaplib) and an LMTP
 * delivery (smtplib.LMTP) that cross 50% and 80% run the warning script once each, with its
 * arguments, as the mail user.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../harness/free-port.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';

let sys: PosternSystem | undefined;
let qsPort = 0;
let script = '';
let warnOut = '';

before(async () => {
  sys = await PosternSystem.start();
  for (const [u, q] of [['full@example.test', '10K'], ['roomy@example.test', '5M'], ['warn@example.test', '10K']] as const) {
    const r = (await sys.cli('user', 'add', u, '-p', 'pw-' + u, '--quota', q));
    assert.equal(r.status, 0, r.stderr);
  }
  // full@: 20000 bytes already stored (a Maildir file with Dovecot's ,S= size in its name).
  const md = sys.maildir('full@example.test');
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
  writeFileSync(join(md, 'cur', `1700000000.M1P1.test,S=20000,W=20400:2,S`), 'x'.repeat(20000));
  qsPort = await freePort();
  script = join(sys.dir, 'quota-warning.sh');
  warnOut = join(sys.dir, 'warnings.txt');
  writeFileSync(script, '#!/bin/sh\nout="$1"; shift\necho "$(id -u) $*" >> "$out"\n', { mode: 0o755 });
  writeFileSync(warnOut, '', { mode: 0o666 });
  chmodSync(warnOut, 0o666);
  chmodSync(sys.dir, 0o755);
  appendFileSync(join(sys.configDir, 'dovecot.conf'), `
service quota-status {
  executable = quota-status -p postfix
  inet_listener {
    address = 127.0.0.1
    port = ${qsPort}
  }
}
plugin {
  quota_status_success = DUNNO
  quota_status_nouser = DUNNO
  quota_status_overquota = "552 5.2.2 Mailbox is full"
  quota_warning = storage=80%% quota-warning 80 %u
  quota_warning2 = storage=50%% quota-warning 50 %u
}
service quota-warning {
  executable = script ${script} ${warnOut}
  unix_listener quota-warning {
    user = vmail
  }
}
`);
  appendFileSync(join(sys.configDir, 'main.cf'), `\nsmtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${qsPort}\n`);
  const mark = sys.log.length;
  const r = (await sys.cli('reload'));
  assert.equal(r.status, 0, r.stderr);
  const end = Date.now() + 30_000;
  while (!(await sys.services()).some((s) => s.key === 'dovecot/quota-status' && s.running) || !sys.log.slice(mark).includes('reload')) {
    if (Date.now() > end) throw new Error(`quota-status did not start:\n${sys.log.slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
});
after(async () => { await sys?.destroy(); });

/** RCPT replies through Python's smtplib: [[rcpt, size, code, text], ...]. */
function rcptReplies(port: number, cases: [string, number][]): [string, number, number, string][] {
  const py = `
import json, smtplib, sys
out = []
for rcpt, size in json.loads(sys.argv[2]):
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
    s.ehlo('client.example.test')
    s.mail('sender@elsewhere.test', ['SIZE=%d' % size] if size else [])
    code, text = s.rcpt(rcpt)
    out.append([rcpt, size, code, text.decode()])
    s.quit()
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', py, String(port), JSON.stringify(cases)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as [string, number, number, string][];
}

const CASES: [string, number][] = [
  ['full@example.test', 0], ['full@example.test', 100], ['roomy@example.test', 0], ['roomy@example.test', 4_000_000],
  ['roomy@example.test', 9_000_000], ['postmaster@example.test', 0], ['full+tag@example.test', 0],
];

test('Postern smtpd → check_policy_service → Postern quota-status: 552 5.2.2 for a full mailbox, 250 otherwise', async () => {
  const got = rcptReplies(sys!.ports.smtp, CASES);
  const byCase = got.map(([r, s, c, t]) => `${r} ${s}: ${c} ${t}`);
  assert.deepEqual(got.map((x) => x[2]), [552, 552, 250, 250, 552, 250, 552], byCase.join('\n'));
  assert.equal(got[0]![3], '5.2.2 <full@example.test>: Recipient address rejected: Mailbox is full');
});

test('real Postfix with check_policy_service to Postern\'s quota-status gives the same replies', { skip: RealPostfix.unavailable() }, async () => {
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: [
      'relay_domains = example.test',
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      `smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${qsPort}`,
    ].join('\n'),
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
  try {
    const theirs = rcptReplies(port, CASES);
    const ours = rcptReplies(sys!.ports.smtp, CASES);
    assert.deepEqual(ours.map((x) => [x[0], x[1], x[2], x[3]]), theirs.map((x) => [x[0], x[1], x[2], x[3]]));
  } finally { await pf.stop(); }
});

function raw(data: string | Buffer, o: { waitMs?: number } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(qsPort, '127.0.0.1');
    let text = '';
    let closed = false;
    s.setEncoding('latin1');
    s.on('data', (d: string) => { text += d; });
    s.on('error', () => {});
    s.on('close', () => { closed = true; resolve({ text, closed }); });
    s.write(data);
    setTimeout(() => { s.destroy(); resolve({ text, closed }); }, o.waitMs ?? 2000);
  });
}

test('hostile quota-status clients: garbage, NUL, huge size=, over-long lines, endless attributes, slow clients', async () => {
  const ok = 'recipient=roomy@example.test\nsize=1\n\n';
  // Garbage and NUL bytes: answered as Dovecot does (no recipient → DUNNO), connection kept.
  assert.equal((await raw('\u0000\u0001garbage\nGET / HTTP/1.1\n\n' + ok)).text, 'action=DUNNO\n\naction=DUNNO\n\n');
  // size= beyond 64 bits is 0 (Dovecot's str_to_uoff), a huge one over quota is refused.
  assert.equal((await raw('recipient=full@example.test\nsize=99999999999999999999999999\n\n')).text, 'action=552 5.2.2 Mailbox is full\n\n');
  assert.equal((await raw('recipient=roomy@example.test\nsize=18446744073709551615\n\n')).text, 'action=552 5.2.2 Mailbox is full\n\n');
  // A 1 MB line and 100,000 attributes: cut off, nothing answered.
  const long = await raw('recipient=' + 'a'.repeat(1 << 20) + '\n\n');
  assert.equal(long.text, '');
  assert.ok(long.closed);
  const many = await raw('x=1\n'.repeat(100_000) + '\n');
  assert.equal(many.text, '');
  assert.ok(many.closed);
  // A slow client holding half a request does not stop others.
  const slow = connect(qsPort, '127.0.0.1');
  slow.on('error', () => {});
  slow.write('recipient=roomy@exa');
  try {
    assert.equal((await raw(ok, { waitMs: 1000 })).text, 'action=DUNNO\n\n');
  } finally { slow.destroy(); }
});

test('quota_warning through the running system: IMAP APPEND crosses 50%, LMTP delivery crosses 80%', async () => {
  const py = `
import imaplib, smtplib, sys
port_imap, port_lmtp = int(sys.argv[1]), int(sys.argv[2])
m = imaplib.IMAP4('127.0.0.1', port_imap)
m.login('warn@example.test', 'pw-warn@example.test')
typ, data = m.append('INBOX', None, None, b'Subject: a\\r\\n\\r\\n' + b'x' * 6000 + b'\\r\\n')
print(typ)
m.logout()
l = smtplib.LMTP('127.0.0.1', port_lmtp)
l.ehlo('client.test') if hasattr(l, 'ehlo') else None
print(l.sendmail('s@elsewhere.test', ['warn@example.test'], b'Subject: b\\r\\n\\r\\n' + b'y' * 2500 + b'\\r\\n'))
l.quit()
`;
  const r = spawnSync('python3', ['-c', py, String(sys!.ports.imap), String(sys!.ports.lmtp)], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^OK\n\{\}\n$/);
  let lines: string[] = [];
  for (let i = 0; i < 200 && lines.length < 2; i++) {
    lines = readFileSync(warnOut, 'utf8').split('\n').filter(Boolean);
    await new Promise((res) => setTimeout(res, 50));
  }
  // The script ran as the mail user (dovecot.conf mail_uid of the embedded default).
  const uid = /^mail_uid = (\d+)$/m.exec(readFileSync(join(sys!.configDir, 'dovecot.conf'), 'utf8'))![1];
  assert.deepEqual(lines, [`${uid} 50 warn@example.test`, `${uid} 80 warn@example.test`]);
});
