/**
 * Sieve differential test: Pigeonhole is the oracle. The same scripts and messages (generated
 * from the tables of sieve-cases.ts, every extension of docs/sieve.md) go through real Dovecot
 * 2.3 LMTP with Pigeonhole (Debian dovecot-sieve; a private instance, test/harness/real-dovecot.ts,
 * sending its redirects and replies to Postfix's real smtp-sink) and through Postern's lmtpd
 * (redirects and replies captured where they would enter the queue). Compared per case: the
 * LMTP reply, every folder's messages with their flags and keywords, the stored header fields
 * (editheader), and each message sent (envelope sender and recipients, and the header fields
 * and text a user sees: From, To, Subject, Auto-Submitted, Precedence, In-Reply-To,
 * References, Content-Type, X-Sieve-Redirected-From; the text of vacation replies).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot, DOVECOT_MAIL_UID } from '../harness/real-dovecot.ts';
import { SmtpSink } from '../harness/smtp-sink.ts';
import { DovecotFixture } from '../harness/dovecot-fixture.ts';
import { LineChat } from '../harness/line-chat.ts';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';
import { createLmtpd } from '../../src/lmtpd/lmtpd.ts';
import { lmtpdSettings } from '../../src/lmtpd/lmtpd-settings.ts';
import type { SieveSend } from '../../src/lib-storage/mail-deliver.ts';
import { setLogSink, logger } from '../../src/util/msg.ts';
import { sieveCases, type SieveCase } from './sieve-cases.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); if (process.env.SHOWLOG) console.error(l); });
const skip = RealDovecot.unavailable() ?? (SmtpSink.available() ? undefined : 'smtp-sink (postfix) is not installed')
  ?? (existsSync('/usr/lib/dovecot/modules/lib90_sieve_plugin.so') ? undefined : 'dovecot-sieve is not installed');

const CASES = sieveCases();
const userOf = (i: number): string => `u${i}@x.test`;
const FOLDERS = ['Junk', 'Work', 'Lists'];

// A global sieve_before that acts only on messages marked X-Global-Spam (so it is inert for the
// other cases): spam to Junk, final; the user's script runs after it otherwise.
const BEFORE_DIR = mkdtempSync(join(tmpdir(), 'sieve-before-'));
chmodSync(BEFORE_DIR, 0o755);
writeFileSync(join(BEFORE_DIR, '10-spam.sieve'), 'require ["fileinto","imap4flags"];\nif header :is "x-global-spam" "yes" { fileinto "Junk"; stop; }\nif header :is "x-global-spam" "flag" { addflag "Global"; }\n');
chmodSync(join(BEFORE_DIR, '10-spam.sieve'), 0o644);

const PLUGIN_CONF = `
recipient_delimiter = +
namespace inbox {
  inbox = yes
  separator = .
  mailbox Junk {
    special_use = \\Junk
  }
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
  sieve_before = ${BEFORE_DIR}
  sieve_extensions = +editheader +spamtest +spamtestplus +virustest +vacation-seconds +special-use
  sieve_spamtest_status_header = X-Spam-Score: ([[:digit:]]+(\\.[[:digit:]]+)?)
  sieve_spamtest_status_type = score
  sieve_spamtest_max_value = 10
  sieve_virustest_status_header = X-Virus-Scan
  sieve_virustest_status_type = text
  sieve_virustest_text_value1 = clean
  sieve_virustest_text_value5 = infected
  sieve_vacation_min_period = 0
}
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
`;

let dc: RealDovecot | undefined;
let sink: SmtpSink | undefined;
let fx: DovecotFixture | undefined;
let posternPort = 0;
const posternSent: SieveSend[] = [];

function prepareHome(home: string, c: SieveCase, user: string, owner?: number): void {
  mkdirSync(home, { recursive: true });
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, d), { recursive: true });
  for (const f of FOLDERS) for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(home, `.${f}`, d), { recursive: true });
  mkdirSync(join(home, 'sieve'), { recursive: true });
  writeFileSync(join(home, '.dovecot.sieve'), c.script.replace(/RCPT/g, user));
  for (const [n, t] of Object.entries(c.files ?? {})) writeFileSync(join(home, 'sieve', `${n}.sieve`), t);
  void user;
  if (owner !== undefined) {
    const walk = (p: string): void => {
      chownSync(p, owner, owner);
      try { for (const e of readdirSync(p)) walk(join(p, e)); } catch { /* a file */ }
    };
    walk(home);
  }
}

