/**
 * dmarc-summary - what the DMARC aggregate reports (RFC 7489 §7.2, Appendix C) other receivers
 * send about our domains say (`postern dmarc summary FILE...`): each FILE is a report as XML,
 * gzipped XML (.xml.gz), a ZIP archive holding one (.zip, stored or deflated, as several large
 * receivers send), or the whole report mail (its application/gzip, application/zip or XML
 * attachment, base64), e.g. a Maildir file of the rua mailbox.
 *
 * Output: one line per report (reporter, report id, policy domain and policy, the day range,
 * messages), then one line per source IP: messages, DMARC pass (DKIM or SPF aligned), how many
 * were DKIM-aligned and SPF-aligned, and the dispositions applied.
 *
 * SECURITY
 *   The input is untrusted. At most 10 MiB per file and 10 MiB after decompression (gzip and
 *   ZIP bombs stop there); XML with a DOCTYPE or an entity declaration is refused (no entity
 *   expansion, so "billion laughs" cannot happen), only the five predefined entities and
 *   character references are decoded; depth at most 64 and 200 000 elements. Anything of the
 *   wrong shape is reported as such, text printed is cut and made printable.
 */
import { readFileSync, statSync } from 'node:fs';
import { gunzipSync, inflateRawSync } from 'node:zlib';

const MAX = 10 << 20;
const MAX_ELEMENTS = 200_000;
const MAX_DEPTH = 64;

export interface XmlNode { name: string; children: XmlNode[]; text: string }

const ENT: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeText(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#\d{1,7}|[A-Za-z_][\w.-]{0,40});/g, (m, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return n <= 0x10ffff ? String.fromCodePoint(n) : '?';
    }
    if (ENT[e] !== undefined) return ENT[e]!;
    throw new Error(`undeclared entity &${e}; (entities are not expanded)`);
  });
}

