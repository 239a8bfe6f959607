/**
 * master-config - the three configuration files the master reads, loaded together:
 * CONFIG_DIR/main.cf (MainConfig), CONFIG_DIR/master.cf (the service table) and
 * CONFIG_DIR/dovecot.conf (the Dovecot side). Any error is a ConfigError naming file and line;
 * the caller decides whether that is fatal (start) or keeps the running configuration (reload).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { loadMasterCf, type MasterEntry } from '../global/master-cf.ts';
import { loadDovecotConf, type DovecotConfig } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';

export interface MasterConfigSet {
  configDir: string;
  main: MainConfig;
  masterCf: MasterEntry[];
  dovecot: DovecotConfig;
}

/** The files that make a directory a Postern configuration directory. */
export const CONFIG_FILES = ['main.cf', 'master.cf', 'dovecot.conf'] as const;

/** True when CONFIG_DIR holds at least one of main.cf, master.cf, dovecot.conf. */
export function hasConfig(configDir: string): boolean {
  return CONFIG_FILES.some((f) => existsSync(join(configDir, f)));
}

export function loadConfigSet(configDir: string): MasterConfigSet {
  const main = MainConfig.load(configDir);
  const limit = Number(main.get('default_process_limit'));
  const masterCf = loadMasterCf(configDir, Number.isFinite(limit) && limit > 0 ? { defaultProcessLimit: limit } : {});
  const dovecot = loadDovecotConf(configDir);
  // main.cf's tables may be auth: tables, answered by dovecot.conf's user directory
  return { configDir, main: main.withDictTypes(authDictTypesFor(() => dovecot)), masterCf, dovecot };
}
