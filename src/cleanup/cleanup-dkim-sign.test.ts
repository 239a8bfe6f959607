/**
 * DKIM signing in cleanup(8), through CleanupSession: which submissions are signed (origin,
 * postern_dkim_signing), what is signed (the content after header_checks, 8-bit content
 * converted first), the signing table (postern_dkim_signing_maps: SELECTOR:path,
 * DOMAIN:SELECTOR:path, .parent, none) and bad keys (unsigned, warned, queued all the same).
 * Every signature is checked with python3-dkim (Debian), its keys served by a loopback DNS server.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { setLogSink } from '../util/msg.ts';
import { CleanupSession } from './cleanup.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import type { CleanupOpenOptions } from '../global/cleanup-client.ts';
import { dkimRecordValue, keygen, readSigningKey } from '../lib-authres/dkim-keys.ts';
import { DnsServer, type Zone } from '../../test/harness/dns-server.ts';
import { pythonDkimVerify } from '../../test/harness/dkim-verifiers.ts';

const root = mkdtempSync(join(tmpdir(), 'postern-dkim-'));
const keyDir = join(root, 'keys');
const logs: string[] = [];
setLogSink((l) => logs.push(l));
let dns: DnsServer;

before(async () => {
  const zone: Zone = {};
  for (const k of [...keygen(keyDir, 'example.com'), ...keygen(keyDir, 'other.example', { selector: 'only', type: 'ed25519' })]) {
    zone[`${k.selector}._domainkey.${k.domain}`] = { TXT: [dkimRecordValue(k, readSigningKey(k.file, k.algorithm))] };
  }
  dns = await DnsServer.start(zone);
});
after(async () => { await dns?.stop(); rmSync(root, { recursive: true, force: true }); });

let n = 0;
function conf(mainCf: string, files: Record<string, string> = {}): MainConfig {
  const dir = join(root, `c${++n}`);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text.replace(/DIR/g, dir).replace(/KEYS/g, keyDir));
  writeFileSync(join(dir, 'main.cf'), `myhostname = mx.example.com\nmydomain = example.com\nmyorigin = example.com\n`
    + `queue_directory = ${join(dir, 'queue')}\npostern_dkim_key_directory = ${keyDir}\n${mainCf.replace(/DIR/g, dir)}\n`);
  return MainConfig.load(dir);
}

/** Submit through cleanup; the queued content. */
async function submit(config: MainConfig, message: string | Buffer, o: Partial<CleanupOpenOptions> = { origin: 'sasl' }): Promise<Buffer> {
  const queue = new MailQueue(join(config.configDir, 'queue'));
  queue.ensureDirs();
  const c = await CleanupSession.open({
    myhostname: 'mx.example.com', myorigin: 'example.com', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false, config,
  }, queue, { sender: 'a@example.com', addMissingHeaders: false, attrs: {}, ...o }, TrivialRewrite.open);
  c.addRecipient({ address: 'rcpt@elsewhere.example', orig: 'rcpt@elsewhere.example' });
  const b = Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8');
  const step = b.length > 65536 ? 8192 : 5;   // small chunks, split anywhere
  for (let i = 0; i < b.length; i += step) await c.write(b.subarray(i, i + step));
  const r = await c.finish();
  assert.ok('queueId' in r, JSON.stringify(r));
  const qf = await QueueFile.open(queue.path('incoming', r.queueId), r.queueId);
  return qf.content();
}

const MSG = 'From: A <a@example.com>\nTo: rcpt@elsewhere.example\nSubject: hello\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n\nbody\n';

function sigs(content: Buffer): string[] {
  return [...content.toString('latin1').matchAll(/^DKIM-Signature:.*(?:\n[ \t].*)*/gm)].map((m) => m[0]);
}

