/**
 * ManageSieve under hostile clients, on real loopback sockets, while a normal client must still
 * log in, list and fetch its scripts in time:
 *  - PUTSCRIPT announcing a 4 GB literal: answered NO (QUOTA/MAXSIZE) at once, before any of it
 *    is sent; 256 MB of it then streamed in are dropped as they come (memory bound) and the
 *    connection is kept (as Pigeonhole, which reads and drops the announced bytes);
 *  - over-long lines before login (BYE, closed) and after (NO, the session goes on);
 *  - hostile script names (`../x`, `/etc/passwd`, NUL, CR, 1000 characters, bad UTF-8):
 *    refused, nothing created outside the user's script directory;
 *  - 30 connections flooding junk before login: each closed after 3 commands;
 *  - 30 slow clients dribbling a byte at a time: dropped at the login time-out.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { DovecotFixture } from '../harness/dovecot-fixture.ts';
import { createManageSieve } from '../../src/managesieve/managesieve.ts';
import { managesieveSettings } from '../../src/managesieve/managesieve-settings.ts';
import { logger, setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});

let fx: DovecotFixture;
let port = 0;
const PLAIN = (u: string) => Buffer.from(`\0${u}\0pw`).toString('base64');

before(async () => {
  fx = new DovecotFixture('postern-ms-hostile-');
  const dc = fx.configure({
    users: [{ user: 'good@x.test', pass: 'pw' }, { user: 'evil@x.test', pass: 'pw' }],
    settings: 'auth_failure_delay = 0\ndisable_plaintext_auth = no',
    conf: 'plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n',
  });
  const settings = { ...managesieveSettings(dc), loginTimeoutMs: 3000 };
  const ms = createManageSieve({ directory: await fx.directory(), settings, log: logger('managesieve') });
  port = await fx.listen((s) => { void ms.handle(s); });
  // The normal user has a script to fetch.
  const c = await Client.open();
  await c.cmd(`AUTHENTICATE "PLAIN" "${PLAIN('good@x.test')}"`);
  assert.match(await c.cmd('PUTSCRIPT "mine" {7+}\r\nkeep;\r\n'), /^OK "PUTSCRIPT completed."/);
  c.sock.destroy();
});
after(async () => { await fx.stop(); });

class Client {
  sock: Socket;
  buf = '';
  closed = false;
  private waiters: (() => void)[] = [];
  constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { this.buf += d; this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }
  private wake(): void { for (const w of this.waiters.splice(0)) w(); }
  static async open(): Promise<Client> {
    const s = connect(port, '127.0.0.1');
    const c = new Client(s);
    await c.until(/^OK .*\r\n/m);
    c.buf = '';
    return c;
  }
  /** Wait until the buffer matches (or the connection closes, or 10 s pass). */
  async until(re: RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!re.test(this.buf) && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => { const t = setTimeout(r, 100); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
    return this.buf;
  }
  async cmd(line: string): Promise<string> {
    this.buf = '';
    this.sock.write(Buffer.from(line + '\r\n', 'latin1'));
    const out = await this.until(/^(OK|NO|BYE)\b.*\r\n/m);
    this.buf = '';
    return out;
  }
}

/** The normal user logs in, lists and fetches; returns the time it took. */
async function normalUser(): Promise<number> {
  const t0 = Date.now();
  const c = await Client.open();
  assert.match(await c.cmd(`AUTHENTICATE "PLAIN" "${PLAIN('good@x.test')}"`), /^OK "Logged in."/);
  assert.match(await c.cmd('LISTSCRIPTS'), /"mine"\r\nOK "Listscripts completed."/);
  assert.match(await c.cmd('GETSCRIPT "mine"'), /^\{7\}\r\nkeep;\r\n\r\nOK "Getscript completed."/);
  assert.match(await c.cmd('LOGOUT'), /^OK "Logout completed."/);
  c.sock.destroy();
  return Date.now() - t0;
}

test('PUTSCRIPT with a 4 GB literal: refused at once, its bytes dropped as they come, the connection kept', async () => {
  const c = await Client.open();
  await c.cmd(`AUTHENTICATE "PLAIN" "${PLAIN('evil@x.test')}"`);
  const t0 = Date.now();
  assert.equal(await c.cmd('PUTSCRIPT "huge" {4294967296+}'), 'NO (QUOTA/MAXSIZE) "Script is too large (max 1048576 bytes)."\r\n');
  assert.ok(Date.now() - t0 < 5000);
  // Stream 256 MB of the announced literal: the server must not keep it (the bound is well
  // under what was sent; what remains is garbage not yet collected).
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const chunk = Buffer.alloc(1 << 20, 0x61);
  for (let i = 0; i < 256; i++) {
    if (!c.sock.write(chunk)) await new Promise((r) => c.sock.once('drain', r));
    peak = Math.max(peak, process.memoryUsage().rss);
    if (i === 128) assert.ok((await normalUser()) < 5000, 'the normal user is served meanwhile');
  }
  console.log(`# 256 MB streamed into a refused 4 GB literal: RSS peak +${((peak - rss0) / 1048576).toFixed(1)} MiB (client and server in one process)`);
  assert.ok(peak - rss0 < 128 * 1024 * 1024, `rss grew by ${((peak - rss0) / 1048576).toFixed(1)} MB for 256 MB sent`);
  assert.equal(c.closed, false, 'the connection is kept (as Pigeonhole)');
  c.sock.destroy();
  const dir = join(fx.dir, 'mail', 'x.test', 'evil', 'sieve');
  assert.ok(!existsSync(dir) || !readdirSync(dir).some((f) => f.startsWith('huge')));
});

