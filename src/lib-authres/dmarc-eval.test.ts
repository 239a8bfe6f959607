/**
 * dmarc-eval, dmarc-psl, authres-header: the RFC 7489 evaluation (record discovery, alignment,
 * p/sp, pct sampling), the Public Suffix List algorithm, and the header rules of RFC 8601 §5.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateDmarc, parseDmarcRecord, dmarcResinfo } from './dmarc-eval.ts';
import { bundledPsl, orgDomain, parsePsl } from './dmarc-psl.ts';
import { authservIdOf, claimsAuthservId, formatAuthres, quarantineOf } from './authres-header.ts';
import type { MailauthResolver } from './authres-dns.ts';

function zone(z: Record<string, string[] | 'TEMP'>): MailauthResolver {
  return async (name) => {
    const v = z[name.toLowerCase()];
    if (v === 'TEMP') throw Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
    if (!v) throw Object.assign(new Error('nx'), { code: 'ENOTFOUND' });
    return v.map((t) => [t]);
  };
}

test('the Public Suffix List: rules, wildcards, exceptions; the bundled list knows co.uk and github.io', () => {
  const psl = parsePsl('// comment\ncom\nuk\nco.uk\n*.ck\n!www.ck\n', 'test');
  const cases: [string, string][] = [
    ['a.b.example.com', 'example.com'], ['example.com', 'example.com'], ['mail.example.co.uk', 'example.co.uk'],
    ['co.uk', 'co.uk'], ['a.foo.ck', 'a.foo.ck'], ['a.www.ck', 'www.ck'], ['unlisted.test', 'unlisted.test'], ['x.y.unlisted.test', 'unlisted.test'],
  ];
  for (const [d, org] of cases) assert.equal(orgDomain(psl, d), org, d);
  assert.equal(orgDomain(bundledPsl, 'mail.example.co.uk'), 'example.co.uk');
  assert.equal(orgDomain(bundledPsl, 'a.b.someone.github.io'), 'someone.github.io');
});

test('record parsing: v=DMARC1 first, p required (rua alone means none), pct bounds, unknown tags ignored', () => {
  assert.equal(parseDmarcRecord('p=reject; v=DMARC1', 'x'), undefined);
  assert.equal(parseDmarcRecord('v=DMARC1; p=bogus', 'x'), undefined);
  assert.equal(parseDmarcRecord('v=DMARC1; rua=mailto:a@x', 'x')?.p, 'none');
  const r = parseDmarcRecord('v=DMARC1; p=Quarantine; sp=reject; adkim=s; aspf=r; pct=250; foo=bar', 'x')!;
  assert.deepEqual([r.p, r.sp, r.adkim, r.aspf, r.pct], ['quarantine', 'reject', 's', 'r', 100]);
});

test('alignment, discovery at the Organizational Domain, sp for subdomains, pct sampling, temperror', async () => {
  const psl = bundledPsl;
  const resolver = zone({
    '_dmarc.example.com': ['v=DMARC1; p=reject; sp=quarantine'],
    '_dmarc.strict.com': ['v=DMARC1; p=reject; adkim=s; aspf=s'],
    '_dmarc.half.com': ['v=DMARC1; p=reject; pct=50'],
    '_dmarc.two.com': ['v=DMARC1; p=reject', 'v=DMARC1; p=none'],
    '_dmarc.slow.com': 'TEMP',
  });
  const ev = (fromDomain: string, o: { spf?: string; dkim?: string[]; random?: number } = {}) =>
    evaluateDmarc({ fromDomain, spfDomain: o.spf, dkimDomains: o.dkim ?? [], resolver, psl, random: () => o.random ?? 0 });
  assert.equal((await ev('example.com', { dkim: ['mail.example.com'] })).result, 'pass');
  assert.equal((await ev('example.com', { spf: 'bounce.example.com' })).result, 'pass');
  const sub = await ev('news.example.com', { dkim: ['other.org'] });
  assert.deepEqual([sub.result, sub.policy, sub.disposition, sub.record?.domain], ['fail', 'quarantine', 'quarantine', 'example.com']);
  assert.equal((await ev('strict.com', { dkim: ['mail.strict.com'] })).result, 'fail');
  assert.equal((await ev('strict.com', { dkim: ['strict.com'] })).result, 'pass');
  assert.equal((await ev('half.com', { random: 0.2 })).disposition, 'reject');
  assert.equal((await ev('half.com', { random: 0.7 })).disposition, 'quarantine');
  assert.equal((await ev('two.com')).result, 'none');
  assert.equal((await ev('nothing.org')).result, 'none');
  const t = await ev('slow.com');
  assert.equal(t.result, 'temperror');
  assert.match(dmarcResinfo(t), /^dmarc=temperror \(DNS error looking up _dmarc\.slow\.com: ETIMEOUT\) header\.from=slow\.com$/);
  assert.equal(dmarcResinfo(sub, 'quarantine'), 'dmarc=fail (p=REJECT sp=QUARANTINE pct=100 dis=QUARANTINE) header.from=news.example.com policy.dmarc=quarantine');
});

test('Authentication-Results: authserv-id parsing (CFWS, quoted), forged-header detection, the quarantine mark', () => {
  assert.equal(authservIdOf(' (comment (nested)) MX.Example.ORG; spf=pass'), 'mx.example.org');
  assert.equal(authservIdOf(' "mx.example.org" 1; none'), 'mx.example.org');
  assert.ok(claimsAuthservId('Authentication-Results: mx.example.org;\n\tdkim=pass', 'MX.example.org'));
  assert.ok(!claimsAuthservId('Authentication-Results: mx.example.org.evil; dkim=pass', 'mx.example.org'));
  assert.ok(!claimsAuthservId('X-Authentication-Results: mx.example.org; dkim=pass', 'mx.example.org'));
  const h = formatAuthres('mx.example.org', ['spf=fail smtp.mailfrom=a@x', 'dmarc=fail header.from=x policy.dmarc=quarantine']);
  assert.equal(h, 'Authentication-Results: mx.example.org;\n\tspf=fail smtp.mailfrom=a@x;\n\tdmarc=fail header.from=x policy.dmarc=quarantine\n');
  assert.ok(quarantineOf(Buffer.from(h + 'Subject: x\n\nbody policy.dmarc=quarantine\n'), 'mx.example.org'));
  assert.ok(!quarantineOf(Buffer.from(h + 'Subject: x\n\nbody\n'), 'other.example'));
  assert.ok(!quarantineOf(Buffer.from('Subject: x\n\nAuthentication-Results: mx.example.org; dmarc=fail policy.dmarc=quarantine\n'), 'mx.example.org'));
  assert.ok(quarantineOf(Buffer.from(h.replace(/\n/g, '\r\n') + '\r\nbody\r\n'), 'mx.example.org'));
});
