/**
 * offlineimap3 (Debian's offlineimap3, the Python 3 port of OfflineIMAP) as a real client of
 * imapd: an account with several folders (one nested, one with a non-ASCII name, which
 * offlineimap stores locally in UTF-8 with `utf8foldernames = yes`), flags, keywords-free
 * messages with 8-bit text and a 3 MB attachment is synchronised to a local Maildir; then
 * changes on both sides (a new local message in the non-ASCII folder, a local flag, a local
 * deletion; a delivery, a flag and an expunge on the server) are synchronised; then a third run
 * with no change. What a user checks, asserted after each run:
 *   - each server message is in the local Maildir byte for byte (offlineimap stores LF line
 *     ends: the server's CRLF text with CRLF turned into LF), with the same flags, and under the
 *     server's UID (offlineimap's `U=` in the file name);
 *   - the message written locally arrives on the server with its text and flags;
 *   - deletions go both ways; the last run copies nothing (no duplicate anywhere) and the
 *     server's UIDs and contents are exactly those after the second run.
 * The same runs against real Dovecot 2.3 must leave the same local Maildir and the same server
 * mailboxes (UIDs, flags, texts). Skipped, with the reason, when offlineimap3 is not installed;
 * the Dovecot half when real Dovecot cannot run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFixture } from '../harness/imapd-testkit.ts';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { NAMESPACE_CONF, Session } from '../harness/imap-differential.ts';
import { withoutTestClock } from '../harness/test-clock.ts';

const OFFLINEIMAP = existsSync('/usr/bin/offlineimap') ? '/usr/bin/offlineimap' : undefined;
const skip = OFFLINEIMAP ? false : 'Debian package offlineimap3 is not installed';
const USER = 'ola@example.test';
const PASS = 'pw';

/** The folders of the account: IMAP name (modified UTF-7) and offlineimap's local name. */
const FOLDERS: [string, string][] = [
  ['INBOX', 'INBOX'], ['Archive', 'Archive'], ['Projects/2024', 'Projects.2024'], ['Entw&APw-rfe', 'Entwürfe'], ['Sent', 'Sent'], ['Trash', 'Trash'],
];

function message(subject: string, body: string): Buffer {
  return Buffer.from(`From: Ola <ola@example.test>\r\nTo: b@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}\r\n`, 'utf8');
}

function large(): Buffer {
  const bin = Buffer.alloc(3 << 20);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919 + (i >> 11)) & 0xff;
  const b64 = bin.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`From: ola@example.test\r\nSubject: large\r\nMessage-ID: <large@example.test>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="blob.bin"\r\n\r\n${b64}\r\n--b1--\r\n`);
}

interface ServerMessage { uid: number; flags: string; text: string }
type ServerView = Record<string, ServerMessage[]>;

async function logIn(port: number): Promise<Session> {
  const s = new Session(port);
  await s.wait(/^\* OK[^\n]*\n/);
  assert.match(await s.command('L', `LOGIN ${USER} ${PASS}`), /L OK/);
  return s;
}

async function append(s: Session, box: string, flags: string, msg: Buffer): Promise<void> {
  const head = Buffer.from(`APPEND "${box}" (${flags}) {${msg.length}+}\r\n`, 'latin1');
  assert.match(await s.command('A', Buffer.concat([head, msg])), /A OK/);
}

/** Every folder's messages on the server: UID, flags (sorted, \Recent left out) and text. */
async function serverView(port: number): Promise<ServerView> {
  const s = await logIn(port);
  const out: ServerView = {};
  try {
    for (const [box] of FOLDERS) {
      const sel = await s.command('S', `EXAMINE "${box}"`);
      assert.match(sel, /S OK/, `${box}: ${sel}`);
      const raw = Buffer.from(await s.command('F', 'UID FETCH 1:* (UID FLAGS BODY.PEEK[])'), 'latin1');
      const list: ServerMessage[] = [];
      let at = 0;
      const text = raw.toString('latin1');
      const re = /\* \d+ FETCH \(([^{]*)BODY\[\] \{(\d+)\}\r\n/g;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        const uid = Number(/UID (\d+)/.exec(m[1]!)![1]);
        const flags = /FLAGS \(([^)]*)\)/.exec(m[1]!)![1]!.split(' ').filter((f) => f && f !== '\\Recent').sort().join(' ');
        at = m.index + m[0].length;
        const n = Number(m[2]);
        list.push({ uid, flags, text: raw.subarray(at, at + n).toString('utf8') });
        re.lastIndex = at + n;
      }
      out[box] = list.sort((a, b) => a.uid - b.uid);
    }
  } finally { s.close(); }
  return out;
}