before(async () => {
  if (skip) return;
  sink = await SmtpSink.start();
  const users = CASES.map((_, i) => ({ user: userOf(i), pass: 'pw' }));
  dc = await RealDovecot.start({
    protocols: ['lmtp'], users,
    extraConf: `hostname = mx.x.test\npostmaster_address = postmaster@x.test\nsubmission_host = 127.0.0.1:${sink.port}\n${PLUGIN_CONF}`,
  });
  fx = new DovecotFixture('postern-sieve-diff-');
  const conf = fx.configure({
    users: users.map((u) => ({ ...u, home: join('home', u.user) })),
    settings: 'mail_location = maildir:~\nhostname = mx.x.test\npostmaster_address = postmaster@x.test',
    conf: PLUGIN_CONF,
  });
  CASES.forEach((c, i) => {
    prepareHome(dc!.maildir(userOf(i)), c, userOf(i), DOVECOT_MAIL_UID);
    prepareHome(join(fx!.dir, 'home', userOf(i)), c, userOf(i));
  });
  const directory = await fx.directory();
  const lmtpd = createLmtpd({
    directory, store: new MaildirStore(), settings: lmtpdSettings(conf), log: logger('lmtpd'),
    submit: async (m) => { posternSent.push(m); },
  });
  posternPort = await fx.listen((s) => { void lmtpd.handle(s); });
});

after(async () => {
  rmSync(BEFORE_DIR, { recursive: true, force: true });
  await dc?.stop();
  await sink?.stop();
  await fx?.stop();
});

async function lmtp(port: number, from: string, rcpt: string, message: string): Promise<string> {
  const c = await LineChat.open(port);
  try {
    await c.reply();
    await c.cmd('LHLO client.x.test');
    const m = await c.cmd(`MAIL FROM:<${from}>`);
    if (!m.startsWith('250')) return m;
    const r = await c.cmd(`RCPT TO:<${rcpt}>`);
    if (!r.startsWith('250')) return r;
    const d = await c.cmd('DATA');
    if (!d.startsWith('354')) return d;
    const body = message.replace(/\n/g, '\r\n').replace(/^\./gm, '..');
    c.send(body + '.\r\n');
    const reply = await c.reply(20_000);
    await c.cmd('QUIT').catch(() => '');
    return reply;
  } finally {
    c.close();
  }
}

interface Sent { from: string; rcpts: string[]; headers: Record<string, string>; text?: string }
interface Outcome { reply: string; folders: Record<string, string[]>; sent: Sent[] }

const SEND_HEADERS = ['from', 'to', 'subject', 'auto-submitted', 'precedence', 'in-reply-to', 'references', 'content-type', 'x-sieve-redirected-from', 'mime-version'];
const STRIP = new Set(['return-path', 'delivered-to', 'received']);

function headerFields(content: string): [string, string][] {
  const head = content.split(/\r?\n\r?\n/)[0] ?? '';
  const out: [string, string][] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1]![1] += ' ' + line.trim();
    else { const i = line.indexOf(':'); if (i > 0) out.push([line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()]); }
  }
  return out;
}

function readMaildir(home: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const boxes = ['', ...readdirSync(home).filter((d) => d.startsWith('.') && existsSync(join(home, d, 'cur')))];
  for (const b of boxes) {
    const dir = b === '' ? home : join(home, b);
    let kw: string[] = [];
    try { kw = readFileSync(join(dir, 'dovecot-keywords'), 'utf8').split('\n').filter(Boolean).map((l) => l.replace(/^\d+ /, '')); } catch { /* none */ }
    const items: string[] = [];
    for (const sub of ['new', 'cur']) {
      for (const f of readdirSync(join(dir, sub)).sort()) {
        const info = f.includes(':2,') ? f.slice(f.indexOf(':2,') + 3) : '';
        const flags = [...info].map((ch) => ({ S: '\\Seen', R: '\\Answered', F: '\\Flagged', T: '\\Deleted', D: '\\Draft' } as Record<string, string>)[ch] ?? kw[ch.charCodeAt(0) - 97] ?? `?${ch}`).sort();
        const content = readFileSync(join(dir, sub, f), 'utf8');
        const hdr = headerFields(content).filter(([n]) => !STRIP.has(n)).map(([n, v]) => `${n}: ${v}`);
        items.push(`flags=[${flags.join(' ')}] ${hdr.join(' | ')}`);
      }
    }
    if (items.length) out[b === '' ? 'INBOX' : b.slice(1)] = items.sort();
  }
  return out;
}

