/**
 * sendmail-args - the command line of sendmail(1) as Postfix's sendmail parses it
 * (postfix/src/sendmail/sendmail.c main(): getopt string "B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx"),
 * turned into a SendmailOptions value. Option letters may be grouped (`-ti`), values may be
 * attached (`-fuser@x`) or separate (`-f user@x`); `--` ends the options.
 *
 * Kept as Postfix does: -bm (default), -bs, -bv, -bp, -bd, -bi, -t, -i, -oi, -f, -r, -F, -N, -R,
 * -V, -B, -C, -q. Accepted and ignored as Postfix does: -G, -I, -L, -O, -U, -X, -c, -e, -h, -m,
 * -n, -p, -v (verbose), -x, and -o with anything but `i` (-o7, -o8, -om, -oA...).
 */
import { DSN_NOTIFY } from '../global/rec-type.ts';

/** sysexits.h */
export const EX = {
  OK: 0, USAGE: 64, DATAERR: 65, NOINPUT: 66, NOUSER: 67, UNAVAILABLE: 69, SOFTWARE: 70,
  OSERR: 71, CANTCREAT: 73, IOERR: 74, TEMPFAIL: 75, NOPERM: 77, CONFIG: 78,
} as const;

export type SendmailMode = 'deliver' | 'smtp' | 'verify' | 'mailq' | 'flush' | 'daemon' | 'newaliases' | 'test';

export interface SendmailOptions {
  mode: SendmailMode;
  /** -t: recipients from To:/Cc:/Bcc: (or Resent-*) headers, added to the command-line ones. */
  extract: boolean;
  /** false with -i/-oi: a line with only "." does not end the input. */
  dotEnds: boolean;
  /** -f/-r; undefined = the login name. '' = the null sender. */
  sender?: string;
  /** -F */
  fullname?: string;
  /** -N: DSN NOTIFY bits (0 = not given). */
  notify: number;
  /** -R: FULL | HDRS */
  ret?: 'FULL' | 'HDRS';
  /** -V */
  envid?: string;
  /** -B: 7BIT | 8BITMIME */
  body?: string;
  /** -C: a main.cf file or a configuration directory. */
  config?: string;
  verbose: number;
  recipients: string[];
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const WITH_VALUE = new Set('BCFLNORVXbefhopr'.split(''));

/** RFC 3461 §4.1 NOTIFY: "never" or a comma list of success, delay, failure. */
export function parseNotify(v: string): number {
  const words = v.toLowerCase().split(',').map((w) => w.trim()).filter(Boolean);
  if (words.length === 0) throw new UsageError(`bad -N option value: "${v}"`);
  if (words.includes('never')) {
    if (words.length > 1) throw new UsageError(`bad -N option value: "${v}": "never" cannot be combined with other values`);
    return DSN_NOTIFY.NEVER;
  }
  let bits = 0;
  for (const w of words) {
    if (w === 'success') bits |= DSN_NOTIFY.SUCCESS;
    else if (w === 'delay') bits |= DSN_NOTIFY.DELAY;
    else if (w === 'failure') bits |= DSN_NOTIFY.FAILURE;
    else throw new UsageError(`bad -N option value: "${v}" (use never, or a list of success, delay, failure)`);
  }
  return bits;
}

/** `<a@b>` → `a@b`, `<>` → ''. */
export function stripAngles(s: string): string {
  const t = s.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1).trim() : t;
}

export function parseSendmailArgs(argv: readonly string[]): SendmailOptions {
  const o: SendmailOptions = { mode: 'deliver', extract: false, dotEnds: true, notify: 0, verbose: 0, recipients: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      let val: string | undefined;
      if (c === 'q') {
        // -q, -q1h, -qRsite: the value is only ever attached.
        val = a.slice(j + 1);
        j = a.length;
      } else if (WITH_VALUE.has(c)) {
        if (j + 1 < a.length) val = a.slice(j + 1);
        else if (i + 1 < argv.length) val = argv[++i]!;
        else throw new UsageError(`option requires an argument -- '${c}'`);
        j = a.length;
      }
      apply(o, c, val);
    }
  }
  for (; i < argv.length; i++) o.recipients.push(argv[i]!);
  return o;
}

function apply(o: SendmailOptions, c: string, val: string | undefined): void {
  const v = val ?? '';
  switch (c) {
    case 'B': {
      const b = v.toUpperCase();
      if (b !== '7BIT' && b !== '8BITMIME') throw new UsageError(`-B option needs 8BITMIME or 7BIT, not "${v}"`);
      o.body = b;
      break;
    }
    case 'C': o.config = v; break;
    case 'F': o.fullname = v; break;
    case 'N': o.notify = parseNotify(v); break;
    case 'R': {
      const r = v.toUpperCase();
      if (r !== 'FULL' && r !== 'HDRS') throw new UsageError(`bad -R option value: "${v}" (use full or hdrs)`);
      o.ret = r;
      break;
    }
    case 'V':
      // RFC 3461 §4.4: printable US-ASCII, at most 100 characters.
      if (!/^[\x21-\x7e]{1,100}$/.test(v)) throw new UsageError(`bad -V option value: "${v}" (an envelope ID is 1-100 printable ASCII characters)`);
      o.envid = v;
      break;
    case 'b':
      switch (v) {
        case 'm': o.mode = 'deliver'; break;
        case 's': o.mode = 'smtp'; break;
        case 'v': o.mode = 'verify'; break;
        case 'p': o.mode = 'mailq'; break;
        case 'd': o.mode = 'daemon'; break;
        case 'i': o.mode = 'newaliases'; break;
        case 'h': case 'H': case 'l': case 'D': o.mode = o.mode; break; // Postfix: ignored
        default: throw new UsageError(`-b${v}: unknown mode (use -bm, -bs, -bv, -bp, -bd or -bi)`);
      }
      break;
    case 'f': case 'r': {
      const s = stripAngles(v);
      if (/[\0\r\n]/.test(s)) throw new UsageError('-f: bad sender address');
      o.sender = s;
      break;
    }
    case 'i': o.dotEnds = false; break;
    case 'o':
      // -oi: same as -i; -o7 -o8 -om -oA... are ignored (Postfix sendmail.c).
      if (v === 'i') o.dotEnds = false;
      break;
    case 'q':
      // -q, -q1h: flush; -qR/-qS/-qI: Postfix only flushes too.
      o.mode = 'flush';
      break;
    case 't': o.extract = true; break;
    case 'v': o.verbose++; break;
    case 'G': case 'I': case 'L': case 'O': case 'U': case 'X': case 'c': case 'e': case 'h':
    case 'm': case 'n': case 'p': case 'x':
      break;
    default:
      throw new UsageError(`invalid option -- '${c}'`);
  }
}
