/**
 * imap-command-args — argument grammars of the commands with structured arguments:
 * STORE (RFC 3501 §6.4.6; `+FLAGS.SILENT`, RFC 7162 `(UNCHANGEDSINCE n)`), STATUS items
 * (RFC 3501 §6.3.10, RFC 7162 HIGHESTMODSEQ, RFC 9051 SIZE/DELETED, RFC 8474 MAILBOXID),
 * LIST / LIST-EXTENDED (RFC 5258 selection and return options, RFC 5819 LIST-STATUS,
 * RFC 6154 SPECIAL-USE), APPEND with MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) parts,
 * and flag lists. Each takes the ImapArg[] after the command name and throws ImapParseError.
 */
import { ImapParseError, argModSeq, argBytes, type ImapArg } from './imap-parser.ts';
import { parseSeqSet, type SeqSet } from './imap-seqset.ts';
import { parseImapDateTime, type ImapDateTime } from './imap-date.ts';

function atomText(a: ImapArg | undefined): string | undefined {
  return a?.type === 'atom' ? a.value : a?.type === 'number' ? a.raw : undefined;
}

const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** A flag (system flag with canonical case, or keyword atom). `\Recent` cannot be stored. */
export function parseFlag(a: ImapArg | undefined, allowRecent = false): string {
  const t = atomText(a);
  if (t === undefined) throw new ImapParseError('Invalid flag: expected an atom');
  if (t.startsWith('\\')) {
    const sys = SYSTEM_FLAGS.find((f) => f.toLowerCase() === t.toLowerCase());
    if (sys) return sys;
    if (t.toLowerCase() === '\\recent' && allowRecent) return '\\Recent';
    throw new ImapParseError(`Invalid system flag "${t.slice(0, 40)}"`);
  }
  if (!/^[\x21\x23\x24\x26\x27\x2b-\x5a\x5e-\x7a\x7c\x7e]+$/.test(t)) throw new ImapParseError(`Invalid keyword "${t.slice(0, 40)}"`);
  return t;
}

/** `(\Seen $Label)` or a single flag. */
export function parseFlagList(a: ImapArg | undefined): string[] {
  if (a?.type === 'list') return a.items.map((x) => parseFlag(x));
  return [parseFlag(a)];
}

export interface StoreCommand {
  set: SeqSet;
  unchangedSince?: bigint;
  mode: 'set' | 'add' | 'remove';
  silent: boolean;
  /** FLAGS or, with CONDSTORE annotations, only flags for now. */
  flags: string[];
}

/** STORE seq [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags */
export function parseStoreArgs(args: readonly ImapArg[]): StoreCommand {
  const setText = atomText(args[0]);
  if (!setText) throw new ImapParseError('STORE: missing sequence set');
  const set = parseSeqSet(setText);
  let i = 1;
  let unchangedSince: bigint | undefined;
  if (args[i]?.type === 'list') {
    const mods = (args[i] as Extract<ImapArg, { type: 'list' }>).items;
    for (let j = 0; j < mods.length; j++) {
      const n = atomText(mods[j])?.toUpperCase();
      if (n === 'UNCHANGEDSINCE') {
        // Dovecot 2.3's texts (cmd-store.c): no value at all, then a value that is no mod-sequence
        if (mods[j + 1] === undefined) throw new ImapParseError('Invalid STORE modifiers');
        try { unchangedSince = argModSeq(mods[++j], 'UNCHANGEDSINCE value', true); } catch (e) {
          if (e instanceof ImapParseError) throw new ImapParseError('Invalid modseq');
          throw e;
        }
      }
      else throw new ImapParseError(`STORE: unknown modifier "${String(n ?? '').slice(0, 30)}"`);
    }
    i++;
  }
  const item = atomText(args[i])?.toUpperCase();
  const m = item ? /^([+-]?)FLAGS(\.SILENT)?$/.exec(item) : null;
  if (!m) throw new ImapParseError('STORE: expected FLAGS, +FLAGS or -FLAGS (optionally .SILENT)');
  const rest = args.slice(i + 1);
  if (rest.length === 0) throw new ImapParseError('STORE: missing flags');
  const flags = rest.length === 1 && rest[0]!.type === 'list' ? parseFlagList(rest[0]) : rest.map((x) => parseFlag(x));
  return {
    set, ...(unchangedSince !== undefined ? { unchangedSince } : {}),
    mode: m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set', silent: m[2] !== undefined, flags,
  };
}

