/**
 * imap-fetch-args — the FETCH attribute grammar (RFC 3501 §6.4.5 / §9 fetch-att, RFC 9051
 * §6.4.5, RFC 3516 BINARY, RFC 7162 CONDSTORE/QRESYNC modifiers, RFC 8514 SAVEDATE,
 * RFC 8474 EMAILID/THREADID) into typed
 * items: macros ALL/FAST/FULL expanded, BODY[section]<partial> and BODY.PEEK, BINARY[part]<partial>,
 * BINARY.PEEK, BINARY.SIZE, RFC822(.HEADER/.SIZE/.TEXT), MODSEQ, and the fetch modifiers
 * `(CHANGEDSINCE n VANISHED)`.
 */
import { ImapParseError, argModSeq, type ImapArg } from './imap-parser.ts';
import { parseSeqSet, type SeqSet } from './imap-seqset.ts';
import type { SectionSpec, SectionText } from '../lib-mail/mail-section.ts';

export type SimpleFetchAtt = 'ENVELOPE' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'UID' | 'BODY' |
  'BODYSTRUCTURE' | 'MODSEQ' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' | 'SAVEDATE' | 'PREVIEW' | 'SNIPPET' |
  'EMAILID' | 'THREADID';

export type FetchAtt =
  | { kind: 'simple'; name: SimpleFetchAtt }
  | { kind: 'body'; peek: boolean; section: SectionSpec; partial?: { origin: number; octets: number };
      /** The name to answer with, e.g. `BODY[HEADER.FIELDS (SUBJECT)]<0>` (RFC 3501 §7.4.2). */
      responseName: string }
  | { kind: 'binary'; peek: boolean; path: number[]; partial?: { origin: number; octets: number }; responseName: string }
  | { kind: 'binary.size'; path: number[]; responseName: string };

export interface FetchCommand {
  set: SeqSet;
  atts: FetchAtt[];
  changedSince?: bigint;
  vanished: boolean;
}

