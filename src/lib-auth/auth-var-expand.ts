/**
 * auth-var-expand - Dovecot's %-variables in auth settings and userdb fields
 * (doc: "Variables", lib/var-expand.c), the subset the user directory needs:
 *
 *   %u %{user}      full user name (user@domain)
 *   %n %{username}  user part (before the last '@'; the whole name when there is none)
 *   %d %{domain}    domain part ('' when there is none)
 *   %h %{home}      home directory (userdb fields only)
 *   %s %{service}   the protocol asking: imap, pop3, sieve, smtp, lmtp ('' when not known)
 *   %r %{rip}       the client's IP address ('' when not known)
 *   %l %{lip}       the local IP address the client connected to ('' when not known)
 *      %{rport} %{lport}  the client's and the local port
 *   %%              a literal '%'
 * %s %r %l select e.g. a passwd-file per protocol (`args = /etc/dovecot/proxy.%s`), as in
 * Dovecot's auth request variables (auth-request-var-expand.c).
 * Modifiers as in Dovecot 2.3: %L (lower case) and %U (upper case) before the letter, e.g. %Lu, %Ld.
 *
 * An unknown variable is an error naming it (Dovecot logs "Unknown variable"), never silently ''.
 */
export interface AuthVars {
  user: string;
  home?: string;
  service?: string | undefined;
  remoteIp?: string | undefined;
  localIp?: string | undefined;
  remotePort?: number | undefined;
  localPort?: number | undefined;
}

export class VarExpandError extends Error {
  override name = 'VarExpandError';
}

/** Split a login name as Dovecot does for %n/%d: at the last '@'. */
export function splitUser(user: string): { local: string; domain: string } {
  const at = user.lastIndexOf('@');
  return at < 0 ? { local: user, domain: '' } : { local: user.slice(0, at), domain: user.slice(at + 1) };
}

const LONG: Record<string, string> = {
  user: 'u', username: 'n', domain: 'd', home: 'h', service: 's', rip: 'r', lip: 'l', rport: '\x01', lport: '\x02',
};

/** The value of a one-letter variable, or undefined when unknown. */
export function varValue(letter: string, vars: AuthVars): string | undefined {
  const { local, domain } = splitUser(vars.user);
  switch (letter) {
    case 'u': return vars.user;
    case 'n': return local;
    case 'd': return domain;
    case 'h': return vars.home ?? '';
    case 's': return vars.service ?? '';
    case 'r': return vars.remoteIp ?? '';
    case 'l': return vars.localIp ?? '';
    case '\x01': return vars.remotePort === undefined ? '' : String(vars.remotePort);
    case '\x02': return vars.localPort === undefined ? '' : String(vars.localPort);
    default: return undefined;
  }
}

/** Expand `template` into one string; throws VarExpandError for an unknown variable. */
export function expandVars(template: string, vars: AuthVars): string {
  return expandParts(template, vars).map((p) => (typeof p === 'string' ? p : p.value)).join('');
}

/** Literal text and substituted values, in order (db-sql binds the values as SQL parameters). */
export function expandParts(template: string, vars: AuthVars): (string | { value: string })[] {
  const out: (string | { value: string })[] = [];
  let lit = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c !== '%') { lit += c; continue; }
    let j = i + 1;
    if (template[j] === '%') { lit += '%'; i = j; continue; }
    let mod = '';
    if (template[j] === 'L' || template[j] === 'U') { mod = template[j]!; j++; }
    let letter: string | undefined;
    if (template[j] === '{') {
      const end = template.indexOf('}', j);
      if (end < 0) throw new VarExpandError(`unterminated %{ in "${template}"`);
      const name = template.slice(j + 1, end);
      letter = LONG[name];
      if (!letter) throw new VarExpandError(`unknown variable %{${name}} in "${template}"`);
      j = end;
    } else {
      letter = template[j];
    }
    const v = letter === undefined ? undefined : varValue(letter, vars);
    if (v === undefined) throw new VarExpandError(`unknown variable %${mod}${template[j] ?? ''} in "${template}"`);
    if (lit) { out.push(lit); lit = ''; }
    out.push({ value: mod === 'L' ? v.toLowerCase() : mod === 'U' ? v.toUpperCase() : v });
    i = j;
  }
  if (lit) out.push(lit);
  return out;
}

/** true when the template uses any %-variable (so e.g. a passwd-file path depends on the user). */
export function hasVars(template: string): boolean {
  return /%(?!%)/.test(template.replace(/%%/g, ''));
}
