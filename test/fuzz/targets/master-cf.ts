/**
 * Fuzz target: master.cf (src/global/master-cf.ts parseMasterCf, formatMasterEntry,
 * inetEndpoint). Only ConfigError may be thrown; a parsed table formats back to text that
 * parses to the same services.
 */

import { formatMasterEntry, inetEndpoint, parseMasterCf } from '../../../src/global/master-cf.ts';
import { ConfigError } from '../../../src/global/config-error.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { filesUnder, literalsFrom } from '../fuzz-seeds.ts';
import { InvariantError } from './smtp-address.ts';

export const target: FuzzTarget = {
  name: 'master-cf',
  coverage: ['src/global/master-cf.ts'],
  maxLen: 32 * 1024,
  dictionary: ['smtp', 'inet', 'unix', 'fifo', 'pass', 'unix-dgram', ' n ', ' - ', ' y ', ' 0 ', '100', '60?', 'smtpd',
    '  -o ', 'smtpd_tls_wrappermode=yes', '{', '}', '{ a = b }', '127.0.0.1:', '[::1]:', 'submission', 'pipe', 'flags=Rq',
    'user=vmail', 'argv=/bin/cat ${recipient}', '#', '\n ', '\n\t'],
  seeds: () => [...filesUnder('src/global/testdata/postfix', /master/), ...literalsFrom(['src/global/master-cf.test.ts'], /\b(inet|unix|pass|fifo)\b/)],
  run(data) {
    const entries = parseMasterCf(data.toString('latin1'), 'master.cf', { defaultProcessLimit: 100 });
    for (const e of entries) {
      if (e.type === 'inet') { try { inetEndpoint(e); } catch (err) { if (!(err instanceof ConfigError)) throw err; } }
    }
    // The formatter's output is itself valid master.cf with the same services. (A full round
    // trip is not a property: like postconf -M, it drops an empty {} argument and splits a
    // joined -oNAME=VALUE the way pcf_normalize_daemon_args does; see docs/fuzzing.md.)
    const text = entries.map((e) => formatMasterEntry(e)).join('\n') + '\n';
    const again = parseMasterCf(text, 'master.cf', { defaultProcessLimit: 100 });
    const key = (x: typeof entries): string => JSON.stringify(x.map((e) => [e.service, e.type, e.private, e.unpriv, e.chroot, e.wakeup, e.maxproc, e.command]));
    if (key(again) !== key(entries)) throw new InvariantError(`master.cf format/parse changes the services for ${JSON.stringify(text.slice(0, 200))}`);
  },
  expected: (e) => e instanceof ConfigError,
};