const SIMPLE = new Set<string>(['ENVELOPE', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'UID', 'BODY', 'BODYSTRUCTURE',
  'MODSEQ', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT', 'SAVEDATE', 'PREVIEW', 'SNIPPET', 'EMAILID', 'THREADID']);
const MACROS: Record<string, SimpleFetchAtt[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

function parsePath(s: string, what: string): { path: number[]; rest: string } {
  const path: number[] = [];
  let rest = s;
  for (;;) {
    const m = /^([1-9]\d{0,8})(\.|$)/.exec(rest);
    if (!m) break;
    path.push(Number(m[1]));
    rest = rest.slice(m[0].length);
    if (m[2] === '') break;
  }
  if (path.length === 0 && rest !== s) throw new ImapParseError(`Invalid ${what}`);
  return { path, rest };
}

/** Header names inside HEADER.FIELDS (...): astrings, quoted allowed. */
function parseHeaderList(s: string): string[] {
  const m = /^\((.*)\)$/s.exec(s.trim());
  if (!m) throw new ImapParseError('Invalid HEADER.FIELDS: expected a parenthesised list of header names');
  const names: string[] = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))/gy;
  const body = m[1]!;
  let last = 0;
  for (let x = re.exec(body); x; x = re.exec(body)) {
    names.push(x[1] !== undefined ? x[1].replace(/\\(.)/g, '$1') : x[2]!);
    last = re.lastIndex;
  }
  if (body.slice(last).trim() !== '' || names.length === 0) throw new ImapParseError('Invalid HEADER.FIELDS header list');
  for (const n of names) if (!/^[\x21-\x39\x3b-\x7e]+$/.test(n)) throw new ImapParseError(`Invalid header name "${n.slice(0, 40)}"`);
  return names;
}

/** Parses the text between `[` and `]` of BODY[...]. */
export function parseSectionSpec(inner: string): SectionSpec {
  const { path, rest } = parsePath(inner, 'section part number');
  if (rest === '') return { path };
  const m = /^(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)(.*)$/is.exec(rest);
  if (!m) throw new ImapParseError(`Invalid section "${inner.slice(0, 60)}"`);
  const text = m[1]!.toUpperCase() as SectionText;
  if (text === 'MIME' && path.length === 0) throw new ImapParseError('MIME section needs a part number');
  if (text.startsWith('HEADER.FIELDS')) {
    if (!m[2]!.startsWith(' ')) throw new ImapParseError(`${text} needs a header list`);
    return { path, text, fields: parseHeaderList(m[2]!) };
  }
  if (m[2] !== '') throw new ImapParseError(`Invalid section "${inner.slice(0, 60)}"`);
  return { path, text };
}

function parsePartial(s: string): { origin: number; octets: number } | undefined {
  if (s === '') return undefined;
  const m = /^<(\d{1,10})\.(\d{1,10})>$/.exec(s);
  if (!m) throw new ImapParseError(`Invalid partial "${s.slice(0, 30)}": expected <origin.octets>`);
  const origin = Number(m[1]);
  const octets = Number(m[2]);
  if (octets === 0 || origin > 0xffffffff || octets > 0xffffffff) throw new ImapParseError('Invalid partial range');
  return { origin, octets };
}

/** One fetch-att atom, e.g. `BODY.PEEK[1.2.MIME]<0.100>`. */
export function parseFetchAtt(text: string): FetchAtt[] {
  const up = text.toUpperCase();
  if (MACROS[up]) return MACROS[up].map((name) => ({ kind: 'simple', name }));
  if (SIMPLE.has(up)) return [{ kind: 'simple', name: up as SimpleFetchAtt }];
  const open = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[/is.exec(text);
  // Dovecot's texts: "Unknown parameter: X", "Invalid BODY[..] parameter: Missing ']'"
  if (!open) throw new ImapParseError(`Unknown parameter: ${text.slice(0, 60).toUpperCase()}`);
  const what = open[1]!.toUpperCase().startsWith('BODY') ? 'BODY' : 'BINARY';
  const m = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK|BINARY\.SIZE)\[(.*)\](.*)$/is.exec(text);
  if (!m) throw new ImapParseError(`Invalid ${what}[..] parameter: Missing ']'`);
  const name = m[1]!.toUpperCase();
  const inner = m[2]!;
  if (/\]/.test(inner.replace(/\([^)]*\)/g, '')) || (m[3] !== '' && !m[3]!.startsWith('<'))) {
    throw new ImapParseError(`Invalid ${what}[..] parameter: Unexpected data after ']'`);
  }
  const partial = parsePartial(m[3]!);
  const partialName = partial ? `<${partial.origin}>` : '';
  if (name === 'BODY' || name === 'BODY.PEEK') {
    const section = parseSectionSpec(inner);
    const canon = canonicalSection(section);
    return [{ kind: 'body', peek: name === 'BODY.PEEK', section, ...(partial ? { partial } : {}),
      responseName: `BODY[${canon}]${partialName}` }];
  }
  const { path, rest } = parsePath(inner, 'BINARY part');
  if (rest !== '') throw new ImapParseError(`Invalid BINARY section "${inner.slice(0, 40)}": only part numbers allowed`);
  if (name === 'BINARY.SIZE') {
    if (partial) throw new ImapParseError('BINARY.SIZE takes no partial');
    return [{ kind: 'binary.size', path, responseName: `BINARY.SIZE[${path.join('.')}]` }];
  }
  return [{ kind: 'binary', peek: name === 'BINARY.PEEK', path, ...(partial ? { partial } : {}),
    responseName: `BINARY[${path.join('.')}]${partialName}` }];
}

/** Section written back for the response: upper-case keywords, header names as given. */
export function canonicalSection(s: SectionSpec): string {
  const parts: string[] = [];
  if (s.path.length > 0) parts.push(s.path.join('.'));
  if (s.text) {
    let t: string = s.text;
    if (s.fields) t += ` (${s.fields.join(' ')})`;
    parts.push(t);
  }
  return parts.join('.');
}

function isPreviewModifierList(items: readonly ImapArg[]): boolean {
  return items.length > 0 && items.every((x) => x.type === 'atom' && /^(LAZY|FUZZY)$/i.test(x.value));
}

