/**
 * mail-attribute - mailbox attributes (IMAP METADATA, RFC 5464) stored where Dovecot 2.3 keeps
 * them with `mail_attribute_dict = file:%h/dovecot-attributes`: Dovecot's file dict
 * (lib-dict/dict-file.c), one text file of `key\nvalue\n` pairs, both tab-escaped
 * (\001 → \0011, \t → \001t, \r → \001r, \n → \001n), changed under the `<file>.lock` dotlock by
 * writing the whole new file into the lock and renaming it over (file_dotlock_replace). Keys are
 * `priv/<mailbox GUID>/<key>` and `shared/<mailbox GUID>/<key>` (index-attribute.c), the GUID
 * being the one in the mailbox's dovecot-uidlist header, so Dovecot and Postern read each
 * other's attributes. Keys are stored lower-case, as Dovecot's imap-metadata does.
 *
 *   const a = user.attributes('file:%h/dovecot-attributes');
 *   await a.set('INBOX', [{ type: 'private', key: 'comment', value: 'x' }]);   // all or nothing
 *   await a.get('INBOX', 'private', 'comment') → 'x';  a.list('INBOX', 'shared', 'vendor/') → [[key, value]]
 *
 * ERRORS: MailError (NOTFOUND for a missing mailbox, TEMP for I/O and lock timeouts).
 */
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import { MailError, mailErrorFromErrno } from './mail-error.ts';
import { dotlockCreate } from './maildir/maildir-dotlock.ts';

export type AttributeType = 'private' | 'shared';

export interface AttributeChange {
  type: AttributeType;
  /** Without the /private or /shared prefix, e.g. `comment`, `vendor/x/y`. */
  key: string;
  /** undefined: remove. */
  value: string | undefined;
}

export interface MailAttributes {
  get(mailbox: string, type: AttributeType, key: string): Promise<string | undefined>;
  /** Every key of the mailbox and type starting with `prefix`, sorted, with its value. */
  list(mailbox: string, type: AttributeType, prefix: string): Promise<[string, string][]>;
  /** All the changes or none (one rewrite of the file). */
  set(mailbox: string, changes: readonly AttributeChange[]): Promise<void>;
  /** Every attribute of the mailbox removed (DELETE, as Dovecot does). */
  removeAll(mailbox: string): Promise<void>;
}

/** Largest attribute file written (bytes): a client cannot grow it without bound. */
export const ATTRIBUTE_FILE_MAX = 64 * 1024 * 1024;

const DICT_TYPE: Record<AttributeType, string> = { private: 'priv/', shared: 'shared/' };

/** Dovecot's str_tabescape / str_tabunescape. */
export function tabEscape(s: string): string {
  return s.replace(/[\x01\t\r\n]/g, (c) => '\x01' + ({ '\x01': '1', '\t': 't', '\r': 'r', '\n': 'n' } as Record<string, string>)[c]!);
}
export function tabUnescape(s: string): string {
  return s.replace(/\x01(.)/gs, (_, c: string) => ({ '1': '\x01', t: '\t', r: '\r', n: '\n' } as Record<string, string>)[c] ?? c);
}

/** Parses a file dict: pairs of lines, a last key without value is dropped (Dovecot's reader). */
export function parseFileDict(text: string): Map<string, string> {
  const lines = text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) out.set(tabUnescape(lines[i]!), tabUnescape(lines[i + 1]!));
  return out;
}

export function formatFileDict(map: ReadonlyMap<string, string>): string {
  let s = '';
  for (const [k, v] of map) s += `${tabEscape(k)}\n${tabEscape(v)}\n`;
  return s;
}

/** A file dict (Dovecot `file:PATH`), read fresh for every operation (other processes write it). */
export class FileDict {
  readonly path: string;
  constructor(path: string) { this.path = path; }

  async read(): Promise<Map<string, string>> {
    try { return parseFileDict(await fsp.readFile(this.path, 'utf8')); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw mailErrorFromErrno(e, `read(${this.path})`);
    }
  }

