/**
 * auth-conf-ext - the line format of Dovecot's passdb/userdb args files (dovecot-sql.conf.ext,
 * dovecot-ldap.conf.ext; Dovecot's settings_read_nosection()): `key = value` lines, `#`
 * comments, blank lines, a trailing backslash joining the next line, a value in double quotes
 * taken without them.
 *
 * DESCRIPTION
 *   readConfExt(text, file, each) calls each(key, value, line) for every setting in order (line
 *   is where it starts, for errors). A NUL byte or a line without "=" is a ConfigError naming
 *   the file and line; which keys exist is the caller's to check.
 */
import { ConfigError } from '../global/config-error.ts';

export function readConfExt(text: string, file: string, each: (key: string, value: string, line: number) => void): void {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!.replace(/\r$/, '');
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1).trimEnd() + ' ' + lines[++i]!.replace(/\r$/, '').trim();
    if (line.includes('\0')) throw new ConfigError(file, start, 'NUL byte in line');
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) throw new ConfigError(file, start, `expected "key = value": ${t.slice(0, 80)}`);
    const key = t.slice(0, eq).trim();
    let value = t.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    each(key, value, start);
  }
}
