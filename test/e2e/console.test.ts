/**
 * The web console end to end (src/console/): a running system with postern_console = yes on a
 * loopback HTTPS listener, maillog_file set, postern_dns_servers pointing at the loopback DNS
 * server; Debian's chromium driven headless by playwright-core (no browser download) does what
 * an administrator does: log in, read the dashboard after mail sent with Python's smtplib, add a
 * user and receive mail for them (checked with imaplib), fix a red checklist row on the DNS
 * server and see it turn green, hold and release a deferred message, and (as the new user)
 * change a password and log in to IMAP with it. Screenshots go to a temporary directory whose
 * path is printed. Then the refusals, with raw HTTPS requests: non-administrators, CSRF (no
 * token, a wrong token, another site's Origin), framing headers, path traversal and junk in
 * every parameter, brute force slowed by the shared auth penalty.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PosternSystem } from '../harness/postern-system.ts';
import { freePort, freePortBase } from '../harness/free-port.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { withoutTestClock } from '../harness/test-clock.ts';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
let sys: PosternSystem;
let dns: DnsServer;
let port: number;
let base: string;
let shots: string;
let browser: Browser | undefined;

function py(script: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function sendMail(to: string, subject: string): void {
  py(`
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.sendmail('sender@example.org', [sys.argv[2]], ('Subject: %s\\r\\n\\r\\nhello\\r\\n' % sys.argv[3]).encode())
s.quit()`, String(sys.ports.smtp), to, subject);
}

function sendRejected(): void {
  py(`
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.ehlo('client.example'); s.mail('sender@example.org')
code, _ = s.rcpt('nobody@example.test'); assert code == 550, code
s.quit()`, String(sys.ports.smtp));
}

/** A message from postmaster to `to` with To: and From: headers (what a vacation reply needs). */
function sendFromPostmaster(to: string, subject: string): void {
  py(`
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
msg = 'From: postmaster@example.test\\r\\nTo: %s\\r\\nSubject: %s\\r\\nMessage-ID: <%s@example.test>\\r\\n\\r\\nhello\\r\\n' % (sys.argv[2], sys.argv[3], sys.argv[3].replace(' ', '.'))
s.sendmail('postmaster@example.test', [sys.argv[2]], msg.encode())
s.quit()`, String(sys.ports.smtp), to, subject);
}

/** IMAP over TLS: log in, return the subjects in INBOX (or exit 3 on a failed login). */
function imapSubjects(user: string, password: string): { ok: boolean; subjects: string } {
  const r = spawnSync('python3', ['-c', `
import imaplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ctx, timeout=30)
try:
    m.login(sys.argv[2], sys.argv[3])
except imaplib.IMAP4.error:
    sys.exit(3)
m.select('INBOX')
typ, data = m.search(None, 'ALL')
for n in data[0].split():
    typ, d = m.fetch(n, '(BODY[HEADER.FIELDS (SUBJECT)])')
    print(d[0][1].decode().strip())
m.logout()`, String(sys.ports.imaps), user, password], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 3) return { ok: false, subjects: '' };
  assert.equal(r.status, 0, r.stderr);
  return { ok: true, subjects: r.stdout };
}

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }
/** A raw HTTPS request (certificate not checked: the system's is self-signed). */
function https(method: string, path: string, o: { cookie?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, method, path, rejectUnauthorized: false, headers: {
      ...(o.cookie ? { Cookie: o.cookie } : {}),
      ...(o.body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(o.body) } : {}),
      ...o.headers,
    } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end(o.body);
  });
}

/** Log in with a form POST; the session cookie and the page's CSRF token. */
async function loginRaw(user: string, password: string): Promise<{ cookie: string; csrf: string; status: number }> {
  const r = await https('POST', '/console/login', { body: new URLSearchParams({ user, password }).toString() });
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const cookie = set.map((c) => c.split(';')[0]!).join('; ');
  if (!cookie) return { cookie: '', csrf: '', status: r.status };
  const me = await https('GET', '/console/me', { cookie });
  const csrf = /name="csrf" value="([^"]+)"/.exec(me.body)?.[1] ?? '';
  return { cookie, csrf, status: r.status };
}

