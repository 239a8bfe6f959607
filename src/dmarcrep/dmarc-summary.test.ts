/**
 * `postern dmarc summary` on reports written by other implementations and on hostile input:
 * a report in the shape large receivers send (RFC 7489 Appendix C, with a namespace, a
 * version element, attributes and comments), as XML, gzip (Debian's gzip), ZIP (Python's
 * zipfile, deflated) and as a report mail; then billion laughs, a 100 MB file, a gzip bomb,
 * a ZIP bomb, bad gzip, deep nesting and truncated XML, each refused quickly with a reason.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const dir = mkdtempSync(join(tmpdir(), 'postern-dmarc-summary-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const POSTERN = join(import.meta.dirname, '..', '..', 'bin', 'postern');
const summary = (...files: string[]) => spawnSync(POSTERN, ['-c', dir, 'dmarc', 'summary', ...files], { encoding: 'utf8', timeout: 60_000 });

const FOREIGN = `<?xml version="1.0" encoding="UTF-8" ?>
<!-- written the way a large mailbox provider writes them -->
<feedback xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <version>1.0</version>
  <report_metadata>
    <org_name>receiver.example</org_name>
    <email>noreply-dmarc-support@receiver.example</email>
    <extra_contact_info>https://receiver.example/dmarc</extra_contact_info>
    <report_id>13062862915185430321</report_id>
    <date_range><begin>1796601600</begin><end>1796687999</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>postern.test</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct><np>quarantine</np>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>postern.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>postern.test</domain><selector>s2026</selector><result>pass</result></dkim>
      <spf><domain>postern.test</domain><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>2001:db8::25</source_ip><count>2</count>
      <policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf>
        <reason><type>local_policy</type><comment>arc=fail &amp; forwarded</comment></reason></policy_evaluated>
    </row>
    <identifiers><header_from>postern.test</header_from></identifiers>
    <auth_results><spf><domain>forwarder.example</domain><result>softfail</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>192.0.2.10</source_ip><count>1</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>postern.test</header_from></identifiers>
    <auth_results><spf><domain>postern.test</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
`;
const EXPECTED = [
  'receiver.example <noreply-dmarc-support@receiver.example> report 13062862915185430321 for postern.test (p=quarantine sp=quarantine pct=100) 2026-12-07T00:00Z to 2026-12-07T23:59Z: 10 messages',
  '  192.0.2.10: 8 messages, dmarc pass 8, fail 0; dkim aligned 7, spf aligned 8; disposition none=8',
  '  2001:db8::25: 2 messages, dmarc pass 0, fail 2; dkim aligned 0, spf aligned 0; disposition quarantine=2',
];

test('a report by another implementation: XML, gzip, ZIP and the report mail give the same summary', () => {
  const xml = join(dir, 'receiver.example!postern.test!1796601600!1796687999.xml');
  writeFileSync(xml, FOREIGN);
  assert.equal(spawnSync('gzip', ['-k', xml]).status, 0);
  const zip = `${xml.slice(0, -4)}.zip`;
  const z = spawnSync('python3', ['-c', 'import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],"w",zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[2], "report.xml")', zip, xml]);
  assert.equal(z.status, 0, String(z.stderr));
  const mail = join(dir, 'report.eml');
  writeFileSync(mail, ['From: noreply-dmarc-support@receiver.example', 'To: dmarc@postern.test', 'Subject: Report domain: postern.test Submitter: receiver.example Report-ID: 13062862915185430321',
    'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '', '--b1', 'Content-Type: text/plain', '', 'Report attached.', '', '--b1',
    'Content-Type: application/zip;', '\tname="receiver.example!postern.test!1796601600!1796687999.zip"', 'Content-Disposition: attachment', 'Content-Transfer-Encoding: base64', '',
    ...(readFileSync(zip).toString('base64').match(/.{1,76}/g) ?? []), '--b1--', ''].join('\r\n'));
  for (const f of [xml, `${xml}.gz`, zip, mail]) {
    const r = summary(f);
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), EXPECTED, f);
  }
});

test('hostile input is refused with a reason, bounded: billion laughs, 100 MB, gzip and ZIP bombs, bad gzip, deep nesting, truncation', () => {
  const files: Record<string, [Buffer | string, RegExp]> = {
    'laughs.xml': ['<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      Array.from({ length: 7 }, (_, i) => `<!ENTITY lol${i + 3} "${`&lol${i + 2};`.repeat(10)}">`).join('') + ']>\n<feedback>&lol9;</feedback>', /DOCTYPE or entity declarations are refused/],
    'entity.xml': ['<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata></feedback>', /undeclared entity &lol9;/],
    'bomb.xml.gz': [gzipSync(Buffer.alloc(100 << 20, 0x20)), /more than 10485760 bytes once decompressed/],
    'bad.xml.gz': [Buffer.concat([gzipSync(Buffer.from(FOREIGN)).subarray(0, 200), Buffer.from('garbage')]), /cannot decompress/],
    'deep.xml': [`<feedback>${'<a>'.repeat(10000)}${'</a>'.repeat(10000)}</feedback>`, /nested deeper than 64/],
    'cut.xml': [FOREIGN.slice(0, 900), /unterminated/],
    'notdmarc.xml': ['<rss><channel/></rss>', /not an RFC 7489 aggregate report/],
    'text.txt': ['hello', /neither an XML report/],
    'nul.xml': ['<feedback>\0\0<', /unterminated tag|malformed/],
  };
  for (const [name, [content]] of Object.entries(files)) writeFileSync(join(dir, name), content);
  // A ZIP bomb by Python's zipfile: 100 MB of one byte, deflated.
  const zb = spawnSync('python3', ['-c', 'import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],"w",zipfile.ZIP_DEFLATED) as z: z.writestr("r.xml", b"<"*(100<<20))', join(dir, 'bomb.zip')]);
  assert.equal(zb.status, 0, String(zb.stderr));
  files['bomb.zip'] = ['', /more than 10485760 bytes once decompressed/];
  // 100 MB (sparse): refused before it is read.
  writeFileSync(join(dir, 'huge.xml'), '');
  truncateSync(join(dir, 'huge.xml'), 100 << 20);
  files['huge.xml'] = ['', /larger than 10485760 bytes/];
  writeFileSync(join(dir, 'ok.xml'), FOREIGN);
  const names = Object.keys(files);
  const t0 = Date.now();
  const r = summary(...names.map((n) => join(dir, n)), join(dir, 'ok.xml'));
  assert.equal(r.status, 1);
  for (const n of names) assert.match(r.stderr, new RegExp(`${n.replace(/\./g, '\\.')}: .*`), n);
  for (const [n, [, re]] of Object.entries(files)) {
    const line = r.stderr.split('\n').find((l) => l.includes(`/${n}: `)) ?? '';
    assert.match(line, re, n);
  }
  // The good file after all of them is still summarised.
  assert.deepEqual(r.stdout.trimEnd().split('\n'), EXPECTED);
  console.log(`# ${names.length} hostile files and one good one: ${Date.now() - t0} ms`);
});