  /** Applies `fn` to the current contents under the dotlock and writes the result. */
  async update(fn: (m: Map<string, string>) => void): Promise<void> {
    await fsp.mkdir(dirname(this.path), { recursive: true, mode: 0o700 }).catch(() => {});
    const lock = await dotlockCreate(this.path, { staleSecs: 60, timeoutSecs: 120 });
    try {
      const m = await this.read();
      fn(m);
      const text = formatFileDict(m);
      if (Buffer.byteLength(text) > ATTRIBUTE_FILE_MAX) throw new MailError('LIMIT', 'Metadata storage is full.');
      await lock.replace(text);
    } catch (e) {
      await lock.release();
      throw e instanceof MailError ? e : mailErrorFromErrno(e, `write(${this.path})`);
    }
  }
}

/** MailAttributes on a file dict; `guidOf` gives the mailbox GUID (creating it if needed). */
export class FileDictAttributes implements MailAttributes {
  private readonly dict: FileDict;
  private readonly guidOf: (mailbox: string) => Promise<string>;
  constructor(path: string, guidOf: (mailbox: string) => Promise<string>) {
    this.dict = new FileDict(path);
    this.guidOf = guidOf;
  }

  private async prefix(mailbox: string, type: AttributeType): Promise<string> {
    return `${DICT_TYPE[type]}${await this.guidOf(mailbox)}/`;
  }

  async get(mailbox: string, type: AttributeType, key: string): Promise<string | undefined> {
    const p = await this.prefix(mailbox, type);
    return (await this.dict.read()).get(p + key.toLowerCase());
  }

  async list(mailbox: string, type: AttributeType, prefix: string): Promise<[string, string][]> {
    const mp = await this.prefix(mailbox, type);
    const p = mp + prefix.toLowerCase();
    const out: [string, string][] = [];
    for (const [k, v] of await this.dict.read()) if (k.startsWith(p)) out.push([k.slice(mp.length), v]);
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  async removeAll(mailbox: string): Promise<void> {
    const pre = [await this.prefix(mailbox, 'private'), await this.prefix(mailbox, 'shared')];
    const m = await this.dict.read();
    if (![...m.keys()].some((k) => pre.some((p) => k.startsWith(p)))) return;
    await this.dict.update((mm) => { for (const k of [...mm.keys()]) if (pre.some((p) => k.startsWith(p))) mm.delete(k); });
  }

  async set(mailbox: string, changes: readonly AttributeChange[]): Promise<void> {
    const pre = { private: await this.prefix(mailbox, 'private'), shared: await this.prefix(mailbox, 'shared') };
    await this.dict.update((m) => {
      for (const c of changes) {
        const k = pre[c.type] + c.key.toLowerCase();
        if (c.value === undefined) m.delete(k); else m.set(k, c.value);
      }
    });
  }
}

/** `file:PATH` of mail_attribute_dict, `%h` and a leading `~` as the user's home. */
export function attributeDictPath(uri: string, home: string): string {
  const m = /^file:(.*)$/.exec(uri.trim());
  if (!m || m[1] === '') throw new MailError('PARAMS', `mail_attribute_dict = ${uri}: only file:PATH is supported`);
  if (/:lock=/.test(m[1]!)) {
    // Dovecot would lock with fcntl/flock, Postern with the dotlock: they would not exclude each other
    throw new MailError('PARAMS', `mail_attribute_dict = ${uri}: remove the :lock= parameter (Postern and Dovecot must both use the dotlock, Dovecot's default)`);
  }
  let p = m[1]!.replace(/%h/g, home).replace(/%%/g, '%');
  if (p.startsWith('~/')) p = home + p.slice(1);
  if (/%./.test(p)) throw new MailError('PARAMS', `mail_attribute_dict = ${uri}: only %h is expanded`);
  return p;
}
