/**
 * Issue 13 item 9: listeners and logs as the originals have them, on a whole Postern.
 *  - dovecot.conf `ssl = no`: no imaps/pop3s listener is bound, not even one the file declares
 *    with `ssl = yes` (real Dovecot 2.3, measured: connect refused on both), while IMAP on 143's
 *    stand-in still serves a normal client.
 *  - maillog_file: every line (the master's, smtpd's in the main thread, qmgr's and the delivery
 *    agent's in the worker thread) lands in the file in Postfix 3.7 postlogd's shape
 *    (`Dec 07 21:17:58 mx postfix/master[18855]: ...`: zero-padded day, $myhostname's first
 *    label); `postern logrotate` renames it and the master reopens a new one.
 *  - `myhostname = myoffice.space`: `postern conf mydomain` says myoffice.space (the seed's
 *    Table 3 row 3; Postfix 3.7 says space, docs/main-cf.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { normalImap, normalSmtp } from '../harness/attack-kit.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { freePort } from '../harness/free-port.ts';

const refused = (port: number) => new Promise<string>((resolve) => {
  const s = connect({ port, host: '127.0.0.1' }, () => { s.destroy(); resolve('open'); });
  s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
});

const POSTLOG_LINE = /^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d myoffice postern\/[\w/-]+\[\d+\]: /;

test('ssl = no binds no imaps/pop3s; maillog_file gets Postfix-format lines from every thread; logrotate; mydomain of myoffice.space', { timeout: 90_000 }, async () => {
  let sys = await PosternSystem.start();
  try {
    await sys.stop();
    const maillog = join(sys.dir, 'maillog');
    appendFileSync(join(sys.configDir, 'main.cf'), `\nmyhostname = myoffice.space\nmaillog_file = ${maillog}\nmaillog_file_prefixes = ${dirname(sys.dir)}\n` +
      'maillog_file_compressor = true\n');
    const dc = join(sys.configDir, 'dovecot.conf');
    const conf = readFileSync(dc, 'utf8');
    assert.match(conf, /^ssl = yes$/m);
    writeFileSync(dc, conf.replace(/^ssl = yes$/m, 'ssl = no'));
    sys = await PosternSystem.start(sys);

    // Listeners: Dovecot's ssl = no.
    assert.equal(await refused(sys.ports.imaps), 'ECONNREFUSED', 'imaps (declared ssl = yes) is not bound');
    assert.equal(await refused(sys.ports.pop3s), 'ECONNREFUSED', 'pop3s is not bound');
    const imapMs = await normalImap(sys.ports.imap, 'postmaster@example.test', sys.password);
    assert.ok(imapMs < 2000, `IMAP ${imapMs} ms`);

    // maillog_file.
    await normalSmtp(sys.ports.smtp, { to: 'postmaster@example.test' });
    const delivered = () => /status=sent/.test(existsSync(maillog) ? readFileSync(maillog, 'utf8') : '');
    for (const end = Date.now() + 15_000; !delivered() && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
    const lines = readFileSync(maillog, 'utf8').split('\n').filter(Boolean);
    console.log(`# maillog_file: ${lines.length} lines, e.g.\n# ${lines.filter((l) => /daemon started|client=|status=sent/.test(l)).join('\n# ')}`);
    for (const l of lines) assert.match(l, POSTLOG_LINE);
    assert.ok(lines.some((l) => /postern\/master\[\d+\]: daemon started -- version /.test(l)), 'the master\'s own lines');
    assert.ok(lines.some((l) => /postern\/smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/.test(l)), 'smtpd\'s lines');
    assert.ok(lines.some((l) => /status=sent/.test(l)), 'the delivery agent\'s lines (qmgr\'s worker thread)');

    // postern logrotate: renamed, reopened on reload, compressor run on the old file.
    const r = (await sys.cli('logrotate'));
    assert.equal(r.status, 0, r.stderr);
    const rotated = readdirSync(sys.dir).filter((f) => /^maillog\.\d{8}-\d{6}$/.test(f));
    assert.equal(rotated.length, 1, readdirSync(sys.dir).join(' '));
    await normalSmtp(sys.ports.smtp, { to: 'postmaster@example.test' });
    for (const end = Date.now() + 15_000; !(existsSync(maillog) && /client=/.test(readFileSync(maillog, 'utf8'))) && Date.now() < end;) await new Promise((res) => setTimeout(res, 100));
    assert.match(readFileSync(maillog, 'utf8'), /reload -- version/);
    assert.match(readFileSync(maillog, 'utf8'), /client=localhost/);

    // smtpd in a child process of its own: its lines reach the file through the master.
    await sys.setMasterOption(['smtp'], 'postern_process_mode', 'process');
    const child = (await sys.servicePid(`${sys.ports.smtp}/`));
    assert.notEqual(child, sys.pid);
    await normalSmtp(sys.ports.smtp, { to: 'postmaster@example.test' });
    const fromChild = new RegExp(`^[A-Z][a-z]{2} \\d\\d \\d\\d:\\d\\d:\\d\\d myoffice postern/smtpd\\[${child}\\]: [0-9A-F]+: client=localhost`, 'm');
    for (const end = Date.now() + 15_000; !fromChild.test(readFileSync(maillog, 'utf8')) && Date.now() < end;) await new Promise((res) => setTimeout(res, 100));
    assert.match(readFileSync(maillog, 'utf8'), fromChild);

    // mydomain: the seed's rule.
    assert.equal((await sys.cli('conf', 'mydomain')).stdout, 'mydomain = myoffice.space\n');
  } finally {
    await sys.destroy();
  }
});

test('maillog_file outside maillog_file_prefixes: the start fails with Postfix\'s text', { timeout: 60_000 }, async () => {
  const sys = await PosternSystem.start();
  try {
    await sys.stop();
    appendFileSync(join(sys.configDir, 'main.cf'), `\nmaillog_file = ${join(sys.dir, 'maillog')}\n`);
    await assert.rejects(PosternSystem.start(sys), new RegExp(`maillog_file value '${join(sys.dir, 'maillog')}' does not match any prefix in maillog_file_prefixes`));
  } finally {
    await sys.destroy();
  }
});

test('differential: the real Dovecot 2.3 with ssl = no does not bind a declared ssl = yes listener either', { skip: RealDovecot.unavailable() ?? false, timeout: 60_000 }, async () => {
  const imaps = await freePort();
  const pop3s = await freePort();
  const dc = await RealDovecot.start({
    protocols: ['imap', 'pop3'], users: [{ user: 'a@x.test', pass: 'pw' }],
    extraConf: `service imap-login {\n  inet_listener imaps {\n    port = ${imaps}\n    ssl = yes\n  }\n}\n` +
      `service pop3-login {\n  inet_listener pop3s {\n    port = ${pop3s}\n    ssl = yes\n  }\n}\n`,   // the harness sets ssl = no
  });
  try {
    assert.equal(await refused(dc.ports.imap!), 'open');
    assert.equal(await refused(imaps), 'ECONNREFUSED');
    assert.equal(await refused(pop3s), 'ECONNREFUSED');
  } finally {
    await dc.stop();
  }
});