function sentOf(from: string, rcpts: string[], content: string): Sent {
  const h: Record<string, string> = {};
  for (const [n, v] of headerFields(content)) if (SEND_HEADERS.includes(n) && h[n] === undefined) h[n] = v.replace(/boundary="?[^";]*"?/, 'boundary=B').replace(/\s+/g, ' ');
  const ct = h['content-type'] ?? '';
  const body = content.split(/\r?\n\r?\n/).slice(1).join('\n\n');
  return { from, rcpts, headers: h, ...(!/multipart/i.test(ct) && h['auto-submitted'] ? { text: body.replace(/\r\n/g, '\n').trim() } : {}) };
}

let sinkSeen = 0;
async function dovecotSent(): Promise<Sent[]> {
  // Wait until the sink's count is stable, then take the new dumps in the order they came.
  let n = -1;
  for (let k = 0; k < 40; k++) {
    await new Promise((r) => setTimeout(r, 75));
    const now = readdirSync(sink!.dir).length;
    if (now === n) break;
    n = now;
  }
  const all = sink!.messages().sort((a, b) => statSync(join(sink!.dir, a.file)).mtimeMs - statSync(join(sink!.dir, b.file)).mtimeMs);
  const fresh = all.slice(sinkSeen);
  sinkSeen = all.length;
  return fresh.map((m) => sentOf(/<([^>]*)>/.exec(m.mailArgs)?.[1] ?? `?${m.mailArgs}`, m.rcptArgs.map((r) => /<([^>]*)>/.exec(r)?.[1] ?? r), m.body.toString('utf8')));
}

function posternOutcomeSent(): Sent[] {
  const out = posternSent.splice(0).map((m) => sentOf(m.sender, m.recipients, m.content.toString('utf8')));
  return out;
}

const norm = (s: Sent[]): string[] => s.map((x) => JSON.stringify(x)).sort();

async function runCase(i: number): Promise<string | undefined> {
  const c = CASES[i]!;
  const user = userOf(i);
  const message = c.message.replace(/RCPT/g, user);
  const from = c.from === undefined ? 'sender@remote.test' : c.from.replace(/RCPT/g, user);
  const ours: Outcome = { reply: '', folders: {}, sent: [] };
  const theirs: Outcome = { reply: '', folders: {}, sent: [] };
  const d: string[] = [];
  for (let t = 0; t < (c.times ?? 1); t++) {
    const a = await lmtp(dc!.ports.lmtp!, from, user, message).catch((e: Error) => `X ${e.message}`);
    const b = await lmtp(posternPort, from, user, message).catch((e: Error) => `X ${e.message}`);
    if (a.startsWith('X') || b.startsWith('X')) d.push(`  connection: pigeonhole ${a} / postern ${b}`);
    theirs.reply += a.slice(0, 1);
    ours.reply += b.slice(0, 1);
    theirs.sent.push(...await dovecotSent());
    ours.sent.push(...posternOutcomeSent());
  }
  theirs.folders = readMaildir(dc!.maildir(user));
  ours.folders = readMaildir(join(fx!.dir, 'home', user));
  if (ours.reply !== theirs.reply) d.push(`  reply: pigeonhole ${theirs.reply} postern ${ours.reply}`);
  if (JSON.stringify(ours.folders) !== JSON.stringify(theirs.folders)) {
    d.push(`  folders:\n    pigeonhole ${JSON.stringify(theirs.folders)}\n    postern    ${JSON.stringify(ours.folders)}`);
  }
  if (JSON.stringify(norm(ours.sent)) !== JSON.stringify(norm(theirs.sent))) {
    d.push(`  sent:\n    pigeonhole ${norm(theirs.sent).join('\n               ')}\n    postern    ${norm(ours.sent).join('\n               ')}`);
  }
  return d.length ? `case ${i} "${c.name}":\n${d.join('\n')}` : undefined;
}

test(`at least 100 script/message pairs, every extension`, { skip }, () => {
  assert.ok(CASES.length >= 100, `only ${CASES.length} cases`);
});

// In parts of at most 80 pairs, so each test stays well under a minute.
const PART = 80;
for (let from = 0; from < CASES.length; from += PART) {
  const to = Math.min(from + PART, CASES.length);
  test(`Sieve pairs ${from}-${to - 1} (${CASES[from]!.name} ... ${CASES[to - 1]!.name}): real Dovecot+Pigeonhole and Postern's lmtpd give the same result`, { skip, timeout: 300_000 }, async () => {
    const diffs: string[] = [];
    for (let i = from; i < to; i++) {
      const d = await runCase(i);
      if (d) diffs.push(d);
    }
    if (diffs.length) console.error(diffs.join('\n\n'));
    assert.equal(diffs.length, 0, `${diffs.length} of ${to - from} cases differ`);
  });
}
