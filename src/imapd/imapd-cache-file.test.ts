/**
 * postern-cache seen from an IMAP client (issue #5): parsed ENVELOPE/BODYSTRUCTURE/BODY answers
 * survive a restart of imapd. A "restart" here is a new Imapd (new in-memory cache) on the same
 * Maildir after every mailbox state was dropped. The proof that nothing is parsed again: the
 * message files are replaced by garbage of the same size (a Maildir file never changes content,
 * so trusting GUID + size is right) and the answers stay byte for byte the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync, truncateSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { parseDovecotConf } from '../global/dovecot-conf.ts';
import { Logger } from '../util/msg.ts';
import { dropIdleStates } from '../lib-storage/maildir/maildir-storage.ts';
import { createImapd, type Imapd } from './imapd.ts';
import { startFixture, connectImap, stripTiming, type Fixture } from '../../test/harness/imapd-testkit.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { crc32 } from 'node:zlib';
import { flushCacheFiles, formatCacheFile, parseCacheFile } from './imapd-cache-file.ts';
import { cacheScope, MessageCache } from './imapd-cache.ts';
import type { Mailbox } from '../lib-storage/mail-storage.ts';

const SIMPLE = (n: number) => `From: "Sender ${n}" <a${n}@example.test>\r\nTo: b@example.test\r\nSubject: message ${n}\r\nDate: Fri, 27 Nov 2026 10:00:0${n} +0000\r\nMessage-ID: <${n}@example.test>\r\n\r\nbody ${n}\r\n`;
const MULTI = 'From: c@example.test\r\nSubject: with attachment\r\nMIME-Version: 1.0\r\n'
  + 'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n'
  + '--XX\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n';
const FETCH = 'UID FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)';

/** A second imapd on the fixture's configuration and Maildirs (what a restart would run). */
async function restart(f: Fixture): Promise<{ port: number; stop(): Promise<void> }> {
  await flushCacheFiles();   // what the process 'exit' hook does at a real stop
  dropIdleStates();          // forget every in-memory mailbox state
  const path = join(f.dir, 'dovecot.conf');
  const imapd: Imapd = await createImapd({ dovecot: parseDovecotConf(readFileSync(path, 'utf8'), path), log: new Logger('imap'), settings: {} });
  const server: Server = createServer((sock) => { void imapd.handle(sock); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    async stop() { await imapd.close(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

async function session(port: number): Promise<LineChat> {
  const c = await connectImap(port);
  assert.match(await c.tagged('l', 'LOGIN alice@example.test secret'), /^l OK /m);
  assert.match(await c.tagged('s', 'SELECT INBOX'), /^s OK /m);
  return c;
}

async function fetchAll(port: number, cmd = FETCH): Promise<string> {
  const c = await session(port);
  const r = stripTiming(await c.tagged('f', cmd));
  await c.tagged('o', 'LOGOUT');
  c.close();
  assert.match(r, /^f OK /m);
  return r;
}

/** Message files of cur/ with their content. */
function messageFiles(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of readdirSync(join(root, 'cur'))) out.set(n, readFileSync(join(root, 'cur', n)));
  return out;
}

test('postern-cache: answers survive a restart without parsing again; damage is ignored; expunged entries drop out', async () => {
  const f = await startFixture();
  const servers: Array<{ stop(): Promise<void> }> = [];
  try {
    const root = f.maildir('alice@example.test');
    const c = await session(f.port);
    for (const m of [SIMPLE(1), MULTI, SIMPLE(3)]) assert.match(await c.tagged('a', `APPEND INBOX {${m.length}+}\r\n${m}`), /a OK/);
    await c.tagged('o', 'LOGOUT');
    c.close();
    const first = await fetchAll(f.port);
    assert.match(first, /ENVELOPE \("Fri, 27 Nov 2026 10:00:01 \+0000" "message 1"/);
    assert.match(first, /"application" "pdf"/);
    assert.equal(first.match(/ FETCH \(/g)?.length, 3);

    // restart 1: the message files become garbage of the same size; the answers must not change
    const s1 = await restart(f);
    servers.push(s1);
    const cachePath = join(root, 'postern-cache');
    assert.ok(existsSync(cachePath), 'postern-cache written next to dovecot-uidlist');
    const originals = messageFiles(root);
    for (const [n, b] of originals) writeFileSync(join(root, 'cur', n), Buffer.alloc(b.length, 'Z'));
    assert.equal(await fetchAll(s1.port), first, 'same bytes, served from postern-cache');
    for (const [n, b] of originals) writeFileSync(join(root, 'cur', n), b);

    // restart 2: a truncated file is ignored (warning) and the answers recomputed correctly
    const size = statSync(cachePath).size;
    truncateSync(cachePath, size - 7);
    const s2 = await restart(f);
    servers.push(s2);
    assert.equal(await fetchAll(s2.port), first, 'recomputed after a truncated cache');
    await flushCacheFiles();
    assert.equal(statSync(cachePath).size, size, 'rewritten whole');

    // restart 3: garbage and a foreign version are ignored too
    for (const junk of [Buffer.from('postern-cache 9\n' + 'x'.repeat(100)), Buffer.alloc(size, 0xff)]) {
      await flushCacheFiles();   // the previous round's rewrite, before the damage
      writeFileSync(cachePath, junk);
      const s = await restart(f);
      servers.push(s);
      assert.equal(await fetchAll(s.port), first);
    }

    // expunge UID 2, deliver a 4th message, compute its ENVELOPE: the rewrite drops UID 2's entries
    await flushCacheFiles();
    const before = parseCacheFile(readFileSync(cachePath));
    assert.ok(Array.isArray(before));
    const guids = new Set(before.map((e) => e.guid));
    assert.equal(guids.size, 3);
    const c2 = await session(f.port);
    assert.match(await c2.tagged('x', 'UID STORE 2 +FLAGS.SILENT (\\Deleted)'), /x OK/);
    assert.match(await c2.tagged('e', 'EXPUNGE'), /e OK/);
    assert.match(await c2.tagged('a', `APPEND INBOX {${SIMPLE(4).length}+}\r\n${SIMPLE(4)}`), /a OK/);
    assert.match(await c2.tagged('n', 'NOOP'), /n OK/);
    assert.match(await c2.tagged('f', 'UID FETCH 4 (ENVELOPE)'), /"message 4"/);
    await c2.tagged('o', 'LOGOUT');
    c2.close();
    await flushCacheFiles();
    const after = parseCacheFile(readFileSync(cachePath));
    assert.ok(Array.isArray(after));
    const guidsAfter = new Set(after.map((e) => e.guid));
    assert.equal(guidsAfter.size, 3, 'UID 2 gone, UID 4 added');
    assert.equal([...guids].filter((g) => !guidsAfter.has(g)).length, 1);
    assert.deepEqual(after.filter((e) => !guids.has(e.guid)).map((e) => e.item), ['ENVELOPE']);
  } finally {
    for (const s of servers) await s.stop();
    await f.stop();
  }
});

test('postern-cache format: round trip; hostile records with a valid checksum are refused, never over-read', () => {
  const msgs = [{ guid: '1700000000.M1P2.host', vsize: 123 }, { guid: 'bad guid', vsize: 1 }, { guid: 'g2', vsize: 2 ** 40 }];
  const vals = new Map([['1700000000.M1P2.host/ENVELOPE', Buffer.from('(NIL "x")')], ['bad guid/ENVELOPE', Buffer.from('y')], ['g2/BODY', Buffer.from('("text" "plain")')]]);
  const b = formatCacheFile(msgs, (m, item) => vals.get(`${m.guid}/${item}`));
  const r = parseCacheFile(b);
  assert.ok(Array.isArray(r));
  assert.deepEqual(r.map((e) => [e.guid, e.vsize, e.item, e.value.toString()]),
    [['1700000000.M1P2.host', 123, 'ENVELOPE', '(NIL "x")'], ['g2', 2 ** 40, 'BODY', '("text" "plain")']]);
  /** Patch a byte and fix the checksum, as a hostile writer would. */
  const patched = (at: number, v: number): Buffer => {
    const c = Buffer.from(b);
    c[at] = v;
    c.writeUInt32BE(crc32(c.subarray(0, c.length - 9)), c.length - 4);
    return c;
  };
  assert.equal(typeof parseCacheFile(patched(16 + 8, 0xff)), 'string', 'value length beyond the end');
  assert.equal(typeof parseCacheFile(patched(16, 9)), 'string', 'unknown kind');
  assert.equal(typeof parseCacheFile(patched(16 + 12, 0x20)), 'string', 'guid with a space');
  assert.equal(typeof parseCacheFile(patched(b.length - 6, 7)), 'string', 'record count');
  assert.equal(typeof parseCacheFile(b.subarray(0, 20)), 'string');
  assert.equal(typeof parseCacheFile(Buffer.alloc(0)), 'string');
});

test('postern-cache load: only entries of messages in the mailbox enter the shared cache', async () => {
  const inView = { guid: 'mine.M1P1.host', vsize: 10 }, other = { guid: 'theirs.M2P2.host', vsize: 20 };
  const data = formatCacheFile([inView, other], () => Buffer.from('(NIL "forged")'));
  const box = {
    cacheFile: { key: '/nonexistent/postern-cache', read: async () => data, write: async () => {}, writeSync: () => {} },
    messages: () => [inView],
  } as unknown as Mailbox;
  const cache = new MessageCache();
  await cache.files.load(box);
  assert.equal(cache.files.load(box), undefined, 'loaded once');
  const scope = '/nonexistent/postern-cache';
  assert.equal(cache.get(scope, inView, 'ENVELOPE')?.toString(), '(NIL "forged")');
  assert.equal(cache.get(scope, other, 'ENVELOPE'), undefined);
  // A file name (GUID) is chosen by whoever writes the Maildir: an answer loaded for one mailbox
  // never serves another mailbox's message of the same name and size.
  assert.equal(cache.get('/another/mailbox/postern-cache', inView, 'ENVELOPE'), undefined);
  assert.equal(cache.get(cacheScope({ name: 'INBOX' } as unknown as Mailbox, 'bob@example.test'), inView, 'ENVELOPE'), undefined);
});
