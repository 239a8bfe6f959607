/**
 * sieve-location - where a user's Sieve scripts live: THE parser of Pigeonhole's
 * `plugin { sieve = ... }` location (doc: Pigeonhole "Sieve Script Locations"), for the
 * ManageSieve server (managesieve/) and for delivery (lib-sieve), so that both find the same
 * files, and real Dovecot finds what Postern wrote.
 *
 *   sieve = file:~/sieve;active=~/.dovecot.sieve          (Pigeonhole's usual setting)
 *   sieve = ~/.dovecot.sieve                               (a single script file, no storage)
 *   sieve = file:/var/sieve/%d/%n;active=/var/sieve/%d/%n/.active
 *
 * The location is `[TYPE:]PATH[;OPTION=VALUE...]`. Only the `file` type (the default) is known.
 * PATH names a directory (the script storage: NAME.sieve files, a tmp/ for uploads) or, when it
 * is not a directory and no `active=` is given, the one script file. `active=` is the symlink to
 * the active script (`~/.dovecot.sieve -> sieve/NAME.sieve`, relative, as Pigeonhole writes it).
 * A leading `~` is the user's home; `%u %n %d %h %%` and `%{user} %{username} %{domain}
 * %{home}` are expanded. With no `sieve` setting the location is Pigeonhole's default
 * (`file:~/sieve;active=~/.dovecot.sieve`, the layout of Dovecot 2.3's example configuration).
 *
 * A user without a home directory cannot use `~` (Pigeonhole: "home directory not set"):
 * SieveLocationError names the setting to change.
 */
import { isAbsolute, normalize } from 'node:path';

export class SieveLocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SieveLocationError';
  }
}

export const DEFAULT_SIEVE_LOCATION = 'file:~/sieve;active=~/.dovecot.sieve';

export interface SieveLocation {
  /** The script storage directory (NAME.sieve files), or the single script file. */
  path: string;
  /** The active script's symlink; undefined when the location is a single file. */
  active?: string;
  /** Other options as given (`name=`, `bindir=`, ...). */
  options: Record<string, string>;
}

function expand(v: string, user: string, home: string, setting: string): string {
  const at = user.lastIndexOf('@');
  const n = at < 0 ? user : user.slice(0, at);
  const d = at < 0 ? '' : user.slice(at + 1);
  let out = v;
  if (out === '~' || out.startsWith('~/')) {
    if (!home) throw new SieveLocationError(`${setting}: user ${user} has no home directory for "~" (set userdb home, or an absolute path in ${setting})`);
    out = home + out.slice(1);
  }
  out = out.replace(/%(\{[a-z]+\}|[Ll]?[undh%])/g, (_m, k: string) => {
    const lower = k.startsWith('L') || k.startsWith('l');
    const key = k.replace(/^[Ll]/, '');
    let r: string;
    switch (key) {
      case 'u': case '{user}': r = user; break;
      case 'n': case '{username}': r = n; break;
      case 'd': case '{domain}': r = d; break;
      case 'h': case '{home}':
        if (!home) throw new SieveLocationError(`${setting}: user ${user} has no home directory for %h`);
        r = home; break;
      case '%': r = '%'; break;
      default: throw new SieveLocationError(`${setting}: unknown variable %${k}`);
    }
    return lower ? r.toLowerCase() : r;
  });
  if (!isAbsolute(out)) throw new SieveLocationError(`${setting}: "${v}" is not an absolute path for user ${user}`);
  if (out.split('/').includes('..')) throw new SieveLocationError(`${setting}: "${v}" expands to a path with ".." for user ${user}`);
  return normalize(out);
}

/**
 * The location of `user`'s scripts from the `sieve` setting (undefined: Pigeonhole's default).
 * `setting` names it in errors ("plugin { sieve }").
 */
export function parseSieveLocation(spec: string | undefined, user: string, home: string, setting = 'plugin { sieve }'): SieveLocation {
  const raw = (spec ?? '').trim() || DEFAULT_SIEVE_LOCATION;
  const [head, ...opts] = raw.split(';');
  let path = head!.trim();
  const m = /^([a-z][a-z0-9-]*):(.*)$/i.exec(path);
  if (m) {
    if (m[1]!.toLowerCase() !== 'file') throw new SieveLocationError(`${setting} = ${raw}: storage type "${m[1]}" is not supported (use file:)`);
    path = m[2]!;
  }
  if (!path) throw new SieveLocationError(`${setting} = ${raw}: no path`);
  const options: Record<string, string> = {};
  for (const o of opts) {
    const eq = o.indexOf('=');
    if (eq < 0) { if (o.trim()) options[o.trim().toLowerCase()] = ''; continue; }
    options[o.slice(0, eq).trim().toLowerCase()] = o.slice(eq + 1).trim();
  }
  const loc: SieveLocation = { path: expand(path, user, home, setting), options };
  if (options.active) loc.active = expand(options.active, user, home, setting);
  return loc;
}
