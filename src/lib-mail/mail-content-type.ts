/**
 * mail-content-type — RFC 2045 §5.1 Content-Type, RFC 2183 Content-Disposition, RFC 3282
 * Content-Language value parsing, with RFC 2231 continuations merged the way Dovecot 2.3's
 * rfc2231-parser.c does for BODYSTRUCTURE: `name*0*=a; name*1=b` → `name*` = "ab" (the
 * charset/percent-encoding is NOT decoded; clients do that), `name*0=a; name*1=b` → `name`.
 * Names and values keep their case (Dovecot writes them as received).
 *
 * An unparsable Content-Type (no "/subtype") gives type "" and subtype "" with no parameters:
 * Dovecot then writes `("" "" NIL ...)` in BODYSTRUCTURE.
 */
import { Rfc822Parser } from './mail-rfc822-parser.ts';

export type MimeParam = [name: string, value: Buffer];

export interface ContentType {
  type: string;
  subtype: string;
  params: MimeParam[];
}

/** Parses `;` name=value parameters (token or quoted-string values); stops at the first error. */
export function parseMimeParams(p: Rfc822Parser): MimeParam[] {
  const raw: MimeParam[] = [];
  for (let n = 0; n < 1000; n++) {
    if (p.peek() !== 0x3b) break;
    p.pos++;
    if (p.skipLwsp() <= 0) break;
    const name: number[] = [];
    if (p.parseToken(name) <= 0 || p.peek() !== 0x3d) break;
    p.pos++;
    if (p.skipLwsp() <= 0 && p.pos >= p.end) break;
    const value: number[] = [];
    const r = p.peek() === 0x22 ? p.parseQuotedString(value) : p.parseToken(value);
    if (r < 0) break;
    raw.push([Buffer.from(name).toString('latin1'), Buffer.from(value)]);
  }
  return mergeRfc2231(raw);
}

/** RFC 2231 §3 continuations merged (Dovecot rfc2231_parse): plain params first, then merged. */
function mergeRfc2231(params: MimeParam[]): MimeParam[] {
  const plain: MimeParam[] = [];
  const groups = new Map<string, { idx: number; ext: boolean; value: Buffer }[]>();
  for (const [name, value] of params) {
    const m = /^(.*?)\*(\d+)(\*?)$/.exec(name);
    if (!m) { plain.push([name, value]); continue; }
    const key = m[1]!.toLowerCase();
    let g = groups.get(key);
    if (!g) { g = []; groups.set(key, g); (g as unknown as { display: string }).display = m[1]!; }
    g.push({ idx: Number(m[2]), ext: m[3] === '*', value });
  }
  for (const g of groups.values()) {
    g.sort((a, b) => a.idx - b.idx);
    const base = (g as unknown as { display: string }).display;
    const ext = g.some((x) => x.ext);
    plain.push([ext ? base + '*' : base, Buffer.concat(g.map((x) => x.value))]);
  }
  return plain;
}

/** Content-Type value → type/subtype/params; undefined type fields when invalid. */
export function parseContentType(value: Buffer): ContentType {
  const p = new Rfc822Parser(value);
  p.skipLwsp();
  const type: number[] = [];
  if (p.parseToken(type) < 0 || p.peek() !== 0x2f) return { type: '', subtype: '', params: [] };
  p.pos++;
  p.skipLwsp();
  const sub: number[] = [];
  if (p.parseToken(sub) < 0) return { type: '', subtype: '', params: [] };
  return {
    type: Buffer.from(type).toString('latin1'),
    subtype: Buffer.from(sub).toString('latin1'),
    params: parseMimeParams(p),
  };
}

export interface ContentDisposition {
  type: string;
  params: MimeParam[];
}

export function parseContentDisposition(value: Buffer): ContentDisposition | undefined {
  const p = new Rfc822Parser(value);
  p.skipLwsp();
  const type: number[] = [];
  if (p.parseToken(type) < 0) return undefined;
  return { type: Buffer.from(type).toString('latin1'), params: parseMimeParams(p) };
}

/** Content-Language: comma-separated language tags (RFC 3282). */
export function parseContentLanguage(value: Buffer): string[] {
  const p = new Rfc822Parser(value);
  const out: string[] = [];
  p.skipLwsp();
  for (let n = 0; n < 1000 && p.pos < p.end; n++) {
    const tok: number[] = [];
    if (p.parseToken(tok) < 0) break;
    out.push(Buffer.from(tok).toString('latin1'));
    if (p.peek() !== 0x2c) break;
    p.pos++;
    p.skipLwsp();
  }
  return out;
}

/** Case-insensitive parameter lookup. */
export function mimeParam(params: readonly MimeParam[], name: string): Buffer | undefined {
  const n = name.toLowerCase();
  return params.find(([k]) => k.toLowerCase() === n)?.[1];
}
