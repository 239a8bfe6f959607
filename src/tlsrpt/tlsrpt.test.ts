/**
 * Tests for the bookkeeping of tlsrpt.ts and global/tls-rpt.ts: which day files are pending,
 * that reported days stay readable and are pruned after two weeks, torn lines skipped, and the
 * _smtp._tls record rule (RFC 8460 §3).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pendingDays, pruneSent } from './tlsrpt.ts';
import { readTlsRptDay, recordTlsRpt, tlsRptRua } from '../global/tls-rpt.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-tlsrpt-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('pending days, reported days readable, pruning after two weeks, torn lines skipped', () => {
  const now = new Date('2026-12-08T00:30:00Z');
  recordTlsRpt(dir, { domain: 'a.test', policyType: 'no-policy-found', ok: true }, new Date('2026-12-07T10:00:00Z'));
  recordTlsRpt(dir, { domain: 'a.test', policyType: 'sts', ok: false, resultType: 'starttls-not-supported' }, new Date('2026-12-08T00:10:00Z'));
  appendFileSync(join(dir, '2026-12-07.jsonl'), '{"domain": "torn", "ok": tr\n');
  writeFileSync(join(dir, '2026-11-01.jsonl.sent'), '');
  writeFileSync(join(dir, '2026-12-01.jsonl.sent'), '{"t":"x","domain":"b.test","policyType":"sts","ok":true}\n');
  assert.deepEqual(pendingDays(dir, now), ['2026-12-07'], 'today is not finished');
  assert.equal(readTlsRptDay(dir, '2026-12-07').length, 1);
  assert.equal(readTlsRptDay(dir, '2026-12-01').length, 1, 'a reported day stays readable');
  pruneSent(dir, now.getTime());
  assert.ok(!existsSync(join(dir, '2026-11-01.jsonl.sent')));
  assert.ok(existsSync(join(dir, '2026-12-01.jsonl.sent')));
});

test('_smtp._tls: exactly one v=TLSRPTv1 record; mailto and https URIs only', () => {
  assert.deepEqual(tlsRptRua([['v=TLSRPTv1; rua=mailto:a@b.test,https://r.test/x']]), ['mailto:a@b.test', 'https://r.test/x']);
  assert.deepEqual(tlsRptRua([['v=TLSRPTv1;', 'rua=mailto:a@b.test']]), ['mailto:a@b.test']);
  assert.equal(tlsRptRua([['v=TLSRPTv1; rua=mailto:a@b.test'], ['v=TLSRPTv1; rua=mailto:c@d.test']]), undefined);
  assert.equal(tlsRptRua([['v=TLSRPTv1; rua=ftp://x/y']]), undefined);
  assert.equal(tlsRptRua([['v=spf1 -all']]), undefined);
  assert.equal(tlsRptRua([['v=TLSRPTv1']]), undefined);
});
