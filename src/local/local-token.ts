/**
 * local-token - the aliases(5) language shared by alias_maps values, ~/.forward files and
 * :include: files (Postfix local/token.c + tok822 parsing), and the aliases(5) source file
 * format for `postern newaliases` (Postfix postalias).
 *
 * A value is a comma (or newline) separated list of targets:
 *   user, user@domain      an address (re-expanded if local, else forwarded)
 *   \user                  the user's mailbox, no further alias or .forward expansion
 *   /file/name             append to a file (mbox format); a name ending in / is a Maildir
 *   |command               pipe to a command (run by /bin/sh -c)
 *   :include:/file/name    read more targets from a file
 * Double quotes group text with commas or spaces ("|cmd -x, y" is one target; the quotes are
 * removed, as Postfix unquotes a quoted command or file name). `#` starts a comment only at the
 * beginning of a line in .forward/:include: files.
 *
 * aliases(5) source: `name: value`, continuation lines start with white space, `#` comments;
 * the name is folded to lower case (postalias -f is not the default: names are case-insensitive).
 */

export type AliasTarget =
  | { kind: 'address'; address: string; noExpand: boolean }
  | { kind: 'file'; path: string }
  | { kind: 'command'; command: string }
  | { kind: 'include'; path: string };

export class AliasSyntaxError extends Error {}

/** Split a value into targets (commas outside double quotes; newline = comma). */
export function splitTargets(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && quoted && i + 1 < value.length) { cur += value[++i]; continue; }
    if (c === '"') { quoted = !quoted; continue; }
    if (!quoted && (c === ',' || c === '\n')) { if (cur.trim()) out.push(cur.trim()); cur = ''; continue; }
    cur += c;
  }
  if (quoted) throw new AliasSyntaxError(`unbalanced double quote in "${value}"`);
  if (cur.trim()) out.push(cur.trim());
  return out;
}

export function parseTarget(t: string): AliasTarget {
  if (t.includes('\0')) throw new AliasSyntaxError('NUL byte in alias target');
  if (t.startsWith('|')) {
    const command = t.slice(1).trim();
    if (!command) throw new AliasSyntaxError(`empty command in "${t}"`);
    return { kind: 'command', command };
  }
  if (t.toLowerCase().startsWith(':include:')) {
    const path = t.slice(9).trim();
    if (!path.startsWith('/')) throw new AliasSyntaxError(`:include: needs an absolute file name: "${t}"`);
    return { kind: 'include', path };
  }
  if (t.startsWith('/')) return { kind: 'file', path: t };
  if (t.startsWith('\\')) return { kind: 'address', address: t.slice(1), noExpand: true };
  const addr = t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
  if (/\s/.test(addr) || addr === '') throw new AliasSyntaxError(`bad address syntax: "${t}"`);
  return { kind: 'address', address: addr, noExpand: false };
}

/** Targets of a .forward or :include: file: comment lines dropped, then as an alias value. */
export function parseTargetFile(text: string): AliasTarget[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  return splitTargets(lines.join('\n')).map(parseTarget);
}

export interface AliasEntry { name: string; value: string; line: number }

/** Parse an aliases(5) file; problems are "file:line: text" strings (the entry is skipped). */
export function parseAliasesSource(text: string, file: string): { entries: AliasEntry[]; errors: string[] } {
  const entries: AliasEntry[] = [];
  const errors: string[] = [];
  const lines = text.split('\n');
  let cur: { text: string; line: number } | undefined;
  const flush = () => {
    if (!cur) return;
    const t = cur.text.replace(/\r$/, '');
    const colon = t.indexOf(':');
    // The name ends at the first ':' not inside double quotes (aliases(5) "name": value).
    let name: string;
    let value: string;
    if (t.startsWith('"')) {
      const close = t.indexOf('"', 1);
      if (close < 0 || t[close + 1] !== ':') { errors.push(`${file}:${cur.line}: missing ':' after quoted alias name`); cur = undefined; return; }
      name = t.slice(1, close); value = t.slice(close + 2);
    } else {
      if (colon <= 0) { errors.push(`${file}:${cur.line}: need "name: value" format (no ':' found)`); cur = undefined; return; }
      name = t.slice(0, colon).trim(); value = t.slice(colon + 1);
    }
    value = value.trim();
    if (name === '' || /\s/.test(name)) errors.push(`${file}:${cur.line}: bad alias name "${name}"`);
    else if (value === '') errors.push(`${file}:${cur.line}: alias "${name}" has an empty value`);
    else {
      try { splitTargets(value).map(parseTarget); entries.push({ name: name.toLowerCase(), value, line: cur.line }); } catch (e) { errors.push(`${file}:${cur.line}: ${(e as Error).message}`); }
    }
    cur = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.includes('\0')) { flush(); errors.push(`${file}:${i + 1}: NUL byte in line`); continue; }
    if (/^\s*#/.test(l) || l.trim() === '') { continue; }
    if (/^[ \t]/.test(l)) {
      if (!cur) { errors.push(`${file}:${i + 1}: continuation line without a preceding alias`); continue; }
      cur.text += ' ' + l.trim();
      continue;
    }
    flush();
    cur = { text: l, line: i + 1 };
  }
  flush();
  return { entries, errors };
}
