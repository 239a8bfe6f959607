/**
 * authres-inbound - inbound verification end to end (docs/authres.md, issue 14 items 2-3): the
 * whole system (`postern start`), a loopback DNS server serving this test's zones, Python's
 * smtplib as the sending MTA from outside (mynetworks excludes 127.0.0.1), signatures made by
 * Debian's python3-dkim (dkimsign rsa and ed25519, arcsign), and the Authentication-Results
 * header read from the delivered Maildir file.
 *
 * RFC 7208 (SPF results, HELO identity, lookup limits), RFC 6376/8463 (DKIM), RFC 7489 (DMARC
 * alignment, p=reject/quarantine), RFC 8617 (ARC), RFC 8601 §5 (forged headers removed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimSign as mailauthSign } from 'mailauth';
import { DnsServer } from '../harness/dns-server.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { AUTHSERV_ID, arcSign, delivered, dkimSign, message, newKey, ourAuthres, reconfigure, smallKey, smtpSend, tempDir, type DkimKey } from '../harness/authres-kit.ts';

let dns: DnsServer;
let sys: PosternSystem;
let rsa: DkimKey, ed: DkimKey, arcKey: DkimKey, small: DkimKey;
let n = 0;
const marker = () => `authres-${process.pid}-${++n}`;

before(async () => {
  const keys = tempDir('postern-authres-keys-');
  rsa = newKey(keys, 'rsa', 'rsa');
  ed = newKey(keys, 'ed', 'ed25519');
  arcKey = newKey(keys, 'arc', 'rsa');
  small = smallKey(keys);
  const spf = (rec: string) => ({ TXT: [rec] });
  const includes = Array.from({ length: 12 }, (_, i) => `include:i${i}.many.test`).join(' ');
  const zone: Record<string, { TXT?: string[]; A?: string[] } | 'SERVFAIL'> = {
    'pass.test': spf('v=spf1 ip4:127.0.0.0/8 -all'),
    'helo.pass.test': spf('v=spf1 ip4:127.0.0.1 -all'),
    'fail.test': spf('v=spf1 -all'),
    'soft.test': spf('v=spf1 ~all'),
    'neutral.test': spf('v=spf1 ?all'),
    'none.test': { A: ['192.0.2.1'] },
    'loop.test': spf('v=spf1 include:loop2.test -all'),
    'loop2.test': spf('v=spf1 include:loop.test -all'),
    'many.test': spf(`v=spf1 ${includes} -all`),
    'temp.test': 'SERVFAIL',
    'macro.test': spf('v=spf1 exists:%{ir}.%{v}._spf.%{d} -all'),
    '1.0.0.127.in-addr._spf.macro.test': { A: ['127.0.0.2'] },
    'redir.test': spf('v=spf1 redirect=pass.test'),
    'void.test': spf('v=spf1 a:nx1.void.test a:nx2.void.test a:nx3.void.test ip4:127.0.0.1 -all'),
    'dk.test': { A: ['192.0.2.2'] },
    'sel._domainkey.dk.test': { TXT: [rsa.dns] },
    'ed._domainkey.dk.test': { TXT: [ed.dns] },
    '_dmarc.dk.test': { TXT: ['v=DMARC1; p=reject'] },
    'rej.test': spf('v=spf1 -all'),
    '_dmarc.rej.test': { TXT: ['v=DMARC1; p=reject; rua=mailto:d@rej.test'] },
    'quar.test': spf('v=spf1 -all'),
    '_dmarc.quar.test': { TXT: ['v=DMARC1; p=quarantine'] },
    'strict.test': { A: ['192.0.2.3'] },
    'sel._domainkey.strict.test': { TXT: [rsa.dns] },
    '_dmarc.strict.test': { TXT: ['v=DMARC1; p=quarantine; adkim=s'] },
    'arc.test': { A: ['192.0.2.4'] },
    'arcsel._domainkey.arc.test': { TXT: [arcKey.dns] },
    'small._domainkey.dk.test': { TXT: [small.dns] },
  };
  for (let i = 0; i < 12; i++) zone[`i${i}.many.test`] = spf('v=spf1 ip4:192.0.2.99 -all');
  dns = await DnsServer.start(zone);
  sys = await PosternSystem.start();
  await reconfigure(sys, `\nmyhostname = ${AUTHSERV_ID}\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\n`);
});
after(async () => {
  if (process.env.AUTHRES_LOG) console.log(sys?.log);
  await sys?.destroy();
  await dns?.stop();
});

/** Send from outside and return our Authentication-Results header of the delivered copy. */
async function deliver(o: { helo?: string; from: string; hdrFrom?: string; extra?: string[]; sign?: (m: string) => string }): Promise<{ ar: string; folder: string; text: string }> {
  const id = marker();
  let msg = message([`From: <${o.hdrFrom ?? o.from}>`, 'To: <postmaster@example.test>', `Subject: ${id}`, `Message-ID: <${id}@test>`, 'Date: Mon, 07 Dec 2026 12:00:00 +0000', ...(o.extra ?? [])]);
  if (o.sign) msg = o.sign(msg);
  const r = await smtpSend(sys.ports.smtp, { helo: o.helo ?? 'client.example', from: o.from, msg });
  assert.equal(r.code, 250, `${o.from}: ${r.code} ${r.text}`);
  const d = await delivered(sys.maildir('postmaster@example.test'), id);
  const ars = ourAuthres(d.text);
  assert.equal(ars.length, 1, `exactly one Authentication-Results of ours:\n${d.text.slice(0, 2000)}`);
  return { ar: ars[0]!, folder: d.folder, text: d.text };
}

