/**
 * Queue files against real Postfix 3.7, in both directions (rec-type.ts: Postern writes and reads
 * Postfix's record format):
 *   - Postern → Postfix: a queue file written by Postern's cleanup is dropped into a private
 *     Postfix's incoming/ (mode 0700, owned by postfix); Postfix's qmgr and smtp(8) deliver it to
 *     smtp-sink, and Postern's own smtp agent delivers the same file to smtp-sink: envelope
 *     (MAIL FROM and RCPT TO with their DSN/BODY/SMTPUTF8 parameters) and content equal byte for
 *     byte. postcat prints its envelope, headers and body as Postern reads them, and real
 *     `postcat -q` and `postern queue show` print the same text for a file from either writer.
 *   - Postfix → Postern: a message sent to Postfix's smtpd (Python smtplib) is held (HOLD), its
 *     queue file copied into Postern's queue; Postern's smtp agent delivers it, then Postfix
 *     itself does (postsuper -H): both deliveries equal byte for byte.
 * Cases: several recipients with DSN NOTIFY/ORCPT, ENVID and RET; 8BITMIME and SMTPUTF8; a header
 * line over 2048 bytes (L records); an empty body; a message over 1 MB; a deferred file with a
 * recipient already done (R rewritten to D). Hostile files (truncated, a sixth length byte, an
 * unknown record type, a NUL in an envelope record) go to corrupt/ through Postern's qmgr with
 * Postfix's warning texts while a good Postfix-written file beside them is delivered.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { showQueueFile } from '../../src/global/queue-cat.ts';
import type { QueueRecipient } from '../../src/global/queue-file.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { ATTR, DSN_NOTIFY, QF } from '../../src/global/rec-type.ts';
import { createSmtpAgent } from '../../src/smtp/smtp.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { SmtpSink, type SinkMessage } from '../harness/smtp-sink.ts';
import { freePort } from '../harness/free-port.ts';
import { makeEnv, until, type Env } from '../harness/qmgr-testkit.ts';

const run = promisify(execFile);
const logs: string[] = [];
setLogSink((l) => logs.push(l));

const skip = RealPostfix.unavailable() ?? (SmtpSink.available() ? undefined : 'smtp-sink is not installed');
let pf: RealPostfix;
let sink: SmtpSink;
let env: Env;
let pfSmtpPort = 0;
let utf8Sink: Utf8Sink;

/**
 * A receiver that offers SMTPUTF8 and 8BITMIME (smtp-sink offers no SMTPUTF8): Python's smtpd
 * module, each transaction dumped as JSON (envelope, parameters, the data as base64).
 */
class Utf8Sink {
  readonly dir = mkdtempSync(join(tmpdir(), 'postern-utf8sink-'));
  port = 0;
  private proc: ChildProcess | undefined;
  async start(): Promise<void> {
    this.port = await freePort('127.0.0.4');
    const py = `
import smtpd, asyncore, json, base64, sys, os, itertools
n = itertools.count()
class S(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        name = os.path.join(sys.argv[1], 'm%06d.json' % next(n))
        with open(name + '.tmp', 'w') as f:
            json.dump({'from': mailfrom, 'mail_options': kw.get('mail_options', []), 'rcpts': rcpttos, 'data': base64.b64encode(data).decode()}, f)
        os.rename(name + '.tmp', name)
S(('127.0.0.4', int(sys.argv[2])), None, decode_data=False, enable_SMTPUTF8=True)
asyncore.loop()
`;
    this.proc = spawn('python3', ['-W', 'ignore', '-c', py, this.dir, String(this.port)], { stdio: 'ignore' });
    const { connect } = await import('node:net');
    await until(() => new Promise<boolean>((r) => { const c = connect(this.port, '127.0.0.4'); c.once('connect', () => { c.destroy(); r(true); }); c.once('error', () => r(false)); }), 10_000, 'the SMTPUTF8 receiver listens');
  }
  files(): string[] { return readdirSync(this.dir).filter((f) => f.endsWith('.json')).sort(); }
  message(f: string): SinkMessage {
    const j = JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as { from: string; mail_options: string[]; rcpts: string[]; data: string };
    return { mailArgs: [`<${j.from}>`, ...j.mail_options].join(' '), rcptArgs: j.rcpts.map((r) => `<${r}>`), proto: 'ESMTP', body: Buffer.from(j.data, 'base64'), file: f };
  }
  stop(): void { this.proc?.kill('SIGKILL'); rmSync(this.dir, { recursive: true, force: true }); }
}
let postfixUid = 0;
let postfixGid = 0;