test('SASL, mynetworks and local submissions are signed with both keys, From over-signed; python3-dkim verifies both', async () => {
  const c = conf('');
  for (const origin of ['sasl', 'mynetworks', 'local'] as const) {
    const out = await submit(c, MSG, { origin });
    const s = sigs(out);
    assert.equal(s.length, 2, origin);
    assert.match(s[0]!, /a=rsa-sha256; c=relaxed\/relaxed; d=example\.com;\s+h=From:From:To:Subject:Date;.*s=postern;/s);
    assert.match(s[1]!, /a=ed25519-sha256;.*s=postern-ed25519;/s);
    const v = await pythonDkimVerify(out, dns.port);
    assert.deepEqual(v.map((x) => x.ok), [true, true], JSON.stringify(v));
    // Over-signing at work: a second From: added on the way breaks both signatures.
    const added = Buffer.from(out.toString('latin1').replace('\nFrom: A', '\nFrom: Mallory <m@evil.example>\nFrom: A'), 'latin1');
    assert.deepEqual((await pythonDkimVerify(added, dns.port)).map((x) => x.ok), [false, false]);
  }
  assert.ok(logs.some((l) => /: DKIM-Signature field added \(s=postern-ed25519, d=example\.com\)/.test(l)));
});

test('mail from outside, a domain without a key, and postern_dkim_signing = no are not signed', async () => {
  assert.equal(sigs(await submit(conf(''), MSG, {})).length, 0, 'no origin: from outside');
  assert.equal(sigs(await submit(conf(''), MSG.replace('a@example.com', 'a@nokey.example'))).length, 0);
  assert.equal(sigs(await submit(conf('postern_dkim_signing = no'), MSG)).length, 0);
  const out = await submit(conf(''), MSG, {});
  assert.equal(out.toString(), MSG, 'untouched');
});

test('what is signed is what is queued: after header_checks, and 8-bit bodies converted to quoted-printable first', async () => {
  const c = conf('header_checks = regexp:DIR/hc', { hc: '/^Subject: hello/ REPLACE Subject: replaced\n' });
  const out = await submit(c, Buffer.from(MSG.replace('body\n', 'Grüße — ünïcödé\n'.repeat(3000)), 'utf8'));
  const text = out.toString('latin1');
  assert.match(text, /\nSubject: replaced\n/);
  assert.match(text, /\nContent-Transfer-Encoding: quoted-printable\n/);
  assert.ok(!/[\x80-\xff]/.test(text));
  assert.deepEqual((await pythonDkimVerify(out, dns.port)).map((x) => x.ok), [true, true]);
});

test('postern_dkim_signing_maps: SELECTOR:path, DOMAIN:SELECTOR:path for subdomains, none; the directory for the rest', async () => {
  const c = conf('postern_dkim_signing_maps = texthash:DIR/signing', {
    signing: 'other.example only:KEYS/other.example.only.ed25519.key\n'
      + '.example.com example.com:postern:KEYS/example.com.postern.rsa.key\n'
      + 'quiet.example.com none\n'
      + 'broken.example.com nonsense\n',
  });
  const other = await submit(c, MSG.replace('a@example.com', 'x@other.example'));
  assert.deepEqual((await pythonDkimVerify(other, dns.port)).map((x) => [x.d, x.s, x.ok]), [['other.example', 'only', true]]);
  const sub = await submit(c, MSG.replace('a@example.com', 'x@news.example.com'));
  assert.deepEqual((await pythonDkimVerify(sub, dns.port)).map((x) => [x.d, x.s, x.ok]), [['example.com', 'postern', true]]);
  assert.equal(sigs(await submit(c, MSG.replace('a@example.com', 'x@quiet.example.com'))).length, 0);
  assert.equal(sigs(await submit(c, MSG.replace('a@example.com', 'x@broken.example.com'))).length, 0);
  assert.ok(logs.some((l) => /warning: .*postern_dkim_signing_maps: broken\.example\.com: bad entry "nonsense": use SELECTOR:\/path\/to\/key/.test(l)));
  // example.com itself is not in the table: the directory's two keys.
  assert.equal(sigs(await submit(c, MSG)).length, 2);
});

