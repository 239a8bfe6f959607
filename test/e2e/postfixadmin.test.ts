/**
 * A Postfixadmin site runs unchanged: Postfixadmin's PostgreSQL schema (domain, mailbox, alias,
 * alias_domain), its documented Postfix map files (POSTFIX_CONF.txt: virtual domains, aliases,
 * alias domains with their catch-all and mailbox maps, all through proxy:pgsql:) and its Dovecot
 * SQL configuration (DOVECOT.txt) drive the whole running system:
 *  - SMTP (smtplib): mailboxes, aliases, alias domains accepted and delivered; inactive mailboxes
 *    and unknown users 550;
 *  - IMAP (imaplib) and POP3 (poplib) logins with the SHA512-CRYPT passwords of the mailbox table
 *    read the delivered mail; an inactive mailbox cannot log in;
 *  - a mailbox inserted while Postern runs receives mail and logs in at once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { PgServer } from '../harness/pg-server.ts';
import { passwordHash } from '../../src/lib-auth/password-scheme.ts';

const run = promisify(execFile);
const skip = PgServer.unavailable();
let sys: PosternSystem;
let pg: PgServer;

/** Postfixadmin's tables (the columns its maps and Dovecot queries use, with its names). */
const SCHEMA = `
CREATE TABLE domain (domain VARCHAR(255) PRIMARY KEY, description VARCHAR(255) NOT NULL DEFAULT '',
  aliases INT NOT NULL DEFAULT 0, mailboxes INT NOT NULL DEFAULT 0, maxquota BIGINT NOT NULL DEFAULT 0,
  quota BIGINT NOT NULL DEFAULT 0, transport VARCHAR(255) DEFAULT NULL, backupmx BOOLEAN NOT NULL DEFAULT FALSE,
  created TIMESTAMP NOT NULL DEFAULT now(), modified TIMESTAMP NOT NULL DEFAULT now(), active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, password VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL DEFAULT '',
  maildir VARCHAR(255) NOT NULL, quota BIGINT NOT NULL DEFAULT 0, local_part VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL REFERENCES domain, created TIMESTAMP NOT NULL DEFAULT now(),
  modified TIMESTAMP NOT NULL DEFAULT now(), active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE alias (address VARCHAR(255) PRIMARY KEY, goto TEXT NOT NULL, domain VARCHAR(255) NOT NULL REFERENCES domain,
  created TIMESTAMP NOT NULL DEFAULT now(), modified TIMESTAMP NOT NULL DEFAULT now(), active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE TABLE alias_domain (alias_domain VARCHAR(255) PRIMARY KEY REFERENCES domain, target_domain VARCHAR(255) NOT NULL REFERENCES domain,
  created TIMESTAMP NOT NULL DEFAULT now(), modified TIMESTAMP NOT NULL DEFAULT now(), active BOOLEAN NOT NULL DEFAULT TRUE);
CREATE USER postfix PASSWORD 'pfpass';
CREATE USER dovecot PASSWORD 'dvpass';
GRANT SELECT ON domain, mailbox, alias, alias_domain TO postfix, dovecot;
`;

/** POSTFIX_CONF.txt's map files (pgsql variant). */
const MAPS: Record<string, string> = {
  'virtual_domains_maps.cf': "query = SELECT domain FROM domain WHERE domain='%s' AND active = '1'",
  'virtual_alias_maps.cf': "query = SELECT goto FROM alias WHERE address='%s' AND active = '1'",
  'virtual_alias_domain_maps.cf': "query = SELECT goto FROM alias,alias_domain WHERE alias_domain.alias_domain = '%d' and alias.address = '%u' || '@' || alias_domain.target_domain AND alias.active = true AND alias_domain.active= true",
  'virtual_alias_domain_catchall_maps.cf': "query = SELECT goto FROM alias,alias_domain WHERE alias_domain.alias_domain = '%d' and alias.address = '@' || alias_domain.target_domain AND alias.active = true AND alias_domain.active= true",
  'virtual_mailbox_maps.cf': "query = SELECT maildir FROM mailbox WHERE username='%s' AND active = '1'",
  'virtual_alias_domain_mailbox_maps.cf': "query = SELECT maildir FROM mailbox,alias_domain WHERE alias_domain.alias_domain = '%d' and mailbox.username = '%u' || '@' || alias_domain.target_domain AND mailbox.active = true AND alias_domain.active",
};

async function mailbox(user: string, pw: string, active = true, quota = 0): Promise<string> {
  const [local, domain] = user.split('@');
  return `INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active) VALUES
    ('${user}', '${await passwordHash('SHA512-CRYPT', pw)}', '${local}', '${domain}/${local}/', ${quota}, '${local}', '${domain}', ${active});`;
}