before(async () => {
  if (skip) return;
  sink = await SmtpSink.start({ host: '127.0.0.3' });
  utf8Sink = new Utf8Sink();
  await utf8Sink.start();
  pfSmtpPort = await freePort('127.0.0.1');
  pf = await RealPostfix.start({
    mainCf: [
      'mydestination =',
      `relayhost = [127.0.0.3]:${sink.port}`,
      `transport_maps = inline:{utf8.example=smtp:[127.0.0.4]:${utf8Sink.port}}`,
      'smtpd_relay_restrictions = permit_mynetworks, reject',
      // Every message is held: its queue file waits in hold/ for the test.
      'smtpd_recipient_restrictions = check_client_access static:HOLD',
      'message_size_limit = 20000000',
      'smtputf8_enable = yes',
      // Postfix's smtp(8) would fold lines over 998 bytes on the way out; Postern's smtp agent
      // sends them as they are. The file's content is what is compared here.
      'smtp_line_length_limit = 0',
    ].join('\n'),
    masterCf: `127.0.0.1:${pfSmtpPort} inet n - n - - smtpd`,
  });
  const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postfix:'))!.split(':');
  postfixUid = Number(pw[2]); postfixGid = Number(pw[3]);
  // Postern's side: a qmgr (with a recording agent) and a queue; deliveries to the sink go
  // through Postern's real smtp agent.
  env = await makeEnv();
});
after(async () => {
  await env?.close();
  await pf?.stop();
  await sink?.stop();
  utf8Sink?.stop();
});

/** The receiver of a recipient domain (as Postfix's transport_maps above routes it). */
function receiverOf(rcpt: string): { nexthop: string; files: () => string[]; message: (f: string) => SinkMessage } {
  if (rcpt.endsWith('@utf8.example')) return { nexthop: `[127.0.0.4]:${utf8Sink.port}`, files: () => utf8Sink.files(), message: (f) => utf8Sink.message(f) };
  return {
    nexthop: `[127.0.0.3]:${sink.port}`,
    files: () => sink.messages().map((m) => m.file),
    message: (f) => sink.messages().find((m) => m.file === f)!,
  };
}

/** Wait for the one message `deliver` makes arrive at the receiver of `rcpt`. */
async function arrival(rcpt: string, deliver: () => Promise<void>, what: string): Promise<SinkMessage> {
  const r = receiverOf(rcpt);
  const before = new Set(r.files());
  await deliver();
  let fresh: string[] = [];
  await until(() => (fresh = r.files().filter((f) => !before.has(f))).length > 0, 30_000, what);
  assert.equal(fresh.length, 1, `${what}: one message`);
  // smtp-sink may still be writing its dump file: read it once it is whole and stable.
  let m: SinkMessage | undefined;
  let last = '';
  await until(() => {
    try {
      const got = r.message(fresh[0]!);
      const key = `${got.mailArgs}|${got.body.length}`;
      const stable = key === last && got.mailArgs !== '';
      last = key; m = got;
      return stable;
    } catch { return false; }
  }, 10_000, `${what}: the dump file`);
  return m!;
}

function smtpAgent() {
  return createSmtpAgent(MainConfig.parse('myhostname = mx.example.test\nsmtp_connect_timeout = 5s\n', join(env.dir, 'smtp.cf'), env.dir));
}

/** A queue file written by Postern's cleanup. */
async function posternFile(o: { rcpts: QueueRecipient[]; content: Buffer; flags?: number; attrs?: Record<string, string> }): Promise<string> {
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false },
    env.queue, { sender: 'alice@example.org', attrs: o.attrs ?? {}, addMissingHeaders: false, flags: o.flags });
  for (const r of o.rcpts) c.addRecipient(r);
  await c.write(o.content);
  const res = await c.finish();
  assert.ok('queueId' in res, JSON.stringify(res));
  // Out of qmgr's reach: this test hands it around itself.
  const from = env.queue.path('incoming', res.queueId);
  const to = join(env.dir, `posted-${res.queueId}`);
  copyFileSync(from, to);
  spawnSync('rm', ['-f', from]);
  return to;
}

