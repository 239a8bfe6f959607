/**
 * Fuzz target: the SMTP MAIL FROM / RCPT TO path grammar (RFC 5321 §4.1.2, RFC 6531) and
 * RFC 3461 xtext. parsePathArg may only throw AddressSyntaxError; a parsed address must
 * re-quote (quoteAddress) to something that parses back to the same address.
 */

import { AddressSyntaxError, decodeXtext, parsePathArg, quoteAddress } from '../../../src/lib-smtp/smtp-address.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { literalsFrom, texts } from '../fuzz-seeds.ts';

export class InvariantError extends Error { override name = 'InvariantError'; }

export const target: FuzzTarget = {
  name: 'smtp-address',
  coverage: ['src/lib-smtp/smtp-address.ts'],
  maxLen: 4096,
  dictionary: ['<', '>', '@', ':', ',', '"', '\\', '[', ']', 'IPv6:', '<>', '@a,@b:', 'SIZE=', 'BODY=8BITMIME',
    'SMTPUTF8', 'RET=HDRS', 'ENVID=', '+2B', '+3D', 'ORCPT=rfc822;', 'NOTIFY=NEVER', 'postmaster', '%', '!', '\u00e9'],
  seeds: () => [
    ...texts('<a@example.test>', '<>', '<@r1,@r2:u@d>', '<"quoted local"@example.test>', '<u@[127.0.0.1]>',
      '<u@[IPv6:::1]>', '<user%host@relay>', '<"user@host"@relay>', '<user@host@relay>', 'host!user', '<postmaster>',
      '<\u00c3\u00a9l\u00c3\u00a8ve@exemple.test> SMTPUTF8', 'bare@example.test', '<a@b> SIZE=100 BODY=8BITMIME'),
    ...literalsFrom(['src/smtpd/smtpd.test.ts', 'src/lib-smtp/smtp-data-stream.test.ts', 'test/interop/smtpd-vs-postfix.test.ts'], /[<@]/),
  ],
  run(data) {
    const s = data.toString(data.length > 0 && data[0]! & 1 ? 'utf8' : 'latin1');
    const flags = data.length > 1 ? data[1]! : 0;
    decodeXtext(s);
    const p = parsePathArg(s, { allowNull: (flags & 1) === 1, strict: (flags & 2) === 2 });
    if (p.address !== '' && !p.address.includes('\r') && !p.address.includes('\n')) {
      const again = parsePathArg(`<${quoteAddress(p.address)}>`, { allowNull: true });
      if (again.address !== p.address) throw new InvariantError(`quoteAddress round trip: ${JSON.stringify(p.address)} -> ${JSON.stringify(again.address)}`);
    }
  },
  expected: (e) => e instanceof AddressSyntaxError,
};
