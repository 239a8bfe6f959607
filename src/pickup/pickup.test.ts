/**
 * pickup tests: maildrop files written by postdrop (and hostile ones written by hand) go through
 * pickup into incoming, or into corrupt, with Postfix's log lines; the master service picks up
 * mail submitted by bin/sendmail at once (file-system watch).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { QueueFileWriter } from '../global/queue-file-writer.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { setLogSink, logger } from '../util/msg.ts';
import { PostdropFile } from '../postdrop/postdrop.ts';
import type { ServiceContext } from '../lib-master/master-service.ts';
import { Pickup, pickupOptions } from './pickup.ts';
import { service } from '../master/master-pickup.ts';
import { cleanup } from '../master/master-clients.ts';

const ROOT = join(import.meta.dirname, '..', '..');

interface Rig { dir: string; q: MailQueue; p: Pickup; logs: string[]; config: MainConfig; close(): void }

function rig(mainCf = ''): Rig {
  const dir = mkdtempSync(join(tmpdir(), 'postern-pickup-'));
  writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\nmyhostname = mx.example.test\nmyorigin = example.test\n${mainCf}`);
  const config = MainConfig.load(dir);
  const logs: string[] = [];
  const old = setLogSink((l) => logs.push(l));
  const o = pickupOptions(config, cleanup);
  o.queue.ensureDirs();
  return { dir, q: o.queue, p: new Pickup(o), logs, config, close() { setLogSink(old); rmSync(dir, { recursive: true, force: true }); } };
}

const ls = (r: Rig, queue: string): string[] => readdirSync(join(r.dir, 'queue', queue)).sort();

async function drop(r: Rig, body: string, o: { sender?: string; rcpts?: string[]; attrs?: Record<string, string>; fullname?: string } = {}): Promise<string> {
  const f = await PostdropFile.open(r.q, { sender: o.sender ?? 'joe', attrs: o.attrs, fullname: o.fullname });
  for (const a of o.rcpts ?? ['x@remote.test']) f.addRecipient({ address: a });
  await f.write(Buffer.from(body));
  return f.commit();
}

test('a maildrop file goes through cleanup into incoming with pickup\'s Received: header and the missing headers; the maildrop file is removed', async () => {
  const r = rig();
  try {
    const id = await drop(r, 'Subject: hi\n\nbody\n', { rcpts: ['x@remote.test', 'y@remote.test'] });
    assert.deepEqual(ls(r, 'maildrop'), [id]);
    assert.equal(await r.p.scan(), 1);
    assert.deepEqual(ls(r, 'maildrop'), []);
    const [qid] = ls(r, 'incoming');
    assert.ok(qid);
    const qf = await QueueFile.open(join(r.dir, 'queue', 'incoming', qid), qid);
    assert.equal(qf.sender, 'joe@example.test', 'cleanup qualifies a local sender with $myorigin, as Postfix');
    assert.equal(qf.attr('rewrite_context'), 'local');
    assert.deepEqual(qf.recipients.map((x) => x.address), ['x@remote.test', 'y@remote.test']);
    const text = (await qf.content()).toString();
    const uid = process.getuid!();
    assert.match(text, new RegExp(`^Received: by mx\\.example\\.test \\(Postern, from userid ${uid}\\)\\n\\tid ${qid}; \\w{3}, [ \\d]\\d \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}`));
    assert.match(text, new RegExp(`\\nSubject: hi\\nMessage-Id: <\\d{14}\\.${qid}@mx\\.example\\.test>\\nDate: .*\\nFrom: joe@example\\.test\\n`));
    assert.ok(r.logs.some((l) => new RegExp(`postern/pickup\\[\\d+\\]: ${qid}: uid=${uid} from=<joe>$`).test(l)), r.logs.join('\n'));
  } finally { r.close(); }
});

test('attributes a local user may not set (client_address, sasl_username...) are dropped with a warning; DSN attributes pass', async () => {
  const r = rig();
  try {
    // Written with the raw writer, as a hostile user could (postdrop itself would refuse them).
    const w = await QueueFileWriter.create(r.q, 'maildrop');
    w.setSender('joe');
    w.addAttr('client_address', '198.51.100.7');
    w.addAttr('sasl_username', 'admin');
    w.addAttr('dsn_envid', 'ENV-1');
    w.addAttr('encoding', 'evil');
    w.addRecipient({ address: 'x@remote.test' });
    await w.writeContent(Buffer.from('Subject: x\n\nx\n'));
    const id = await w.commit();
    await r.p.scan();
    const [qid] = ls(r, 'incoming');
    const qf = await QueueFile.open(join(r.dir, 'queue', 'incoming', qid!), qid!);
    assert.equal(qf.attr('client_address'), undefined);
    assert.equal(qf.attr('sasl_username'), undefined);
    assert.equal(qf.attr('encoding'), undefined);
    assert.equal(qf.attr('dsn_envid'), 'ENV-1');
    for (const a of ['client_address=198.51.100.7', 'sasl_username=admin', 'encoding=evil']) {
      assert.ok(r.logs.some((l) => l.includes(`warning: maildrop/${id}: uid=${process.getuid!()}: ignoring attribute record: ${a}`)), a);
    }
  } finally { r.close(); }
});

test('corrupt maildrop files go to the corrupt queue with a warning naming the file and offset', async () => {
  const r = rig();
  try {
    const make = async (f: (w: QueueFileWriter) => void): Promise<string> => {
      const w = await QueueFileWriter.create(r.q, 'maildrop');
      w.setSender('joe');
      f(w);
      await w.writeContent(Buffer.from('x\n'));
      return w.commit();
    };
    const done = await make((w) => w.addRecipient({ address: 'a@x', done: true }));        // D record
    const orig = await make((w) => w.addRecipient({ address: 'a@x', orig: 'spoof@x' }));   // O record
    const trunc = await make((w) => w.addRecipient({ address: 'a@x' }));
    truncateSync(join(r.dir, 'queue', 'maildrop', trunc), statSync(join(r.dir, 'queue', 'maildrop', trunc)).size - 2);
    writeFileSync(join(r.dir, 'queue', 'maildrop', 'ABCDEF123'), 'garbage\0\0\0 not a queue file at all, but long enough to hold a size record.......');
    writeFileSync(join(r.dir, 'queue', 'maildrop', 'ABCDEF124'), '');
    await r.p.scan();
    assert.deepEqual(ls(r, 'maildrop'), []);
    assert.deepEqual(ls(r, 'corrupt'), [done, orig, trunc, 'ABCDEF123', 'ABCDEF124'].sort());
    assert.deepEqual(ls(r, 'incoming'), []);
    assert.ok(r.logs.some((l) => new RegExp(`warning: maildrop/${done}: uid=\\d+: unexpected or malformed record type 'D' at offset \\d+; moved to the corrupt queue`).test(l)), r.logs.join('\n'));
    assert.ok(r.logs.some((l) => l.includes(`maildrop/${orig}`) && l.includes("record type 'O'")));
    assert.ok(r.logs.some((l) => l.includes(`maildrop/${trunc}`) && /bad size record|end record|runs past/.test(l)));
  } finally { r.close(); }
});

test('a symlink or a hard link in maildrop is removed unread: pickup never injects a file it did not get', async () => {
  const r = rig();
  try {
    const secret = join(r.dir, 'secret');
    writeFileSync(secret, 'root:$6$hash:...\n');
    const real = await drop(r, 'x\n');
    const copy = join(r.dir, 'copy');
    linkSync(join(r.dir, 'queue', 'maildrop', real), copy); // maildrop file now has 2 links
    symlinkSync(secret, join(r.dir, 'queue', 'maildrop', 'ABCDEF999'));
    mkdirSync(join(r.dir, 'queue', 'maildrop', 'ABCDEF777'));
    await r.p.scan();
    assert.deepEqual(ls(r, 'maildrop'), ['ABCDEF777'], 'a directory cannot be removed: left alone, and the scan ends');
    assert.ok(r.logs.some((l) => l.includes('maildrop/ABCDEF777') && l.includes('not a regular file')));
    assert.deepEqual(ls(r, 'incoming'), []);
    assert.equal(readFileSync(secret, 'utf8'), 'root:$6$hash:...\n');
    assert.ok(r.logs.some((l) => l.includes('ABCDEF999') && l.includes('symbolic link')), r.logs.join('\n'));
    assert.ok(r.logs.some((l) => l.includes(real) && l.includes('2 hard links')));
  } finally { r.close(); }
});

test('temporary files of a sendmail still writing are left alone; a message over message_size_limit goes to corrupt (no bounce yet)', async () => {
  const r = rig('message_size_limit = 200');
  try {
    writeFileSync(join(r.dir, 'queue', 'maildrop', 't123.1.abc'), 'half written');
    const big = await drop(r, 'Subject: big\n\n' + 'x'.repeat(300) + '\n');
    await r.p.scan();
    assert.deepEqual(ls(r, 'maildrop'), ['t123.1.abc']);
    assert.deepEqual(ls(r, 'corrupt'), [big]);
    assert.ok(r.logs.some((l) => l.includes(`maildrop/${big}`) && l.includes('552 5.3.4')));
  } finally { r.close(); }
});

test('the pickup service picks up mail from bin/sendmail -t -i at once (file-system watch) and on wakeup', async () => {
  const r = rig();
  const running = await service.start({ config: r.config, entry: { service: 'pickup', wakeup: 60, maxproc: 1 }, log: logger('pickup'), listeners: [], failed: () => {} } as unknown as ServiceContext);
  try {
    const res = spawnSync(join(ROOT, 'bin', 'sendmail'), ['-t', '-i'], {
      input: 'To: a@remote.test\nBcc: b@remote.test\nSubject: script\n\n.\nlast line\n',
      env: { ...process.env, MAIL_CONFIG: r.dir },
    });
    assert.equal(res.status, 0, res.stderr.toString());
    const deadline = Date.now() + 3000;
    while (ls(r, 'incoming').length === 0 && Date.now() < deadline) await new Promise((x) => setTimeout(x, 20));
    const [qid] = ls(r, 'incoming');
    assert.ok(qid, 'picked up within 3 s without a wakeup');
    const qf = await QueueFile.open(join(r.dir, 'queue', 'incoming', qid), qid);
    assert.deepEqual(qf.recipients.map((x) => x.address).sort(), ['a@remote.test', 'b@remote.test']);
    const text = (await qf.content()).toString();
    assert.doesNotMatch(text, /Bcc:/);
    assert.match(text, /\n\n\.\nlast line\n$/, '-i: the lone dot is content');
    // wakeup() also scans (the master calls it every 60 s).
    const id2 = await drop(r, 'x\n');
    running.wakeup!();
    const d2 = Date.now() + 3000;
    while (existsSync(join(r.dir, 'queue', 'maildrop', id2)) && Date.now() < d2) await new Promise((x) => setTimeout(x, 20));
    assert.equal(ls(r, 'incoming').length, 2);
  } finally {
    await running.stop();
    r.close();
  }
});
