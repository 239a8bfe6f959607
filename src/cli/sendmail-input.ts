/**
 * sendmail-input - how sendmail(1) reads the message on standard input, as Postfix's sendmail
 * enqueue() does:
 *  - line endings: CRLF becomes LF (sendmail_fix_line_endings = always);
 *  - without -i/-oi a line that is only "." ends the input (what follows is not read); with -i
 *    the input ends only at end of file. Lines starting with a dot are kept as they are (no
 *    SMTP dot-unstuffing: this is not SMTP);
 *  - a first line "From ..." (a UNIX mailbox separator) is dropped;
 *  - with -t, the primary header block is held until its end, recipients are extracted from
 *    To:/Cc:/Bcc: — or only from Resent-To:/Resent-Cc:/Resent-Bcc: when the message has
 *    Resent- recipient headers (RFC 5322 §3.6.6) — and the Bcc:/Resent-Bcc: headers are removed
 *    from the message.
 *
 * extractAddresses() is a forgiving RFC 5322 §3.4 address-list reader in the spirit of
 * Postfix's tok822 (comments dropped, display names and group names skipped, `<...>` taken).
 */
import type { Readable } from 'node:stream';

/** A header field name followed by a colon (RFC 5322 §3.6.8 ftext). */
const HDR_NAME = /^([!-9;-~]+)[ \t]*:/;

export interface InputOptions {
  dotEnds: boolean;
  extract: boolean;
  /** Most bytes of header kept for -t (header_size_limit); the rest is treated as body. */
  headerLimit: number;
}

export interface InputResult {
  /** Recipients found in the headers (-t), in order, duplicates kept (cleanup removes them). */
  extracted: string[];
  /** Bytes written to the sink. */
  size: number;
  /** Input ended with a lone "." (not at end of file). */
  dotSeen: boolean;
}

/**
 * Read the message from `input` and pass the content (LF line endings) to `sink`, in order.
 * The sink is awaited, so a slow disk slows the reading (backpressure).
 */
export async function readMessage(input: Readable, o: InputOptions, sink: (b: Buffer) => Promise<void>): Promise<InputResult> {
  const res: InputResult = { extracted: [], size: 0, dotSeen: false };
  let partial: Buffer = Buffer.alloc(0);
  let first = true;
  let inHeader = o.extract;
  let header: string[] = [];
  let headerBytes = 0;
  let out: Buffer[] = [];
  let outBytes = 0;
  let ended = false;

  const emit = async (b: Buffer): Promise<void> => {
    out.push(b); outBytes += b.length;
    if (outBytes >= 65536) await flush();
  };
  const flush = async (): Promise<void> => {
    if (outBytes === 0) return;
    const b = Buffer.concat(out, outBytes);
    out = []; outBytes = 0;
    res.size += b.length;
    await sink(b);
  };
  const endHeader = async (): Promise<void> => {
    inHeader = false;
    const kept = filterHeader(header, res.extracted);
    header = [];
    for (const l of kept) await emit(Buffer.from(l + '\n', 'latin1'));
  };

  /** One line without its LF (and without the CR of a CRLF). */
  const line = async (l: Buffer): Promise<void> => {
    if (first) {
      first = false;
      if (l.length >= 5 && l.subarray(0, 5).toString('latin1') === 'From ') return;
    }
    if (o.dotEnds && l.length === 1 && l[0] === 0x2e) { ended = true; res.dotSeen = true; return; }
    if (inHeader) {
      const s = l.toString('latin1');
      const cont = (s.startsWith(' ') || s.startsWith('\t')) && header.length > 0;
      if ((cont || HDR_NAME.test(s)) && headerBytes + s.length < o.headerLimit) {
        header.push(s);
        headerBytes += s.length + 1;
        return;
      }
      await endHeader();
    }
    await emit(Buffer.concat([l, NL]));
  };

  for await (const chunk of input) {
    const b = partial.length ? Buffer.concat([partial, chunk as Buffer]) : (chunk as Buffer);
    let pos = 0;
    while (!ended) {
      const nl = b.indexOf(0x0a, pos);
      if (nl < 0) break;
      const end = nl > pos && b[nl - 1] === 0x0d ? nl - 1 : nl;
      await line(b.subarray(pos, end));
      pos = nl + 1;
    }
    if (ended) break;
    partial = Buffer.from(b.subarray(pos));
  }
  if (!ended && partial.length > 0) {
    // A last line without LF: kept, with LF added (Postfix writes it as a complete record).
    const end = partial[partial.length - 1] === 0x0d ? partial.length - 1 : partial.length;
    await line(partial.subarray(0, end));
  }
  if (inHeader) await endHeader();
  await flush();
  if (ended) input.destroy();
  return res;
}

