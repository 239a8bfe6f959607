/**
 * Fuzz target: the SMTP DATA decoder (src/lib-smtp/smtp-data-stream.ts) under random socket
 * chunking. Invariants: (1) the decoded content and the consumed byte count do not depend on
 * how the bytes were split into chunks; (2) dotStuff(decode(x), { keepCr }) decodes back to
 * decode(x): what smtpd stored is what the smtp/lmtp client sends on, byte for byte, a CR before
 * an LF included. The decoder documents no error at all, so any throw is
 * a finding.
 */

import { DataDecoder, dotStuff } from '../../../src/lib-smtp/smtp-data-stream.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { Rng } from '../fuzz-engine.ts';
import { literalsFrom, texts } from '../fuzz-seeds.ts';
import { InvariantError } from './smtp-address.ts';

function decode(chunks: Buffer[], forbidBareLf: boolean): { content: Buffer; consumed: number; done: boolean } {
  const out: Buffer[] = [];
  const d = new DataDecoder({ out: (b) => out.push(Buffer.from(b)), forbidBareLf, onBareLf: () => {} });
  let consumed = 0;
  for (const c of chunks) {
    if (d.done) break;
    consumed += d.feed(c);
  }
  return { content: Buffer.concat(out), consumed, done: d.done };
}

function chunked(data: Buffer, seed: number): Buffer[] {
  const rng = new Rng(seed);
  const out: Buffer[] = [];
  for (let p = 0; p < data.length;) {
    const n = 1 + rng.int(rng.next() < 0.5 ? 4 : 300);
    out.push(data.subarray(p, p + n));
    p += n;
  }
  return out;
}

export const target: FuzzTarget = {
  name: 'smtp-data',
  coverage: ['src/lib-smtp/smtp-data-stream.ts'],
  maxLen: 200_000,
  dictionary: ['\r\n.\r\n', '\r\n..', '\n.\n', '.\r\n', '\r', '\n', '\r\r\n', '..\r\n', '.\n', 'QUIT\r\n'],
  seeds: () => [
    ...texts('Subject: t\r\n\r\nbody\r\n.\r\n', '..leading dot\r\n.\r\nQUIT\r\n', 'bare\nlf\r\n.\r\n', 'a\r\n.\n.\r\n',
      'x\n.\r\nsmuggled\r\n.\r\n', '.\r\n', 'no end'),
    ...literalsFrom(['src/lib-smtp/smtp-data-stream.test.ts', 'src/smtpd/smtpd.test.ts'], /\r\n\.\r\n|\n\.\n/),
  ],
  run(data) {
    const seed = data.length ? data[data.length - 1]! * 31 + data.length : 1;
    const forbid = (seed & 1) === 1;
    const whole = decode([data], forbid);
    const split = decode(chunked(data, seed), forbid);
    // Before the end of data, how much of an unterminated line is still held may differ.
    if (whole.done !== split.done || whole.consumed !== split.consumed || (whole.done && !whole.content.equals(split.content))) {
      throw new InvariantError(`chunking changes the result: whole ${whole.content.length}/${whole.consumed}, split ${split.content.length}/${split.consumed}`);
    }
    if (!whole.done) return;
    const wire = dotStuff(whole.content, { keepCr: true });
    const back = decode([wire], false);
    if (!back.done || back.consumed !== wire.length || !back.content.equals(whole.content)) {
      throw new InvariantError(`dotStuff round trip differs: ${JSON.stringify(whole.content.toString('latin1').slice(0, 80))} -> ${JSON.stringify(back.content.toString('latin1').slice(0, 80))}`);
    }
  },
  expected: () => false,
};