/** PREVIEW takes LAZY (RFC 8970 §3), SNIPPET takes FUZZY; the preview is computed either way. */
function previewModifiers(name: string, items: readonly ImapArg[]): void {
  if (items.length === 0) throw new ImapParseError('FETCH list contains non-atoms'); // Dovecot's text
  for (const x of items) {
    const m = x.type === 'atom' ? x.value.toUpperCase() : '';
    if (name === 'PREVIEW' && m !== 'LAZY') throw new ImapParseError(`'${m.slice(0, 30)}' is not a supported PREVIEW modifier`);
  }
}

/** FETCH arguments: sequence-set, attribute or list of attributes, optional modifiers. */
export function parseFetchArgs(args: readonly ImapArg[], opts: { qresync?: boolean } = {}): FetchCommand {
  const setArg = args[0];
  const setText = setArg?.type === 'atom' ? setArg.value : setArg?.type === 'number' ? setArg.raw : undefined;
  if (setText === undefined) throw new ImapParseError('FETCH: missing sequence set');
  const set = parseSeqSet(setText);
  const what = args[1];
  if (!what) throw new ImapParseError('FETCH: missing attributes');
  const items = what.type === 'list' ? what.items : [what];
  if (items.length === 0) throw new ImapParseError('FETCH: empty attribute list');
  const atts: FetchAtt[] = [];
  for (let k = 0; k < items.length; k++) {
    const it = items[k]!;
    if (it.type !== 'atom') throw new ImapParseError('FETCH: invalid attribute');
    if (what.type === 'list' && MACROS[it.value.toUpperCase()]) throw new ImapParseError('FETCH: macros are not allowed inside a list');
    const up = it.value.toUpperCase();
    // RFC 8970 PREVIEW [(LAZY)], and the draft's SNIPPET (FUZZY) Dovecot 2.3 also answers
    if (up === 'PREVIEW' || up === 'SNIPPET') {
      const mod = items[k + 1];
      if (mod?.type === 'list') { previewModifiers(up, mod.items); k++; }
      atts.push({ kind: 'simple', name: up });
      continue;
    }
    atts.push(...parseFetchAtt(it.value));
  }
  let rest = 2;
  // `FETCH 1 PREVIEW (LAZY)`: the modifier list of a lone PREVIEW, not FETCH modifiers
  const lone = what.type === 'atom' ? what.value.toUpperCase() : '';
  if ((lone === 'PREVIEW' || lone === 'SNIPPET') && args[2]?.type === 'list' && isPreviewModifierList(args[2].items)) {
    previewModifiers(lone, args[2].items);
    rest = 3;
  }
  const cmd: FetchCommand = { set, atts, vanished: false };
  const mods = args[rest];
  if (rest === 3 && args.length > 4) throw new ImapParseError('FETCH: invalid modifiers');
  if (mods !== undefined) {
    if (mods.type !== 'list' || args.length > rest + 1) throw new ImapParseError('FETCH: invalid modifiers');
    for (let i = 0; i < mods.items.length; i++) {
      const n = mods.items[i]!;
      const name = n.type === 'atom' ? n.value.toUpperCase() : '';
      if (name === 'CHANGEDSINCE') cmd.changedSince = argModSeq(mods.items[++i], 'CHANGEDSINCE value', true);
      else if (name === 'VANISHED') {
        if (!opts.qresync) throw new ImapParseError('FETCH VANISHED needs ENABLE QRESYNC');
        cmd.vanished = true;
      } else throw new ImapParseError(`FETCH: unknown modifier "${name}"`);
    }
    if (cmd.vanished && cmd.changedSince === undefined) throw new ImapParseError('FETCH VANISHED needs CHANGEDSINCE');
  }
  if (cmd.changedSince !== undefined && !atts.some((a) => a.kind === 'simple' && a.name === 'MODSEQ')) {
    atts.push({ kind: 'simple', name: 'MODSEQ' }); // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
  }
  return cmd;
}
