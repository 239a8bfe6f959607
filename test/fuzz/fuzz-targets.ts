/**
 * fuzz-targets - the registry of fuzz targets: name → module (each exports `target`).
 * One target per parser a client or an administrator's file reaches; see docs/fuzzing.md.
 */

import type { FuzzTarget } from './fuzz-engine.ts';

export const TARGETS: Readonly<Record<string, () => Promise<FuzzTarget>>> = {
  'smtp-address': async () => (await import('./targets/smtp-address.ts')).target,
  'smtp-data': async () => (await import('./targets/smtp-data.ts')).target,
  'imap-command': async () => (await import('./targets/imap-command.ts')).target,
  'mime': async () => (await import('./targets/mime.ts')).target,
  'main-cf': async () => (await import('./targets/main-cf.ts')).target,
  'master-cf': async () => (await import('./targets/master-cf.ts')).target,
  'dovecot-conf': async () => (await import('./targets/dovecot-conf.ts')).target,
  'dict-texthash': async () => (await import('./targets/dict-tables.ts')).texthash,
  'dict-regexp': async () => (await import('./targets/dict-tables.ts')).regexp,
  'dict-cidr': async () => (await import('./targets/dict-tables.ts')).cidr,
  'queue-file': async () => (await import('./targets/queue-file.ts')).target,
  'smtpd-session': async () => (await import('./targets/sessions.ts')).smtpd,
  'lmtpd-session': async () => (await import('./targets/sessions.ts')).lmtpd,
  'pop3d-session': async () => (await import('./targets/sessions.ts')).pop3d,
};

export async function loadTarget(name: string): Promise<FuzzTarget> {
  const load = TARGETS[name];
  if (!load) throw new Error(`unknown fuzz target "${name}"; known: ${Object.keys(TARGETS).join(', ')}`);
  return load();
}