test('SPF results of the MAIL FROM identity: pass, fail, softfail, neutral, none, permerror (include loop, 11+ lookups, 3 void lookups), temperror; macros and redirect=', async () => {
  const cases: [string, RegExp][] = [
    ['a@pass.test', /spf=pass .*smtp\.mailfrom=a@pass\.test/],
    ['a@fail.test', /spf=fail .*smtp\.mailfrom=a@fail\.test/],
    ['a@soft.test', /spf=softfail .*smtp\.mailfrom=a@soft\.test/],
    ['a@neutral.test', /spf=neutral .*smtp\.mailfrom=a@neutral\.test/],
    ['a@none.test', /spf=none .*smtp\.mailfrom=a@none\.test/],
    ['a@loop.test', /spf=permerror .*smtp\.mailfrom=a@loop\.test/],
    ['a@many.test', /spf=permerror .*smtp\.mailfrom=a@many\.test/],
    ['a@temp.test', /spf=temperror .*smtp\.mailfrom=a@temp\.test/],
    ['a@macro.test', /spf=pass .*smtp\.mailfrom=a@macro\.test/],       // RFC 7208 §7 macros in exists:
    ['a@redir.test', /spf=pass .*smtp\.mailfrom=a@redir\.test/],       // §6.1 redirect=
    ['a@void.test', /spf=permerror .*smtp\.mailfrom=a@void\.test/],    // §4.6.4: a third void lookup
  ];
  for (const [from, re] of cases) {
    const { ar, folder } = await deliver({ from });
    assert.match(ar, re, from);
    assert.equal(folder, 'INBOX', `${from}: SPF alone never quarantines`);
  }
});

test('SPF of the HELO identity is its own result (smtp.helo), and the null sender is checked as postmaster@HELO', async () => {
  const a = await deliver({ helo: 'helo.pass.test', from: 'a@none.test' });
  assert.match(a.ar, /spf=none .*smtp\.mailfrom=a@none\.test/);
  assert.match(a.ar, /spf=pass [^;]*smtp\.helo=helo\.pass\.test/);
  const b = await deliver({ helo: 'helo.pass.test', from: '', hdrFrom: 'MAILER-DAEMON@helo.pass.test' });
  assert.match(b.ar, /spf=pass .*smtp\.mailfrom=postmaster@helo\.pass\.test/);
});

test('DKIM signatures by python3-dkim (rsa-sha256 and ed25519-sha256) verify as dkim=pass, and align for DMARC', async () => {
  const r = await deliver({ from: 'a@dk.test', sign: (m) => dkimSign(m, 'sel', 'dk.test', rsa) });
  assert.match(r.ar, /dkim=pass header\.i=@dk\.test header\.s=sel header\.a=rsa-sha256/);
  assert.match(r.ar, /dmarc=pass \(p=REJECT[^)]*\) header\.from=dk\.test/);
  const e = await deliver({ from: 'a@dk.test', sign: (m) => dkimSign(m, 'ed', 'dk.test', ed, 'ed25519-sha256') });
  assert.match(e.ar, /dkim=pass header\.i=@dk\.test header\.s=ed header\.a=ed25519-sha256/);
  assert.match(e.ar, /dmarc=pass/);
  // Both at once: each signature has its own result.
  const both = await deliver({ from: 'a@dk.test', sign: (m) => dkimSign(dkimSign(m, 'ed', 'dk.test', ed, 'ed25519-sha256'), 'sel', 'dk.test', rsa) });
  assert.equal((both.ar.match(/dkim=pass/g) ?? []).length, 2, both.ar);
});

