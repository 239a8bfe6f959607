/**
 * resolve-context-open - the production adapter of resolve-context.ts: build the resolver's
 * context from a MainConfig, with tables opened through src/global/maps.ts (Maps) and searched
 * with src/global/mail-addr-find.ts (Postfix mail_addr_find()). Kept apart from the pure core so
 * that unit tests can build a context from plain objects.
 */
import { Maps } from '../global/maps.ts';
import type { DictOpenFlags } from '../util/dict-source.ts';
import { mailAddrFind } from '../global/mail-addr-find.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { buildResolveContext, type ResolveContext, type TableOpener } from './resolve-context.ts';

/** Tables as Postfix opens them: a list per parameter, first match wins, errors rethrown. */
export function mapsTableOpener(configDir?: string, warn?: (text: string) => void, types?: DictOpenFlags['types']): TableOpener {
  return {
    async openMaps(spec, paramName) {
      const m = await Maps.open(spec, { paramName, ...(configDir ? { configDir } : {}), ...(warn ? { warn } : {}), ...(types ? { types } : {}) });
      return m.isEmpty ? undefined : m;
    },
    async addrFind(maps, address, opts) {
      return (await mailAddrFind(maps as Maps, address, opts))?.value;
    },
  };
}

/** Build the resolver context once from main.cf (trivial-rewrite's resolve_init()). */
export function openResolveContext(config: MainConfig, warn?: (text: string) => void): Promise<ResolveContext> {
  return buildResolveContext(config, mapsTableOpener(config.configDir, warn, config.dictFlags.types), config.configDir);
}
