/**
 * cleanup(8) through its public API: a submission goes in, a queue file comes out, and it is
 * read back with QueueFile (envelope recipients, sender, content) as qmgr would read it. The
 * log lines an administrator greps for are checked too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { DSN_NOTIFY } from '../global/rec-type.ts';
import { setLogSink } from '../util/msg.ts';
import { CleanupSession } from './cleanup.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import type { CleanupOpenOptions, CleanupResult } from '../global/cleanup-client.ts';

const root = mkdtempSync(join(tmpdir(), 'postern-cleanup-'));
after(() => rmSync(root, { recursive: true, force: true }));
const logs: string[] = [];
setLogSink((l) => logs.push(l));

let n = 0;
/** A configuration directory with main.cf and table files. */
function conf(mainCf: string, files: Record<string, string> = {}): { config: MainConfig; dir: string } {
  const dir = join(root, `c${++n}`);
  const q = join(dir, 'queue');
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  const text = `myhostname = mx.example.com\nmydomain = example.com\nmyorigin = mx.example.com\nmydestination = mx.example.com, localhost\n`
    + `queue_directory = ${q}\n${mainCf.replace(/DIR/g, dir)}\n`;
  writeFileSync(join(dir, 'main.cf'), text);
  return { config: MainConfig.load(dir), dir };
}

interface Submitted { result: CleanupResult; qf?: QueueFile; content?: string; queue: MailQueue }

async function submit(config: MainConfig, rcpts: (string | { address: string; notify?: number; orcpt?: string })[], message: string,
  o: Partial<CleanupOpenOptions> = {}): Promise<Submitted> {
  const queue = new MailQueue(join(config.configDir, 'queue'));
  queue.ensureDirs();
  const c = await CleanupSession.open({
    myhostname: 'mx.example.com', myorigin: 'example.com', headerSizeLimit: config.int('header_size_limit'),
    messageSizeLimit: 0, alwaysAddMissingHeaders: false, config,
  }, queue, {
    sender: 'sender@example.org', addMissingHeaders: false,
    attrs: { client_name: 'client.example.org', client_address: '192.0.2.1', protocol_name: 'ESMTP', helo_name: 'helo.example.org' },
    ...o,
  }, TrivialRewrite.open);
  for (const r of rcpts) {
    const x = typeof r === 'string' ? { address: r } : r;
    c.addRecipient({ ...x, orig: x.address });
  }
  // Two chunks, split mid-line, as the smtpd data stream delivers them.
  const b = Buffer.from(message, 'utf8');
  await c.write(b.subarray(0, 7));
  await c.write(b.subarray(7));
  const result = await c.finish();
  if (!('queueId' in result)) return { result, queue };
  for (const into of ['incoming', 'hold'] as const) {
    const p = queue.path(into, result.queueId);
    if (existsSync(p)) {
      const qf = await QueueFile.open(p, result.queueId);
      return { result, qf, content: (await qf.content()).toString('utf8'), queue };
    }
  }
  return { result, queue };
}

const rcptsOf = (s: Submitted) => s.qf!.recipients.map((r) => r.address);
const MSG = 'From: Sender <sender@example.org>\nTo: info@example.com\nSubject: hello\n\nbody line\n';

// The seed's virtual alias domain (example.com standing for stud12.myoffice.space).
const SEED_VIRTUAL = 'postmaster@example.com postmaster\ninfo@example.com joe\nsales@example.com jane\n@example.com jim\n';
const seedMain = 'virtual_alias_domains = example.com\nvirtual_alias_maps = texthash:DIR/virtual\n';

test('the seed virtual alias table: aliases, unqualified targets get @$myorigin (a local domain), catch-all', async () => {
  const { config } = conf(seedMain, { virtual: SEED_VIRTUAL });
  const s = await submit(config, ['info@example.com', 'sales@example.com', 'nobody@example.com', 'x@elsewhere.example'], MSG);
  assert.ok('queueId' in s.result);
  assert.deepEqual(rcptsOf(s), ['joe@mx.example.com', 'jane@mx.example.com', 'jim@mx.example.com', 'x@elsewhere.example']);
  // The original recipient is kept for DSN and Delivered-To/X-Original-To.
  assert.deepEqual(s.qf!.recipients.map((r) => r.orig ?? r.address), ['info@example.com', 'sales@example.com', 'nobody@example.com', 'x@elsewhere.example']);
  assert.equal(s.content, MSG, 'content is unchanged byte for byte');
});

