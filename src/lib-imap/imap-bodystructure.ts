/**
 * imap-bodystructure — IMAP BODY and BODYSTRUCTURE (RFC 3501 §7.4.2 / RFC 9051 §7.5.2) of a
 * MIME tree, written like Dovecot 2.3's lib-imap/imap-bodystructure.c so clients (and our golden
 * tests) see identical bytes:
 * - type/subtype/parameter names and values keep their case; text parts with no charset
 *   parameter get ("charset" "us-ascii") appended; an invalid Content-Type is ("" "" NIL ...);
 * - body-fld-enc is the raw Content-Transfer-Encoding value, "7bit" when absent;
 * - sizes and line counts are of the CRLF form; lines only for text/* and message/rfc822;
 * - extension data: single parts get MD5, disposition, language, location; multiparts get
 *   parameters, disposition, language, location.
 * Built with an explicit stack (no recursion): nesting depth costs heap, not call stack.
 */
import { headerFirst } from '../lib-mail/mail-header.ts';
import { countLines, type MimeMessage, type MimePart } from '../lib-mail/mail-mime.ts';
import { parseContentDisposition, parseContentLanguage, type MimeParam } from '../lib-mail/mail-content-type.ts';
import { imapEnvelope } from './imap-envelope.ts';
import { imapNstring, imapString } from './imap-compose.ts';

function trimValue(v: Buffer): Buffer {
  let s = 0;
  let e = v.length;
  while (s < e && (v[s] === 32 || v[s] === 9)) s++;
  while (e > s && (v[e - 1] === 32 || v[e - 1] === 9)) e--;
  return v.subarray(s, e);
}

function writeParams(params: readonly MimeParam[], defaultCharset: boolean): Buffer {
  if (params.length === 0 && !defaultCharset) return Buffer.from('NIL');
  const parts: Buffer[] = [];
  let seenCharset = false;
  for (const [name, value] of params) {
    if (name.toLowerCase() === 'charset') seenCharset = true;
    parts.push(imapString(Buffer.from(name, 'latin1')), imapString(value));
  }
  if (defaultCharset && !seenCharset) parts.push(Buffer.from('"charset"'), Buffer.from('"us-ascii"'));
  return Buffer.concat([Buffer.from('('), join(parts, ' '), Buffer.from(')')]);
}

function join(parts: Buffer[], sep: string): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => { if (i > 0) out.push(Buffer.from(sep)); out.push(p); });
  return Buffer.concat(out);
}

function hdrNstring(p: MimePart, name: string): Buffer {
  const f = headerFirst(p.headers, name);
  return imapNstring(f ? trimValue(f.value) : undefined);
}

function writeDisposition(p: MimePart): Buffer {
  const f = headerFirst(p.headers, 'Content-Disposition');
  const d = f ? parseContentDisposition(f.value) : undefined;
  if (!d) return Buffer.from('NIL');
  return Buffer.concat([Buffer.from('('), imapString(Buffer.from(d.type, 'latin1')), Buffer.from(' '),
    writeParams(d.params, false), Buffer.from(')')]);
}

function writeLanguage(p: MimePart): Buffer {
  const f = headerFirst(p.headers, 'Content-Language');
  const langs = f ? parseContentLanguage(f.value) : [];
  if (langs.length === 0) return Buffer.from('NIL');
  return Buffer.concat([Buffer.from('('), join(langs.map((l) => imapString(l)), ' '), Buffer.from(')')]);
}

function isText(p: MimePart): boolean {
  return p.contentType.type.toLowerCase() === 'text';
}

/** Everything of a single (non-multipart) part up to and including body-fld-octets. */
function singleFields(p: MimePart): Buffer {
  const ct = p.contentType;
  const enc = headerFirst(p.headers, 'Content-Transfer-Encoding');
  return Buffer.concat([
    imapString(Buffer.from(ct.type, 'latin1')), Buffer.from(' '),
    imapString(Buffer.from(ct.subtype, 'latin1')), Buffer.from(' '),
    writeParams(ct.params, isText(p)), Buffer.from(' '),
    hdrNstring(p, 'Content-ID'), Buffer.from(' '),
    hdrNstring(p, 'Content-Description'), Buffer.from(' '),
    enc ? imapString(trimValue(enc.value)) : Buffer.from('"7bit"'), Buffer.from(' '),
    Buffer.from(String(p.bodyEnd - p.bodyStart)),
  ]);
}

interface Frame {
  part: MimePart;
  /** 0 = not started; for multiparts the index of the next child; for rfc822 1 = body written */
  step: number;
}

/**
 * BODYSTRUCTURE (extended = true) or BODY (false) of the message, e.g.
 * `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)`.
 */
export function imapBodyStructure(msg: MimeMessage, extended: boolean): Buffer {
  const data = msg.data;
  const out: Buffer[] = [];
  const stack: Frame[] = [{ part: msg.root, step: 0 }];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    const p = f.part;
    if (p.isMultipart) {
      if (f.step === 0) out.push(Buffer.from('('));
      if (f.step < p.children.length) {
        stack.push({ part: p.children[f.step]!, step: 0 });
        f.step++;
        continue;
      }
      out.push(Buffer.from(' '), imapString(Buffer.from(p.contentType.subtype, 'latin1')));
      if (extended) {
        out.push(Buffer.from(' '), writeParams(p.contentType.params, false), Buffer.from(' '),
          writeDisposition(p), Buffer.from(' '), writeLanguage(p), Buffer.from(' '),
          hdrNstring(p, 'Content-Location'));
      }
      out.push(Buffer.from(')'));
      stack.pop();
      continue;
    }
    if (p.message) {
      if (f.step === 0) {
        out.push(Buffer.from('('), singleFields(p), Buffer.from(' '), imapEnvelope(p.message.headers),
          Buffer.from(' '));
        f.step = 1;
        stack.push({ part: p.message, step: 0 });
        continue;
      }
      out.push(Buffer.from(' ' + countLines(data, p.bodyStart, p.bodyEnd)));
      if (extended) out.push(Buffer.from(' '), extSingle(p));
      out.push(Buffer.from(')'));
      stack.pop();
      continue;
    }
    out.push(Buffer.from('('), singleFields(p));
    if (isText(p)) out.push(Buffer.from(' ' + countLines(data, p.bodyStart, p.bodyEnd)));
    if (extended) out.push(Buffer.from(' '), extSingle(p));
    out.push(Buffer.from(')'));
    stack.pop();
  }
  return Buffer.concat(out);
}

function extSingle(p: MimePart): Buffer {
  return Buffer.concat([hdrNstring(p, 'Content-MD5'), Buffer.from(' '), writeDisposition(p),
    Buffer.from(' '), writeLanguage(p), Buffer.from(' '), hdrNstring(p, 'Content-Location')]);
}

/** ENVELOPE of the top-level message. */
export function imapMessageEnvelope(msg: MimeMessage): Buffer {
  return imapEnvelope(msg.root.headers);
}