interface LocalMessage { uid: number | undefined; flags: string; text: string; file: string }
type LocalView = Record<string, LocalMessage[]>;

const MAILDIR_FLAGS: Record<string, string> = { D: '\\Draft', F: '\\Flagged', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };

function localView(root: string): LocalView {
  const out: LocalView = {};
  for (const [, local] of FOLDERS) {
    const dir = join(root, local);
    const list: LocalMessage[] = [];
    for (const sub of ['cur', 'new']) {
      if (!existsSync(join(dir, sub))) continue;
      for (const name of readdirSync(join(dir, sub))) {
        const u = /,U=(\d+)/.exec(name);
        const info = /:2,([A-Za-z]*)$/.exec(name)?.[1] ?? '';
        const flags = [...info].map((c) => MAILDIR_FLAGS[c]).filter((f): f is string => f !== undefined).sort().join(' ');
        list.push({ uid: u ? Number(u[1]) : undefined, flags, text: readFileSync(join(dir, sub, name), 'utf8'), file: join(dir, sub, name) });
      }
    }
    out[local] = list.sort((a, b) => (a.uid ?? 0) - (b.uid ?? 0) || a.text.localeCompare(b.text));
  }
  return out;
}

/** What the user compares: each server message is the local one (CRLF as LF), flags and UID alike. */
function assertSame(server: ServerView, local: LocalView, when: string): void {
  for (const [box, name] of FOLDERS) {
    const s = server[box]!.map((m) => ({ uid: m.uid, flags: m.flags, text: m.text.replace(/\r\n/g, '\n') }));
    const l = local[name]!.map((m) => ({ uid: m.uid, flags: m.flags, text: m.text }));
    assert.equal(l.length, s.length, `${when}: ${name} has ${l.length} local messages, the server ${s.length}`);
    assert.deepEqual(l, s, `${when}: ${name} differs between the server and the local Maildir`);
  }
}

function offlineimapConf(dir: string, port: number): string {
  return `[general]
accounts = main
metadata = ${join(dir, 'meta')}
maxsyncaccounts = 1
ui = basic

[Account main]
localrepository = local
remoterepository = remote
utf8foldernames = yes

[Repository local]
type = Maildir
localfolders = ${join(dir, 'mail')}

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = ${port}
remoteuser = ${USER}
remotepass = ${PASS}
ssl = no
starttls = no
maxconnections = 1
holdconnectionopen = no
`;
}

/** One offlineimap run (async: a Postern server runs in this process). */
async function sync(dir: string): Promise<string> {
  // Without libfaketime under npm run test:clock: offlineimap waits with Python's time.sleep, which
  // libfaketime 0.9.10 breaks (EINVAL: it hangs); it keeps the real clock, the sync does not depend on it.
  const p = spawn(OFFLINEIMAP!, ['-o', '-c', join(dir, 'offlineimaprc')], { stdio: ['ignore', 'pipe', 'pipe'], env: withoutTestClock() });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  const timer = setTimeout(() => p.kill(), 50_000);
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  clearTimeout(timer);
  assert.equal(code, 0, `offlineimap failed:\n${out}`);
  assert.doesNotMatch(out, /^(ERROR|WARNING)/m, out);
  return out;
}

interface Run { after: [ServerView, LocalView][] }