test('one-to-many, self-expansion kept, extension propagated, duplicates removed', async () => {
  const { config } = conf(seedMain + 'recipient_delimiter = +\n', {
    virtual: 'team@example.com alice@example.net, bob@example.net carol@example.net\n'
      + 'keep@example.com keep@example.com, copy@example.net\n'
      + 'ext@example.com target@example.net\n'
      + 'nested@example.com team@example.com\n',
  });
  const s = await submit(config, ['team@example.com', 'keep@example.com', 'ext+tag@example.com', 'team@example.com', 'nested@example.com'], MSG);
  assert.deepEqual(rcptsOf(s), [
    'alice@example.net', 'bob@example.net', 'carol@example.net',
    'keep@example.com', 'copy@example.net',
    'target+tag@example.net',
    // nested@ → team@ → three addresses: a different original recipient, so not duplicates (Postfix's key includes it).
    'alice@example.net', 'bob@example.net', 'carol@example.net',
  ]);
});

test('an alias loop runs into virtual_alias_recursion_limit: 451 4.6.0, with Postfix\'s warning', async () => {
  const { config } = conf(seedMain + 'virtual_alias_recursion_limit = 20\n', { virtual: 'a@example.com b@example.com\nb@example.com a@example.com\n' });
  logs.length = 0;
  const s = await submit(config, ['a@example.com'], MSG);
  assert.deepEqual(s.result, { reject: { code: 451, enh: '4.6.0', text: 'Alias expansion error' } });
  assert.ok(logs.some((l) => /warning: [0-9A-F]+: unreasonable virtual_alias_maps map nesting for a@example\.com -- message not accepted, try again later$/.test(l)), logs.join('\n'));
  assert.deepEqual(readdirSync(join(config.configDir, 'queue', 'incoming')), [], 'no queue file is left');
});

test('virtual_alias_expansion_limit: too many addresses from one recipient defers the message', async () => {
  const many = Array.from({ length: 12 }, (_, i) => `u${i}@example.net`).join(', ');
  const { config } = conf(seedMain + 'virtual_alias_expansion_limit = 10\n', { virtual: `list@example.com ${many}\n` });
  logs.length = 0;
  const s = await submit(config, ['list@example.com'], MSG);
  assert.deepEqual(s.result, { reject: { code: 451, enh: '4.6.0', text: 'Alias expansion error' } });
  assert.ok(logs.some((l) => l.includes('unreasonable virtual_alias_maps map expansion size for list@example.com')), logs.join('\n'));
});

test('a missing table file defers (451 4.3.0), never bounces or loses the recipient', async () => {
  const { config } = conf('virtual_alias_maps = texthash:DIR/does-not-exist\n');
  logs.length = 0;
  const s = await submit(config, ['a@example.com'], MSG);
  assert.deepEqual(s.result, { reject: { code: 451, enh: '4.3.0', text: 'Error: queue file write error' } });
  assert.ok(logs.some((l) => l.includes('virtual_alias_maps map lookup problem for a@example.com -- message not accepted, try again later')), logs.join('\n'));
});

test('canonical maps rewrite envelope and headers per *_classes; display names and spacing kept', async () => {
  const { config } = conf('sender_canonical_maps = texthash:DIR/sc\nrecipient_canonical_maps = texthash:DIR/rc\ncanonical_maps = texthash:DIR/c\n'
    + 'recipient_canonical_classes = envelope_recipient\n', {
    sc: 'sender@example.org Sender.Name@example.org\n',
    rc: 'info@example.com information@example.com\n',
    c: '@old.example @new.example\n',
  });
  const msg = 'From: "Sender, S." <sender@example.org> (work)\nTo: info@example.com,\n  Someone <x@old.example>\nCc: y@old.example\nSubject: s\n\nbody\n';
  const s = await submit(config, ['info@example.com', 'z@old.example'], msg, { sender: 'sender@example.org' });
  assert.equal(s.qf!.sender, 'Sender.Name@example.org');
  assert.deepEqual(rcptsOf(s), ['information@example.com', 'z@new.example']);
  // header_recipient is not in recipient_canonical_classes: To: info@ stays; canonical_maps applies to headers.
  assert.equal(s.content, 'From: "Sender, S." <Sender.Name@example.org> (work)\nTo: info@example.com,\n  Someone <x@new.example>\nCc: y@new.example\nSubject: s\n\nbody\n');
});