export type StatusItem = 'MESSAGES' | 'RECENT' | 'UIDNEXT' | 'UIDVALIDITY' | 'UNSEEN' | 'HIGHESTMODSEQ' |
  'SIZE' | 'DELETED' | 'APPENDLIMIT' | 'MAILBOXID';
const STATUS_ITEMS = new Set<string>(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ',
  'SIZE', 'DELETED', 'APPENDLIMIT', 'MAILBOXID']);

/** A status-att list; Dovecot's texts: `Invalid arguments` (no list), `Empty status list`,
 * `Status list contains non-atoms`, `Invalid status item X`. */
export function parseStatusItems(a: ImapArg | undefined): StatusItem[] {
  if (a?.type !== 'list') throw new ImapParseError('Invalid arguments');
  if (a.items.length === 0) throw new ImapParseError('Empty status list');
  return a.items.map((x) => {
    if (x.type !== 'atom' && x.type !== 'nil' && x.type !== 'number') throw new ImapParseError('Status list contains non-atoms');
    const t = atomText(x)?.toUpperCase();
    if (!t || !STATUS_ITEMS.has(t)) throw new ImapParseError(`Invalid status item ${String(x.type === 'nil' ? 'NIL' : atomText(x) ?? '').slice(0, 30)}`);
    return t as StatusItem;
  });
}

export interface ListCommand {
  selection: ('SUBSCRIBED' | 'REMOTE' | 'RECURSIVEMATCH' | 'SPECIAL-USE')[];
  reference: Buffer;
  patterns: Buffer[];
  returnOpts: { subscribed: boolean; children: boolean; specialUse: boolean; status?: StatusItem[] };
  /** True if any LIST-EXTENDED syntax was used (answers then follow RFC 5258). */
  extended: boolean;
}

/** LIST [(selection)] reference (pattern | (patterns)) [RETURN (options)] */
export function parseListArgs(args: readonly ImapArg[]): ListCommand {
  let i = 0;
  const cmd: ListCommand = { selection: [], reference: Buffer.alloc(0), patterns: [], returnOpts: { subscribed: false, children: false, specialUse: false }, extended: false };
  if (args[0]?.type === 'list') {
    cmd.extended = true;
    for (const s of args[0].items) {
      const t = atomText(s)?.toUpperCase();
      if (t !== 'SUBSCRIBED' && t !== 'REMOTE' && t !== 'RECURSIVEMATCH' && t !== 'SPECIAL-USE') throw new ImapParseError(`LIST: unknown selection option "${String(t ?? '').slice(0, 30)}"`);
      cmd.selection.push(t);
    }
    // RFC 5258 §3: RECURSIVEMATCH alone (REMOTE selects nothing by itself) is BAD; Dovecot's text
    if (cmd.selection.includes('RECURSIVEMATCH') && !cmd.selection.some((o) => o !== 'RECURSIVEMATCH' && o !== 'REMOTE')) {
      throw new ImapParseError('RECURSIVEMATCH must not be the only selection');
    }
    i++;
  }
  const ref = args[i] && args[i]!.type !== 'list' ? argBytes(args[i]) : undefined;
  if (ref === undefined) throw new ImapParseError('LIST: missing reference name');
  cmd.reference = ref;
  i++;
  const pat = args[i];
  if (pat?.type === 'list') {
    cmd.extended = true;
    for (const p of pat.items) {
      const b = argBytes(p);
      if (!b) throw new ImapParseError('LIST: invalid mailbox pattern');
      cmd.patterns.push(b);
    }
    if (cmd.patterns.length === 0) throw new ImapParseError('LIST: empty pattern list');
  } else {
    const b = argBytes(pat);
    if (!b) throw new ImapParseError('LIST: missing mailbox pattern');
    cmd.patterns.push(b);
  }
  i++;
  if (i < args.length) {
    if (atomText(args[i])?.toUpperCase() !== 'RETURN' || args[i + 1]?.type !== 'list' || args.length > i + 2) {
      throw new ImapParseError('LIST: expected RETURN (options) after the pattern');
    }
    cmd.extended = true;
    const opts = (args[i + 1] as Extract<ImapArg, { type: 'list' }>).items;
    for (let j = 0; j < opts.length; j++) {
      const t = atomText(opts[j])?.toUpperCase();
      if (t === 'SUBSCRIBED') cmd.returnOpts.subscribed = true;
      else if (t === 'CHILDREN') cmd.returnOpts.children = true;
      else if (t === 'SPECIAL-USE') cmd.returnOpts.specialUse = true;
      else if (t === 'STATUS') {
        // RFC 5819: STATUS takes a list; without one Dovecot says `Unknown return options`
        if (opts[j + 1]?.type !== 'list') throw new ImapParseError('Unknown return options');
        cmd.returnOpts.status = parseStatusItems(opts[++j]);
      }
      else throw new ImapParseError(`LIST: unknown return option "${String(t ?? '').slice(0, 30)}"`);
    }
  }
  return cmd;
}

