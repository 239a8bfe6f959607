/**
 * dict-source - reading Postfix lookup-table source files (postmap(1) input, texthash:,
 * regexp:, pcre:, cidr:), the way Postfix's util/readlline.c and postmap.c do:
 *
 *  - a line whose first non-blank character is `#` is a comment; blank lines are ignored;
 *  - a line that starts with white space continues the previous logical line (the line break is
 *    dropped, the leading white space kept: "v1\n   more" → "v1   more");
 *  - a first logical line that starts with white space is dropped with Postfix's warning
 *    `FILE: logical line must not start with whitespace: "..."`;
 *  - trailing white space (including the CR of a CRLF file) is removed;
 *  - a logical line is reported with the number of its first physical line.
 *
 * Postfix reads lines as C strings, so text after a NUL byte is lost; we do the same (the answers
 * stay equal to postmap's) and warn `FILE, line N: NUL byte in line: text after it is ignored`.
 *
 * The whole file is read at once: lookup tables are small compared to memory, and an over-long
 * line is then just a long string, never a partial read.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { DictError, type Dict } from './dict.ts';
import { logger } from './msg.ts';

export interface SourceLine { line: number; text: string }

/** Postfix's ISSPACE for the characters that matter in table files. */
export function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f';
}

/** Read a table source file; a missing or unreadable file is DictError('config') "open FILE: reason". */
export function readSourceFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new DictError('config', `open ${path}: ${errnoText(err)}`);
  }
}

/** "No such file or directory" for ENOENT etc., like strerror(3) in Postfix's %m. */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    case 'EISDIR': return 'Is a directory';
    case 'ENOTDIR': return 'Not a directory';
    case 'ELOOP': return 'Too many levels of symbolic links';
    case 'EMFILE': return 'Too many open files';
    default: return e?.message ?? String(err);
  }
}

/** Split source text into logical lines (comments, blanks and continuations handled). */
export function logicalLines(text: string, file: string, warn: (msg: string) => void): SourceLine[] {
  const out: SourceLine[] = [];
  const phys = text.split('\n');
  // A file ending in "\n" yields a final empty element, which is simply a blank line.
  let cur: SourceLine | undefined;
  const flush = () => {
    if (cur) {
      cur.text = trimEnd(cur.text);
      out.push(cur);
      cur = undefined;
    }
  };
  for (let i = 0; i < phys.length; i++) {
    let s = phys[i]!;
    const nul = s.indexOf('\0');
    if (nul >= 0) {
      warn(`${file}, line ${i + 1}: NUL byte in line: text after it is ignored`);
      s = s.slice(0, nul);
    }
    let j = 0;
    while (j < s.length && isSpace(s[j])) j++;
    if (j === s.length || s[j] === '#') continue; // blank or comment: does not end a logical line
    if (j > 0) {
      if (cur) { cur.text += s; continue; }
      warn(`${file}: logical line must not start with whitespace: "${trimEnd(s)}"`);
      continue;
    }
    flush();
    cur = { line: i + 1, text: s };
  }
  flush();
  return out;
}

export function trimEnd(s: string): string {
  let e = s.length;
  while (e > 0 && isSpace(s[e - 1])) e--;
  return e === s.length ? s : s.slice(0, e);
}

/**
 * postmap's `key whitespace value` split. Returns undefined (after a warning, as Postfix) for a
 * line with a key but no value.
 */
export function splitKeyValue(l: SourceLine, file: string, warn: (msg: string) => void,
  suffix = ''): { key: string; value: string } | undefined {
  const s = l.text;
  let k = 0;
  while (k < s.length && !isSpace(s[k])) k++;
  let v = k;
  while (v < s.length && isSpace(s[v])) v++;
  if (v >= s.length) {
    warn(`${file}, line ${l.line}: expected format: key whitespace value${suffix}`);
    return undefined;
  }
  return { key: s.slice(0, k), value: s.slice(v) };
}

/** Parse a `key value` source file into entries in file order (postmap and texthash input). */
export function parseKeyValueSource(text: string, file: string, warn: (msg: string) => void,
  suffix = ''): { key: string; value: string; line: number }[] {
  const out: { key: string; value: string; line: number }[] = [];
  for (const l of logicalLines(text, file, warn)) {
    const kv = splitKeyValue(l, file, warn, suffix);
    if (kv) out.push({ key: kv.key, value: kv.value, line: l.line });
  }
  return out;
}

/** What every table type's open function receives: the contract's flags plus a warning sink. */
export interface DictOpenFlags {
  foldCase?: boolean;
  configDir?: string;
  /** Where non-fatal problems go (Postfix msg_warn); default: the 'dict' logger. */
  warn?: (msg: string) => void;
  /**
   * Table types beyond util/'s own (dict-registry.ts), supplied by whoever holds what they
   * need: `auth:` (lib-auth/dict-auth.ts) needs the user directory, so the configuration a
   * service is given carries it (MainConfig.dictFlags, put there by master/ or cli/). Tables
   * that open other tables (proxy:, unionmap:, pipemap:) pass it on with the other flags.
   */
  types?: Readonly<Record<string, DictTypeOpener>>;
}

/** A table type's open function: the name after "type:", and the flags. */
export type DictTypeOpener = (name: string, flags: DictOpenFlags) => Promise<Dict>;

/**
 * Split a Postfix list ("a, b c", "{x y}, z") on commas and white space, keeping a `{...}` group
 * as one item with its braces (Postfix mystrtokq with CHARS_BRACE). Unbalanced braces are an
 * error message, returned as `error`.
 */
export function splitBraceList(text: string): { items: string[]; error?: string } {
  const items: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ',' || isSpace(text[i]))) i++;
    if (i >= text.length) break;
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth < 0) return { items, error: `unexpected '}' in "${text}"` };
      } else if (depth === 0 && (c === ',' || isSpace(c))) break;
      i++;
    }
    if (depth > 0) return { items, error: `missing '}' in "${text}"` };
    items.push(text.slice(start, i));
  }
  return { items };
}

/** Strip one pair of enclosing braces and the white space inside them: "{ a b }" → "a b". */
export function stripBraces(s: string): string | undefined {
  if (!s.startsWith('{')) return s;
  if (!s.endsWith('}')) return undefined;
  return s.slice(1, -1).trim();
}

/** The warning sink for a table: flags.warn, else the 'dict' logger (Postfix msg_warn). */
export function warnFn(flags: DictOpenFlags | undefined): (msg: string) => void {
  if (flags?.warn) return flags.warn;
  return (msg) => { logger('dict').warn(msg); };
}

/** A table file name: relative names are taken from flags.configDir when given. */
export function tablePath(name: string, flags: DictOpenFlags | undefined): string {
  if (name.includes('\0')) throw new DictError('config', `bad table name: NUL byte in "${name.replace(/\0/g, '\\0')}"`);
  if (!flags?.configDir || isAbsolute(name)) return name;
  return join(flags.configDir, name);
}
