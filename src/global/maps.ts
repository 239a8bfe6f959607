/**
 * maps - an ordered list of lookup tables, as a Postfix parameter names them
 * (`virtual_alias_maps = hash:/etc/postfix/virtual, regexp:/etc/postfix/virtual.re`), after
 * Postfix global/maps.c.
 *
 * `find(key)` asks each table in order; the first table that has the key wins. A table error
 * (DictError 'retry' or 'config') stops the search and is rethrown — it is never treated as
 * "not found", so a broken table defers mail instead of bouncing it (maps.c:210).
 *
 * As Postfix's dict_open() "surrogate" tables, a table that cannot be opened (missing index,
 * unknown type, bad syntax) does not stop the daemon from starting: it is logged once and every
 * lookup that reaches it throws the open error. `openErrors` lists them for `postern check`.
 *
 * `find(key, { fixedOnly: true })` skips pattern tables (regexp:, pcre:), as Postfix's
 * DICT_FLAG_FIXED does for the partial keys of mail_addr_find() (user@domain without the
 * extension, user, @domain): a regular expression only ever sees the full address.
 *
 * `traceMapsLookups(fn)` makes every lookup of every Maps in this process report (parameter,
 * table, key, value) to `fn`: `postern explain` uses it to show which table line decided, while
 * running the daemons' own code. Daemons never set it (one test of a module variable per lookup).
 */
import { DictError, type Dict, type DictFlags } from '../util/dict.ts';
import { dictOpen } from '../util/dict-registry.ts';
import { splitBraceList, type DictOpenFlags } from '../util/dict-source.ts';
import { logger } from '../util/msg.ts';

const PATTERN_TYPES = new Set(['regexp', 'pcre']);

export interface MapsFindOptions {
  /** Skip pattern tables (Postfix DICT_FLAG_FIXED): used for partial address keys. */
  fixedOnly?: boolean;
}

function surrogate(spec: string, err: DictError): Dict {
  const colon = spec.indexOf(':');
  return {
    type: colon > 0 ? spec.slice(0, colon) : spec,
    name: colon > 0 ? spec.slice(colon + 1) : '',
    lookup: async () => { throw err; },
    close: async () => {},
  };
}

/** One table lookup, as reported to the tracer. */
export interface MapsLookup {
  /** The parameter naming the list (virtual_alias_maps, ...), when known. */
  paramName: string | undefined;
  /** The table asked, as `type:name`. */
  table: string;
  key: string;
  /** undefined: not found (an error is reported as `error`). */
  value: string | undefined;
  error?: string;
}

let tracer: ((l: MapsLookup) => void) | undefined;

/** Report every lookup of this process to `fn` (undefined: stop). For `postern explain`. */
export function traceMapsLookups(fn: ((l: MapsLookup) => void) | undefined): void {
  tracer = fn;
}

export class Maps {
  readonly spec: string;
  readonly paramName: string | undefined;
  readonly dicts: readonly Dict[];
  readonly openErrors: readonly DictError[];

  private constructor(spec: string, paramName: string | undefined, dicts: Dict[], errors: DictError[]) {
    this.spec = spec;
    this.paramName = paramName;
    this.dicts = dicts;
    this.openErrors = errors;
  }

  static async open(spec: string, flags: DictFlags & DictOpenFlags & { paramName?: string } = {}): Promise<Maps> {
    const { paramName, ...dictFlags } = flags;
    const { items, error } = splitBraceList(spec);
    const dicts: Dict[] = [];
    const errors: DictError[] = [];
    const where = paramName ? `${paramName}: ` : '';
    if (error) {
      const e = new DictError('config', `${where}${error}`);
      errors.push(e);
      dicts.push(surrogate(spec, e));
    }
    for (const item of items) {
      try {
        dicts.push(await dictOpen(item, dictFlags));
      } catch (err) {
        if (!(err instanceof DictError)) throw err;
        const e = new DictError(err.kind, `${where}${item}: ${err.message}`);
        (dictFlags.warn ?? ((m: string) => logger('dict').warn(m)))(e.message);
        errors.push(e);
        dicts.push(surrogate(item, e));
      }
    }
    return new Maps(spec, paramName, dicts, errors);
  }

  get isEmpty(): boolean { return this.dicts.length === 0; }

  /** First table with the key wins; an error stops the search (rethrown). Empty key: not found. */
  async find(key: string, opts: MapsFindOptions = {}): Promise<string | undefined> {
    if (key === '') return undefined;
    for (const d of this.dicts) {
      if (opts.fixedOnly && PATTERN_TYPES.has(d.type)) continue;
      if (tracer) {
        const t = tracer;
        const table = `${d.type}:${d.name}`;
        let v: string | undefined;
        try { v = await d.lookup(key); } catch (e) {
          t({ paramName: this.paramName, table, key, value: undefined, error: (e as Error).message });
          throw e;
        }
        t({ paramName: this.paramName, table, key, value: v });
        if (v !== undefined) return v;
        continue;
      }
      const v = await d.lookup(key);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.dicts.map((d) => d.close()));
  }
}
