/**
 * `postern dkim`: keygen (modes, both types, refusing to overwrite), list, rotate (the new
 * selector signs, the old one is retired but still printed by `postern dns`), remove, usage
 * errors (exit 64) — against a real configuration directory.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './postdkim.ts';
import { main as dnsMain } from './postdns.ts';
import type { CliContext } from './cli-context.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-dkim-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'main.cf'), 'myhostname = mail.example.com\n');
const ctx: CliContext = { configDir: dir, configDirExplicit: true, command: 'dkim' };

async function run(args: string[], m = main): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await m(args, { ...ctx, command: m === main ? 'dkim' : 'dns' }, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

test('keygen: RSA 2048 and Ed25519, mode 0600 in a 0700 directory; TXT records printed; no overwrite', async () => {
  const r = await run(['keygen', 'Example.COM']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^postern\._domainkey\.example\.com\. +3600 IN TXT +"v=DKIM1; k=rsa; p=MII/m);
  assert.match(r.out, /^postern-ed25519\._domainkey\.example\.com\. +3600 IN TXT +"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="$/m);
  assert.equal(statSync(join(dir, 'dkim')).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'dkim', 'example.com.postern.rsa.key')).mode & 0o777, 0o600);
  const again = await run(['keygen', 'example.com']);
  assert.equal(again.code, 1);
  assert.match(again.err, /example\.com\.postern\.rsa\.key exists already; `postern dkim rotate example\.com` makes a new selector/);
  const one = await run(['keygen', 'other.example', '--selector', 's1', '--type', 'ed25519']);
  assert.equal(one.code, 0, one.err);
  assert.match(one.out, /^s1\._domainkey\.other\.example\. .*k=ed25519/m);
  assert.doesNotMatch(one.out, /k=rsa/);
});

test('list, rotate, dns prints active and retired keys, remove', async () => {
  const l = await run(['list', 'example.com']);
  assert.match(l.out, /^example\.com postern rsa signing \S+example\.com\.postern\.rsa\.key$/m);
  const r = await run(['rotate', 'example.com', '--selector', 'y2027']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^y2027\._domainkey\.example\.com\. .*k=rsa/m);
  assert.match(r.out, /^y2027-ed25519\._domainkey\.example\.com\. .*k=ed25519/m);
  assert.match(r.err, /retired \S+example\.com\.postern\.rsa\.retired \(selector postern\)/);
  const l2 = (await run(['list'])).out;
  assert.match(l2, /^example\.com postern rsa retired /m);
  assert.match(l2, /^example\.com y2027 rsa signing /m);
  assert.match(l2, /^other\.example s1 ed25519 signing /m);
  const d = await run(['example.com'], dnsMain);
  for (const s of ['y2027', 'y2027-ed25519', 'postern', 'postern-ed25519']) assert.match(d.out, new RegExp(`^${s}\\._domainkey\\.example\\.com\\. `, 'm'), s);
  const busy = await run(['remove', 'example.com', 'y2027']);
  assert.equal(busy.code, 1);
  assert.match(busy.err, /still signs/);
  const rm = await run(['remove', 'example.com', 'postern']);
  assert.equal(rm.code, 0, rm.err);
  assert.match(rm.err, /removed \S+example\.com\.postern\.rsa\.retired/);
  assert.match(rm.err, /removed \S+example\.com\.postern-ed25519\.ed25519\.retired/);
  assert.doesNotMatch((await run(['example.com'], dnsMain)).out, /^postern\._domainkey/m);
});

test('usage errors exit 64 with the usage', async () => {
  for (const args of [[], ['frob'], ['keygen'], ['keygen', '../etc'], ['keygen', 'a.example', '--type', 'dsa'], ['keygen', 'a.example', '--selector', 'a.b'], ['remove', 'a.example'], ['list', '--type', 'rsa']]) {
    const r = await run(args);
    assert.equal(r.code, 64, JSON.stringify(args));
    assert.match(r.err, /usage: postern/);
  }
});