test('over-long lines: BYE before login; NO after login and the session goes on', async () => {
  const pre = await Client.open();
  pre.sock.write(`NOOP "${'x'.repeat(1 << 20)}"\r\n`);
  assert.match(await pre.until(/BYE/), /^BYE "Input buffer full, aborting"\r\n/);
  await pre.until(/$^/, 3000);
  assert.equal(pre.closed, true);
  const c = await Client.open();
  await c.cmd(`AUTHENTICATE "PLAIN" "${PLAIN('evil@x.test')}"`);
  assert.equal(await c.cmd(`NOOP "${'x'.repeat(1 << 20)}"`), 'NO "Error in MANAGESIEVE command NOOP: Too long argument."\r\n');
  assert.equal(await c.cmd('NOOP'), 'OK "NOOP Completed"\r\n');
  assert.equal(await c.cmd('GETSCRIPT {100000+}'), 'BYE "Literal size too large"\r\n');
  c.sock.destroy();
});

test('hostile script names are refused and nothing is created outside the script directory', async () => {
  const c = await Client.open();
  await c.cmd(`AUTHENTICATE "PLAIN" "${PLAIN('evil@x.test')}"`);
  const home = join(fx.dir, 'mail', 'x.test', 'evil');
  const before = readdirSync(fx.dir, { recursive: true }).map(String).filter((f) => !f.startsWith(join('mail', 'x.test', 'evil', 'sieve', 'tmp'))).sort();
  const names: Buffer[] = ['../x', '../../etc/passwd', '/etc/passwd', 'a/b', 'x\0y', 'x\ry', 'x\ny', 'x\x7fy', 'n'.repeat(1000)].map((n) => Buffer.from(n))
    .concat([Buffer.from([0xc3, 0x28]), Buffer.from([0xff, 0xfe])]);
  for (const n of names) {
    const put = await c.cmd(`PUTSCRIPT {${n.length}+}\r\n${n.toString('latin1')} {5+}\r\nkeep;`);
    assert.match(put, /^NO "Invalid Sieve script name `.*'\."\r\n$/s, JSON.stringify(n.toString('latin1')));
    for (const verb of ['GETSCRIPT', 'DELETESCRIPT', 'SETACTIVE']) {
      assert.match(await c.cmd(`${verb} {${n.length}+}\r\n${n.toString('latin1')}`), /^NO "Invalid script name `.*'\."\r\n$/s);
    }
    assert.match(await c.cmd(`RENAMESCRIPT "x" {${n.length}+}\r\n${n.toString('latin1')}`), /^NO /);
  }
  const afterList = readdirSync(fx.dir, { recursive: true }).map(String).filter((f) => !f.startsWith(join('mail', 'x.test', 'evil', 'sieve', 'tmp'))).sort();
  assert.deepEqual(afterList, before);
  void home;
  c.sock.destroy();
});

test('30 junk floods before login are each closed after 3 commands; the normal user is served', async () => {
  const floods = await Promise.all(Array.from({ length: 30 }, () => Client.open()));
  const junk = Buffer.from('JUNK\r\n'.repeat(20_000));
  for (const f of floods) f.sock.write(junk);
  const took = await normalUser();
  assert.ok(took < 5000, `normal user took ${took} ms`);
  for (const f of floods) {
    await f.until(/BYE/);
    assert.match(f.buf, /^(NO "Error in MANAGESIEVE command received by server."\r\n){2}BYE "Too many invalid MANAGESIEVE commands."\r\n$/);
    f.sock.destroy();
  }
});

test('30 slow clients dribbling one byte at a time are dropped at the login time-out; the normal user is served', async () => {
  const slow = await Promise.all(Array.from({ length: 30 }, () => Client.open()));
  const cmd = 'AUTHENTICATE "PLAIN" "' + 'A'.repeat(200);
  let i = 0;
  const timer = setInterval(() => { for (const s of slow) if (!s.closed) s.sock.write(cmd[i % cmd.length]!); i++; }, 150);
  try {
    const took = await normalUser();
    assert.ok(took < 5000, `normal user took ${took} ms`);
    // The login time-out is 3 s here (Dovecot: 3 min).
    for (const s of slow) {
      await s.until(/BYE/, 15_000);
      assert.match(s.buf, /BYE "Disconnected for inactivity."\r\n/);
    }
  } finally {
    clearInterval(timer);
    for (const s of slow) s.sock.destroy();
  }
});
