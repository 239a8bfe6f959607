/**
 * dict - CONTRACT 2 of DESIGN.md: one lookup table, opened as `type:name` (Postfix dict(3)).
 *
 * A lookup has three outcomes, as in Postfix's util/dict.h (DICT_ERR_NONE / RETRY / CONFIG):
 *  - a string: the value found;
 *  - undefined: not found (no error);
 *  - a thrown DictError: 'retry' (temporary: the caller defers, 4xx) or 'config' (the table is
 *    broken: the caller defers and logs a warning naming the file and line). Never "not found".
 *
 * Tables see the key exactly as given: the Postfix search order for addresses
 * (user+ext@domain, user@domain, user+ext, user, @domain) is done once, above the table types,
 * in src/global/maps.ts — never inside a table.
 *
 * Keys are folded to lower case by the caller when DictFlags.foldCase is set (Postfix's
 * DICT_FLAG_FOLD_FIX, the default for all tables except regexp/pcre, which match as given).
 */

export type DictErrorKind = 'retry' | 'config';

export class DictError extends Error {
  readonly kind: DictErrorKind;
  constructor(kind: DictErrorKind, message: string) {
    super(message);
    this.name = 'DictError';
    this.kind = kind;
  }
}

export interface DictFlags {
  /** Postfix's DICT_FLAG_FOLD_FIX: lower-case the key before lookup (default true). */
  foldCase?: boolean;
  /** The config directory, for relative table names and e.g. sqlite/pgsql parameter files. */
  configDir?: string;
}

export interface Dict {
  /** e.g. "texthash" */
  readonly type: string;
  /** e.g. "/etc/postfix/virtual" */
  readonly name: string;
  /** undefined = not found. Throws DictError('retry'|'config'). */
  lookup(key: string): Promise<string | undefined>;
  /** Iterate all (key, value) pairs, where the type can (postmap -s). */
  entries?(): AsyncIterable<[string, string]>;
  close(): Promise<void>;
}