/** Deliver one queue file (a path) with Postern's smtp agent to its receiver; the message it got. */
async function posternDelivers(path: string, doneFirst = false): Promise<SinkMessage> {
  const qid = path.split(/[-/]/).pop()!;
  const qf = await QueueFile.open(path, qid);
  if (doneFirst) await qf.markDone(qf.recipients[0]!);
  const rcpt = qf.undone[0]!.address;
  return arrival(rcpt, async () => {
    const agent = smtpAgent();
    const res = await agent.deliver({ qf, transport: 'smtp', nexthop: receiverOf(rcpt).nexthop, recipients: qf.undone, activeSince: Date.now() });
    await agent.close();
    for (const r of res) assert.equal(r.status, 'sent', r.text);
  }, `Postern delivers ${qid}`);
}

/** Hand a file to real Postfix's incoming/ and wait for its delivery. */
async function postfixDelivers(path: string, qid: string, rcpt: string): Promise<SinkMessage> {
  const m = await arrival(rcpt, async () => {
    const dst = join(pf.queueDir, 'incoming', qid);
    copyFileSync(path, dst);
    chownSync(dst, postfixUid, postfixGid);
    chmodSync(dst, 0o700);
    await run('/usr/sbin/postqueue', ['-c', pf.configDir, '-f']);
  }, `Postfix delivers ${qid}`);
  await until(() => new RegExp(`${qid}: removed`).test(pf.log()), 10_000, `Postfix removes ${qid}`);
  assert.doesNotMatch(pf.log().split('\n').filter((l) => l.includes(qid)).join('\n'), /warning|corrupt/);
  return m;
}