/** A small bounded XML reader: elements and text only (attributes are ignored). */
export function parseXml(text: string): XmlNode {
  const root: XmlNode = { name: '#root', children: [], text: '' };
  const stack: XmlNode[] = [root];
  let i = 0;
  let elements = 0;
  const n = text.length;
  while (i < n) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? n : lt);
    if (chunk.trim()) {
      if (stack.length === 1) throw new Error('text outside the root element');
      const top = stack[stack.length - 1]!;
      if (top.text.length < 4096) top.text += decodeText(chunk).slice(0, 4096);
    }
    if (lt < 0) break;
    if (text.startsWith('<?', lt)) { const e = text.indexOf('?>', lt); if (e < 0) throw new Error('unterminated <?'); i = e + 2; continue; }
    if (text.startsWith('<!--', lt)) { const e = text.indexOf('-->', lt); if (e < 0) throw new Error('unterminated comment'); i = e + 3; continue; }
    if (text.startsWith('<![CDATA[', lt)) {
      const e = text.indexOf(']]>', lt); if (e < 0) throw new Error('unterminated CDATA');
      const top = stack[stack.length - 1]!;
      if (top.text.length < 4096) top.text += text.slice(lt + 9, e).slice(0, 4096);
      i = e + 3; continue;
    }
    if (text.startsWith('<!', lt)) throw new Error('DOCTYPE or entity declarations are refused (no entity expansion)');
    const gt = text.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = text.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const top = stack.pop();
      if (!top || top === root || top.name !== name) throw new Error(`mismatched </${name.slice(0, 40)}>`);
      continue;
    }
    const m = /^([A-Za-z_][\w.:-]*)/.exec(tag);
    if (!m) throw new Error('malformed tag');
    if (++elements > MAX_ELEMENTS) throw new Error(`more than ${MAX_ELEMENTS} elements`);
    const node: XmlNode = { name: m[1]!.replace(/^.*:/, ''), children: [], text: '' };
    const parent = stack[stack.length - 1]!;
    if (parent === root && root.children.length) throw new Error('more than one root element');
    parent.children.push(node);
    if (!tag.endsWith('/')) {
      stack.push(node);
      if (stack.length > MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH}`);
    }
  }
  if (stack.length !== 1) throw new Error(`unterminated <${stack[stack.length - 1]!.name.slice(0, 40)}>`);
  if (!root.children.length) throw new Error('no XML element');
  return root.children[0]!;
}

function unzipFirst(b: Buffer): Buffer {
  // The central directory gives the sizes even when the local header defers them (bit 3).
  const cd = b.indexOf(Buffer.from('PK\x01\x02', 'latin1'));
  let method: number, csize: number, off: number;
  if (cd >= 0 && cd + 46 <= b.length) {
    method = b.readUInt16LE(cd + 10); csize = b.readUInt32LE(cd + 20); off = b.readUInt32LE(cd + 42);
  } else {
    method = b.readUInt16LE(8); csize = b.readUInt32LE(18); off = 0;
  }
  if (off + 30 > b.length || b.readUInt32LE(off) !== 0x04034b50) throw new Error('malformed ZIP archive');
  const start = off + 30 + b.readUInt16LE(off + 26) + b.readUInt16LE(off + 28);
  const data = b.subarray(start, start + csize);
  if (method === 0) return data;
  if (method === 8) return inflateRawSync(data, { maxOutputLength: MAX });
  throw new Error(`ZIP compression method ${method} not supported`);
}

/** The report XML of a file's bytes (XML, gzip, ZIP or a mail carrying one), bounded. */
export function reportXml(buf: Buffer, depth = 0): string {
  try {
    if (buf[0] === 0x1f && buf[1] === 0x8b) return reportXml(gunzipSync(buf, { maxOutputLength: MAX }), depth + 1);
    if (buf.length >= 30 && buf.readUInt32LE(0) === 0x04034b50) return reportXml(unzipFirst(buf), depth + 1);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) throw new Error(`more than ${MAX} bytes once decompressed`);
    throw new Error(`cannot decompress: ${(e as Error).message}`);
  }
  const text = buf.toString('utf8').replace(/^\uFEFF/, '');
  if (text.trimStart().startsWith('<')) return text;
  if (depth > 0) throw new Error('the decompressed content is not XML');
  // A report mail: the first base64 part that is gzip, zip or XML.
  const re = /Content-Type:\s*(application\/(?:x-)?(?:gzip|zip|xml|x-zip-compressed|octet-stream)|text\/xml)[^\n]*(?:\n[ \t][^\n]*|\n(?!\r?\n)[^\n]*)*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)/gi;
  for (const m of text.matchAll(re)) {
    const part = Buffer.from(m[2]!.replace(/\s/g, ''), 'base64');
    if (part.length) return reportXml(part, 1);
  }
  throw new Error('neither an XML report, gzip or ZIP, nor a mail with a report attachment');
}

const child = (n: XmlNode | undefined, name: string) => n?.children.find((c) => c.name === name);
const txt = (n: XmlNode | undefined, ...path: string[]) => {
  let c = n;
  for (const p of path) c = child(c, p);
  return (c?.text ?? '').trim().replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
};

export function summarizeDmarcXml(xml: string): string[] {
  const fb = parseXml(xml);
  if (fb.name !== 'feedback') throw new Error(`not an RFC 7489 aggregate report (root element <${fb.name.slice(0, 40)}>, expected <feedback>)`);
  const meta = child(fb, 'report_metadata');
  const pp = child(fb, 'policy_published');
  const day = (s: string) => (/^\d{1,12}$/.test(s) ? new Date(Number(s) * 1000).toISOString().replace(/:\d\d\.000Z$/, 'Z') : '?');
  const bySource = new Map<string, { n: number; pass: number; dkim: number; spf: number; dispo: Map<string, number> }>();
  let total = 0;
  for (const rec of fb.children.filter((c) => c.name === 'record')) {
    const row = child(rec, 'row');
    const ip = txt(row, 'source_ip') || '?';
    const count = Number(txt(row, 'count'));
    const n = Number.isSafeInteger(count) && count >= 0 ? count : 0;
    const dkim = txt(row, 'policy_evaluated', 'dkim') === 'pass';
    const spf = txt(row, 'policy_evaluated', 'spf') === 'pass';
    const dispo = txt(row, 'policy_evaluated', 'disposition') || '?';
    let s = bySource.get(ip);
    if (!s) { s = { n: 0, pass: 0, dkim: 0, spf: 0, dispo: new Map() }; bySource.set(ip, s); }
    s.n += n; total += n;
    if (dkim || spf) s.pass += n;
    if (dkim) s.dkim += n;
    if (spf) s.spf += n;
    s.dispo.set(dispo, (s.dispo.get(dispo) ?? 0) + n);
  }
  const out = [`${txt(meta, 'org_name') || '?'} <${txt(meta, 'email') || '?'}> report ${txt(meta, 'report_id') || '?'} for ${txt(pp, 'domain') || '?'} (p=${txt(pp, 'p') || '?'} sp=${txt(pp, 'sp') || '-'} pct=${txt(pp, 'pct') || '-'}) ${day(txt(meta, 'date_range', 'begin'))} to ${day(txt(meta, 'date_range', 'end'))}: ${total} messages`];
  for (const [ip, s] of [...bySource].sort((a, b) => b[1].n - a[1].n)) {
    const d = [...s.dispo].map(([k, v]) => `${k}=${v}`).join(' ');
    out.push(`  ${ip}: ${s.n} messages, dmarc pass ${s.pass}, fail ${s.n - s.pass}; dkim aligned ${s.dkim}, spf aligned ${s.spf}; disposition ${d}`);
  }
  return out;
}

export function summarizeDmarcFile(file: string): string[] {
  if (statSync(file).size > MAX) throw new Error(`larger than ${MAX} bytes`);
  return summarizeDmarcXml(reportXml(readFileSync(file)));
}