before(async () => {
  if (skip) return;
  pg = await PgServer.start();
  await pg.sql(`${SCHEMA}
    INSERT INTO domain (domain) VALUES ('example.com'), ('example.org');
    INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('example.org', 'example.com');
    ${await mailbox('joe@example.com', 'joe-secret', true, 10485760)}
    ${await mailbox('ann@example.com', 'ann-secret')}
    ${await mailbox('off@example.com', 'off-secret', false)}
    INSERT INTO alias (address, goto, domain) VALUES ('joe@example.com', 'joe@example.com', 'example.com'),
      ('ann@example.com', 'ann@example.com', 'example.com'), ('info@example.com', 'joe@example.com,ann@example.com', 'example.com');
    INSERT INTO alias (address, goto, domain, active) VALUES ('old@example.com', 'joe@example.com', 'example.com', FALSE);`);
  sys = await PosternSystem.start();
  const conf = sys.configDir;
  const dir = join(conf, 'pgsql');
  (await import('node:fs')).mkdirSync(dir);
  for (const [file, query] of Object.entries(MAPS)) {
    writeFileSync(join(dir, file), `user = postfix\npassword = pfpass\nhosts = 127.0.0.1:${pg.port}\ndbname = mail\n${query}\n`);
  }
  const p = (f: string) => `proxy:pgsql:${join(dir, f)}`;
  const mainCf = readFileSync(join(conf, 'main.cf'), 'utf8')
    .replace(/^virtual_mailbox_domains = .*$/m, `virtual_mailbox_domains = ${p('virtual_domains_maps.cf')}`)
    .replace(/^virtual_mailbox_maps = .*$/m, `virtual_mailbox_maps = ${p('virtual_mailbox_maps.cf')}, ${p('virtual_alias_domain_mailbox_maps.cf')}`);
  writeFileSync(join(conf, 'main.cf'), `${mainCf}\nvirtual_alias_maps = ${p('virtual_alias_maps.cf')}, ${p('virtual_alias_domain_maps.cf')}, ${p('virtual_alias_domain_catchall_maps.cf')}\n`);
  // DOVECOT.txt's dovecot-sql.conf.ext (home/uid/gid come from mail_location and mail_uid here).
  writeFileSync(join(conf, 'dovecot-sql.conf.ext'), `driver = pgsql
connect = host=127.0.0.1 port=${pg.port} dbname=mail user=dovecot password=dvpass
default_pass_scheme = SHA512-CRYPT
user_query = SELECT '*:bytes=' || quota AS quota_rule FROM mailbox WHERE username = '%u' AND active = '1'
password_query = SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active = '1'
iterate_query = SELECT username AS user FROM mailbox WHERE active = '1'
`);
  await sys.stop();
  await PosternSystem.start(sys);
});
after(async () => { await sys?.destroy(); await pg?.stop(); });

async function py(code: string): Promise<string> {
  const { stdout } = await run('python3', ['-c', code], { timeout: 60_000 });
  return stdout;
}

async function send(to: string[], subject: string): Promise<void> {
  await py(`
import smtplib
with smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30) as c:
    c.sendmail("sender@example.net", ${JSON.stringify(to)}, b"From: sender@example.net\\r\\nSubject: ${subject}\\r\\n\\r\\nhello\\r\\n")
`);
}

/** IMAP: the subjects in INBOX of `user` (login with `pw`), or the error. */
async function imapSubjects(user: string, pw: string): Promise<string> {
  return (await py(`
import imaplib, ssl
ctx = ssl._create_unverified_context()
m = imaplib.IMAP4("127.0.0.1", ${sys.ports.imap}); m.starttls(ssl_context=ctx)
try:
    m.login(${JSON.stringify(user)}, ${JSON.stringify(pw)})
except imaplib.IMAP4.error as e:
    print("LOGIN FAILED", e); raise SystemExit(0)
m.select("INBOX")
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
print(sorted(x[1].decode().strip() for x in data if isinstance(x, tuple)))
typ, q = m.getquotaroot("INBOX")
print(q)
m.logout()
`)).trim();
}

