/**
 * The same message submitted with real Postfix 3.7's sendmail(1) to a private real Postfix
 * (header_checks = static:HOLD keeps it in the hold queue for inspection with postcat) and with
 * Postern's bin/sendmail + pickup: the queue files must carry the same headers, added in the
 * same order and format (Received: by pickup, Message-Id:, Date:, From:), with Bcc: removed and
 * the same envelope recipients.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { Pickup, pickupOptions } from '../../src/pickup/pickup.ts';
import { cleanup } from '../../src/master/master-clients.ts';
import { mailDate } from '../../src/global/mail-date.ts';
import { clockMoved } from '../harness/test-clock.ts';

const run = promisify(execFile);
setLogSink(() => {});
const skip = RealPostfix.unavailable();
const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = 'myhostname = mx.example.test\nmyorigin = example.test\nmydestination =\n';
const MESSAGE = 'Subject: hello\nTo: x@remote.test\nBcc: hidden@remote.test\n\nbody\n';

interface Submitted { sender: string; recipients: string[]; headers: [string, string][] }

let pf: RealPostfix | undefined;
let ours = '';

before(async () => {
  if (skip) return;
  pf = await RealPostfix.start({ mainCf: `${SHARED}header_checks = static:HOLD\n`, masterCf: '' });
  ours = mkdtempSync(join(tmpdir(), 'postern-sm-cmp-'));
  writeFileSync(join(ours, 'main.cf'), `queue_directory = ${ours}/queue\n${SHARED}mail_name = Postfix\n`);
  pickupOptions(MainConfig.load(ours), cleanup).queue.ensureDirs();
});

after(async () => {
  await pf?.stop();
  if (ours) rmSync(ours, { recursive: true, force: true });
});

function parseHeaders(text: string): [string, string][] {
  const head = text.slice(0, text.indexOf('\n\n') + 1);
  const out: [string, string][] = [];
  for (const line of head.split('\n')) {
    if (line === '') continue;
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1]![1] += '\n' + line;
    else { const i = line.indexOf(':'); out.push([line.slice(0, i), line.slice(i + 1).trim()]); }
  }
  return out;
}

async function viaPostfix(args: string[], input = MESSAGE): Promise<Submitted> {
  const before = new Set((await run('/usr/sbin/postqueue', ['-c', pf!.configDir, '-j'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).queue_id as string));
  const r = spawnSync('/usr/sbin/sendmail', ['-C', pf!.configDir, ...args], { input });
  assert.equal(r.status, 0, r.stderr.toString());
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = (await run('/usr/sbin/postqueue', ['-c', pf!.configDir, '-j'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const row = rows.find((x) => !before.has(x.queue_id) && x.queue_name === 'hold');
    if (row) {
      const cat = (await run('/usr/sbin/postcat', ['-c', pf!.configDir, '-bh', '-q', row.queue_id])).stdout;
      const text = cat.split('\n').filter((l) => !l.startsWith('*** ')).join('\n');
      return { sender: row.sender, recipients: row.recipients.map((x: { address: string }) => x.address).sort(), headers: parseHeaders(text.replace(/\n*$/, '\n\n')).map(([n, v]) => [n, v.replaceAll(row.queue_id, 'QID')]) };
    }
    if (Date.now() > deadline) throw new Error(`real Postfix did not queue the message:\n${pf!.log()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function viaPostern(args: string[], input = MESSAGE): Promise<Submitted> {
  const r = spawnSync(join(ROOT, 'bin', 'sendmail'), args, { input, env: { ...process.env, MAIL_CONFIG: ours } });
  assert.equal(r.status, 0, r.stderr.toString());
  const opts = pickupOptions(MainConfig.load(ours), cleanup);
  const beforeIds = new Set(readdirSync(join(ours, 'queue', 'incoming')));
  await new Pickup(opts).scan();
  const id = readdirSync(join(ours, 'queue', 'incoming')).find((n) => !beforeIds.has(n))!;
  const qf = await QueueFile.open(join(ours, 'queue', 'incoming', id), id);
  const text = (await qf.content()).toString();
  return { sender: qf.sender, recipients: qf.recipients.map((x) => x.address).sort(), headers: parseHeaders(text).map(([n, v]) => [n, v.replaceAll(id, 'QID')]) };
}

/** Dates and times differ between two submissions; their format must not. */
function shape(h: [string, string][]): [string, string][] {
  const DATE = /\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4} \([^()\s]+\)/;   // %Z may be CET, -03, UTC...
  return h.map(([n, v]) => [n, v.replace(DATE, 'DATE').replace(/^<\d{14}\.QID@/, '<STAMP.QID@').replace(/from userid \d+/, 'from userid UID')]);
}

test('sendmail -t -i -f: the same headers added in the same order and format, Bcc removed, same recipients', { skip }, async () => {
  const args = ['-t', '-i', '-f', 'joe@example.test', '-F', 'Joe Public'];
  const theirs = await viaPostfix(args);
  const mine = await viaPostern(args);
  assert.deepEqual(mine.recipients, theirs.recipients);
  assert.deepEqual(mine.recipients, ['hidden@remote.test', 'x@remote.test']);
  assert.equal(mine.sender, theirs.sender);
  const t = shape(theirs.headers);
  const m = shape(mine.headers);
  assert.deepEqual(m.map(([n]) => n), t.map(([n]) => n), 'header names and order');
  for (const name of ['Received', 'Subject', 'To', 'Message-Id', 'Date']) {
    assert.deepEqual(m.find(([n]) => n === name), t.find(([n]) => n === name), name);
  }
  assert.ok(!m.some(([n]) => n.toLowerCase() === 'bcc'));
});

