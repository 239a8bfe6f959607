/**
 * Tests for the DMARC report bookkeeping: the recording hook (dmarc-record.ts: off unless
 * postern_dmarc_reporting = yes, no policy no record, hostile strings cut and escaped, the day
 * file limit), the rua tag (RFC 7489 §6.2, "!size" of §6.4), and the XML of a hostile selector.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import type { AuthresVerdict } from './authres-verify.ts';
import { readDmarcDay, recordDmarcEvaluation } from './dmarc-record.ts';
import { buildDmarcReports, parseRua } from './dmarc-report-xml.ts';
import { spawnSync } from 'node:child_process';

const dir = mkdtempSync(join(tmpdir(), 'postern-dmarc-record-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const conf = (extra: string) => MainConfig.parse(`postern_dmarc_directory = ${dir}/d\n${extra}\n`, join(dir, 'main.cf'), dir);
const when = new Date('2026-12-07T12:00:00Z');

function verdict(selector: string, withRecord = true): AuthresVerdict {
  return {
    header: '', action: 'accept', spf: 'pass', heloSpf: 'none', dkim: [], arc: 'arc=none',
    dmarc: { result: 'pass', fromDomain: 'example.org', disposition: 'none', spfAligned: true, dkimAligned: true,
      ...(withRecord ? { record: { p: 'reject', adkim: 'r', aspf: 's', pct: 50, rua: 'mailto:d@example.org', domain: 'example.org' } } : {}) },
    dkimResults: [{ domain: 'example.org', selector, result: 'pass' }],
    spfIdentity: { domain: 'example.org', scope: 'mfrom' },
  } as AuthresVerdict;
}

test('recorded only with postern_dmarc_reporting = yes and a policy record; hostile strings cut; day limit; torn lines skipped', () => {
  recordDmarcEvaluation(conf(''), verdict('s1'), '192.0.2.1', when);
  assert.ok(!existsSync(join(dir, 'd')), 'off by default');
  const on = conf('postern_dmarc_reporting = yes\npostern_dmarc_day_limit = 4000');
  recordDmarcEvaluation(on, verdict('s1', false), '192.0.2.1', when);
  assert.ok(!existsSync(join(dir, 'd', '2026-12-07.jsonl')), 'no policy record: nothing to report');
  recordDmarcEvaluation(on, verdict('<x>&"' + 'y'.repeat(5000)), '192.0.2.1', when);
  const file = join(dir, 'd', '2026-12-07.jsonl');
  const [ev] = readDmarcDay(join(dir, 'd'), '2026-12-07');
  assert.equal(ev!.dkim[0]!.selector!.length, 255);
  assert.deepEqual([ev!.policy.p, ev!.policy.sp, ev!.policy.aspf, ev!.policy.pct], ['reject', 'reject', 's', 50]);
  for (let i = 0; i < 20; i++) recordDmarcEvaluation(on, verdict('s1'), '192.0.2.1', when);
  assert.ok(statSync(file).size < 4000, 'the day limit holds');
  appendFileSync(file, '{"ip": "torn\n');
  const all = readDmarcDay(join(dir, 'd'), '2026-12-07');
  assert.ok(all.length >= 2 && all.length < 21);
  // The XML: a hostile selector is escaped, the document parses.
  const rep = buildDmarcReports(all, { org: 'O & Co', email: 'r@example.net', day: '2026-12-07', reportId: () => 'id<1>' }).get('example.org')!;
  assert.equal(rep.begin, Date.parse('2026-12-07T00:00:00Z') / 1000);
  assert.match(rep.xml, /<selector>&lt;x&gt;&amp;&quot;y+<\/selector>/);
  assert.match(rep.xml, /<org_name>O &amp; Co<\/org_name>/);
  const py = spawnSync('python3', ['-c', 'import sys,xml.etree.ElementTree as E; print(E.fromstring(sys.stdin.buffer.read()).find("record/auth_results/dkim/selector").text[:6])'], { input: rep.xml, encoding: 'utf8' });
  assert.equal(py.stdout.trim(), '<x>&"y', py.stderr);
  assert.equal(rep.messages, all.length);
  assert.equal(rep.records, 2);
  assert.ok(readFileSync(file, 'utf8').length > 0);
});

test('rua: mailto URIs with !size (k/m/g), others skipped', () => {
  assert.deepEqual(parseRua('mailto:a@example.org, mailto:b@rep.example!10m,https://x.example/r, mailto:c@d.example!500'), [
    { address: 'a@example.org', domain: 'example.org' },
    { address: 'b@rep.example', domain: 'rep.example', maxSize: 10 * 1024 * 1024 },
    { address: 'c@d.example', domain: 'd.example', maxSize: 500 },
  ]);
  assert.deepEqual(parseRua('mailto:no-at-sign, mailto:%zz@x, mailto:a@'), []);
  assert.deepEqual(parseRua('mailto:dmarc%2Breports@example.org'), [{ address: 'dmarc+reports@example.org', domain: 'example.org' }]);
});

test('policy_evaluated reason: sampled_out when pct weakened the disposition, local_policy when this site did', () => {
  const on = conf('postern_dmarc_reporting = yes');
  const fail = (policy: 'quarantine' | 'reject', disposition: 'none' | 'quarantine' | 'reject', action: AuthresVerdict['action']): AuthresVerdict => {
    const v = verdict('s');
    return { ...v, action, dmarc: { ...v.dmarc!, result: 'fail', policy, disposition, spfAligned: false, dkimAligned: false, record: { ...v.dmarc!.record!, domain: 'reason.example', p: policy } } };
  };
  const w = new Date('2026-12-06T12:00:00Z');
  recordDmarcEvaluation(on, fail('quarantine', 'none', 'accept'), '192.0.2.5', w);        // pct sample: not selected
  recordDmarcEvaluation(on, fail('reject', 'reject', 'quarantine'), '192.0.2.6', w);     // postern_dmarc_reject = no
  recordDmarcEvaluation(on, fail('reject', 'reject', 'reject'), '192.0.2.7', w);         // as asked: no reason
  const evs = readDmarcDay(join(dir, 'd'), '2026-12-06');
  assert.deepEqual(evs.map((e) => [e.disposition, e.reason]), [['none', 'sampled_out'], ['quarantine', 'local_policy'], ['reject', undefined]]);
  const xml = buildDmarcReports(evs, { org: 'o', email: 'e@x', day: '2026-12-06', reportId: () => 'i' }).get('reason.example')!.xml;
  assert.match(xml, /<source_ip>192\.0\.2\.5<\/source_ip>[^]*?<spf>fail<\/spf>\s*<reason>\s*<type>sampled_out<\/type>\s*<\/reason>\s*<\/policy_evaluated>/);
  assert.match(xml, /<source_ip>192\.0\.2\.6<\/source_ip>[^]*?<disposition>quarantine<\/disposition>[^]*?<type>local_policy<\/type>/);
  assert.equal((xml.match(/<reason>/g) ?? []).length, 2);
});
