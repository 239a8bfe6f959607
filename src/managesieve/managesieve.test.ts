/**
 * managesieve units: script names (RFC 5804 §1.6 / Pigeonhole's rules), the sieve location
 * (global/sieve-location.ts), the file storage (atomic writes, the active link, quota scan,
 * nothing outside the script directory), and the command reader's bounds (a 4 GB literal is answered before a byte of it is held).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSieveLocation, SieveLocationError } from '../global/sieve-location.ts';
import { isValidScriptName, SieveFileStorage, SieveStorageError } from './managesieve-storage.ts';
import { ManageSieveInput, readCommand } from './managesieve-input.ts';

test('script names: Pigeonhole sieve_script_name_is_valid()', () => {
  for (const ok of ['a', 'My filter', 'über', 'x.y', '..', '.', 'a'.repeat(256), '日本語']) assert.ok(isValidScriptName(ok), ok);
  for (const bad of ['', 'a/b', '../x', 'a\0b', 'a\x01', 'a\x7f', 'a\u0085', 'a\u00ff', 'a\u2028', 'a\u2029', 'a'.repeat(257)]) {
    assert.ok(!isValidScriptName(bad), JSON.stringify(bad));
  }
  assert.ok(!isValidScriptName(Buffer.from([0x61, 0xff, 0xfe])), 'invalid UTF-8');
});

test('sieve location: Pigeonhole syntax, ~ and %-variables, errors name the setting', () => {
  assert.deepEqual(parseSieveLocation(undefined, 'a@x.test', '/home/a'), { path: '/home/a/sieve', active: '/home/a/.dovecot.sieve', options: { active: '~/.dovecot.sieve' } });
  const l = parseSieveLocation('file:/var/sieve/%d/%n;active=/var/sieve/%d/%n/.active', 'Bob@X.test', '');
  assert.equal(l.path, '/var/sieve/X.test/Bob');
  assert.equal(l.active, '/var/sieve/X.test/Bob/.active');
  assert.equal(parseSieveLocation('~/.dovecot.sieve', 'a', '/h').active, undefined);
  assert.throws(() => parseSieveLocation(undefined, 'a@x', ''), (e: Error) => e instanceof SieveLocationError && /no home directory/.test(e.message));
  assert.throws(() => parseSieveLocation('dict:proxy::sieve', 'a', '/h'), /not supported/);
  assert.throws(() => parseSieveLocation('file:relative', 'a', '/h'), /not an absolute path/);
  assert.throws(() => parseSieveLocation('file:/s/%u', '../../etc', '/h'), /"\.\."/);
});

test('file storage: atomic put, relative active link, rename follows it, delete refuses the active one, quota scan', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-ms-store-'));
  try {
    const st = new SieveFileStorage(parseSieveLocation(undefined, 'a@x.test', home));
    assert.deepEqual(await st.list(), []);
    await st.put('one', Buffer.from('keep;\r\n'));
    await st.put('one', Buffer.from('discard;\r\n'));
    assert.equal(readFileSync(join(home, 'sieve', 'one.sieve'), 'utf8'), 'discard;\r\n');
    assert.deepEqual(readdirSync(join(home, 'sieve', 'tmp')), [], 'no temporary file left');
    assert.equal(await st.setActive('one'), 'activated');
    assert.equal(readlinkSync(join(home, '.dovecot.sieve')), 'sieve/one.sieve');
    assert.equal(await st.setActive('one'), 'already');
    await assert.rejects(st.delete('one'), (e: Error) => e instanceof SieveStorageError && e.code === 'ACTIVE');
    await st.put('two', Buffer.from('keep;'));
    await assert.rejects(st.rename('one', 'two'), (e: Error) => e instanceof SieveStorageError && e.code === 'ALREADYEXISTS');
    await st.rename('one', 'uno');
    assert.equal(readlinkSync(join(home, '.dovecot.sieve')), 'sieve/uno.sieve');
    assert.deepEqual((await st.list()).map((s) => `${s.name}${s.active ? '*' : ''}`).sort(), ['two', 'uno*']);
    assert.deepEqual(await st.haveSpace('three', 1, 2, 0), { ok: false, code: 'QUOTA/MAXSCRIPTS', limit: 2 });
    assert.deepEqual(await st.haveSpace('two', 1, 2, 0), { ok: true }, 'replacing a script does not count it');
    assert.deepEqual(await st.haveSpace('x', 10, 0, 20), { ok: false, code: 'QUOTA/MAXSTORAGE', limit: 20 });
    assert.equal(await st.setActive(''), 'deactivated');
    assert.ok(!existsSync(join(home, '.dovecot.sieve')));
    assert.equal(await st.setActive(''), 'none');
    await assert.rejects(st.setActive('nope'), (e: Error) => e instanceof SieveStorageError && e.code === 'NONEXISTENT');
    // A hand-written script where the link belongs is kept as `dovecot.orig`, not lost.
    writeFileSync(join(home, '.dovecot.sieve'), 'keep; # by hand\n');
    assert.equal(await st.setActive('two'), 'activated');
    assert.equal(readFileSync(join(home, 'sieve', 'dovecot.orig.sieve'), 'utf8'), 'keep; # by hand\n');
    assert.ok(lstatSync(join(home, '.dovecot.sieve')).isSymbolicLink());
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a location that names a single script file: the login is refused with TRYLATER and the log says what to change', async () => {
  const { DovecotFixture } = await import('../../test/harness/dovecot-fixture.ts');
  const { createManageSieve } = await import('./managesieve.ts');
  const { managesieveSettings } = await import('./managesieve-settings.ts');
  const fx = new DovecotFixture('postern-ms-single-');
  try {
    const dc = fx.configure({ users: [{ user: 'a@x.test', pass: 'pw' }], settings: 'auth_failure_delay = 0\ndisable_plaintext_auth = no', conf: 'plugin {\n  sieve = ~/.dovecot.sieve\n}\n' });
    const logs: string[] = [];
    const log = { info: () => {}, warn: () => {}, debug: () => {}, error: (m: string) => { logs.push(m); } } as unknown as import('../util/msg.ts').Logger;
    const ms = createManageSieve({ directory: await fx.directory(), settings: managesieveSettings(dc), log });
    const port = await fx.listen((s) => { void ms.handle(s); });
    const c = connect(port, '127.0.0.1');
    let data = '';
    c.on('data', (d) => { data += d.toString(); });
    await new Promise<void>((r) => { const t = setInterval(() => { if (data.includes('OK "')) { clearInterval(t); r(); } }, 20); });
    c.write(`AUTHENTICATE "PLAIN" "${Buffer.from('\0a@x.test\0pw').toString('base64')}"\r\n`);
    await new Promise<void>((r) => { const t = setInterval(() => { if (data.includes('TRYLATER')) { clearInterval(t); r(); } }, 20); });
    assert.match(data, /NO \(TRYLATER\) "Failed to open Sieve storage\."\r\n$/);
    assert.match(logs.join('\n'), /names a single script, but ManageSieve needs a script directory/);
    c.destroy();
  } finally {
    await fx.stop();
  }
});

test('command reader: a 4 GB literal is decided on its announced size; lines and arguments are bounded', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const c = connect(port, '127.0.0.1');
  const s = await accepted;
  try {
    const input = new ManageSieveInput(s);
    const seen: number[] = [];
    c.write('PUTSCRIPT "x" {4294967296+}\r\n');
    const r = await readCommand(input, { maxLine: 100, maxLiteral: 100 }, (_v, _i, size) => { seen.push(size); return 'close'; });
    assert.deepEqual(r, { verb: 'PUTSCRIPT', literalRefused: 'close', size: 4294967296, index: 1 });
    assert.deepEqual(seen, [4294967296]);
    c.write(`NOOP "${'x'.repeat(500)}"\r\nNOOP {5+}\r\nab\\"c "t"\r\n`);
    const long = await readCommand(input, { maxLine: 100, maxLiteral: 100 }, () => 'read');
    assert.deepEqual(long, { verb: 'NOOP', error: 'tooLong', message: 'Too long argument.' });
    const lit = await readCommand(input, { maxLine: 100, maxLiteral: 100 }, () => 'read');
    assert.ok('args' in lit);
    assert.deepEqual(lit.args.map((a) => `${a.kind}:${a.value.toString()}`), ['string:ab\\"c', 'string:t']);
    // A skipped literal's bytes are dropped as they come (here 1 MB), then the next command.
    c.write(`PUTSCRIPT "y" {1048576+}\r\n${'z'.repeat(1048576)}\r\nNOOP\r\n`);
    const skipped = await readCommand(input, { maxLine: 100, maxLiteral: 100 }, () => 'skip');
    assert.deepEqual(skipped, { verb: 'PUTSCRIPT', literalRefused: 'skip', size: 1048576, index: 1 });
    const next = await readCommand(input, { maxLine: 100, maxLiteral: 100 }, () => 'read');
    assert.deepEqual(next, { verb: 'NOOP', args: [] });
  } finally {
    c.destroy();
    s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