export type CatenatePart = { kind: 'url'; url: string } | { kind: 'text'; data: ImapArg & { type: 'literal' } };

export interface AppendMessage {
  flags: string[];
  internalDate?: ImapDateTime;
  /** Sent as RFC 6855 `UTF8 (~{n} ...)` (UTF8=ACCEPT). */
  utf8?: boolean;
  /** The message literal, or CATENATE parts (RFC 4469). */
  message?: ImapArg & { type: 'literal' };
  catenate?: CatenatePart[];
}

export interface AppendCommand {
  mailbox: Buffer;
  messages: AppendMessage[];
}

/** APPEND mailbox 1*( [flags] [date-time] (literal | CATENATE (parts)) )  (MULTIAPPEND) */
export function parseAppendArgs(args: readonly ImapArg[]): AppendCommand {
  const mailbox = args[0] && args[0].type !== 'list' ? argBytes(args[0]) : undefined;
  if (!mailbox) throw new ImapParseError('APPEND: missing mailbox name');
  const messages: AppendMessage[] = [];
  let i = 1;
  while (i < args.length) {
    const msg: AppendMessage = { flags: [] };
    if (args[i]?.type === 'list') { msg.flags = parseFlagList(args[i]); i++; }
    const d = args[i];
    if (d?.type === 'string') { msg.internalDate = parseImapDateTime(d.value.toString('latin1')); i++; }
    const m = args[i];
    if (m?.type === 'literal') { msg.message = m as ImapArg & { type: 'literal' }; i++; }
    else if (atomText(m)?.toUpperCase() === 'UTF8' && args[i + 1]?.type === 'list') {
      // RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")"
      const l = (args[i + 1] as Extract<ImapArg, { type: 'list' }>).items;
      if (l.length !== 1 || l[0]!.type !== 'literal' || !l[0]!.literal8) throw new ImapParseError('APPEND UTF8: expected (~{n} literal8)');
      msg.message = l[0] as ImapArg & { type: 'literal' };
      msg.utf8 = true;
      i += 2;
    } else if (atomText(m)?.toUpperCase() === 'CATENATE' && args[i + 1]?.type === 'list') {
      const parts = (args[i + 1] as Extract<ImapArg, { type: 'list' }>).items;
      msg.catenate = [];
      for (let j = 0; j < parts.length; j += 2) {
        const kind = atomText(parts[j])?.toUpperCase();
        const v = parts[j + 1];
        if (kind === 'URL' && v && (v.type === 'string' || v.type === 'literal' || v.type === 'atom')) {
          msg.catenate.push({ kind: 'url', url: argBytes(v)!.toString('utf8') });
        } else if (kind === 'TEXT' && v?.type === 'literal') {
          msg.catenate.push({ kind: 'text', data: v as ImapArg & { type: 'literal' } });
        } else throw new ImapParseError('APPEND CATENATE: expected URL url or TEXT literal');
      }
      if (msg.catenate.length === 0) throw new ImapParseError('APPEND CATENATE: empty part list');
      i += 2;
    } else throw new ImapParseError('APPEND: expected a message literal');
    messages.push(msg);
  }
  if (messages.length === 0) throw new ImapParseError('APPEND: missing message');
  return { mailbox, messages };
}
