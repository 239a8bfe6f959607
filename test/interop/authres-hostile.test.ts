/**
 * authres-hostile - inbound verification under hostile input (issue 14, "Hostile input"): each
 * case is sent by a real SMTP client (Python's smtplib) from outside into the whole system, must
 * be answered within bounds (never a stalled session), and must be recorded as the right result
 * in the delivered message's Authentication-Results header. The DNS is a loopback server; the
 * last case points Postern at a DNS server that never answers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { DnsServer } from '../harness/dns-server.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { AUTHSERV_ID, delivered, dkimSign, dkimSignWithLength, message, newKey, ourAuthres, reconfigure, smtpSend, tempDir, type DkimKey } from '../harness/authres-kit.ts';

let dns: DnsServer;
let sys: PosternSystem;
let rsa: DkimKey;
let n = 0;
const marker = () => `hostile-${process.pid}-${++n}`;

before(async () => {
  rsa = newKey(tempDir('postern-authres-hostile-'), 'rsa', 'rsa');
  dns = await DnsServer.start({
    'big.test': { TXT: [`v=spf1 ${Array.from({ length: 4000 }, (_, i) => `ip4:10.${(i >> 8) & 255}.${i & 255}.1`).join(' ')} -all`.slice(0, 60_000)] },
    'ok.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'sel._domainkey.ok.test': { TXT: [rsa.dns] },
  });
  sys = await PosternSystem.start();
  await reconfigure(sys, `\nmyhostname = ${AUTHSERV_ID}\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\nmessage_size_limit = 30000000\n`);
});
after(async () => {
  await sys?.destroy();
  await dns?.stop();
});

async function send(from: string, msg: string, id: string): Promise<{ ar: string; ms: number; text: string }> {
  const r = await smtpSend(sys.ports.smtp, { helo: 'client.example', from, msg });
  assert.equal(r.code, 250, `${r.code} ${r.text}`);
  const d = await delivered(sys.maildir('postmaster@example.test'), id, 60_000);
  const ars = ourAuthres(d.text);
  assert.equal(ars.length, 1);
  return { ar: ars[0]!, ms: r.ms, text: d.text };
}

function hdrs(id: string, from = 'a@ok.test'): string[] {
  return [`From: <${from}>`, 'To: <postmaster@example.test>', `Subject: ${id}`, `Message-ID: <${id}@test>`];
}

test('a 60 KB SPF TXT record: refused as too large (spf=none, a void lookup), the session answers at once', async () => {
  const id = marker();
  const r = await send('a@big.test', message(hdrs(id, 'a@big.test')), id);
  assert.match(r.ar, /spf=(none|permerror) [^;]*smtp\.mailfrom=a@big\.test/);
  await sys.waitLog(/TXT answer for big\.test is \d+ bytes, over the 16384-byte limit/);
});

test('malformed DKIM-Signature tags: recorded as dkim=neutral or permerror per signature, the message delivered', async () => {
  const id = marker();
  const bad = [
    'DKIM-Signature: v=1; a=rsa-sha256; d=; s=; b=;;;;===; bh',
    'DKIM-Signature: garbage without tags \u0001',
    'DKIM-Signature: v=1; a=rsa-md5; c=weird/odd; d=ok.test; s=sel; h=from; bh=AAAA; b=AAAA; l=-5; x=notanumber',
  ];
  const r = await send('a@ok.test', message([...bad, ...hdrs(id)]), id);
  const results = r.ar.match(/dkim=\w+/g) ?? [];
  assert.equal(results.length, 3, r.ar);
  for (const x of results) assert.match(x, /^dkim=(neutral|permerror|policy|fail)$/);
  assert.match(r.ar, /spf=pass/);
});

test('l= longer than the body: the signature fails (never passes over bytes it does not cover)', async () => {
  const id = marker();
  // python3-dkim signs with l= = the body's length; then the body loses its last line.
  const signed = dkimSignWithLength(message(hdrs(id), 'line one\nline two\nline three\n'), 'sel', 'ok.test', rsa);
  const cut = signed.replace('line three\r\n', '');
  const r = await send('a@ok.test', cut, id);
  assert.match(r.ar, /dkim=(fail|neutral|permerror) /);
  assert.doesNotMatch(r.ar, /dkim=pass/);
  // The same signature over the whole body passes (the l= itself is fine).
  const id2 = marker();
  const whole = await send('a@ok.test', dkimSignWithLength(message(hdrs(id2), 'line one\n'), 'sel', 'ok.test', rsa), id2);
  assert.match(whole.ar, /dkim=pass header\.i=@ok\.test/);
});

test('100 DKIM signatures in one message: each has a result, the answer comes within bounds', async () => {
  const id = marker();
  let msg = message(hdrs(id));
  const sigs: string[] = [];
  const one = dkimSign(msg, 'sel', 'ok.test', rsa);
  const sig = one.slice(0, one.indexOf('\r\nFrom:') + 2);
  for (let i = 0; i < 99; i++) sigs.push(sig.replace('s=sel', `s=nokey${i}`));
  msg = sigs.join('') + one;
  const r = await send('a@ok.test', msg, id);
  assert.equal((r.ar.match(/dkim=/g) ?? []).length, 100);
  assert.match(r.ar, /dkim=pass header\.i=@ok\.test header\.s=sel/);
  assert.ok(r.ms < 60_000, `${r.ms} ms`);
});

test('a 10 MB header block: not DKIM-verified (dkim=permerror, header block too large), SPF still recorded, delivered', async () => {
  const id = marker();
  const pad = Array.from({ length: 10 * 1024 * 1024 / 64 }, (_, i) => `X-Pad-${i}: ${'x'.repeat(48)}`);
  const r = await send('a@ok.test', message([...hdrs(id), ...pad]), id);
  assert.match(r.ar, /dkim=permerror \(header block too large\)/);
  assert.match(r.ar, /spf=pass/);
});

test('a DNS server that never answers: every check is temperror after postern_authres_timeout, the message accepted, never 5xx', async () => {
  const silent: Socket = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    await reconfigure(sys, `postern_dns_servers = 127.0.0.1:${silent.address().port}\npostern_authres_timeout = 3s\n`);
    const id = marker();
    const msg = dkimSign(message(hdrs(id)), 'sel', 'ok.test', rsa);
    const r = await send('a@ok.test', msg, id);
    assert.match(r.ar, /dkim=temperror/);
    assert.match(r.ar, /spf=temperror/);
    assert.match(r.ar, /dmarc=temperror/);
    assert.ok(r.ms < 30_000, `answered after ${r.ms} ms`);
  } finally {
    silent.close();
  }
});

test('postern_authres_temperror_action = defer: a DNS failure answers 451 4.7.5 at the end of DATA (never 5xx), nothing queued', async () => {
  const silent: Socket = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  try {
    await reconfigure(sys, `postern_dns_servers = 127.0.0.1:${silent.address().port}\npostern_authres_timeout = 2s\npostern_authres_temperror_action = defer\n`);
    const id = marker();
    const r = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@ok.test', msg: message(hdrs(id)) });
    assert.equal(`${r.code} ${r.text}`, '451 4.7.5 Temporary authentication failure (DNS): try again later');
    await sys.waitLog(/defer: END-OF-MESSAGE from [^:]*: 4\.7\.5 Temporary authentication failure/);
    await assert.rejects(delivered(sys.maildir('postmaster@example.test'), id, 1000));
  } finally {
    silent.close();
  }
});

test('an unreadable postern_public_suffix_list: logged with the parameter\'s name, the mail still accepted (unverified)', async () => {
  await reconfigure(sys, `postern_public_suffix_list = /nonexistent/psl.dat\npostern_dns_servers = 127.0.0.1:${dns.port}\npostern_authres_temperror_action = accept\n`);
  const id = marker();
  const r = await smtpSend(sys.ports.smtp, { helo: 'client.example', from: 'a@ok.test', msg: message(hdrs(id)) });
  assert.equal(r.code, 250, r.text);
  await sys.waitLog(/inbound verification off: .*postern_public_suffix_list: cannot read \/nonexistent\/psl\.dat: ENOENT/);
  const d = await delivered(sys.maildir('postmaster@example.test'), id);
  assert.equal(ourAuthres(d.text).length, 0);
});