test('bad keys: garbage and a key readable by others are skipped with a warning naming the file; the message is queued unsigned', async () => {
  const bad = join(root, 'badkeys');
  mkdirSync(bad, { mode: 0o700 });
  writeFileSync(join(bad, 'example.com.g.rsa.key'), Buffer.from('-----BEGIN PRIVATE KEY-----\n\0\xff garbage\n'), { mode: 0o600 });
  const open = keygen(bad, 'example.com', { selector: 'open', type: 'ed25519' })[0]!;
  chmodSync(open.file, 0o644);
  const c = conf(`postern_dkim_key_directory = ${bad}`);
  const out = await submit(c, MSG);
  assert.equal(sigs(out).length, 0);
  assert.equal(out.toString(), MSG);
  assert.ok(logs.some((l) => /warning: [0-9A-F]+: DKIM key \S+example\.com\.g\.rsa\.key: not a PEM private key/.test(l)));
  assert.ok(logs.some((l) => /warning: [0-9A-F]+: DKIM key \S+example\.com\.open\.ed25519\.key: readable or writable by group or others \(mode 0644\): not used; run chmod 600 /.test(l)));
  // Fixed while running: the next message is signed (the key cache notices the mode change).
  chmodSync(open.file, 0o600);
  assert.equal(sigs(await submit(c, MSG)).length, 1);
  assert.ok(existsSync(open.file));
});

test('hostile: a header section longer than 1 MiB is not held to its end; the message is queued byte for byte', async () => {
  const junk = 'X-Junk: ' + 'j'.repeat(990) + '\n';
  const big = junk.repeat(1500) + MSG;   // ~1.5 MB of headers before From:
  const out = await submit(conf(''), big);
  assert.equal(sigs(out).length, 0, 'no From: in the first MiB: not signed');
  assert.ok(out.equals(Buffer.from(big)));
  const noEnd = ('X-Junk: ' + 'k'.repeat(100) + '\n').repeat(30000);   // 3.3 MB, never a blank line
  assert.ok((await submit(conf(''), noEnd, {})).equals(Buffer.from(noEnd)));
});

test('ARC: mail from outside that a virtual alias sends to a remote domain is sealed with the alias domain\'s RSA key; over 4 MiB it is not', async () => {
  const c = conf('virtual_alias_domains = example.com\nvirtual_alias_maps = texthash:DIR/virtual', { virtual: 'fwd@example.com friend@remote.example\n' });
  const submitTo = async (m: string) => {
    const queue = new MailQueue(join(c.configDir, 'queue'));
    queue.ensureDirs();
    const s = await CleanupSession.open({ myhostname: 'mx.example.com', myorigin: 'example.com', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false, config: c },
      queue, { sender: 'x@sender.example', addMissingHeaders: false, attrs: {} }, TrivialRewrite.open);
    s.addRecipient({ address: 'fwd@example.com', orig: 'fwd@example.com' });
    await s.write(Buffer.from(m));
    const r = await s.finish();
    assert.ok('queueId' in r);
    return (await QueueFile.open(queue.path('incoming', r.queueId), r.queueId)).content();
  };
  const m = 'From: x@sender.example\nTo: fwd@example.com\nSubject: fwd\n\nhello\n';
  const sealed = (await submitTo(m)).toString('latin1');
  assert.match(sealed, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=example\.com;\s+s=postern;/);
  assert.match(sealed, /\nARC-Authentication-Results: i=1; mx\.example\.com; none\n/);
  assert.doesNotMatch(sealed, /DKIM-Signature/);
  assert.ok(sealed.endsWith(m));
  const huge = m + 'x'.repeat(100).concat('\n').repeat(45000);   // 4.5 MB
  const out = await submitTo(huge);
  assert.ok(out.equals(Buffer.from(huge)), 'forwarded as it came, unsealed');
  assert.ok(logs.some((l) => /: not ARC-sealed: larger than 4194304 bytes/.test(l)));
});
