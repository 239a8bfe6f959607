/**
 * Fuzz target: the IMAP command grammar (RFC 9051 §9): ImapParser.push/next under random
 * chunking, literals accepted or refused, then the argument parsers the imapd commands use
 * (FETCH, SEARCH/SORT, STORE, LIST/LSUB, STATUS, APPEND), the sequence-set grammar and the
 * modified UTF-7 mailbox names. The parser reports syntax as 'error' events; the argument
 * parsers may only throw ImapParseError. The parser's buffered bytes stay within its limits.
 */

import { ImapParser, ImapParseError, type ImapArg } from '../../../src/lib-imap/imap-parser.ts';
import { parseFetchArgs } from '../../../src/lib-imap/imap-fetch-args.ts';
import { parseSearchArgs } from '../../../src/lib-imap/imap-search-args.ts';
import { parseAppendArgs, parseListArgs, parseStatusItems, parseStoreArgs } from '../../../src/lib-imap/imap-command-args.ts';
import { parseSeqSet, resolveSeqSet } from '../../../src/lib-imap/imap-seqset.ts';
import { decodeMailboxName, mutf7Decode, mutf7Encode } from '../../../src/lib-imap/imap-utf7.ts';
import { Rng, type FuzzTarget } from '../fuzz-engine.ts';
import { literalsFrom, texts } from '../fuzz-seeds.ts';
import { InvariantError } from './smtp-address.ts';

function argsOf(cmd: string, args: ImapArg[]): void {
  const tryIt = (f: () => unknown): void => {
    try { f(); } catch (e) { if (!(e instanceof ImapParseError)) throw e; }
  };
  let c = cmd.toUpperCase();
  let a = args;
  if (c === 'UID' && a[0]?.type === 'atom') { c = a[0].value.toUpperCase(); a = a.slice(1); }
  switch (c) {
    case 'FETCH': tryIt(() => parseFetchArgs(a, { qresync: true })); tryIt(() => parseFetchArgs(a)); break;
    case 'SEARCH': tryIt(() => parseSearchArgs(a, { esearch: true })); tryIt(() => parseSearchArgs(a)); break;
    case 'SORT': case 'THREAD': tryIt(() => parseSearchArgs(a.slice(1))); break;
    case 'STORE': tryIt(() => parseStoreArgs(a)); break;
    case 'LIST': case 'LSUB': tryIt(() => parseListArgs(a)); break;
    case 'STATUS': tryIt(() => parseStatusItems(a[1])); break;
    case 'APPEND': tryIt(() => parseAppendArgs(a)); break;
    default: break;
  }
  for (const x of a.slice(0, 4)) {
    const raw = x.type === 'atom' ? Buffer.from(x.value, 'latin1') : x.type === 'string' || x.type === 'literal' ? x.value : undefined;
    if (!raw) continue;
    tryIt(() => { const set = parseSeqSet(raw.toString('latin1'), { allowSearchRes: true }); resolveSeqSet(set, 1000, [1, 5]); });
    tryIt(() => decodeMailboxName(raw, true));
    tryIt(() => decodeMailboxName(raw, false));
    tryIt(() => {
      const name = mutf7Decode(raw.toString('latin1'));
      if (mutf7Decode(mutf7Encode(name)) !== name) throw new InvariantError(`mUTF-7 round trip: ${JSON.stringify(name)}`);
    });
  }
}

export const target: FuzzTarget = {
  name: 'imap-command',
  coverage: ['src/lib-imap/'],
  maxLen: 100_000,
  dictionary: ['FETCH', 'UID', 'SEARCH', 'STORE', 'LIST', 'STATUS', 'APPEND', 'SORT', 'BODY[', 'BODY.PEEK[', ']',
    'HEADER.FIELDS', '(', ')', '{', '}', '{5}\r\n', '{5+}\r\n', '~{3}\r\n', '{0}', 'NIL', '"', '\\', '*', '1:*', '$',
    ',', '<0.10>', 'CHARSET', 'UTF-8', 'BINARY[', 'RETURN', 'MIN', 'FLAGS', '+FLAGS.SILENT', '\\Seen', '&-', '&AOk-',
    'UNCHANGEDSINCE', 'CHANGEDSINCE', 'VANISHED', 'MODSEQ', 'CATENATE', 'URL', 'TEXT', 'SINCE', '1-Jan-2020', 'OR', 'NOT'],
  seeds: () => [
    ...texts('a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject)] BODY[1.2.MIME]<0.100>)\r\n',
      'a2 UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR SUBJECT "x" NOT FROM {3}\r\nbob SINCE 1-Jan-2020\r\n',
      'a3 STORE 1,3:5 +FLAGS.SILENT (\\Seen $Junk) (UNCHANGEDSINCE 5)\r\n', 'a4 LIST "" "%"\r\n',
      'a5 LIST (SUBSCRIBED) "" ("INBOX" "Sent") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n',
      'a6 APPEND Drafts (\\Draft) "01-Jan-2020 10:00:00 +0000" {11+}\r\nhello world\r\n', 'a7 STATUS INBOX (MESSAGES UIDNEXT)\r\n',
      'a8 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n', 'a9 SELECT &AOk-t&AOk-\r\n', 'b1 SORT (REVERSE DATE) UTF-8 ALL\r\n',
      'b2 FETCH 1 BINARY.PEEK[1]<0.10>\r\n', 'b3 APPEND INBOX CATENATE (URL "/INBOX;UID=1" TEXT {2}\r\nhi)\r\n', 'b4 LOGIN {3}\r\nbob {3}\r\npw\r\n'),
    ...literalsFrom(['src/lib-imap/imap-parser.test.ts', 'src/lib-imap/imap-args.test.ts', 'src/lib-imap/imap-seqset.test.ts', 'src/lib-imap/imap-utf7.test.ts'], /\S/),
  ],
  run(data) {
    const rng = new Rng(data.length * 7919 + (data[0] ?? 0));
    const p = new ImapParser({ maxLineLength: 8192, maxLiteralSize: 65536 });
    const step = (): void => {
      for (let ev = p.next(), n = 0; ev; ev = p.next(), n++) {
        if (n > 100_000) throw new InvariantError('parser produced more than 100000 events');
        if (ev.type === 'literal') {
          if (rng.next() < 0.85) p.acceptLiteral({ stream: rng.next() < 0.2 }); else p.rejectLiteral();
        } else if (ev.type === 'command') {
          argsOf(ev.command, ev.args);
          if (rng.next() < 0.05) p.expectRawLine();
        }
      }
    };
    for (let pos = 0; pos < data.length;) {
      const n = 1 + rng.int(rng.next() < 0.3 ? 3 : 400);
      p.push(data.subarray(pos, pos + n));
      pos += n;
      step();
      // memory stays bounded by the limits however the input is shaped
      if (p.bufferedBytes > 8192 + 65536 + 4096) throw new InvariantError(`parser holds ${p.bufferedBytes} bytes, more than max line + max literal`);
    }
  },
  expected: (e) => e instanceof ImapParseError,
};