test('header_checks: REJECT reaches the client as 550 5.7.1 and logs Postfix\'s line', async () => {
  const { config } = conf('header_checks = regexp:DIR/hc\n', { hc: '/^Subject:.*viagra/ REJECT Spam not welcome\n' });
  logs.length = 0;
  const s = await submit(config, ['a@example.net'], 'Subject: buy viagra now\nTo: a@example.net\n\nx\n');
  assert.deepEqual(s.result, { reject: { code: 550, enh: '5.7.1', text: 'Spam not welcome' } });
  const line = logs.find((l) => l.includes(': reject: header'));
  assert.match(line ?? '', /postern\/cleanup\[\d+\]: [0-9A-F]+: reject: header Subject: buy viagra now from client\.example\.org\[192\.0\.2\.1\]; from=<sender@example\.org> to=<a@example\.net> proto=ESMTP helo=<helo\.example\.org>: 5\.7\.1 Spam not welcome$/);
});

test('header_checks: REPLACE, PREPEND, IGNORE, WARN, and a multi-line header matched as one string', async () => {
  const { config } = conf('header_checks = regexp:DIR/hc\n', {
    hc: '/^X-Mailer:/ REPLACE X-Mailer: hidden\n/^Subject:/ PREPEND X-Checked: yes\n/^X-Spam:/ IGNORE\n/^Received: from evil/ WARN suspicious relay\n/^X-Long: one\\n\\ttwo/ IGNORE\n/^X-Multi: a\\n b/ WARN multi\n',
  });
  logs.length = 0;
  const s = await submit(config, ['a@example.net'], 'Received: from evil.example\nX-Mailer: Foo 1.0\nSubject: s\nX-Spam: yes\nX-Long: one\n\ttwo\nX-Multi: a\n b\nTo: a@example.net\n\nX-Mailer: body text is not a header\n');
  assert.equal(s.content, 'Received: from evil.example\nX-Mailer: hidden\nX-Checked: yes\nSubject: s\nX-Multi: a\n b\nTo: a@example.net\n\nX-Mailer: body text is not a header\n');
  assert.ok(logs.some((l) => /: warning: header X-Multi: a\? b from client/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /: warning: header Received: from evil\.example from .*: suspicious relay$/.test(l)), logs.join('\n'));
  // As Postfix logs them: the newline of a multi-line header shows as '?'; PREPEND names its text.
  assert.ok(logs.some((l) => /: prepend: header Subject: s from client\.example\.org\[192\.0\.2\.1\]; from=<sender@example\.org> to=<a@example\.net> proto=ESMTP helo=<helo\.example\.org>: X-Checked: yes$/.test(l)), logs.join('\n'));
});

test('HOLD puts the message into the hold queue; DISCARD accepts and drops it', async () => {
  const { config } = conf('header_checks = regexp:DIR/hc\nbody_checks = regexp:DIR/bc\n', {
    hc: '/^Subject: hold me/ HOLD review\n', bc: '/^discard this line$/ DISCARD dropped\n',
  });
  const held = await submit(config, ['a@example.net'], 'Subject: hold me\n\nx\n');
  assert.ok('queueId' in held.result);
  assert.ok(existsSync(held.queue.path('hold', held.result.queueId)), 'the file is in hold');
  assert.ok(!existsSync(held.queue.path('incoming', held.result.queueId)));
  logs.length = 0;
  const gone = await submit(config, ['a@example.net'], 'Subject: ok\n\nfirst\ndiscard this line\nlast\n');
  assert.ok('queueId' in gone.result, 'the client is told the message was accepted');
  assert.equal(gone.qf, undefined, 'no queue file');
  assert.ok(logs.some((l) => l.includes(': discard: body discard this line from client.example.org[192.0.2.1];')), logs.join('\n'));
});