/** Send a message to Postfix's smtpd (held there); its queue ID. */
function postfixAccepts(o: { mailOpts: string[]; rcpts: [string, string[]][]; content: Buffer }): string {
  const py = `
import smtplib, sys, json
a = json.loads(sys.argv[1])
data = open(sys.argv[2], 'rb').read().replace(b'\\n', b'\\r\\n')
s = smtplib.SMTP('127.0.0.1', int(a['port']), local_hostname='client.example.org')
s.ehlo()
code, msg = s.mail('alice@example.org', a['mail'])
assert code == 250, (code, msg)
for r, opts in a['rcpts']:
    code, msg = s.rcpt(r, opts)
    assert code == 250, (code, msg)
code, msg = s.data(data)
assert code == 250, (code, msg)
print(msg.decode())
s.quit()
`;
  const f = join(env.dir, `msg-${Date.now()}`);
  writeFileSync(f, o.content);
  const r = spawnSync('python3', ['-c', py, JSON.stringify({ port: pfSmtpPort, mail: o.mailOpts, rcpts: o.rcpts }), f], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const m = /queued as ([0-9A-Za-z]+)/.exec(r.stdout);
  assert.ok(m, r.stdout);
  return m[1]!;
}

/** Postfix's hold file, once cleanup has finished it. */
async function heldFile(qid: string): Promise<string> {
  const p = join(pf.queueDir, 'hold', qid);
  await until(() => existsSync(p) && (spawnSync('stat', ['-c', '%a', p]).stdout.toString().trim() === '700'), 10_000, `hold/${qid}`);
  const copy = join(env.dir, `held-${qid}`);
  copyFileSync(p, copy);
  return copy;
}

async function postfixReleases(qid: string, rcpt: string): Promise<SinkMessage> {
  return arrival(rcpt, async () => {
    await run('/usr/sbin/postsuper', ['-c', pf.configDir, '-H', qid]);
    await run('/usr/sbin/postqueue', ['-c', pf.configDir, '-f']);
  }, `Postfix delivers ${qid}`);
}

/**
 * An envelope command's address and parameters, in a form both clients share: parameters sorted
 * (each client has its own order); SIZE left out (an estimate: Postfix's smtp(8) sends the C
 * record's content size, which counts record headers); an ORCPT equal to the address itself
 * left out (Postfix's smtp(8) sends one from the O record for every recipient, Postern's smtp
 * agent only when the file has a DSN ORCPT: no information is lost either way).
 */
function envParams(s: string): string[] {
  const [addr, ...params] = s.split(' ');
  const a = addr!.replace(/^<|>$/g, '').toLowerCase();
  return [addr!, ...params.filter((p) => !p.startsWith('SIZE=') && p.toLowerCase() !== `orcpt=rfc822;${a}`).sort()];
}

function sameDelivery(a: SinkMessage, b: SinkMessage, what: string): void {
  assert.deepEqual(envParams(a.mailArgs), envParams(b.mailArgs), `${what}: MAIL FROM`);
  assert.deepEqual(a.rcptArgs.map(envParams), b.rcptArgs.map(envParams), `${what}: RCPT TO`);
  assert.ok(a.body.equals(b.body), `${what}: content differs (${a.body.length} vs ${b.body.length} bytes)`);
}

const LONG = 'X-Long: ' + 'word '.repeat(700).trim(); // one 3,500-byte header line
const CASES: { name: string; rcpts: QueueRecipient[]; content: Buffer; flags?: number; attrs?: Record<string, string>; mailOpts: string[]; doneFirst?: boolean }[] = [
  {
    name: 'several recipients with DSN NOTIFY/ORCPT, ENVID, RET',
    rcpts: [
      { address: 'bob@example.net', orig: 'bob@example.net', notify: DSN_NOTIFY.SUCCESS | DSN_NOTIFY.FAILURE, orcpt: 'rfc822;Bob@Example.net' },
      { address: 'carol@example.net', orig: 'carol@example.net', notify: DSN_NOTIFY.NEVER },
      { address: 'dave@example.net', orig: 'dave@example.net' },
    ],
    content: Buffer.from('From: alice@example.org\nSubject: dsn\n\nbody line\n.dot line\n'),
    attrs: { [ATTR.DSN_ENVID]: 'ENV-42', [ATTR.DSN_RET]: 'HDRS' },
    mailOpts: ['ENVID=ENV-42', 'RET=HDRS'],
  },
  {
    name: '8BITMIME and SMTPUTF8',
    rcpts: [{ address: 'bob@utf8.example', orig: 'bob@utf8.example' }],
    content: Buffer.from('From: alice@example.org\nSubject: caf\u00e9 \u00fcber\n\n8-bit body: \u00e9t\u00e9 \u2713\n'),
    flags: QF.EIGHTBIT | QF.SMTPUTF8,
    attrs: { [ATTR.ENCODING]: '8BITMIME' },
    mailOpts: ['BODY=8BITMIME', 'SMTPUTF8'],
  },
  {
    name: 'a header line over 2048 bytes',
    rcpts: [{ address: 'bob@example.net', orig: 'bob@example.net' }],
    content: Buffer.from(`From: alice@example.org\n${LONG}\nSubject: long\n\nbody\n`),
    mailOpts: [],
  },
  {
    name: 'an empty body',
    rcpts: [{ address: 'bob@example.net', orig: 'bob@example.net' }],
    content: Buffer.from('From: alice@example.org\nSubject: empty\n\n'),
    mailOpts: [],
  },
  {
    name: 'a message over 1 MB',
    rcpts: [{ address: 'bob@example.net', orig: 'bob@example.net' }],
    content: Buffer.from('From: alice@example.org\nSubject: big\n\n' + Array.from({ length: 16000 }, (_, i) => `line ${i} ${'z'.repeat(60)}`).join('\n') + '\n'),
    mailOpts: [],
  },
  {
    name: 'a deferred file with its first recipient already done',
    rcpts: [{ address: 'bob@example.net', orig: 'bob@example.net' }, { address: 'carol@example.net', orig: 'carol@example.net' }],
    content: Buffer.from('From: alice@example.org\nSubject: half done\n\nbody\n'),
    mailOpts: [],
    doneFirst: true,
  },
];

for (const c of CASES) {
  test(`Postern's queue file, delivered by real Postfix and by Postern: ${c.name}`, { skip, timeout: 90_000 }, async () => {
    const path = await posternFile(c);
    const qid = path.split('-').pop()!;
    const ours = await posternDelivers(path, c.doneFirst);
    // The same file (with the D record when the first recipient is done) to Postfix.
    const theirs = await postfixDelivers(path, qid, c.rcpts[c.doneFirst ? 1 : 0]!.address);
    sameDelivery(theirs, ours, c.name);
    if (c.doneFirst) assert.deepEqual(ours.rcptArgs, ['<carol@example.net>']);
    // (Python's smtpd gives the data without its last line end.)
    assert.ok(ours.body.length >= c.content.length - 1, 'the whole content');
  });

  test(`real Postfix's queue file, delivered by Postern and by Postfix: ${c.name}`, { skip, timeout: 90_000 }, async () => {
    const rcpts: [string, string[]][] = c.rcpts.map((r) => {
      const opts: string[] = [];
      if (r.notify) {
        const n = r.notify & DSN_NOTIFY.NEVER ? ['NEVER'] : [r.notify & DSN_NOTIFY.SUCCESS ? 'SUCCESS' : '', r.notify & DSN_NOTIFY.FAILURE ? 'FAILURE' : '', r.notify & DSN_NOTIFY.DELAY ? 'DELAY' : ''].filter(Boolean);
        opts.push(`NOTIFY=${n.join(',')}`);
      }
      if (r.orcpt) opts.push(`ORCPT=${r.orcpt}`);
      return [r.address, opts];
    });
    const qid = postfixAccepts({ mailOpts: c.mailOpts, rcpts, content: c.content });
    const held = await heldFile(qid);
    if (c.doneFirst) {
      // As Postfix's deliver_completed() does in its own copy: R → D in place.
      const qf = await QueueFile.open(join(pf.queueDir, 'hold', qid), qid);
      await qf.markDone(qf.recipients[0]!);
    }
    const ours = await posternDelivers(held, c.doneFirst);
    const theirs = await postfixReleases(qid, c.rcpts[c.doneFirst ? 1 : 0]!.address);
    sameDelivery(ours, theirs, c.name);
    if (c.doneFirst) assert.deepEqual(theirs.rcptArgs.map(envParams), [['<carol@example.net>']]);
  });
}

test('postcat -q prints a Postern queue file: envelope, headers and body as Postern reads them', { skip }, async () => {
  const c = CASES[0]!;
  const path = await posternFile({ ...c, content: Buffer.from(`From: alice@example.org\n${LONG}\nSubject: postcat\n\nbody\n`) });
  const qf = await QueueFile.open(path, path.split('-').pop()!);
  const content = (await qf.content()).toString('utf8');
  const hb = spawnSync('/usr/sbin/postcat', ['-c', pf.configDir, '-hb', path], { encoding: 'utf8' });
  assert.equal(hb.status, 0, hb.stderr);
  assert.equal(hb.stdout, content, 'headers and body');
  const e = spawnSync('/usr/sbin/postcat', ['-c', pf.configDir, '-e', path], { encoding: 'utf8' });
  assert.equal(e.status, 0, e.stderr);
  assert.equal(e.stderr, '', 'no warning');
  assert.match(e.stdout, /^sender: alice@example\.org$/m);
  for (const r of c.rcpts) assert.match(e.stdout, new RegExp(`^recipient: ${r.address}$`, 'm'));
  assert.match(e.stdout, /^named_attribute: envelope_id=ENV-42$/m);
  assert.match(e.stdout, /^named_attribute: ret_flags=2$/m);
  assert.match(e.stdout, /^named_attribute: notify_flags=6$/m);
  assert.match(e.stdout, /^named_attribute: dsn_orig_rcpt=rfc822;Bob@Example\.net$/m);
});

test('hostile queue files go to corrupt/ with Postfix\'s warnings; a good Postfix-written file beside them is delivered', { skip, timeout: 60_000 }, async () => {
  const qid = postfixAccepts({ mailOpts: [], rcpts: [['bob@example.net', []]], content: Buffer.from('From: alice@example.org\nSubject: good one\n\nkeeps going\n') });
  const good = readFileSync(await heldFile(qid));
  const put = (id: string, b: Buffer): void => { writeFileSync(env.queue.path('incoming', id), b, { mode: 0o700 }); chmodSync(env.queue.path('incoming', id), 0o700); };
  // Where the envelope's records are, in Postfix's file: the sender record S.
  const sAt = good.indexOf(Buffer.from('Salice@example.org').subarray(1)) - 2;
  assert.equal(good[sAt], 0x53);
  const truncated = good.subarray(0, good.length - 5);
  const tooManyBits = Buffer.concat([good.subarray(0, sAt), Buffer.from([0x53, 0x91, 0x80, 0x80, 0x80, 0x80, 0x00]), good.subarray(sAt + 2)]);
  const unknown = Buffer.from(good); unknown[sAt] = 0x5a; // 'Z'
  const nul = Buffer.from(good); nul[sAt + 2 + 5] = 0; // inside the sender address
  const bad = { BAD001: truncated, BAD002: tooManyBits, BAD003: unknown, BAD004: nul };
  for (const [id, b] of Object.entries(bad)) put(id, b);
  put(qid, good);
  logs.length = 0;
  env.agent.deliveries.length = 0;
  await env.qmgr.start();
  env.qmgr.notify();
  await until(() => env.agent.deliveries.some((d) => d.qid === qid) && Object.keys(bad).every((id) => existsSync(env.queue.path('corrupt', id))), 30_000, 'the good file delivered, the bad ones in corrupt/');
  const d = env.agent.deliveries.find((x) => x.qid === qid)!;
  assert.match(d.content, /\nSubject: good one\n(?:[^\n]+\n)*\nkeeps going\n$/, 'delivered whole');
  const text = logs.join('\n');
  assert.match(text, /BAD001: message rejected: missing end record|active\/BAD001: unexpected EOF in data, record type \d+ length \d+/);
  assert.match(text, /active\/BAD002: too many length bits, record type 83/);
  assert.match(text, /BAD003: Unexpected record type 'Z' at offset \d+/);
  assert.match(text, /active\/BAD004: message rejected: null byte in record type 83/);
  for (const id of Object.keys(bad)) assert.match(text, new RegExp(`saving corrupt file "${id}" from queue "active" to queue "corrupt"`));
  assert.deepEqual(readdirSync(join(env.dir, 'incoming')), []);
});

test('`postern queue show` prints a queue file written by real Postfix as `postcat -q` does', { skip }, async () => {
  const qid = postfixAccepts({ mailOpts: ['ENVID=E-7', 'RET=FULL'], rcpts: [['bob@example.net', ['NOTIFY=DELAY', 'ORCPT=rfc822;B@example.net']], ['carol@example.net', []]],
    content: Buffer.from(`From: alice@example.org\n${LONG}\nSubject: show\n\nbody\n`) });
  await heldFile(qid);
  const pc = spawnSync('/usr/sbin/postcat', ['-c', pf.configDir, '-q', qid], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  assert.equal(pc.status, 0, pc.stderr);
  let ours = '';
  await showQueueFile(new MailQueue(pf.queueDir), 'hold', qid, (s) => { ours += s; });
  // postcat names the file by its path from the queue directory; so does Postern.
  assert.equal(ours, pc.stdout);
  await run('/usr/sbin/postsuper', ['-c', pf.configDir, '-d', qid, 'hold']);
});

test('`postcat -q` prints a queue file written by Postern as `postern queue show` does', { skip }, async () => {
  const c = CASES[0]!;
  const path = await posternFile({ ...c, content: Buffer.from(`From: alice@example.org\n${LONG}\nSubject: show\n\nbody\n`) });
  const qid = path.split('-').pop()!;
  const dst = join(pf.queueDir, 'hold', qid);
  copyFileSync(path, dst);
  chownSync(dst, postfixUid, postfixGid);
  chmodSync(dst, 0o700);
  const pc = spawnSync('/usr/sbin/postcat', ['-c', pf.configDir, '-q', qid], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  assert.equal(pc.status, 0, pc.stderr);
  assert.equal(pc.stderr, '', 'no warning');
  let ours = '';
  await showQueueFile(new MailQueue(pf.queueDir), 'hold', qid, (s) => { ours += s; });
  assert.equal(pc.stdout, ours);
  await run('/usr/sbin/postsuper', ['-c', pf.configDir, '-d', qid, 'hold']);
});