test('Postfixadmin: SMTP to mailboxes, aliases and alias domains; 550 for inactive and unknown', { skip }, async () => {
  const r = await py(`
import smtplib, json
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30); c.ehlo("client.example.net"); c.mail("sender@example.net")
out = [c.rcpt(a)[0] for a in ["joe@example.com", "info@example.com", "joe@example.org", "off@example.com", "nobody@example.com", "old@example.com"]]
c.quit(); print(json.dumps(out))
`);
  assert.deepEqual(JSON.parse(r), [250, 250, 250, 550, 550, 550]);
  await send(['joe@example.com'], 'direct');
  await send(['info@example.com'], 'to info');
  await send(['joe@example.org'], 'via alias domain');
  await sys.waitLog(/to=<ann@example\.com>, orig_to=<info@example\.com>, relay=virtual, .*status=sent/);
  await sys.waitLog(/to=<joe@example\.com>, orig_to=<joe@example\.org>, relay=virtual, .*status=sent/);
});

test('Postfixadmin: IMAP and POP3 logins with the mailbox table passwords read the mail', { skip }, async () => {
  const end = Date.now() + 20_000;
  let joe = '';
  while (Date.now() < end) {
    joe = await imapSubjects('joe@example.com', 'joe-secret');
    if (joe.includes('via alias domain') && joe.includes('to info') && joe.includes('direct')) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.match(joe, /'Subject: direct'.*'Subject: to info'.*'Subject: via alias domain'/s);
  assert.match(joe, /STORAGE \d+ 10240\)/, 'quota from mailbox.quota (10 MiB) through user_query');
  assert.match(await imapSubjects('joe@example.com', 'wrong'), /LOGIN FAILED/);
  assert.match(await imapSubjects('off@example.com', 'off-secret'), /LOGIN FAILED/);
  const pop = await py(`
import poplib, ssl
p = poplib.POP3("127.0.0.1", ${sys.ports.pop3}); p.stls(context=ssl._create_unverified_context())
p.user("ann@example.com"); p.pass_("ann-secret")
n, size = p.stat(); print(n)
print(b"\\n".join(p.retr(1)[1]).decode())
p.quit()
`);
  assert.match(pop, /^1\n/);
  assert.match(pop, /Subject: to info/);
});

test('Postfixadmin: a mailbox inserted while Postern runs receives mail and logs in at once', { skip }, async () => {
  await pg.sql(`${await mailbox('new@example.com', 'new-secret')}
    INSERT INTO alias (address, goto, domain) VALUES ('new@example.com', 'new@example.com', 'example.com');`);
  await send(['new@example.com'], 'welcome');
  await sys.waitLog(/to=<new@example\.com>, relay=virtual, .*status=sent/);
  const end = Date.now() + 20_000;
  let out = '';
  while (Date.now() < end && !out.includes('welcome')) {
    out = await imapSubjects('new@example.com', 'new-secret');
    if (!out.includes('welcome')) await new Promise((r) => setTimeout(r, 300));
  }
  assert.match(out, /'Subject: welcome'/);
});

test('Postfixadmin: database down: IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], RCPT 4xx, no database text; back to normal after', { skip }, async () => {
  await pg.halt();
  try {
    const out = await py(`
import imaplib, poplib, smtplib, ssl, json
ctx = ssl._create_unverified_context()
res = {}
m = imaplib.IMAP4("127.0.0.1", ${sys.ports.imap}); m.starttls(ssl_context=ctx)
try:
    m.login("joe@example.com", "joe-secret"); res["imap"] = "OK"
except imaplib.IMAP4.error as e:
    res["imap"] = str(e)
p = poplib.POP3("127.0.0.1", ${sys.ports.pop3}); p.stls(context=ctx); p.user("ann@example.com")
try:
    p.pass_("ann-secret"); res["pop3"] = "OK"
except poplib.error_proto as e:
    res["pop3"] = e.args[0].decode()
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}, timeout=30); c.ehlo("client.example.net"); c.mail("s@example.net")
code, text = c.rcpt("joe@example.com"); res["rcpt"] = [code, text.decode()]
c.quit()
print(json.dumps(res))
`);
    const r = JSON.parse(out) as { imap: string; pop3: string; rcpt: [number, string] };
    assert.match(r.imap, /\[UNAVAILABLE\]/);
    assert.match(r.pop3, /^-ERR \[SYS\/TEMP\]/);
    assert.ok(r.rcpt[0] >= 400 && r.rcpt[0] < 500, `RCPT ${r.rcpt.join(' ')}`);
    for (const text of [r.imap, r.pop3, r.rcpt[1]]) assert.doesNotMatch(text, /pgsql|postgres|ECONNREFUSED|SELECT|sql/i);
  } finally {
    await pg.restart();
  }
  // Tables retry a failed server after retry_interval (60 s): the directory (1 s) comes back first.
  await new Promise((r) => setTimeout(r, 1200));
  assert.match(await imapSubjects('joe@example.com', 'joe-secret'), /'Subject: direct'/);
});
