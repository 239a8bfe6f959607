/**
 * SQL tables in the running system: virtual_mailbox_domains and virtual_mailbox_maps in a private
 * PostgreSQL (pgsql_table(5) files, one through proxy:), talked to by Python's smtplib:
 *  - a known mailbox is accepted at RCPT and delivered to the Maildir the table names;
 *  - an unknown one gets Postfix's 550 "User unknown in virtual mailbox table";
 *  - with the database stopped, RCPT gets a 4xx (never 5xx) without any database text, mail
 *    already queued is deferred (not bounced), and delivered once the database is back;
 *  - a mailbox added to the database while Postern runs is accepted at once;
 *  - SQL injection attempts in RCPT are refused as unknown users, and the table is intact.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { PgServer } from '../harness/pg-server.ts';

const run = promisify(execFile);
const skip = PgServer.unavailable();
let sys: PosternSystem;
let pg: PgServer;

before(async () => {
  if (skip) return;
  pg = await PgServer.start();
  await pg.sql(`CREATE TABLE domain (domain TEXT PRIMARY KEY, active BOOLEAN);
    CREATE TABLE mailbox (username TEXT PRIMARY KEY, maildir TEXT, active BOOLEAN);
    INSERT INTO domain VALUES ('example.com', TRUE);
    INSERT INTO mailbox VALUES ('joe@example.com', 'example.com/joe/', TRUE), ('off@example.com', 'example.com/off/', FALSE);
    CREATE USER postfix PASSWORD 'pfpass';
    GRANT SELECT ON domain, mailbox TO postfix;`);
  sys = await PosternSystem.start();
  const conf = sys.configDir;
  const head = `hosts = 127.0.0.1:${pg.port}\nuser = postfix\npassword = pfpass\ndbname = mail\ntimeout = 2\nretry_interval = 1\n`;
  writeFileSync(join(conf, 'pgsql-domains.cf'), `${head}query = SELECT domain FROM domain WHERE domain='%s' AND active = '1'\n`);
  writeFileSync(join(conf, 'pgsql-mailboxes.cf'), `${head}query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'\n`);
  const mainCf = join(conf, 'main.cf');
  const text = readFileSync(mainCf, 'utf8')
    .replace(/^virtual_mailbox_domains = .*$/m, `virtual_mailbox_domains = proxy:pgsql:${join(conf, 'pgsql-domains.cf')}`)
    .replace(/^virtual_mailbox_maps = .*$/m, `virtual_mailbox_maps = pgsql:${join(conf, 'pgsql-mailboxes.cf')}`);
  writeFileSync(mainCf, text + '\nminimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s\n');
  const mark = sys.log.length;
  assert.equal((await sys.cli('reload')).status, 0);
  const end = Date.now() + 30_000;
  while (!sys.log.slice(mark).includes('reload -- version')) {
    if (Date.now() > end) throw new Error(`no reload:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
after(async () => { await sys?.destroy(); await pg?.stop(); });

/** RCPT TO each address in one session; the (code, text) of each reply. */
async function rcpts(addrs: string[]): Promise<[number, string][]> {
  const py = `
import smtplib, json
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30); c.command_encoding = "utf-8"; c.ehlo("client.example.org")
c.mail("a@example.org")
out = []
for a in json.loads(${JSON.stringify(JSON.stringify(addrs))}):
    code, text = c.docmd("RCPT TO:<" + a + ">")
    out.append([code, text.decode("utf-8", "replace")])
c.rset(); c.quit()
print(json.dumps(out))
`;
  const { stdout } = await run('python3', ['-c', py]);
  return JSON.parse(stdout) as [number, string][];
}

async function send(to: string, subject: string): Promise<void> {
  const py = `
import smtplib
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30) as c:
    c.sendmail("a@example.org", [${JSON.stringify(to)}], b"From: a@example.org\\r\\nTo: ${to}\\r\\nSubject: ${subject}\\r\\n\\r\\nbody\\r\\n")
`;
  await run('python3', ['-c', py]);
}

function delivered(user: string): string[] {
  const dir = join(sys.maildir(user), 'new');
  return existsSync(dir) ? readdirSync(dir).map((f) => readFileSync(join(dir, f), 'utf8')) : [];
}

test('RCPT through pgsql: known accepted and delivered, unknown 550, inactive 550', { skip }, async () => {
  const r = await rcpts(['joe@example.com', 'nobody@example.com', 'off@example.com', 'x@other.example']);
  assert.equal(r[0]![0], 250);
  assert.deepEqual(r[1], [550, '5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table']);
  assert.equal(r[2]![0], 550);
  await send('joe@example.com', 'via pgsql');
  await sys.waitLog(/to=<joe@example\.com>, relay=virtual, .*status=sent/);
  assert.ok(delivered('joe@example.com').some((m) => m.includes('Subject: via pgsql')));
});

test('SQL injection attempts at RCPT are unknown users; the tables are intact', { skip }, async () => {
  const evil = ["x'OR'1'='1@example.com", "joe@example.com'--", "'@example.com", '"x"@example.com', 'a\\@example.com',
    '%@example.com', '_oe@example.com', "j'||'oe@example.com", 'ü\'@example.com'];
  const r = await rcpts(evil);
  r.forEach(([code, text], i) => {
    assert.ok(code === 550 || code === 501 || code === 553, `${evil[i]}: ${code} ${text}`);
    assert.doesNotMatch(text, /SQL|pgsql|postgres|query|relation/i);
  });
  assert.equal((await pg.sql('SELECT count(*)::int AS n FROM mailbox'))[0]!.n, 2);
});

test('database stopped: RCPT 4xx without database text, queued mail deferred, delivered when it returns', { skip }, async () => {
  await send('joe@example.com', 'before outage');
  await sys.waitLog(/to=<joe@example\.com>, relay=virtual, .*status=sent/);
  await pg.halt();
  try {
    const r = await rcpts(['joe@example.com', 'nobody@example.com']);
    for (const [code, text] of r) {
      assert.ok(code >= 400 && code < 500, `a temporary error, not ${code} ${text}`);
      assert.doesNotMatch(text, /pgsql|postgres|ECONNREFUSED|connect|SELECT/i);
    }
    // Mail for a mailbox the table names, submitted through sendmail while the database is down:
    // cleanup accepts it, virtual(8) cannot look the mailbox up and defers it.
    const s = spawnSync(join(import.meta.dirname, '../../bin/postern'), ['-c', sys.configDir, 'sendmail', '-f', 'a@example.org', 'joe@example.com'],
      { input: 'Subject: during outage\n\nqueued\n', encoding: 'utf8', timeout: 30_000 });
    assert.equal(s.status, 0, s.stderr);
    await sys.waitLog(/to=<joe@example\.com>.*status=deferred/, 30_000);
    assert.doesNotMatch(sys.log, /to=<joe@example\.com>.*status=bounced/);
  } finally {
    await pg.restart();
  }
  await sys.cli('queue', 'flush');
  const end = Date.now() + 30_000;
  while (!delivered('joe@example.com').some((m) => m.includes('Subject: during outage'))) {
    if (Date.now() > end) throw new Error(`not delivered after the database returned:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

test('a mailbox added to the database while Postern runs is accepted at once', { skip }, async () => {
  assert.equal((await rcpts(['new@example.com']))[0]![0], 550);
  await pg.sql("INSERT INTO mailbox VALUES ('new@example.com', 'example.com/new/', TRUE)");
  assert.equal((await rcpts(['new@example.com']))[0]![0], 250);
  await send('new@example.com', 'welcome');
  await sys.waitLog(/to=<new@example\.com>, relay=virtual, .*status=sent/);
});