/** The whole scenario against one server on `port`; returns the views after each of the three runs. */
async function scenario(port: number, deliver: (s: Session) => Promise<void>): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-offlineimap-'));
  try {
    writeFileSync(join(dir, 'offlineimaprc'), offlineimapConf(dir, port));
    mkdirSync(join(dir, 'mail'));
    const s = await logIn(port);
    try {
      for (const box of ['Archive', 'Projects/2024', 'Entw&APw-rfe']) assert.match(await s.command('C', `CREATE "${box}"`), /C OK/);
      await append(s, 'INBOX', '\\Seen', message('hello', 'Grüße aus Köln'));
      await append(s, 'INBOX', '\\Flagged', message('flagged', 'wichtig'));
      await append(s, 'INBOX', '', message('to delete locally', 'x'));
      await append(s, 'INBOX', '', message('to expunge on the server', 'y'));
      await append(s, 'Archive', '\\Seen \\Answered', large());
      await append(s, 'Projects/2024', '\\Draft', message('plan', 'Ünïcödé ✓'));
      await append(s, 'Entw&APw-rfe', '\\Seen', message('entwurf', 'noch nicht fertig'));
    } finally { s.close(); }
    const after: [ServerView, LocalView][] = [];

    await sync(dir);
    after.push([await serverView(port), localView(join(dir, 'mail'))]);
    assertSame(after[0]![0], after[0]![1], 'first run');

    // changes on both sides
    const local = after[0]![1];
    const doomed = local.INBOX!.find((m) => m.text.includes('Subject: to delete locally'))!;
    unlinkSync(doomed.file);
    const hello = local.INBOX!.find((m) => m.text.includes('Subject: hello'))!;
    renameSync(hello.file, hello.file.replace(/:2,[A-Za-z]*$/, ':2,FS'));
    const fresh = message('written offline', 'lokal geschrieben äöü').toString('utf8').replace(/\r\n/g, '\n');
    writeFileSync(join(dir, 'mail', 'Entwürfe', 'cur', `1765000000_0.${process.pid}.localhost:2,S`), fresh);
    const t = await logIn(port);
    try {
      await deliver(t);
      assert.match(await t.command('S', 'SELECT INBOX'), /S OK/);
      assert.match(await t.command('F', 'UID STORE 2 +FLAGS.SILENT (\\Answered)'), /F OK/);
      assert.match(await t.command('D', 'UID STORE 4 +FLAGS.SILENT (\\Deleted)'), /D OK/);
      assert.match(await t.command('E', 'EXPUNGE'), /E OK/);
    } finally { t.close(); }

    await sync(dir);
    after.push([await serverView(port), localView(join(dir, 'mail'))]);
    assertSame(after[1]![0], after[1]![1], 'second run');
    const inbox = after[1]![0].INBOX!;
    assert.deepEqual(inbox.map((m) => m.uid), [1, 2, 5], 'the local deletion and the server expunge went both ways, nothing renumbered');
    assert.equal(inbox.find((m) => m.uid === 1)!.flags, '\\Flagged \\Seen', 'the local flag reached the server');
    assert.equal(inbox.find((m) => m.uid === 2)!.flags, '\\Answered \\Flagged', 'the server flag reached the local Maildir');
    const drafts = after[1]![0]['Entw&APw-rfe']!;
    assert.equal(drafts.length, 2);
    assert.equal(drafts[1]!.text.replace(/\r\n/g, '\n'), fresh, 'the message written locally is on the server, text unchanged');
    assert.equal(drafts[1]!.flags, '\\Seen');
    for (const box of Object.keys(after[0]![0])) {
      for (const m of after[0]![0][box]!) {
        const now = after[1]![0][box]!.find((x) => x.uid === m.uid);
        if (now) assert.equal(now.text, m.text, `${box} UID ${m.uid} kept its text`);
      }
    }

    await sync(dir);
    after.push([await serverView(port), localView(join(dir, 'mail'))]);
    assertSame(after[2]![0], after[2]![1], 'third run');
    assert.deepEqual(after[2]![0], after[1]![0], 'a run with no change changes nothing on the server (no duplicate, same UIDs)');
    assert.deepEqual(after[2]![1].INBOX!.map((m) => m.file), after[1]![1].INBOX!.map((m) => m.file), 'nor locally');
    return { after };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const newMail = (s: Session): Promise<void> => append(s, 'INBOX', '', message('delivered between runs', 'neu'));

/** Views without the local file names (they hold offlineimap's host name and times). */
function comparable(r: Run): unknown {
  return r.after.map(([s, l]) => [s, Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v.map(({ uid, flags, text }) => ({ uid, flags, text }))]))]);
}

let posternRun: Run | undefined;

test('offlineimap3 synchronises a Postern account both ways, three runs', { skip, timeout: 120_000 }, async () => {
  const f = await startFixture({ users: [[USER, PASS]] });
  try {
    posternRun = await scenario(f.port, newMail);
  } finally { await f.stop(); }
});

const dcSkip = skip || (RealDovecot.unavailable() ?? false);
test('offlineimap3: the same runs against real Dovecot 2.3 leave the same Maildir and mailboxes', { skip: dcSkip, timeout: 120_000 }, async () => {
  const dc = await RealDovecot.start({ protocols: ['imap'], users: [{ user: USER, pass: PASS }], extraConf: NAMESPACE_CONF });
  try {
    const dovecotRun = await scenario(dc.ports.imap!, newMail);
    if (posternRun) assert.deepEqual(comparable(posternRun), comparable(dovecotRun));
  } finally { await dc.stop(); }
});
