/**
 * Fuzz target: MIME parsing and the IMAP views of a message (src/lib-mail): parseMime, then
 * BODYSTRUCTURE/BODY, ENVELOPE, every part's sections (HEADER, TEXT, MIME, HEADER.FIELDS),
 * BINARY decoding, RFC 2047 words and address lists of every header. None of these document
 * a thrown error except extractBinary's UnknownCteError (IMAP's UNKNOWN-CTE).
 */

import { parseMime, type MimePart } from '../../../src/lib-mail/mail-mime.ts';
import { imapBodyStructure, imapMessageEnvelope } from '../../../src/lib-imap/imap-bodystructure.ts';
import { extractBinary, extractSection, findPart } from '../../../src/lib-mail/mail-section.ts';
import { decodeRfc2047 } from '../../../src/lib-mail/mail-rfc2047.ts';
import { parseAddressList } from '../../../src/lib-mail/mail-address.ts';
import { UnknownCteError } from '../../../src/lib-mail/mail-decode.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { filesUnder } from '../fuzz-seeds.ts';

function paths(p: MimePart, prefix: number[], out: number[][]): void {
  if (out.length > 50) return;
  const kids = (p as { children?: MimePart[] }).children ?? [];
  kids.forEach((c, i) => { const path = [...prefix, i + 1]; out.push(path); paths(c, path, out); });
  const inner = (p as { message?: MimePart }).message;
  if (inner) paths(inner, prefix, out);
}

export const target: FuzzTarget = {
  name: 'mime',
  coverage: ['src/lib-mail/'],
  maxLen: 256 * 1024,
  dictionary: ['Content-Type: ', 'multipart/mixed; boundary=', 'message/rfc822', 'text/plain; charset=', '--', '\r\n--b\r\n',
    '\r\n--b--\r\n', 'boundary="', 'Content-Transfer-Encoding: ', 'base64', 'quoted-printable', '=?utf-8?B?', '=?iso-8859-1?Q?',
    '?=', 'From: ', 'To: ', 'Cc: ', 'Subject: ', 'Date: ', 'Message-ID: <', 'In-Reply-To: ', 'Reply-To: ', 'undisclosed:;',
    '"', '(', ')', '<', '>', '@', ',', ';', 'Content-Disposition: attachment; filename*=', "utf-8''", 'Content-Language: ',
    'Content-Location: ', '\r\n\r\n', '\n\n', '\r\n\t', '=\r\n', '=3D'],
  seeds: () => filesUnder('src/lib-mail/testdata/corpus'),
  run(data) {
    const msg = parseMime(data);
    imapBodyStructure(msg, true);
    imapBodyStructure(msg, false);
    imapMessageEnvelope(msg);
    const ps: number[][] = [[]];
    paths(msg.root, [], ps);
    for (const path of ps) {
      findPart(msg, path);
      for (const text of [undefined, 'HEADER', 'TEXT', 'MIME', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT'] as const) {
        if (text === 'MIME' && path.length === 0) continue;
        extractSection(msg, { path, text, fields: text?.startsWith('HEADER.FIELDS') ? ['From', 'Subject', 'X-Nope'] : undefined });
      }
      try { extractBinary(msg, path); } catch (e) { if (!(e instanceof UnknownCteError)) throw e; }
    }
    for (const line of data.subarray(0, 16384).toString('latin1').split(/\r?\n/).slice(0, 200)) {
      const c = line.indexOf(':');
      if (c <= 0) continue;
      const v = Buffer.from(line.slice(c + 1), 'latin1');
      decodeRfc2047(v);
      parseAddressList(v, true);
      parseAddressList(v, false);
    }
  },
  expected: () => false,
};
