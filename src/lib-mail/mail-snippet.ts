/**
 * mail-snippet - the text preview of a message (IMAP PREVIEW, RFC 8970; Dovecot's
 * message_snippet_generate(), lib-mail/message-snippet.c, 2.3):
 *  - the first text part (in order, not inside message/rfc822 parts) is the preview's source:
 *    text/html (and application/xhtml+xml) through a small HTML-to-text step first (tags and
 *    the contents of style, script and blockquote elements dropped, each tag a space, entities
 *    decoded, unknown ones dropped), other text/* as decoded text (Content-Transfer-Encoding
 *    removed, charset converted); when it has no text the preview is empty;
 *  - white space runs become one space,
 *    leading white space is dropped, lines quoted with `>` are left out — unless a part has only
 *    quoted text, whose preview is then `>` + that text; NULs and byte-order marks are dropped;
 *  - at most `maxChars` characters (code points), 200 for PREVIEW; no trailing space.
 * Compared with real Dovecot in test/interop/imap-conformance-vs-dovecot.test.ts.
 */
import type { MimeMessage, MimePart } from './mail-mime.ts';
import { partText } from './mail-search.ts';

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '\u00a9', reg: '\u00ae',
  hellip: '\u2026', mdash: '\u2014', ndash: '\u2013', laquo: '\u00ab', raquo: '\u00bb', euro: '\u20ac',
  lsquo: '\u2018', rsquo: '\u2019', ldquo: '\u201c', rdquo: '\u201d', bull: '\u2022', middot: '\u00b7',
};

const SKIPPED = new Set(['style', 'script', 'blockquote']);
const ENTITY = /&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/iy;

function entity(e: string): string {
  if (e[0] === '#') {
    const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1));
    return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : '';
  }
  return ENTITIES[e.toLowerCase()] ?? ''; // an unknown entity is dropped (Dovecot)
}

/**
 * A bounded HTML → text step, one pass with no backtracking (each `<`, `&` and closing tag is
 * looked for once from where the scan is): enough for a preview, never a parser of the page.
 */
export function htmlToText(html: string): string {
  const lower = html.toLowerCase();
  const out: string[] = [];
  let i = 0;
  const n = html.length;
  while (i < n) {
    const c = html[i]!;
    if (c === '<') {
      if (html.startsWith('<!--', i)) {
        const e = html.indexOf('-->', i + 4);
        out.push(' ');
        if (e < 0) break;
        i = e + 3;
        continue;
      }
      const close = html.indexOf('>', i + 1);
      out.push(' ');
      if (close < 0) break;
      const name = /^([a-z][a-z0-9]*)/.exec(lower.slice(i + 1, Math.min(close, i + 20)))?.[1];
      i = close + 1;
      if (name !== undefined && SKIPPED.has(name)) {
        const end = lower.indexOf('</' + name, i);
        if (end < 0) break;
        const gt = html.indexOf('>', end);
        if (gt < 0) break;
        i = gt + 1;
      }
      continue;
    }
    if (c === '&') {
      ENTITY.lastIndex = i;
      const m = ENTITY.exec(html);
      if (m) { out.push(entity(m[1]!)); i += m[0].length; continue; }
    }
    out.push(c);
    i++;
  }
  return out.join('');
}

function leaves(msg: MimeMessage): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [msg.root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (p.isMultipart) { for (let i = p.children.length - 1; i >= 0; i--) stack.push(p.children[i]!); continue; }
    if (p.message) continue; // Dovecot 2.3 does not look into message/rfc822 parts
    out.push(p);
  }
  return out;
}

/** The preview reads at most this much of its part's decoded text (characters). */
export const SNIPPET_SOURCE_MAX = 1024 * 1024;

const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** The preview text of one part's decoded text: [snippet, quoted snippet]. */
function partSnippet(text: string, maxChars: number): [string, string] {
  const t = { s: '', left: maxChars, has: false };
  const q = { s: '', left: maxChars - 1, has: false };
  let state: 'newline' | 'normal' | 'quoted' = 'newline';
  let addSpace = false;
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    let c = chars[i]!;
    let target = state === 'quoted' ? q : t;
    if (state === 'newline') {
      if (c === '>') {
        state = 'quoted';
        target = q;
        if (++i >= chars.length) break;
        c = chars[i]!;
      } else {
        state = 'normal';
        target = t;
      }
    }
    if (c === '\ufeff' || c === '\0') continue;
    if (SPACE.has(c)) {
      if (target.has) addSpace = true;
      if (c === '\n') state = 'newline';
      continue;
    }
    if (target.left === 0) { if (t.left === 0) break; continue; }
    target.left--;
    target.has = true;
    if (addSpace) {
      if (target.left === 0) { if (t.left === 0) break; continue; } // no trailing space
      target.s += ' ';
      addSpace = false;
      target.left--;
    }
    target.s += c;
    if (t.left === 0) break;
  }
  return [t.has ? t.s.replace(/^\s+/, '') : '', q.has ? q.s.replace(/^\s+/, '') : ''];
}

/** The preview of a message; '' when its first text part has no text (or there is none). */
export function messageSnippet(msg: MimeMessage, maxChars = 200): string {
  for (const p of leaves(msg)) {
    const type = `${p.contentType.type}/${p.contentType.subtype}`.toLowerCase();
    const html = type === 'text/html' || type === 'application/xhtml+xml';
    if (!html && p.contentType.type.toLowerCase() !== 'text') continue;
    let decoded = partText(msg, p);
    if (decoded === undefined) continue;
    if (decoded.length > SNIPPET_SOURCE_MAX) decoded = decoded.slice(0, SNIPPET_SOURCE_MAX); // bounded work

    // the first text part is the preview, even when it has no text (Dovecot 2.3)
    const [s, quoted] = partSnippet(html ? htmlToText(decoded) : decoded, maxChars);
    return s !== '' ? s : quoted !== '' ? '>' + quoted : '';
  }
  return '';
}