async function shot(p: Page, name: string): Promise<void> {
  await p.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  shots = mkdtempSync(join(tmpdir(), 'postern-console-shots-'));
  dns = await DnsServer.start({
    'example.test': { MX: [{ preference: 10, exchange: 'mail.example.test' }], TXT: ['v=spf1 mx -all'] },
    'mail.example.test': { A: ['127.0.0.1'] },
  });
  sys = await PosternSystem.start();
  port = await freePort();
  base = `https://127.0.0.1:${port}`;
  const dead = await freePortBase(1);   // nothing listens: mail to remote.test stays deferred
  writeFileSync(join(sys.configDir, 'transport'), `remote.test smtp:[127.0.0.1]:${dead}\n`);
  writeFileSync(join(sys.configDir, 'virtual'), '# aliases (the console edits this file)\nabuse@example.test postmaster@example.test\n');
  assert.equal((await sys.cli('map', `hash:${join(sys.configDir, 'virtual')}`)).status, 0);
  appendFileSync(join(sys.configDir, 'main.cf'), [
    '', `postern_https_listen = 127.0.0.1:${port}`, 'postern_console = yes',
    `maillog_file_prefixes = ${sys.dir}`, `maillog_file = ${join(sys.dir, 'maillog')}`,
    `postern_dns_servers = 127.0.0.1:${dns.port}`, 'myhostname = mail.example.test', 'mydomain = example.test',
    `transport_maps = texthash:${join(sys.configDir, 'transport')}`, `virtual_alias_maps = hash:${join(sys.configDir, 'virtual')}`,
    'postern_autoconfig = yes', 'postern_autoconfig_domains = example.test', '',
  ].join('\n'));
  assert.equal((await sys.cli('reload')).status, 0);
  const end = Date.now() + 20_000;
  for (;;) {
    const r = await https('GET', '/console/login').catch(() => undefined);
    if (r?.status === 200) break;
    if (Date.now() > end) assert.fail(`no console on ${port}:\n${sys.log.slice(-3000)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
  console.log(`console screenshots: ${shots}`);
});

after(async () => {
  await browser?.close();
  await sys?.stop();
  await dns?.stop();
  if (sys) rmSync(sys.dir, { recursive: true, force: true });
  if (shots && readdirSync(shots).length === 0) rmSync(shots, { recursive: true, force: true });
});

async function poll(p: Page, url: string, ok: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    await p.goto(url);
    if (await ok()) return;
    if (Date.now() > end) assert.fail(`${what}\n${(await p.content()).slice(0, 3000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('an administrator in Chromium: dashboard, users, checklist, queue; a user changes a password', { skip: !haveChromium && 'no /usr/bin/chromium (scripts/install-test-deps.sh)', timeout: 180_000 }, async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], env: withoutTestClock() });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const p = await ctx.newPage();

  // Log in.
  await p.goto(`${base}/console/`);
  assert.match(p.url(), /\/console\/login$/);
  await p.fill('input[name=user]', 'postmaster@example.test');
  await p.fill('input[name=password]', sys.password);
  await shot(p, '01-login');
  await Promise.all([p.waitForURL(/\/console\/$/, { timeout: 20_000 }).catch(async (e) => { throw new Error(`${(e as Error).message}\n${await p.content()}\n${sys.log.slice(-2000)}`); }), p.click('button[type=submit]')]);

  // Dashboard: real numbers after a few messages and one rejected recipient.
  for (let i = 0; i < 3; i++) sendMail('postmaster@example.test', `dash ${i}`);
  sendRejected();
  await poll(p, `${base}/console/`, async () => Number(await p.textContent('#hour-delivered-total')) >= 3
    && Number(await p.textContent('#day-rejected-total')) >= 1, 'the dashboard does not show 3 deliveries and 1 rejection');
  assert.ok(Number(await p.textContent('#services-up')) > 5, 'services listed as running');
  assert.equal(await p.locator('tr.red[data-service]').count(), 0, 'no service down');
  await shot(p, '02-dashboard');

  // Add a user; mail for them arrives and they read it over IMAP.
  await p.goto(`${base}/console/users`);
  await p.fill('form input[name=user]', 'bob@example.test');
  await p.fill('form:has(input[value=add]) input[name=password]', 'bob-first-pass');
  await p.click('form:has(input[value=add]) button[type=submit]');
  assert.match(await p.textContent('.msg') ?? '', /bob@example\.test added/);
  assert.equal(await p.locator('tr[data-user="bob@example.test"]').count(), 1);
  await shot(p, '03-users');
  sendMail('bob@example.test', 'welcome bob');
  const end = Date.now() + 30_000;
  while (!imapSubjects('bob@example.test', 'bob-first-pass').subjects.includes('welcome bob')) {
    if (Date.now() > end) assert.fail(`no mail for bob:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }

  // An alias to bob: mail to it lands in bob's INBOX; then it goes away.
  await p.goto(`${base}/console/aliases`);
  assert.equal(await p.locator('tr[data-alias="abuse@example.test"]').count(), 1, 'the file\'s entry is listed');
  await p.fill('input[name=address]', 'sales@example.test');
  await p.fill('input[name=targets]', 'bob@example.test');
  await p.click('form:has(input[value=add]) button[type=submit]');
  assert.match(await p.textContent('.msg') ?? '', /sales@example\.test → bob@example\.test added/);
  await shot(p, '03b-aliases');
  // A changed hash: table is noticed within a second (dict-hash.ts, as Postfix's daemons notice
  // it at their next request): the first RCPT may still be refused with 550.
  py(`
import smtplib, sys, threading
for i in range(20):
    s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
    try:
        s.sendmail('sender@example.org', ['sales@example.test'], b'Subject: for sales\\r\\n\\r\\nhello\\r\\n')
        s.quit()
        break
    except smtplib.SMTPRecipientsRefused:
        s.quit()
        threading.Event().wait(0.25)
else:
    sys.exit('sales@example.test still refused after 5 s')`, String(sys.ports.smtp));
  const aEnd = Date.now() + 30_000;
  while (!imapSubjects('bob@example.test', 'bob-first-pass').subjects.includes('for sales')) {
    if (Date.now() > aEnd) assert.fail(`no mail for sales@ at bob:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  await p.click('tr[data-alias="sales@example.test"] button:text("delete")');
  assert.match(await p.textContent('.msg') ?? '', /sales@example\.test deleted/);
  assert.equal(await p.locator('tr[data-alias="sales@example.test"]').count(), 0);
  assert.match((await sys.cli('map', '-q', 'abuse@example.test', `hash:${join(sys.configDir, 'virtual')}`)).stdout, /postmaster@example\.test/, 'other entries kept');

  // The checklist: DMARC is red until the record is published on the DNS server, then green.
  await p.goto(`${base}/console/checklist?domain=example.test`);
  const dmarc = p.locator('tr[data-what=DMARC]');
  assert.equal(await dmarc.getAttribute('data-colour'), 'red');
  assert.match(await dmarc.textContent() ?? '', /v=DMARC1/, 'the fix shows the record to publish');
  assert.equal(await p.locator('tr[data-what=MX]').getAttribute('data-colour'), 'green');
  await shot(p, '04-checklist-red');
  dns.set('_dmarc.example.test', { TXT: ['v=DMARC1; p=none; rua=mailto:postmaster@example.test'] });
  await p.reload();
  assert.equal(await p.locator('tr[data-what=DMARC]').getAttribute('data-colour'), 'green');
  await shot(p, '05-checklist-green');

  // The queue: a deferred message, held, then released.
  sendMail('joe@remote.test', 'stuck');
  let qid = '';
  await poll(p, `${base}/console/queue`, async () => {
    const row = p.locator('tr[data-queue=deferred]');
    if (await row.count() !== 1) return false;
    qid = (await row.getAttribute('data-qid'))!;
    return true;
  }, 'no deferred message in the queue page');
  await p.click(`tr[data-qid="${qid}"] button:text("hold")`);
  assert.match(await p.textContent('.msg') ?? '', /Placed on hold: 1 message/);
  assert.equal(await p.locator(`tr[data-qid="${qid}"]`).getAttribute('data-queue'), 'hold');
  assert.match((await sys.cli('queue', 'list')).stdout, new RegExp(`^${qid}!`, 'm'), 'postern queue agrees: on hold');
  await shot(p, '06-queue-hold');
  await p.click(`tr[data-qid="${qid}"] button:text("release")`);
  assert.match(await p.textContent('.msg') ?? '', /Released from hold: 1 message/);
  // Released, the queue manager retries it at once: a listing made while it moves between
  // queues may show it twice (active and deferred) or, read between the two directories, not at
  // all, as Postfix's showq can; never in hold. Listed again until it is seen.
  const inQueues = () => p.locator(`tr[data-qid="${qid}"]`).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-queue')));
  let queues = await inQueues();
  assert.ok(!queues.includes('hold'), `after release: ${queues.join(', ')}`);
  await poll(p, `${base}/console/queue`, async () => {
    queues = await inQueues();
    assert.ok(!queues.includes('hold'), `after release: ${queues.join(', ')}`);
    return queues.length >= 1;
  }, 'the released message is in no queue');
  await p.goto(`${base}/console/queue/show?id=${qid}`);
  assert.match(await p.textContent('pre') ?? '', /Subject: stuck/);
  await shot(p, '07-queue-released');

  // The log: the queue ID's lines.
  await p.goto(`${base}/console/log?q=${qid}`);
  assert.ok(Number(await p.textContent('#hits')) >= 1);
  await shot(p, '08-log');

  // Bob (not an administrator) changes his password; IMAP takes the new one only.
  await p.click('header button:text("Log out")');
  assert.match(p.url(), /\/console\/login$/);
  await p.fill('input[name=user]', 'bob@example.test');
  await p.fill('input[name=password]', 'bob-first-pass');
  await p.click('button[type=submit]');
  assert.match(p.url(), /\/console\/me$/);
  assert.equal(await p.locator('header a[href="/console/users"]').count(), 0, 'no admin pages in the menu');
  const profile = await ctx.request.get(new URL((await p.getAttribute('#mobileconfig', 'href'))!, base).href);
  assert.equal(profile.status(), 200);
  assert.equal(profile.headers()['content-type'], 'application/x-apple-aspen-config');
  assert.match(await profile.text(), /<string>bob@example\.test<\/string>/);
  await p.fill('input[name=current]', 'bob-first-pass');
  await p.fill('input[name=password]', 'bob-second-pass');
  await p.fill('input[name=password2]', 'bob-second-pass');
  await p.click('form:has(input[name=current]) button[type=submit]');
  assert.match(await p.textContent('.msg') ?? '', /password is changed/);
  await shot(p, '09-password-changed');
  assert.equal(imapSubjects('bob@example.test', 'bob-second-pass').ok, true, 'IMAP login with the new password');
  assert.equal(imapSubjects('bob@example.test', 'bob-first-pass').ok, false, 'the old password no longer works');

  // Bob's automatic reply (a Sieve vacation script in his ManageSieve storage): on, then off.
  assert.equal(await p.textContent('#vacation-state'), 'off');
  await p.fill('input[name=subject]', 'Bob is away');
  await p.fill('textarea[name=text]', 'Back on Monday. "Quotes" and \\ backslashes survive.');
  await p.click('button[name=on][value=yes]');
  assert.match(await p.textContent('.msg') ?? '', /automatic reply is on/);
  assert.equal(await p.textContent('#vacation-state'), 'on');
  await shot(p, '10-vacation-on');
  sendFromPostmaster('bob@example.test', 'are you there');
  const vEnd = Date.now() + 30_000;
  while (!imapSubjects('postmaster@example.test', sys.password).subjects.includes('Bob is away')) {
    if (Date.now() > vEnd) assert.fail(`no vacation reply in postmaster's INBOX:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  await p.click('button[name=on][value=no]');
  assert.match(await p.textContent('.msg') ?? '', /automatic reply is off/);
  assert.equal(await p.textContent('#vacation-state'), 'off');
  assert.match(await p.inputValue('textarea[name=text]'), /"Quotes" and \\ backslashes/, 'the text is kept for next time');
  await ctx.close();
});

test('refusals: non-administrators, CSRF, framing, path traversal, brute force', { timeout: 180_000 }, async () => {
  // Framing and other headers on every page, logged in or not.
  const login = await https('GET', '/console/login');
  for (const r of [login]) {
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
  assert.doesNotMatch(login.body, /<script|https?:\/\/(?!127)/, 'no script, nothing from another host');

  const admin = await loginRaw('postmaster@example.test', sys.password);
  assert.equal(admin.status, 303);
  assert.ok(admin.csrf.length >= 40);
  const dash = await https('GET', '/console/', { cookie: admin.cookie });
  assert.equal(dash.status, 200);
  assert.equal(dash.headers['x-frame-options'], 'DENY');
  assert.match(String(([] as string[]).concat((await https('POST', '/console/login', { body: `user=postmaster%40example.test&password=${encodeURIComponent(sys.password)}` })).headers['set-cookie'] ?? [])), /HttpOnly; Secure; SameSite=Strict/);

  // CSRF: no token, a wrong token, another site: refused and nothing done.
  const make = (extra: string) => `op=add&user=mallory%40example.test&password=mallory-pass-1${extra}`;
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: make('') })).status, 403);
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: make('&csrf=' + 'A'.repeat(43)) })).status, 403);
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: make('&csrf=' + admin.csrf), headers: { Origin: 'https://evil.example' } })).status, 403);
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: make('&csrf=' + admin.csrf), headers: { 'Sec-Fetch-Site': 'cross-site' } })).status, 403);
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: make('&csrf=' + admin.csrf), headers: { 'Content-Type': 'text/plain' } })).status, 415);
  assert.equal((await https('POST', '/console/users', { body: make('&csrf=' + admin.csrf) })).status, 403, 'no session');
  assert.doesNotMatch((await sys.cli('user', 'list')).stdout, /mallory/);
  // With the token: done.
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: `op=add&user=carol%40example.test&password=carol-pass-1&csrf=${admin.csrf}` })).status, 303);
  assert.match((await sys.cli('user', 'list')).stdout, /carol@example\.test/);

  // A user without the admin flag: only their own page.
  const carol = await loginRaw('carol@example.test', 'carol-pass-1');
  assert.equal(carol.status, 303);
  for (const path of ['/console/', '/console/users', '/console/aliases', '/console/queue', '/console/checklist?domain=example.test', '/console/log?q=x', '/console/queue/show?id=ABC']) {
    assert.equal((await https('GET', path, { cookie: carol.cookie })).status, 403, path);
  }
  assert.equal((await https('POST', '/console/users', { cookie: carol.cookie, body: `op=admin&user=carol%40example.test&admin=yes&csrf=${carol.csrf}` })).status, 403);
  assert.equal((await https('GET', '/console/me', { cookie: carol.cookie })).status, 200);

  // Path traversal and junk in every parameter.
  for (const path of ['/console/../../etc/passwd', '/console/%2e%2e/%2e%2e/etc/passwd', '/console/queue/..%2f..%2fetc%2fpasswd', '/console/style.css/../../x']) {
    const r = await https('GET', path, { cookie: admin.cookie });
    assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status}`);
    assert.doesNotMatch(r.body, /root:/);
  }
  for (const id of ['../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', 'ABC%00DEF', 'x'.repeat(5000)]) {
    const r = await https('GET', `/console/queue/show?id=${id}`, { cookie: admin.cookie });
    assert.equal(r.status, 400, id.slice(0, 30));
    assert.doesNotMatch(r.body, /root:/);
  }
  for (const d of ['../../etc', 'a%00b.test', '%3Cscript%3E.test', 'x'.repeat(300)]) {
    assert.equal((await https('GET', `/console/checklist?domain=${d}`, { cookie: admin.cookie })).status, 400, d.slice(0, 30));
  }
  assert.equal((await https('GET', `/console/log?q=${'%0a'}x`, { cookie: admin.cookie })).status, 400);
  assert.equal((await https('GET', `/console/log?q=${'y'.repeat(300)}`, { cookie: admin.cookie })).status, 400);
  for (const user of ['../../etc/passwd', 'a/b@example.test', 'x:y@example.test', 'a%0Ab@example.test', '']) {
    const r = await https('POST', '/console/users', { cookie: admin.cookie, body: `op=add&user=${user}&password=whatever-123&csrf=${admin.csrf}` });
    assert.equal(r.status, 303);
    const page = await https('GET', '/console/users', { cookie: admin.cookie });
    assert.match(page.body, /class="err"/, `user ${user} refused with a reason`);
  }
  for (const address of ['../../etc/passwd', '@example.test', 'a b@example.test', 'x@../../etc']) {
    await https('POST', '/console/aliases', { cookie: admin.cookie, body: `op=add&address=${encodeURIComponent(address)}&targets=bob%40example.test&csrf=${admin.csrf}` });
    assert.match((await https('GET', '/console/aliases', { cookie: admin.cookie })).body, /class="err"/, address);
  }
  await https('POST', '/console/aliases', { cookie: admin.cookie, body: `op=add&address=ok%40example.test&targets=..%2F..%2Fetc%2Fpasswd&csrf=${admin.csrf}` });
  assert.match((await https('GET', '/console/aliases', { cookie: admin.cookie })).body, /target .* is not a full address/);
  for (const op of ['hold', 'release', 'delete']) {
    await https('POST', '/console/queue', { cookie: admin.cookie, body: `op=${op}&id=..%2F..%2Fetc%2Fpasswd&csrf=${admin.csrf}` });
    assert.match((await https('GET', '/console/queue', { cookie: admin.cookie })).body, /not a queue ID/);
  }
  assert.ok(existsSync('/etc/passwd'));
  const big = 'x='.padEnd(200_000, 'y');
  assert.equal((await https('POST', '/console/users', { cookie: admin.cookie, body: big })).status, 413);

  // Brute force: failures are answered late (the shared auth penalty), a right password at once.
  const t0 = Date.now();
  assert.equal((await loginRaw('carol@example.test', 'wrong-1')).status, 403);
  const first = Date.now() - t0;
  assert.ok(first >= 1900, `a failed login is delayed (auth_failure_delay): ${first} ms`);
  const t1 = Date.now();
  assert.equal((await loginRaw('carol@example.test', 'wrong-2')).status, 403);
  assert.ok(Date.now() - t1 >= 1900 + 3000, `the second failure waits for the penalty too: ${Date.now() - t1} ms`);
  const ok = await loginRaw('carol@example.test', 'carol-pass-1');
  assert.equal(ok.status, 303, 'the right password still logs in');
  assert.match(sys.log, /console: login failed for "carol@example.test" from 127\.0\.0\.1/);

  // Another listener's network: postern_console_networks excludes 127.0.0.1 → 403 for everyone.
  appendFileSync(join(sys.configDir, 'main.cf'), 'postern_console_networks = 127.0.0.2\n');
  assert.equal((await sys.cli('reload')).status, 0);
  const end = Date.now() + 90_000;   // generous: a reload on a loaded 2-core machine took over 20 s
  while ((await https('GET', '/console/login')).status !== 403) {
    if (Date.now() > end) assert.fail('postern_console_networks not applied');
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal((await https('GET', '/console/', { cookie: admin.cookie })).status, 403);
});