test('DMARC: relaxed alignment across a subdomain passes; strict (adkim=s) fails and p=quarantine puts it in Junk', async () => {
  const relaxed = await deliver({ from: 'a@dk.test', hdrFrom: 'a@mail.dk.test', sign: (m) => dkimSign(m, 'sel', 'dk.test', rsa) });
  assert.match(relaxed.ar, /dmarc=pass [^;]*header\.from=mail\.dk\.test/);
  const strict = await deliver({ from: 'a@none.test', hdrFrom: 'a@sub.strict.test', sign: (m) => dkimSign(m, 'sel', 'strict.test', rsa) });
  assert.match(strict.ar, /dkim=pass header\.i=@strict\.test/);
  assert.match(strict.ar, /dmarc=fail [^;]*header\.from=sub\.strict\.test policy\.dmarc=quarantine/);
  assert.equal(strict.folder, 'Junk');
});

test('DMARC p=reject: refused at the end of DATA with 550 5.7.1 naming DMARC and the domain; nothing delivered', async () => {
  const id = marker();
  const msg = message([`From: <a@rej.test>`, 'To: <postmaster@example.test>', `Subject: ${id}`]);
  const r = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@rej.test', msg });
  assert.equal(r.code, 550);
  assert.equal(r.text, '5.7.1 rejected by DMARC policy for rej.test');
  await sys.waitLog(/reject: END-OF-MESSAGE from [^:]*: 5\.7\.1 rejected by DMARC policy for rej\.test; from=<a@rej\.test> to=<postmaster@example\.test> proto=ESMTP helo=<client\.example>/);
  await assert.rejects(delivered(sys.maildir('postmaster@example.test'), id, 1000));
});

test('DMARC p=quarantine: delivered into the Junk folder (created when missing), with policy.dmarc=quarantine', async () => {
  const r = await deliver({ from: 'a@quar.test' });
  assert.equal(r.folder, 'Junk');
  assert.match(r.ar, /spf=fail/);
  assert.match(r.ar, /dmarc=fail \(p=QUARANTINE sp=QUARANTINE pct=100 dis=QUARANTINE\) header\.from=quar\.test policy\.dmarc=quarantine/);
});

test('DMARC p=quarantine with a Sieve script (virtual(8) runs Pigeonhole by default): the script still runs, Junk is its implicit keep', async () => {
  const home = sys.maildir('postmaster@example.test');
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, '.dovecot.sieve'), 'require ["fileinto","mailbox"];\nif header :contains "subject" "sieve-report" { fileinto :create "Reports"; }\n');
  try {
    const kept = await deliver({ from: 'a@quar.test' });
    assert.equal(kept.folder, 'Junk');
    const id = `sieve-report-${process.pid}`;
    const r = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@quar.test', msg: message(['From: <a@quar.test>', 'To: <postmaster@example.test>', `Subject: ${id}`]) });
    assert.equal(r.code, 250, r.text);
    for (let i = 0; i < 400; i++) {
      const d = join(home, '.Reports', 'new');
      if (existsSync(d) && readdirSync(d).some((f) => readFileSync(join(d, f), 'latin1').includes(id))) return;
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.fail(`the script's fileinto did not store ${id} in Reports:\n${sys.log.slice(-3000)}`);
  } finally {
    rmSync(join(home, '.dovecot.sieve'), { force: true });
  }
});

test('an incoming Authentication-Results claiming our authserv-id is removed (RFC 8601 §5); one from elsewhere stays', async () => {
  const r = await deliver({ from: 'a@pass.test', extra: [`Authentication-Results: ${AUTHSERV_ID.toUpperCase()}; dmarc=fail header.from=pass.test policy.dmarc=quarantine`, 'Authentication-Results: other.example; spf=pass smtp.mailfrom=pass.test'] });
  assert.equal(r.folder, 'INBOX');
  assert.match(r.ar, /spf=pass/);
  assert.match(r.text, /^Authentication-Results: other\.example; spf=pass/m);
  assert.doesNotMatch(r.text, /dmarc=fail header\.from=pass\.test policy/);
});

