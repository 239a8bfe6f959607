/**
 * fts-corpus - messages that exercise everything SEARCH BODY/TEXT decodes (base64, quoted-
 * printable with soft line breaks, ISO-8859-1/Windows-1251/UTF-8 bodies, RFC 2047 headers,
 * multipart with HTML, text and binary attachments, preamble/epilogue, message/rfc822, LF-only
 * lines, an unknown Content-Transfer-Encoding, unparsable input), and needles for them (case,
 * NFKD folding, non-ASCII, words split across lines, CRLF inside the needle, short needles).
 * Used by the index's exactness test (src/lib-fts) and the IMAP tests against Dovecot.
 */
const b64 = (s: string, cs = 'utf-8') => Buffer.from(s, cs === 'utf-8' ? 'utf8' : 'latin1').toString('base64').replace(/.{76}/g, '$&\r\n');

/** A corpus with every encoding and structure SEARCH decodes. */
export function ftsCorpus(): Buffer[] {
  const words = ['Grüße', 'naïve', 'Straße', 'café', 'ÉCOLE', 'ﬁnance', 'Ｆｕｌｌ', 'привет', '日本語テキスト', 'emoji 😀 here', 'tab\there', 'quick brown fox', 'lazy dog', 'MiXeD CaSe'];
  const out: Buffer[] = [];
  for (let i = 0; i < 60; i++) {
    const w = words[i % words.length]!, w2 = words[(i * 7 + 3) % words.length]!;
    const hdr = `From: =?utf-8?b?${Buffer.from(w).toString('base64')}?= <s${i}@example.org>\r\nTo: u${i}@x.test\r\nSubject: =?iso-8859-1?q?caf=E9_${i}?= report\r\nMessage-ID: <m${i}@example.org>\r\nMIME-Version: 1.0\r\n`;
    switch (i % 6) {
      case 0: out.push(Buffer.from(`${hdr}Content-Type: text/plain; charset=utf-8\r\n\r\nplain ${w} line\r\nsplit-word con-\r\ntinued ${w2}\r\n`)); break;
      case 1: out.push(Buffer.from(`${hdr}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(`base64 body ${w} and ${w2} `.repeat(3))}\r\n`)); break;
      case 2: out.push(Buffer.concat([Buffer.from(`${hdr}Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nqp caf=E9 na=EFve soft=\r\nbreak Stra=DFe ${i}\r\n`)])); break;
      case 3: out.push(Buffer.from(`${hdr}Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\npreamble invisible ${w}\r\n--b${i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html ${w2}</p>\r\n--b${i}\r\nContent-Type: text/plain; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64(`attached text ${w}`)}\r\n--b${i}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('binary secret zebra')}\r\n--b${i}--\r\nepilogue hidden\r\n`)); break;
      case 4: out.push(Buffer.from(`${hdr}Content-Type: message/rfc822\r\n\r\nSubject: inner ${w}\r\nX-Inner: header value ${i}\r\n\r\ninner body ${w2}\r\n`)); break;
      case 5: out.push(Buffer.concat([Buffer.from(`${hdr}Content-Type: text/plain; charset=windows-1251\r\n\r\n`), Buffer.from([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2, 0x20]), Buffer.from(`win ${w}\r\nLF only\nlines ${i}\n`)])); break;
    }
  }
  out.push(Buffer.from('garbage without header separator'));
  out.push(Buffer.alloc(0));
  out.push(Buffer.from('Subject: x\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nunknown cte text\r\n--q'));
  return out;
}

export const NEEDLES = ['grüße', 'GRÜSSE', 'strasse', 'straße', 'cafe', 'café', 'naive', 'ecole', 'finance', 'full', 'ПРИВЕТ', '本語テ', '😀', 'tab\there', 'quick brown', 'BROWN FOX', 'con-', 'continued', 'soft', 'softbreak', 'html', '<p>', 'attached text', 'zebra', 'preamble', 'epilogue', 'inner', 'X-INNER: header', 'subject: caf', 'from: gr', 'message-id', 'lf only', 'only\nlines', 'unknown cte', 'nothing-here-at-all', 'ab', 'a', '', 'report', 'win ', 'Привет', 'без', 'line\r\nsplit'];