const NL = Buffer.from('\n');

/**
 * Extract recipients from a header block (physical lines) and return the lines to keep:
 * Bcc:/Resent-Bcc: are removed.
 */
export function filterHeader(lines: readonly string[], extracted: string[]): string[] {
  // Group physical lines into fields.
  const fields: { name: string; lines: string[] }[] = [];
  for (const l of lines) {
    const m = HDR_NAME.exec(l);
    if (m && !(l.startsWith(' ') || l.startsWith('\t'))) fields.push({ name: m[1]!.toLowerCase(), lines: [l] });
    else if (fields.length) fields[fields.length - 1]!.lines.push(l);
  }
  const resent = fields.some((f) => f.name === 'resent-to' || f.name === 'resent-cc' || f.name === 'resent-bcc');
  const wanted = resent ? ['resent-to', 'resent-cc', 'resent-bcc'] : ['to', 'cc', 'bcc'];
  const kept: string[] = [];
  for (const f of fields) {
    if (wanted.includes(f.name)) {
      const value = f.lines.join('\n').replace(/\r?\n(?=[ \t])/g, '').replace(HDR_NAME, '');
      // Header bytes are taken as UTF-8 (RFC 6532); latin1 was only the transport here.
      extracted.push(...extractAddresses(Buffer.from(value, 'latin1').toString('utf8')));
    }
    if (f.name === 'bcc' || f.name === 'resent-bcc') continue;
    kept.push(...f.lines);
  }
  return kept;
}

/**
 * The addresses of an RFC 5322 address list: `a@x, "B" <b@y>, grp: c@z;, d@w (D)` →
 * [a@x, b@y, c@z, d@w]. Source routes (`<@r1,@r2:u@h>`) are dropped; an empty `<>` is skipped.
 */
export function extractAddresses(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let angle: string | undefined;
  let inAngle = false;
  const end = (): void => {
    let a = angle !== undefined ? angle : cur;
    a = a.trim();
    if (angle !== undefined) a = a.replace(/^(@[^:,]*,?)+:/, '').trim();
    if (a) out.push(a);
    cur = ''; angle = undefined;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') {
      // quoted-string: keep it (a quoted local-part is part of the address)
      let j = i + 1;
      while (j < value.length && value[j] !== '"') j += value[j] === '\\' ? 2 : 1;
      const q = value.slice(i, Math.min(j + 1, value.length));
      if (inAngle) angle += q; else cur += q;
      i = j;
    } else if (c === '(') {
      let depth = 1;
      let j = i + 1;
      for (; j < value.length && depth > 0; j++) {
        if (value[j] === '\\') j++;
        else if (value[j] === '(') depth++;
        else if (value[j] === ')') depth--;
      }
      i = j - 1;
      if (!inAngle) cur += ' ';
    } else if (c === '[') {
      const j = value.indexOf(']', i);
      const lit = value.slice(i, j < 0 ? value.length : j + 1);
      if (inAngle) angle += lit; else cur += lit;
      i = j < 0 ? value.length : j;
    } else if (inAngle) {
      if (c === '>') inAngle = false; else angle += c;
    } else if (c === '<') {
      inAngle = true; angle = '';
    } else if (c === ',' || c === ';') {
      end();
    } else if (c === ':') {
      // group display name ("undisclosed-recipients:;"): drop what came before
      cur = ''; angle = undefined;
    } else {
      cur += c;
    }
  }
  end();
  // Display-name words without angle brackets never reach here; an addr-spec has no spaces
  // outside quotes, so "a @ b" style spacing is closed up.
  return out.map((a) => (a.includes('"') ? a : a.replace(/\s+/g, ''))).filter((a) => a !== '');
}