test('body_checks: REJECT on a body line; multipart part headers go to mime_header_checks, not body_checks', async () => {
  const { config } = conf('body_checks = regexp:DIR/bc\nmime_header_checks = regexp:DIR/mc\n', {
    bc: '/^Content-Type: application\\/x-body/ REJECT body saw a part header\n/^bad word$/ REJECT 5.7.0 Bad word\n',
    mc: '/^Content-Type: application\\/x-msdownload/ REJECT Executable attachments are not accepted\n',
  });
  const mime = (ct: string) => `MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\npreamble\n--b1\nContent-Type: ${ct}\n\ndata\n--b1--\n`;
  assert.deepEqual((await submit(config, ['a@example.net'], mime('application/x-msdownload'))).result,
    { reject: { code: 550, enh: '5.7.1', text: 'Executable attachments are not accepted' } });
  const ok = await submit(config, ['a@example.net'], mime('application/x-body'));
  assert.ok('queueId' in ok.result, 'a part header is not a body line');
  assert.equal(ok.content, mime('application/x-body'));
  assert.deepEqual((await submit(config, ['a@example.net'], 'Subject: s\n\nfine\nbad word\n')).result, { reject: { code: 550, enh: '5.7.0', text: 'Bad word' } });
});

test('always_bcc, sender_bcc_maps and recipient_bcc_maps add NOTIFY=NEVER recipients', async () => {
  const { config } = conf('always_bcc = archive@example.net\nsender_bcc_maps = inline:{sender@example.org=sent-copy@example.net}\nrecipient_bcc_maps = inline:{a@example.net=a-copy@example.net}\n');
  const s = await submit(config, ['a@example.net', 'b@example.net'], MSG);
  assert.deepEqual(s.qf!.recipients.map((r) => [r.address, r.notify ?? 0]), [
    ['a@example.net', 0], ['a-copy@example.net', DSN_NOTIFY.NEVER], ['b@example.net', 0],
    ['sent-copy@example.net', DSN_NOTIFY.NEVER], ['archive@example.net', DSN_NOTIFY.NEVER],
  ]);
});

test('duplicate recipients: same address and DSN data once; different NOTIFY kept', async () => {
  const { config } = conf('');
  const s = await submit(config, ['a@example.net', 'A@example.net', { address: 'a@example.net', notify: DSN_NOTIFY.SUCCESS }], MSG);
  assert.deepEqual(s.qf!.recipients.map((r) => [r.address, r.notify ?? 0]), [['a@example.net', 0], ['a@example.net', DSN_NOTIFY.SUCCESS]]);
});

test('masquerading strips subdomains of envelope sender and headers, with exceptions', async () => {
  const { config } = conf('masquerade_domains = !internal.example.com, example.com\nmasquerade_exceptions = root\n');
  const msg = 'From: joe@host.example.com\nTo: root@host.example.com, ann@box.internal.example.com\n\nx\n';
  const s = await submit(config, ['a@example.net'], msg, { sender: 'joe@host.sub.example.com' });
  assert.equal(s.qf!.sender, 'joe@example.com');
  assert.equal(s.content, 'From: joe@example.com\nTo: root@host.example.com, ann@box.internal.example.com\n\nx\n');
});

test('receive_override_options = no_address_mappings, no_header_body_checks switch both off', async () => {
  const { config } = conf(seedMain + 'header_checks = regexp:DIR/hc\nreceive_override_options = no_address_mappings, no_header_body_checks\n',
    { virtual: SEED_VIRTUAL, hc: '/./ REJECT everything\n' });
  const s = await submit(config, ['info@example.com'], MSG);
  assert.deepEqual(rcptsOf(s), ['info@example.com']);
});

