/**
 * DMARC aggregate reports (RFC 7489 §7.2, docs/authres.md) end to end: the whole system
 * (`postern start`), a loopback DNS server serving _dmarc records with rua=mailto: a mailbox of
 * the same Postern, Python's smtplib sending from outside (DKIM by python3-dkim's dkimsign).
 * Each DMARC evaluation is recorded; `postern dmarc report` mails one gzipped XML report per
 * policy domain, which arrives in the rua mailbox with the §7.2.1.1 file name and Subject; its
 * XML is read by Python's xml.etree and checked element by element against the schema of
 * Appendix C. The §7.1 external-destination rule (refused without
 * <domain>._report._dmarc.<rua-domain>), the "!size" limit, and the master's daily run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DnsServer } from '../harness/dns-server.ts';
import { POSTERN, PosternSystem } from '../harness/postern-system.ts';
import { delivered, dkimSign, message, newKey, reconfigure, smtpSend, tempDir, type DkimKey } from '../harness/authres-kit.ts';

let dns: DnsServer;
let sys: PosternSystem;
let rsa: DkimKey;
let dmarcDir: string;
const RUA = 'postmaster@example.test';
const today = new Date().toISOString().slice(0, 10);
const yesterday = new Date(Date.now() - 86400_000).toISOString().slice(0, 10);

before(async () => {
  rsa = newKey(tempDir('postern-dmarcrep-keys-'), 'rsa', 'rsa');
  dns = await DnsServer.start({
    'dk.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'sel._domainkey.dk.test': { TXT: [rsa.dns] },
    '_dmarc.dk.test': { TXT: [`v=DMARC1; p=none; rua=mailto:${RUA}`] },
    'dk.test._report._dmarc.example.test': { TXT: ['v=DMARC1'] },
    'rej.test': { TXT: ['v=spf1 -all'] },
    '_dmarc.rej.test': { TXT: [`v=DMARC1; p=reject; rua=mailto:${RUA}`] },
    'big.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    '_dmarc.big.test': { TXT: [`v=DMARC1; p=quarantine; rua=mailto:${RUA}!1k`] },
    'big.test._report._dmarc.example.test': { TXT: ['v=DMARC1'] },
    'norep.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    '_dmarc.norep.test': { TXT: ['v=DMARC1; p=none'] },
    'daily.test._report._dmarc.example.test': { TXT: ['v=DMARC1'] },
  });
  sys = await PosternSystem.start();
  dmarcDir = join(sys.configDir, 'data', 'dmarc');
  // A finished day already recorded: the daily sender, started by this reload, reports it at once.
  const ev = { t: `${yesterday}T10:00:00.000Z`, ip: '192.0.2.77', from: 'daily.test', policy: { domain: 'daily.test', adkim: 'r', aspf: 'r', p: 'quarantine', sp: 'quarantine', pct: 100, rua: `mailto:${RUA}` },
    disposition: 'quarantine', dkimAligned: false, spfAligned: false, dkim: [], spf: { domain: 'daily.test', scope: 'mfrom', result: 'fail' } };
  mkdirSync(dmarcDir, { recursive: true });
  writeFileSync(join(dmarcDir, `${yesterday}.jsonl`), `${JSON.stringify(ev)}\n{"torn":\n`);
  await reconfigure(sys, `\nmyhostname = mx.postern.test\nmydomain = postern.test\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\n`
    + `postern_dmarc_reporting = yes\npostern_dmarc_directory = ${dmarcDir}\npostern_dmarc_report_org = Postern Test Org\npostern_dmarc_report_from = dmarc-reports@postern.test\n`);
});
after(async () => {
  await sys?.destroy();
  await dns?.stop();
});

let n = 0;
/** `postern ...` run asynchronously: the loopback DNS server lives in this process and must keep answering. */
async function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(POSTERN, ['-c', sys.configDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const status = await new Promise<number | null>((r) => child.once('close', r));
  clearTimeout(timer);
  return { status, stdout, stderr };
}
async function send(from: string, hdrFrom: string, sign?: string): Promise<number> {
  let msg = message([`From: <${hdrFrom}>`, `To: <${RUA}>`, `Subject: dmarcrep-${process.pid}-${++n}`, 'Date: Mon, 07 Dec 2026 12:00:00 +0000']);
  if (sign) msg = dkimSign(msg, 'sel', sign, rsa);
  return (await smtpSend(sys.ports.smtp, { helo: 'client.example', from, msg })).code;
}

/** Python's XML parser, independent of Postern's: the element tree as JSON [name, text, children]. */
type El = [string, string, El[]];
function pyTree(xml: string): El {
  const py = 'import sys,json,xml.etree.ElementTree as ET\n'
    + 'def t(e): return [e.tag, (e.text or "").strip(), [t(c) for c in e]]\n'
    + 'print(json.dumps(t(ET.fromstring(sys.stdin.buffer.read()))))';
  const r = spawnSync('python3', ['-c', py], { input: xml, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as El;
}

/** RFC 7489 Appendix C: the element structure, required/optional children in order, and the simple types. */
const ENUMS: Record<string, string[]> = {
  Alignment: ['r', 's'], Disposition: ['none', 'quarantine', 'reject'], DMARCResult: ['pass', 'fail'],
  DKIMResult: ['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror'],
  SPFResult: ['none', 'neutral', 'pass', 'fail', 'softfail', 'temperror', 'permerror'], SPFScope: ['helo', 'mfrom'],
};
type Spec = { [child: string]: { type: string | Record<string, unknown>; min: number; max: number } };
const one = (type: string | Spec) => ({ type, min: 1, max: 1 });
const opt = (type: string | Spec) => ({ type, min: 0, max: 1 });
const FEEDBACK: Spec = {
  report_metadata: one({ org_name: one('string'), email: one('string'), extra_contact_info: opt('string'), report_id: one('string'), date_range: one({ begin: one('integer'), end: one('integer') }), error: { type: 'string', min: 0, max: Infinity } }),
  policy_published: one({ domain: one('string'), adkim: opt('Alignment'), aspf: opt('Alignment'), p: one('Disposition'), sp: one('Disposition'), pct: one('integer') }),
  record: { type: {
    row: one({ source_ip: one('ip'), count: one('integer'), policy_evaluated: one({ disposition: one('Disposition'), dkim: one('DMARCResult'), spf: one('DMARCResult'), reason: { type: { type: one('string'), comment: opt('string') }, min: 0, max: Infinity } }) }),
    identifiers: one({ envelope_to: opt('string'), envelope_from: one('string'), header_from: one('string') }),
    auth_results: one({ dkim: { type: { domain: one('string'), selector: opt('string'), result: one('DKIMResult'), human_result: opt('string') }, min: 0, max: Infinity }, spf: { type: { domain: one('string'), scope: one('SPFScope'), result: one('SPFResult') }, min: 1, max: Infinity } }),
  }, min: 1, max: Infinity },
};
/** The complex types Appendix C defines with xs:all rather than xs:sequence. */
const ALL_TYPES = new Set(['feedback/report_metadata/date_range', 'feedback/policy_published', 'feedback/record/row', 'feedback/record/identifiers', 'feedback/record/auth_results/dkim', 'feedback/record/auth_results/spf']);
function validate(el: El, spec: Spec, path: string): void {
  const names = el[2].map((c) => c[0]);
  for (const c of names) assert.ok(c in spec, `${path}: <${c}> is not in the schema`);
  // xs:sequence: the children appear in the schema's order (xs:all types: any order).
  const order = Object.keys(spec);
  if (!ALL_TYPES.has(path)) assert.deepEqual(names, [...names].sort((a, b) => order.indexOf(a) - order.indexOf(b)), `${path}: children out of order`);
  for (const [name, s] of Object.entries(spec)) {
    const kids = el[2].filter((c) => c[0] === name);
    assert.ok(kids.length >= s.min && kids.length <= s.max, `${path}/${name}: ${kids.length} occurrences`);
    for (const k of kids) {
      if (typeof s.type === 'object') { validate(k, s.type as Spec, `${path}/${name}`); continue; }
      if (s.type === 'integer') assert.match(k[1], /^-?\d+$/, `${path}/${name}`);
      else if (s.type === 'ip') assert.match(k[1], /^[\d.]+$|:/, `${path}/${name}`);
      else if (ENUMS[s.type]) assert.ok(ENUMS[s.type]!.includes(k[1]), `${path}/${name}: ${k[1]} not in ${s.type}`);
    }
  }
}

/** The report attachment of a delivered report mail: file name and XML. */
function attachment(text: string): { file: string; xml: string } {
  const m = /Content-Type: application\/gzip\r?\nContent-Transfer-Encoding: base64\r?\nContent-Disposition: attachment; filename="([^"]+)"\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)/.exec(text);
  assert.ok(m, text.slice(0, 1500));
  return { file: m[1]!, xml: gunzipSync(Buffer.from(m[2]!.replace(/\s/g, ''), 'base64')).toString('utf8') };
}

test('inbound evaluations are recorded; the report mail reaches the rua mailbox with the RFC 7489 file name, Subject and Appendix C XML', async () => {
  assert.equal(await send('a@dk.test', 'a@dk.test', 'dk.test'), 250);          // dkim and spf aligned
  assert.equal(await send('b@dk.test', 'b@dk.test', 'dk.test'), 250);          // the same row: count 2
  assert.equal(await send('c@other.example', 'c@dk.test'), 250);               // p=none: fails, delivered
  assert.equal(await send('d@rej.test', 'd@rej.test'), 550);                   // p=reject: refused, still reported
  assert.equal(await send('e@big.test', 'e@big.test'), 250);
  assert.equal(await send('f@norep.test', 'f@norep.test'), 250);               // a policy without rua
  const file = join(dmarcDir, `${today}.jsonl`);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(lines.length, 6);
  assert.deepEqual(lines.map((l) => [l.from, l.disposition, l.dkimAligned, l.spfAligned]), [
    ['dk.test', 'none', true, true], ['dk.test', 'none', true, true], ['dk.test', 'none', false, false],
    ['rej.test', 'reject', false, false], ['big.test', 'none', false, true], ['norep.test', 'none', false, true]]);
  assert.equal(lines[0]!.ip, '127.0.0.1');
  assert.deepEqual(lines[0]!.dkim, [{ domain: 'dk.test', selector: 'sel', result: 'pass' }]);
  assert.deepEqual(lines[2]!.spf, { domain: 'other.example', scope: 'mfrom', result: 'none' });
  // No address of a sender or recipient is kept, only domains (and the published rua).
  assert.doesNotMatch(readFileSync(file, 'utf8').replace(/mailto:[^"]*/g, ''), /@/);

  const dry = await cli('dmarc', 'report', '--day', today, '--dry-run');
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /dk\.test: report \S+ \(3 messages, 2 records, \d+ bytes\) would go to postmaster@example\.test/);

  const r = await cli('dmarc', 'report', '--day', today);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^dk\.test: report \S+ queued as \w+ to postmaster@example\.test$/m);
  assert.match(r.stdout, /^rej\.test: not sent to postmaster@example\.test: no rej\.test\._report\._dmarc\.example\.test TXT record .*section 7\.1/m, 'external destination not verified');
  assert.match(r.stdout, /^big\.test: not sent to postmaster@example\.test: \d+ bytes is over its limit of 1024 \(rua !size\)/m);
  assert.match(r.stdout, /^norep\.test: no rua=mailto:/m);

  const mail = await delivered(sys.maildir(RUA), 'Report Domain: dk.test');
  assert.match(mail.text, /^Subject: Report Domain: dk\.test Submitter: postern\.test Report-ID: <[^>]+>\r?$/m);
  assert.match(mail.text, /^From: dmarc-reports@postern\.test\r?$/m);
  assert.match(mail.text, /^Return-Path: <dmarc-reports@postern\.test>/m);
  const { file: name, xml } = attachment(mail.text);
  const begin = Date.parse(`${today}T00:00:00Z`) / 1000;
  // §7.2.1.1: receiver "!" policy-domain "!" begin "!" end [ "!" unique-id ] "." extension
  assert.match(name, new RegExp(`^postern\\.test!dk\\.test!${begin}!${begin + 86399}(![A-Za-z0-9._-]+)?\\.xml\\.gz$`));
  const tree = pyTree(xml);
  assert.equal(tree[0], 'feedback');
  validate(tree, FEEDBACK, 'feedback');
  const get = (el: El, ...p: string[]): El => p.reduce((e, n) => e[2].find((c) => c[0] === n)!, el);
  assert.equal(get(tree, 'report_metadata', 'org_name')[1], 'Postern Test Org');
  assert.equal(get(tree, 'report_metadata', 'email')[1], 'dmarc-reports@postern.test');
  assert.equal(get(tree, 'report_metadata', 'date_range', 'begin')[1], String(begin));
  assert.equal(get(tree, 'report_metadata', 'date_range', 'end')[1], String(begin + 86399));
  assert.ok(mail.text.includes(`Report-ID: <${get(tree, 'report_metadata', 'report_id')[1]}>`));
  assert.deepEqual(get(tree, 'policy_published')[2].map((c) => [c[0], c[1]]), [['domain', 'dk.test'], ['adkim', 'r'], ['aspf', 'r'], ['p', 'none'], ['sp', 'none'], ['pct', '100']]);
  const records = tree[2].filter((c) => c[0] === 'record');
  assert.equal(records.length, 2);
  const rows = records.map((rec) => ({
    ip: get(rec, 'row', 'source_ip')[1], count: get(rec, 'row', 'count')[1],
    pe: get(rec, 'row', 'policy_evaluated')[2].map((c) => c[1]).join(','),
    hf: get(rec, 'identifiers', 'header_from')[1], ef: get(rec, 'identifiers', 'envelope_from')[1],
    auth: get(rec, 'auth_results')[2].map((a) => `${a[0]}:${a[2].map((c) => c[1]).join('/')}`).join(' '),
  }));
  assert.deepEqual(rows, [
    { ip: '127.0.0.1', count: '2', pe: 'none,pass,pass', hf: 'dk.test', ef: 'dk.test', auth: 'dkim:dk.test/sel/pass spf:dk.test/mfrom/pass' },
    { ip: '127.0.0.1', count: '1', pe: 'none,fail,fail', hf: 'dk.test', ef: 'other.example', auth: 'spf:other.example/mfrom/none' },
  ]);

  // The report mail itself, summarised as a receiver of reports would.
  const saved = join(sys.dir, 'report.eml');
  writeFileSync(saved, mail.text, 'latin1');
  const s = (await sys.cli('dmarc', 'summary', saved));
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /^Postern Test Org <dmarc-reports@postern\.test> report \S+ for dk\.test \(p=none sp=none pct=100\) .*: 3 messages$/m);
  assert.match(s.stdout, /^ {2}127\.0\.0\.1: 3 messages, dmarc pass 2, fail 1; dkim aligned 2, spf aligned 2; disposition none=3$/m);
});

test('the master\'s daily run (postern_dmarc_reporting = yes) reported the finished day and marked it sent', async () => {
  const mail = await delivered(sys.maildir(RUA), 'Report Domain: daily.test', 60_000);
  const { xml } = attachment(mail.text);
  assert.match(xml, /<source_ip>192\.0\.2\.77<\/source_ip>\s*<count>1<\/count>\s*<policy_evaluated>\s*<disposition>quarantine<\/disposition>/);
  const end = Date.now() + 10_000;
  while (Date.now() < end && !existsSync(join(dmarcDir, `${yesterday}.jsonl.sent`))) await new Promise((r) => setTimeout(r, 50));
  assert.ok(readdirSync(dmarcDir).includes(`${yesterday}.jsonl.sent`));
  assert.match(sys.log, /DMARC report \d{4}-\d{2}-\d{2}: daily\.test: report \S+ queued as/);
  // A finished day sent by hand is marked reported, so the daily run does not send it twice.
  const before = new Date(Date.now() - 2 * 86400_000).toISOString().slice(0, 10);
  writeFileSync(join(dmarcDir, `${before}.jsonl`), readFileSync(join(dmarcDir, `${yesterday}.jsonl.sent`), 'utf8').replace(/192\.0\.2\.77/, '192.0.2.78'));
  const r = await cli('dmarc', 'report', '--day', before);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^daily\.test: report \S+ queued as \w+ to postmaster@example\.test$/m);
  assert.ok(existsSync(join(dmarcDir, `${before}.jsonl.sent`)) && !existsSync(join(dmarcDir, `${before}.jsonl`)));
  const box = join(sys.maildir(RUA), 'new');
  const count = () => readdirSync(box).filter((f) => readFileSync(join(box, f), 'latin1').includes('Report Domain: daily.test')).length;
  const until = Date.now() + 30_000;
  while (Date.now() < until && count() < 2) await new Promise((res) => setTimeout(res, 50));
  assert.equal(count(), 2, 'the day sent by hand arrived too');
});
