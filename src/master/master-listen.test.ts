/**
 * Tests for master-listen.ts: address selection (inet_interfaces, inet_protocols, Dovecot listen),
 * real binds on 127.0.0.1 and unix sockets, stale socket files, and connection routing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { logger, setLogSink } from '../util/msg.ts';
import { bindListen, dovecotAddress, hostAddresses, inetProtocols, interfaceAddresses } from './master-listen.ts';

const both = { ipv4: true, ipv6: true };
const v4 = { ipv4: true, ipv6: false };
const log = logger('master');

test('inet_interfaces and inet_protocols choose the addresses like Postfix', () => {
  assert.deepEqual(interfaceAddresses(['all'], both, 'main.cf'), ['0.0.0.0', '::']);
  assert.deepEqual(interfaceAddresses([], v4, 'main.cf'), ['0.0.0.0']);
  assert.deepEqual(interfaceAddresses(['loopback-only'], both, 'main.cf'), ['127.0.0.1', '::1']);
  assert.deepEqual(interfaceAddresses(['loopback-only'], inetProtocols(['ipv4']), 'main.cf'), ['127.0.0.1']);
  assert.deepEqual(interfaceAddresses(['192.0.2.1', '[2001:db8::1]', 'localhost'], v4, 'main.cf'), ['192.0.2.1', '2001:db8::1', '127.0.0.1']);
  assert.deepEqual(inetProtocols(['ipv6']), { ipv4: false, ipv6: true });
  assert.deepEqual(inetProtocols(['all']), both);
  assert.deepEqual(dovecotAddress('*', both, 'x'), ['0.0.0.0']);
  assert.deepEqual(dovecotAddress('::', both, 'x'), ['::']);
  assert.deepEqual(dovecotAddress('::', v4, 'x'), []);
  assert.deepEqual(hostAddresses('[::1]', both, 'x'), ['::1']);
});

test('a host name is refused with a message saying what to write (no DNS at start-up)', () => {
  assert.throws(() => interfaceAddresses(['mail.example.com'], both, '/etc/postern/main.cf: inet_interfaces'),
    /main\.cf: inet_interfaces: "mail\.example\.com" is not an IP address; Postern does not resolve host names/);
  assert.throws(() => hostAddresses('../x', both, 'master.cf'), /not an IP address/);
});

test('inet: binds, routes connections, holds them while no handler is set, closes', async () => {
  const b = await bindListen({ kind: 'inet', name: 'smtp', ssl: false, addresses: ['127.0.0.1'], port: 0, where: 'x' }, log);
  const port = (b.servers[0]!.server.address() as AddressInfo).port;
  const read = () => new Promise<string>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let d = '';
    s.on('data', (x) => { d += x; });
    s.on('end', () => resolve(d));
    s.on('error', reject);
  });
  try {
    b.setRoute((s) => s.end('one\n'));
    assert.equal(await read(), 'one\n');
    // No handler: the connection waits, then goes to the next handler.
    b.setRoute(undefined);
    const pending = read();
    await new Promise((r) => setTimeout(r, 50));
    b.setRoute((s) => s.end('two\n'));
    assert.equal(await pending, 'two\n');
    // A handler that throws costs that connection only.
    const lines: string[] = [];
    const old = setLogSink((l) => { lines.push(l); });
    try {
      b.setRoute(() => { throw new Error('bug'); });
      assert.equal(await read(), '');
      assert.ok(lines.some((l) => l.includes('error: smtp: connection handler: bug')));
    } finally {
      setLogSink(old);
    }
  } finally {
    await b.close();
  }
  await assert.rejects(read(), /ECONNREFUSED/);
});

test('inet: a port in use is a ListenError naming what to change', async () => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  try {
    await assert.rejects(
      bindListen({ kind: 'inet', name: 'imap', ssl: false, addresses: ['127.0.0.1'], port, where: '"port = N" of inet_listener imap' }, log),
      { name: 'ListenError', message: `bind 127.0.0.1:${port}: address already in use; change "port = N" of inet_listener imap, or stop the program using it` },
    );
  } finally {
    s.close();
  }
});

test('unix: creates private/ 0700, replaces a stale socket, refuses a regular file, removes the socket on close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-listen-'));
  try {
    const path = join(dir, 'queue', 'private', 'cleanup');
    // A stale socket left by a crashed master.
    mkdirSync(join(dir, 'queue', 'private'), { recursive: true, mode: 0o700 });
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
    assert.ok(lstatSync(path).isSocket());
    const b = await bindListen({ kind: 'unix', name: 'cleanup', ssl: false, path, where: 'x' }, log);
    assert.equal(statSync(join(dir, 'queue', 'private')).mode & 0o777, 0o700);
    assert.equal(lstatSync(path).mode & 0o777, 0o666);
    b.setRoute((s) => s.end('ok\n'));
    const got = await new Promise<string>((resolve, reject) => {
      const s = connect(path);
      let d = '';
      s.on('data', (x) => { d += x; });
      s.on('end', () => resolve(d));
      s.on('error', reject);
    });
    assert.equal(got, 'ok\n');
    await b.close();
    assert.throws(() => lstatSync(path), /ENOENT/);

    // A regular file where the socket goes is not silently deleted.
    mkdirSync(join(dir, 'queue', 'public'), { recursive: true });
    writeFileSync(join(dir, 'queue', 'public', 'pickup'), 'important');
    await assert.rejects(
      bindListen({ kind: 'unix', name: 'pickup', ssl: false, path: join(dir, 'queue', 'public', 'pickup'), where: 'queue_directory' }, log),
      /public\/pickup exists and is not a socket; remove it or change queue_directory/,
    );
    // A socket somebody still listens on is not taken over.
    const other = createServer();
    const live = join(dir, 'queue', 'public', 'live');
    await new Promise<void>((r) => other.listen(live, r));
    try {
      await assert.rejects(
        bindListen({ kind: 'unix', name: 'live', ssl: false, path: live, where: 'base_dir' }, log),
        /another program is listening on this socket; stop it or change base_dir/,
      );
    } finally {
      other.close();
    }
    // Over-long socket paths are refused before the kernel truncates them.
    await assert.rejects(
      bindListen({ kind: 'unix', name: 'x', ssl: false, path: join(dir, 'a'.repeat(120)), where: 'queue_directory in main.cf' }, log),
      /socket path too long \(\d+ bytes, at most 107\).*use a shorter queue_directory in main\.cf/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