test('ARC: a chain sealed by python3-dkim arcsign validates as arc=pass', async () => {
  const r = await deliver({ from: 'a@pass.test', sign: (m) => arcSign(`Authentication-Results: arc.test; spf=pass smtp.mailfrom=a@pass.test\r\n${m}`, 'arcsel', 'arc.test', arcKey, 'arc.test') });
  assert.match(r.ar, /arc=pass/);
});

test('DKIM: a 512-bit key is refused (RFC 8301 §3.2: under postern_dkim_min_key_bits), a body changed after signing fails', async () => {
  // From: a domain without a DMARC record (dk.test's p=reject would refuse these).
  const weak = await deliver({ from: 'a@none.test', sign: (m) => dkimSign(m, 'small', 'dk.test', small) });
  assert.match(weak.ar, /dkim=(policy|fail|neutral) [^;]*header\.s=small/);
  assert.doesNotMatch(weak.ar, /dkim=pass/);
  const changed = await deliver({ from: 'a@none.test', sign: (m) => dkimSign(m, 'sel', 'dk.test', rsa).replace('Hello.', 'Hello!') });
  assert.match(changed.ar, /dkim=(fail|neutral) [^;]*header\.s=sel/);
});

test('DKIM x=: a signature whose expiry time has passed does not pass (signed by mailauth\'s signer, the one tool at hand that writes x=)', async () => {
  const key = readFileSync(rsa.keyFile, 'utf8');
  const id = `x-${process.pid}`;
  const msg = message([`From: <a@none.test>`, 'To: <postmaster@example.test>', `Subject: ${id}`]);
  const signed = await mailauthSign(msg, { signTime: new Date(Date.now() - 7200_000), expires: new Date(Date.now() - 3600_000), signatureData: [{ signingDomain: 'dk.test', selector: 'sel', privateKey: key }] } as never);
  const sent = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@none.test', msg: signed.signatures + msg });
  assert.equal(sent.code, 250, sent.text);
  const d = await delivered(sys.maildir('postmaster@example.test'), id);
  const ar = ourAuthres(d.text)[0]!;
  assert.match(signed.signatures, /x=\d+/);
  assert.match(ar, /dkim=neutral \(expired\) [^;]*header\.s=sel/);
});

test('ARC: a chain whose message was changed after sealing is arc=fail', async () => {
  const r = await deliver({ from: 'a@pass.test', sign: (m) => arcSign(`Authentication-Results: arc.test; spf=pass smtp.mailfrom=a@pass.test\r\n${m}`, 'arcsel', 'arc.test', arcKey, 'arc.test').replace('Hello.', 'Changed.') });
  assert.match(r.ar, /arc=fail/);
});

test('restrictions: reject_spf_fail refuses at RCPT with 550 5.7.23, defer_spf_temperror answers 451 4.7.24; a pass goes through', async () => {
  await reconfigure(sys, 'smtpd_sender_restrictions = reject_spf_fail, reject_spf_softfail, defer_spf_temperror\n');
  const msg = message(['From: <a@fail.test>', 'To: <postmaster@example.test>', 'Subject: restricted']);
  const fail = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@fail.test', msg });
  assert.equal(`${fail.code} ${fail.text}`, '550 5.7.23 <a@fail.test>: Sender address rejected: SPF fail - not authorized');
  await sys.waitLog(/NOQUEUE: reject: RCPT from [^:]*: 550 5\.7\.23 <a@fail\.test>: Sender address rejected: SPF fail - not authorized; from=<a@fail\.test> to=<postmaster@example\.test> proto=ESMTP helo=<client\.example>/);
  const soft = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@soft.test', msg });
  assert.equal(`${soft.code} ${soft.text}`, '550 5.7.23 <a@soft.test>: Sender address rejected: SPF softfail - not authorized');
  const temp = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@temp.test', msg });
  assert.equal(`${temp.code} ${temp.text}`, '451 4.7.24 <a@temp.test>: Sender address rejected: SPF temperror - try again later');
  const ok = await deliver({ from: 'a@pass.test' });
  assert.match(ok.ar, /spf=pass/);
});

test('a content filter\'s re-injection service (receive_override_options = no_milters) keeps our header and verifies nothing', async () => {
  await sys.setMasterOption(['smtp'], 'receive_override_options', 'no_unknown_recipient_checks,no_milters');
  const r = await deliver({ from: 'a@pass.test', extra: [`Authentication-Results: ${AUTHSERV_ID}; spf=softfail smtp.mailfrom=a@pass.test`] });
  assert.equal(r.ar, `Authentication-Results: ${AUTHSERV_ID}; spf=softfail smtp.mailfrom=a@pass.test`);
});
