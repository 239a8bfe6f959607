/**
 * Fuzz target: main.cf (src/global/mail-conf.ts): MainConfig.parse, then every Postfix
 * parameter read the way the daemons read it (get/list/bool/int/time/size by its type), so
 * $name expansion, ${name?...} conditionals, recursion and the numeric/time/size syntaxes all
 * run. Only ConfigError and MacroError (the administrator's error messages) may be thrown.
 */

import { MainConfig } from '../../../src/global/mail-conf.ts';
import { MacroError } from '../../../src/util/mac-expand.ts';
import { PARAMS } from '../../../src/global/mail-params.ts';
import { ConfigError } from '../../../src/global/config-error.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { filesUnder, literalsFrom } from '../fuzz-seeds.ts';

const NAMES = ['myhostname', 'mydomain', 'myorigin', 'mydestination', 'mynetworks', 'relay_domains', 'virtual_mailbox_domains',
  'virtual_alias_maps', 'smtpd_recipient_restrictions', 'message_size_limit', 'queue_directory', 'maximal_queue_lifetime',
  'smtpd_tls_security_level', 'recipient_delimiter', 'compatibility_level', 'alias_maps', 'inet_interfaces'];

export const target: FuzzTarget = {
  name: 'main-cf',
  coverage: ['src/global/mail-conf.ts', 'src/util/mac-expand.ts', 'src/global/mail-params.ts',
    'src/global/mail-params-service.ts', 'src/global/mail-params-computed.ts'],
  maxLen: 32 * 1024,
  dictionary: [...NAMES, ' = ', '=', '$', '${', '}', '$(', ')', '?', ':', '?{', '}:{', '==', '!=', '{', '#', '\n ', '\n\t',
    ',', '10s', '2d', '1w', '10k', '100m', 'yes', 'no', 'hash:/etc/postfix/x', '${compatibility_level} <level {3.6} ?'],
  seeds: () => [...filesUnder('src/global/testdata/postfix'),
    ...literalsFrom(['src/global/mail-conf.test.ts'], /=/)],
  run(data) {
    const c = MainConfig.parse(data.toString('latin1'), 'main.cf', '/nonexistent-postern-fuzz');
    const names = new Set([...NAMES, ...c.explicitNames()]);
    for (const p of PARAMS) names.add(p.name);
    for (const name of names) {
      try {
        const spec = PARAMS.find((p) => p.name === name);
        switch (spec?.type) {
          case 'list': c.list(name); break;
          case 'bool': c.bool(name); break;
          case 'int': c.int(name); break;
          case 'time': c.time(name); break;
          case 'size': c.size(name); break;
          default: c.get(name);
        }
      } catch (e) {
        if (!(e instanceof ConfigError || e instanceof MacroError)) throw e;
      }
    }
  },
  expected: (e) => e instanceof ConfigError || e instanceof MacroError,
};