test('From: with the sender\'s full name (-F, else the GECOS name) as Postfix\'s cleanup writes it', {
  skip,
}, async () => {
  for (const args of [['-t', '-i', '-f', 'joe@example.test', '-F', 'Joe Q. Public'], ['-t', '-i', '-f', 'joe@example.test']]) {
    const theirs = await viaPostfix(args);
    const mine = await viaPostern(args);
    assert.deepEqual(mine.headers.find(([n]) => n === 'From'), theirs.headers.find(([n]) => n === 'From'), args.join(' '));
  }
});

test('without -f the envelope sender is the login name, qualified with $myorigin as Postfix\'s cleanup does', {
  skip,
}, async () => {
  const theirs = await viaPostfix(['-t', '-i']);
  const mine = await viaPostern(['-t', '-i']);
  assert.equal(mine.sender, theirs.sender);
});

test('a message without To:, Cc: or Bcc: gets the headers Postfix adds and no To: (undisclosed_recipients_header is empty by default)', {
  skip,
}, async () => {
  const args = ['-i', '-f', 'joe@example.test', 'x@remote.test'];
  const input = 'Subject: no recipients in the header\n\nbody\n';
  const theirs = shape((await viaPostfix(args, input)).headers);
  const mine = shape((await viaPostern(args, input)).headers);
  assert.deepEqual(mine.map(([n]) => n), theirs.map(([n]) => n), 'header names and order');
  assert.ok(!mine.some(([n]) => n === 'To'));
});

/** The numeric offset and the zone name of a Date: header value: "+0100 (CET)". */
function zoneOf(h: [string, string][]): string | undefined {
  return /[+-]\d{4} \([^()]*\)$/.exec(h.find(([n]) => n === 'Date')?.[1] ?? '')?.[0];
}

test('Date: in other time zones: the same offset and zone name as Postfix\'s (strftime %Z: CET, -03, +1030)', { skip }, async () => {
  const saved = process.env.TZ;
  const zones = ['Europe/Berlin', 'America/Sao_Paulo', 'Australia/Lord_Howe'];
  try {
    for (const tz of zones) {
      // Postfix's master passes TZ on to cleanup (import_environment); Postern's cleanup runs here.
      process.env.TZ = tz;
      const other = await RealPostfix.start({ mainCf: `${SHARED}header_checks = static:HOLD\n`, masterCf: '' });
      const keep = pf;
      pf = other;
      try {
        const args = ['-t', '-i', '-f', 'joe@example.test'];
        const theirs = zoneOf((await viaPostfix(args)).headers);
        const mine = zoneOf((await viaPostern(args)).headers);
        assert.ok(theirs, `Postfix wrote a Date: with a zone name (${tz})`);
        assert.equal(mine, theirs, tz);
      } finally {
        pf = keep;
        await other.stop();
      }
    }
  } finally {
    if (saved === undefined) delete process.env.TZ; else process.env.TZ = saved;
  }
});

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

test('dates around DST changes (Berlin\'s last Sunday of March, Lord Howe\'s half hour): Postern writes Postfix\'s bytes for the same instant', {
  skip: skip || (!existsSync(LIBFAKETIME) && 'libfaketime (Debian package libfaketime) is not installed')
    // The instants are fixed, so a moved clock adds nothing here, and libfaketime inside
    // libfaketime (a Postfix moved again from a moved process) does not keep its offsets.
    || (clockMoved && 'this process runs under libfaketime already (npm run test:clock)'),
}, async () => {
  // Real Postfix runs with its clock moved (libfaketime, passed on to its daemons through
  // import_environment) to just before and just after each change; Postern's mailDate() gets the
  // instant Postfix's header names (both are mail_date()), and must give the same text.
  const saved = { ...process.env };
  const instants: [string, string][] = [
    ['Europe/Berlin', '2026-03-29T00:59:00Z'], ['Europe/Berlin', '2026-03-29T01:01:00Z'],
    ['Australia/Lord_Howe', '2026-10-03T15:29:00Z'], ['Australia/Lord_Howe', '2026-10-03T15:31:00Z'],
  ];
  const seen: string[] = [];
  try {
    for (const [tz, iso] of instants) {
      Object.assign(process.env, {
        TZ: tz, LD_PRELOAD: LIBFAKETIME, FAKETIME_DONT_FAKE_MONOTONIC: '1',
        FAKETIME: `${Math.round((Date.parse(iso) - Date.now()) / 1000)}`,
      });
      const other = await RealPostfix.start({
        mainCf: `${SHARED}header_checks = static:HOLD\nimport_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_PRELOAD FAKETIME FAKETIME_DONT_FAKE_MONOTONIC\n`,
        masterCf: '',
      });
      const keep = pf;
      pf = other;
      try {
        // The Received: header's date is cleanup's clock (mail_date(time())); Date: takes the
        // arrival time that postdrop (setgid: never preloaded) wrote.
        const received = (await viaPostfix(['-t', '-i', '-f', 'joe@example.test'])).headers.find(([n]) => n === 'Received')?.[1] ?? '';
        const date = received.replace(/^[^]*; /, '');
        const at = Date.parse(date.replace(/ \([^()]*\)$/, ''));
        assert.ok(Math.abs(at - Date.parse(iso)) < 60_000, `Postfix's clock was moved (${tz}, ${iso}): ${date}`);
        for (const k of ['LD_PRELOAD', 'FAKETIME', 'FAKETIME_DONT_FAKE_MONOTONIC']) delete process.env[k];
        assert.equal(mailDate(new Date(at)), date, `${tz} ${iso}`);
        seen.push(date.replace(/.* /, ''));
      } finally {
        pf = keep;
        await other.stop();
      }
    }
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  assert.deepEqual(seen, ['(CET)', '(CEST)', '(+1030)', '(+11)'], 'both sides of each change were seen');
});
