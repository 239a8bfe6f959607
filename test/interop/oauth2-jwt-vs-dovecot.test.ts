/**
 * Local JWT validation of the oauth2 passdb (`introspection_mode = local`,
 * `local_validation_key_dict = fs:posix:prefix=DIR/`) against real Dovecot 2.3 with the same key
 * directory: HS256, RS256 (kid), ES256 (azp) tokens made here; the IMAP AUTHENTICATE XOAUTH2
 * exchanges must match line for line for valid, expired, exp-less, sub-less, badly signed,
 * another user's, alg=none, non-JWT tokens and a kid naming a path outside the key directory.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { startFixture, stripTiming, type Fixture } from '../harness/imapd-testkit.ts';
import { LineChat } from '../harness/line-chat.ts';

const ALICE = 'alice@example.test';
const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');
const secret = Buffer.from('0123456789abcdef0123456789abcdef');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const now = Math.floor(Date.now() / 1000);

function jwt(payload: object, o: { alg?: string; kid?: string; key?: Buffer; sign?: 'rsa' | 'ec' } = {}): string {
  const alg = o.alg ?? 'HS256';
  const h = b64u(JSON.stringify({ alg, typ: 'JWT', ...(o.kid ? { kid: o.kid } : {}) }));
  const p = b64u(JSON.stringify(payload));
  const data = `${h}.${p}`;
  if (alg === 'none') return `${data}.`;
  if (o.sign === 'rsa') return `${data}.${b64u(createSign('sha256').update(data).sign(rsa.privateKey))}`;
  if (o.sign === 'ec') return `${data}.${b64u(createSign('sha256').update(data).sign({ key: ec.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  return `${data}.${b64u(createHmac('sha256', o.key ?? secret).update(data).digest())}`;
}
const claims = (extra: object = {}) => ({ sub: 'alice', email: ALICE, iat: now, exp: now + 600, ...extra });

let dir: string;
let dc: RealDovecot | undefined;
let px: Fixture;
const why = RealDovecot.unavailable();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-jwt-'));
  const keys = join(dir, 'keys');
  mkdirSync(join(keys, 'default', 'HS256'), { recursive: true });
  mkdirSync(join(keys, 'default', 'RS256'), { recursive: true });
  mkdirSync(join(keys, 'mailapp', 'ES256'), { recursive: true });
  writeFileSync(join(keys, 'default', 'HS256', 'default'), secret.toString('base64'));
  writeFileSync(join(keys, 'default', 'RS256', 'k1'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(keys, 'mailapp', 'ES256', 'default'), ec.publicKey.export({ type: 'spki', format: 'pem' }));
  const conf = join(dir, 'dovecot-oauth2.conf.ext');
  writeFileSync(conf, `introspection_mode = local\nlocal_validation_key_dict = fs:posix:prefix=${keys}/\nusername_attribute = email\n`);
  for (const d of [dir, keys, join(keys, 'default'), join(keys, 'default', 'HS256'), join(keys, 'default', 'RS256'), join(keys, 'mailapp'), join(keys, 'mailapp', 'ES256')]) chmodSync(d, 0o755);
  const extra = `auth_mechanisms = plain login xoauth2\npassdb {\n  driver = oauth2\n  mechanisms = xoauth2\n  args = ${conf}\n}\n`;
  px = await startFixture({ users: [[ALICE, 'secret']], conf: extra });
  if (!why) dc = await RealDovecot.start({ protocols: ['imap'], users: [{ user: ALICE, pass: 'secret' }], extraConf: extra });
});

after(async () => {
  await px?.stop();
  await dc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let nextAddr = 0;
async function exchange(port: number, token: string): Promise<string[]> {
  nextAddr++;
  const c = await LineChat.open(port, { protocol: 'imap', localAddress: `127.1.${(nextAddr >> 8) + 10}.${(nextAddr & 255) || 1}` });
  await c.waitFor(/^\* (OK|BYE|PREAUTH).*\r\n/m);
  const out: string[] = [];
  try {
    c.send(`a AUTHENTICATE XOAUTH2 ${Buffer.from(`user=${ALICE}\x01auth=Bearer ${token}\x01\x01`).toString('base64')}\r\n`);
    for (let i = 0; i < 4; i++) {
      const l = await c.line(15_000);
      if (l.startsWith('+')) { out.push(l); c.send('AQ==\r\n'); continue; }
      if (l.startsWith('* ')) continue;
      out.push(stripTiming(l).replace(/^a OK \[CAPABILITY [^\]]*\] Logged in$/, 'a OK Logged in').replace(/ \[[^\]]*:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$/, ''));
      break;
    }
  } finally {
    c.close();
  }
  return out;
}

const FAILED = ['+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=', 'a NO [AUTHENTICATIONFAILED] Authentication failed.'];
const CASES: [string, string, string[]][] = [
  ['HS256', jwt(claims()), ['a OK Logged in']],
  ['RS256 with kid', jwt(claims(), { alg: 'RS256', kid: 'k1', sign: 'rsa' }), ['a OK Logged in']],
  ['ES256 with azp', jwt(claims({ azp: 'mailapp' }), { alg: 'ES256', sign: 'ec' }), ['a OK Logged in']],
  ['expired', jwt(claims({ exp: now - 60, iat: now - 600 })), FAILED],
  ['no exp', jwt({ sub: 'alice', email: ALICE, iat: now }), FAILED],
  ['no sub', jwt({ email: ALICE, iat: now, exp: now + 600 }), FAILED],
  ['wrong HMAC key', jwt(claims(), { key: Buffer.from('not the key') }), FAILED],
  ['another user', jwt(claims({ email: 'bob@example.test' })), FAILED],
  ['alg none', jwt(claims(), { alg: 'none' }), FAILED],
  ['not a JWT', 'just-an-opaque-token', FAILED],
  ['kid naming a path outside the key directory', jwt(claims(), { kid: '../../../../etc/passwd' }), FAILED],
];

for (const [name, token, expected] of CASES) {
  test(`JWT local validation: ${name}`, async () => {
    const p = await exchange(px.port, token);
    assert.deepEqual(p, expected);
    if (dc) assert.deepEqual(p, await exchange(dc.ports.imap!, token), 'Postern vs Dovecot');
  });
}
