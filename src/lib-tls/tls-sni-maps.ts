/**
 * tls-sni-maps - Postfix's tls_server_sni_maps for smtpd: the lookup table is opened on the
 * first SNI name a client sends (Maps.open is asynchronous, the secure context is built at
 * start-up), then used by postfixSniLookup() (tls-provider.ts) for the search order and the
 * key+chain files. A table that cannot be opened is logged once per lookup and the default
 * certificate is used, as a lookup error is.
 */
import { Maps } from '../global/maps.ts';
import type { TlsServerFiles } from './tls-server.ts';
import { postfixSniLookup, type TlsContexts } from './tls-provider.ts';

export function postfixSniMaps(
  spec: string,
  configDir: string | undefined,
  base: Omit<TlsServerFiles, 'certFile' | 'keyFile' | 'chainFiles'>,
): NonNullable<TlsContexts['lookup']> | undefined {
  if (!spec.trim()) return undefined;
  let maps: Promise<Maps> | undefined;
  const find = async (key: string): Promise<string | undefined> => {
    maps ??= Maps.open(spec, { paramName: 'tls_server_sni_maps', ...(configDir ? { configDir } : {}) });
    return (await maps).find(key);
  };
  const inner = postfixSniLookup(find, base);
  // On reload the table is opened again (its file may have changed), the contexts rebuilt.
  return { find: inner.find, flush: () => { inner.flush(); maps = undefined; } };
}
