/**
 * BURL (RFC 4468) against Dovecot 2.3's submission service (Debian dovecot-submissiond) with
 * its imap-urlauth: the same Python script (imaplib GENURLAUTH, smtplib BURL) against Dovecot's
 * IMAP + submission (relaying to Postfix's smtp-sink) and against Postern's imapd + smtpd, the
 * reply code and enhanced code of each case compared: a wrong token, an access identifier of
 * another login, a URL naming another host, a message gone, no URL, a non-imap URL, success.
 * The documented differences (docs/smtpd.md, "BURL") are asserted as they are: BURL before AUTH,
 * an imap URL without URLAUTH, BURL after a failed BURL, BURL before MAIL, EHLO before AUTH.
 * The message relayed by Dovecot and the one queued by Postern are the IMAP message.
 * Skipped, with the reason, when real Dovecot or its submission service cannot run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { SmtpSink } from '../harness/smtp-sink.ts';
import { startFixture } from '../harness/imapd-testkit.ts';
import { startSmtpd } from '../harness/anvil-testkit.ts';
import { directoryAuth } from '../../src/smtpd/smtpd-sasl.ts';

const PY = spawnSync('python3', ['-c', 'import imaplib, smtplib'], { stdio: 'ignore' }).status === 0;
const skip = !PY ? 'python3 is not installed' : RealDovecot.unavailable() ?? (existsSync('/usr/lib/dovecot/submission') ? false : 'Debian package dovecot-submissiond is not installed');

const SCRIPT = String.raw`
import imaplib, smtplib, sys, json
imap_port, smtp_port = int(sys.argv[1]), int(sys.argv[2])
msg = open(sys.argv[3], 'rb').read()
imaplib.Commands['GENURLAUTH'] = ('AUTH', 'SELECTED')
out = {}
a = imaplib.IMAP4('127.0.0.1', imap_port)
a.login('alice@example.test', 'secret')
typ, dat = a.append('INBOX', None, None, msg)
a.select('INBOX')
uv = a.untagged_responses['UIDVALIDITY'][0].decode()
def gen(access):
    rump = 'imap://alice%40example.test@localhost/INBOX;UIDVALIDITY=' + uv + '/;UID=1;URLAUTH=' + access
    typ, dat = a._simple_command('GENURLAUTH', '"' + rump + '"', 'INTERNAL')
    typ, dat = a._untagged_response(typ, dat, 'GENURLAUTH')
    return dat[0].decode().strip('"')
url = gen('submit+alice%40example.test')
url_bob = gen('submit+bob%40example.test')
s = smtplib.SMTP('127.0.0.1', smtp_port)
s.ehlo('client.example.test')
out['ehlo_before'] = s.esmtp_features.get('burl')
out['noauth'] = s.docmd('BURL', url + ' LAST')
s.login('alice@example.test', 'secret')
s.ehlo('client.example.test')
out['ehlo_after'] = s.esmtp_features.get('burl')
out['nomail'] = s.docmd('BURL', url + ' LAST')
def tx():
    s.rset(); s.mail('alice@example.test'); s.rcpt('carol@example.test')
cases = [
    ('bad_token', url[:-6] + '000000 LAST'),
    ('after_fail', url + ' LAST'),
    ('other_login', None),
    ('no_urlauth', 'imap://alice%40example.test@localhost/INBOX/;UID=1 LAST'),
    ('not_imap', 'http://example.test/x LAST'),
    ('no_url', ''),
    ('gone', url.replace(';UID=1;', ';UID=9;') + ' LAST'),
    ('other_host', url.replace('@localhost/', '@other.example/') + ' LAST'),
    ('ok', url + ' LAST'),
]
for name, arg in cases:
    if name != 'after_fail':
        tx()
    out[name] = s.docmd('BURL', arg if arg is not None else url_bob + ' LAST')
s.quit()
print(json.dumps(out, default=lambda b: b.decode()))
`;

const MSG = 'From: alice@example.test\r\nTo: carol@example.test\r\nSubject: sent by reference\r\nMessage-ID: <burl-vs@example.test>\r\n\r\nfirst line\r\n';

async function runScript(dir: string, imapPort: number, smtpPort: number): Promise<Record<string, [number, string] | string | null>> {
  const p = spawn('python3', [join(dir, 'c.py'), String(imapPort), String(smtpPort), join(dir, 'msg.eml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  assert.equal(await new Promise((r) => p.once('exit', r)), 0, err);
  return JSON.parse(out) as Record<string, [number, string] | string | null>;
}

test('BURL: the same reply codes as Dovecot 2.3\'s submission service, the documented differences as they are', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-burl-vs-'));
  writeFileSync(join(dir, 'msg.eml'), MSG);
  writeFileSync(join(dir, 'c.py'), SCRIPT);
  const sink = await SmtpSink.start({ host: '127.0.0.1' });
  let dcOut: Record<string, [number, string] | string | null>;
  let relayed: string[];
  try {
    const dc = await RealDovecot.start({
      protocols: ['imap', 'submission'], users: [{ user: 'alice@example.test', pass: 'secret' }, { user: 'bob@example.test', pass: 'secret' }],
      extraConf: `mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\nhostname = mail.example.test\nsubmission_relay_host = 127.0.0.1\nsubmission_relay_port = ${sink.port}\nsubmission_relay_trusted = yes\n`,
    });
    try {
      dcOut = await runScript(dir, dc.ports.imap!, dc.ports.submission!);
    } finally { await dc.stop(); }
    relayed = (await sink.messages()).map((m) => m.body.toString('latin1'));
  } finally { await sink.stop(); }

  const f = await startFixture({
    users: [['alice@example.test', 'secret'], ['bob@example.test', 'secret'], ['submit@example.test', 'subm1t']],
    conf: 'mail_attribute_dict = file:%h/dovecot-attributes\nimap_urlauth_host = localhost\nplugin {\n  urlauth_submit_user = submit@example.test\n}\n',
  });
  writeFileSync(join(f.dir, 'burl-pass'), 'subm1t\n', { mode: 0o600 });
  const s = await startSmtpd(`postern_burl_imap_server = 127.0.0.1:${f.port}\npostern_burl_submit_user = submit@example.test\npostern_burl_submit_password_file = ${join(f.dir, 'burl-pass')}`, { auth: () => directoryAuth(f.imapd.shared.directory) });
  let pnOut: Record<string, [number, string] | string | null>;
  try {
    pnOut = await runScript(dir, f.port, s.port);
    const ids: string[] = [];
    for await (const id of s.queue.list('incoming')) ids.push(id);
    assert.equal(ids.length, 2, 'two messages queued: the retry after the failed BURL, and the last case');
  } finally {
    s.close();
    await f.stop();
    rmSync(dir, { recursive: true, force: true });
  }

  const code = (r: unknown): string => { const [n, t] = r as [number, string]; return `${n} ${t.slice(0, 5)}`; };
  for (const k of ['bad_token', 'other_login', 'not_imap', 'no_url', 'gone', 'other_host', 'ok']) {
    assert.equal(code(pnOut[k]), code(dcOut[k]), `${k}: Dovecot ${JSON.stringify(dcOut[k])}, Postern ${JSON.stringify(pnOut[k])}`);
  }
  assert.deepEqual(pnOut.bad_token, [554, '5.6.6 IMAP URL resolution failed']);
  assert.match((dcOut.other_login as [number, string])[1], /No 'submit\+bob@example\.test' access allowed for user alice@example\.test/);
  assert.deepEqual(pnOut.other_login, [554, "5.6.6 IMAP URL resolution failed: No 'submit+bob@example.test' access allowed for user alice@example.test"]);
  assert.deepEqual(pnOut.not_imap, (dcOut.not_imap as unknown[]), 'the same text too');
  assert.deepEqual(pnOut.no_url, (dcOut.no_url as unknown[]), 'the same text too');
  // documented differences
  assert.equal(dcOut.ehlo_before, 'imap');
  assert.equal(pnOut.ehlo_before, '');
  assert.equal(dcOut.ehlo_after, 'imap imap://localhost');
  assert.equal(pnOut.ehlo_after, 'imap');
  assert.deepEqual(dcOut.noauth, [500, '5.5.1 Unknown command']);
  assert.deepEqual(pnOut.noauth, [530, '5.7.0 Authentication required']);
  assert.deepEqual(dcOut.after_fail, [503, '5.5.0 Previous data chunk failed, issue RSET first']);
  assert.equal((pnOut.after_fail as [number, string])[0], 250, 'Postern: the transaction stays as it was after a failed BURL');
  assert.equal((dcOut.no_urlauth as [number, string])[0], 250);
  assert.deepEqual(pnOut.no_urlauth, [554, '5.7.8 URL resolution requires trust relationship']);
  assert.deepEqual(pnOut.nomail, [503, '5.5.1 Error: need MAIL command']);
  // what was sent: the IMAP message
  assert.ok(relayed.length >= 1 && relayed.every((b) => b.endsWith(MSG.replace(/\r\n/g, '\n'))), relayed.join('\n---\n'));
});