test('hostile content: a header beyond header_size_limit keeps its head, NUL and 8-bit body bytes survive', async () => {
  const { config } = conf('header_size_limit = 1024\nheader_checks = regexp:DIR/hc\n', { hc: '/^Subject: never/ REJECT\n' });
  const long = 'X-Big: ' + 'a'.repeat(100) + '\n' + Array.from({ length: 50 }, () => '\t' + 'b'.repeat(60) + '\n').join('');
  const body = 'line \u00e9\u0000\n' + 'z'.repeat(100_000) + '\n';
  logs.length = 0;
  const s = await submit(config, ['a@example.net'], `Subject: s\n${long}To: a@example.net\n\n${body}`);
  assert.ok('queueId' in s.result);
  const kept = s.content!.slice(s.content!.indexOf('X-Big:'), s.content!.indexOf('To: '));
  assert.ok(kept.length <= 1024 && kept.length > 900, `kept ${kept.length} bytes of the header`);
  assert.ok(s.content!.endsWith(`To: a@example.net\n\n${body}`));
  assert.ok(logs.some((l) => l.includes('header X-Big: header is longer than header_size_limit = 1024')), logs.join('\n'));
  // A bad regexp rule is skipped with a warning naming the file and line; mail still flows.
  const bad = conf('header_checks = regexp:DIR/hc\n', { hc: '/^Subject: (unclosed/ REJECT\n/^Subject: two/ REJECT second\n' });
  assert.deepEqual((await submit(bad.config, ['a@example.net'], 'Subject: two\n\nx\n')).result, { reject: { code: 550, enh: '5.7.1', text: 'second' } });
});

test('a bad number in main.cf is reported with file and line, and mail still flows with the default', async () => {
  const { config } = conf(seedMain + 'virtual_alias_recursion_limit = lots\n', { virtual: SEED_VIRTUAL });
  logs.length = 0;
  const s = await submit(config, ['info@example.com'], MSG);
  assert.deepEqual(rcptsOf(s), ['joe@mx.example.com']);
  assert.ok(logs.some((l) => /warning: .*main\.cf, line \d+|warning: .*main\.cf:\d+/.test(l) && l.includes('virtual_alias_recursion_limit') && l.includes('using the default 1000')), logs.join('\n'));
});

test('callers without a configuration keep the old behaviour (no tables)', async () => {
  const { config } = conf('');
  const queue = new MailQueue(join(config.configDir, 'queue'));
  queue.ensureDirs();
  const c = await CleanupSession.open({ myhostname: 'mx', myorigin: 'example.com', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false },
    queue, { sender: 'joe', attrs: {}, addMissingHeaders: true });
  c.addRecipient({ address: 'a@example.net' });
  await c.write(Buffer.from('Subject: x\n\nbody\n'));
  const r = await c.finish();
  assert.ok('queueId' in r);
  const qf = await QueueFile.open(queue.path('incoming', r.queueId), r.queueId);
  assert.equal(qf.sender, 'joe@example.com');
  assert.match((await qf.content()).toString(), /^Subject: x\nMessage-Id: <\d{14}\.[0-9A-F]+@mx>\nDate: .+\nFrom: joe@example\.com\n\nbody\n$/);
});

test('undisclosed_recipients_header: added only when set and header-shaped (Postfix 3.7 default: none)', async () => {
  const { config } = conf('');
  const queue = new MailQueue(join(config.configDir, 'queue'));
  queue.ensureDirs();
  const contentWith = async (header: string | undefined) => {
    const c = await CleanupSession.open({ myhostname: 'mx', myorigin: 'example.com', headerSizeLimit: 102400, messageSizeLimit: 0,
      alwaysAddMissingHeaders: false, undisclosedRecipientsHeader: header }, queue, { sender: 'joe', attrs: {}, addMissingHeaders: true });
    c.addRecipient({ address: 'a@example.net' });
    await c.write(Buffer.from('Subject: x\n\nbody\n'));
    const r = await c.finish();
    assert.ok('queueId' in r);
    const qf = await QueueFile.open(queue.path('incoming', r.queueId), r.queueId);
    return (await qf.content()).toString();
  };
  assert.match(await contentWith('To: undisclosed-recipients:;'), /\nFrom: joe@example\.com\nTo: undisclosed-recipients:;\n\nbody\n$/);
  assert.match(await contentWith(''), /\nFrom: joe@example\.com\n\nbody\n$/);
  assert.match(await contentWith('no colon here'), /\nFrom: joe@example\.com\n\nbody\n$/);
});
