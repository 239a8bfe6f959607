/**
 * postcheck - `postern check`: check the configuration, like `postfix check`, plus the seed's
 * NEVER rules as errors.
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] check
 *
 * DESCRIPTION
 *   Reads CONFIG_DIR/main.cf, master.cf and dovecot.conf with the same parsers the daemons use
 *   and reports, one line each on stderr:
 *     postern: error: FILE, line N: what is wrong and what to change
 *     postern: warning: ...
 *   - syntax errors in the three files (a missing main.cf or dovecot.conf means defaults; a
 *     missing master.cf means Postern's built-in services);
 *   - lookup tables named in main.cf that cannot be opened (missing file, unknown type, bad
 *     syntax): mail that needs them would be deferred;
 *   - the address-class rules of src/trivial-rewrite/never-rules.ts ("do not list domain X in
 *     BOTH mydestination and virtual_mailbox_domains", a catch-all of a virtual mailbox domain in
 *     virtual_alias_maps, ...);
 *   - *_transport parameters naming a service that master.cf does not define.
 *   Nothing is printed when all is well (as `postfix check`).
 *
 * EXIT STATUS
 *   0 no errors (warnings allowed), 1 at least one error, 64 usage error.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { loadMasterCf, type MasterEntry } from '../global/master-cf.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { authDictTypesFor } from '../lib-auth/dict-auth.ts';
import { Maps } from '../global/maps.ts';
import { isTablePattern, splitList } from '../trivial-rewrite/domain-list.ts';
import { openResolveContext } from '../trivial-rewrite/resolve-context-open.ts';
import { checkNeverRules, type CheckProblem } from '../trivial-rewrite/never-rules.ts';

/** main.cf parameters whose values hold lookup tables Postern uses. */
export const TABLE_PARAMS = [
  // Tables named directly first, so that a table is blamed on the parameter that names it and
  // not on one that merely defaults to it (virtual_alias_domains = $virtual_alias_maps).
  'transport_maps', 'relocated_maps', 'virtual_alias_maps', 'virtual_mailbox_maps',
  'relay_recipient_maps', 'alias_maps', 'local_recipient_maps', 'canonical_maps',
  'sender_canonical_maps', 'recipient_canonical_maps', 'sender_dependent_relayhost_maps',
  'sender_dependent_default_transport_maps', 'virtual_uid_maps', 'virtual_gid_maps',
  'smtpd_sender_login_maps', 'mynetworks',
  'mydestination', 'virtual_alias_domains', 'virtual_mailbox_domains', 'relay_domains',
] as const;

/** A thrown error as a problem; ConfigError's message already names the file and line. */
function fromError(e: unknown): CheckProblem {
  return { severity: 'error', file: '', line: 0, text: e instanceof Error ? e.message : String(e) };
}

/** Tables of main.cf that do not open; errors for parameters set in main.cf, warnings for defaults. */
async function checkTables(cf: MainConfig): Promise<CheckProblem[]> {
  const out: CheckProblem[] = [];
  const seen = new Set<string>();
  for (const param of TABLE_PARAMS) {
    let value: string;
    try { value = cf.get(param); } catch (e) { out.push(fromError(e)); continue; }
    for (const item of splitList(value)) {
      if (!isTablePattern(item) || seen.has(item)) continue;
      seen.add(item);
      const warnings: string[] = [];
      const maps = await Maps.open(item, { paramName: param, ...cf.dictFlags, warn: (m) => warnings.push(m) });
      const explicit = cf.isSet(param);
      for (const err of maps.openErrors) {
        out.push({ severity: explicit ? 'error' : 'warning', file: cf.file, line: cf.lineOf(param),
          text: `${err.message}${explicit ? '' : ' (default value of ' + param + ')'}: mail that needs this table will be deferred` });
      }
      for (const w of warnings) if (!maps.openErrors.some((e) => e.message.includes(w))) out.push({ severity: 'warning', file: '', line: 0, text: w });
      await maps.close();
    }
  }
  return out;
}

/** *_transport parameters must name a master.cf service (qmgr: "connect to transport private/X"). */
function checkTransports(cf: MainConfig, master: MasterEntry[], masterFile: string): CheckProblem[] {
  const out: CheckProblem[] = [];
  const unix = new Set(master.filter((e) => e.type === 'unix').map((e) => e.service));
  for (const param of ['local_transport', 'virtual_transport', 'relay_transport', 'default_transport']) {
    const value = cf.get(param);
    const name = value.split(':')[0]!;
    if (name === '' || unix.has(name)) continue;
    out.push({ severity: 'error', file: cf.file, line: cf.lineOf(param),
      text: `${param} = ${value}: ${masterFile} defines no "${name}" service of type unix; `
        + `mail for that address class would stay deferred. Add the service to master.cf or change ${param}` });
  }
  return out;
}

/** Every check; exported for tests and for the master's start-up check. */
export async function checkConfiguration(configDir: string): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  let cf: MainConfig | undefined;
  try {
    cf = MainConfig.load(configDir).withDictTypes(authDictTypesFor(() => loadDovecotConf(configDir)));
    for (const w of cf.warnings) problems.push({ severity: 'warning', file: '', line: 0, text: w });
  } catch (e) {
    problems.push(fromError(e));
  }

  const masterFile = join(configDir, 'master.cf');
  let master: MasterEntry[] | undefined;
  if (existsSync(masterFile)) {
    try { master = loadMasterCf(configDir); } catch (e) { problems.push(fromError(e)); }
  }

  try {
    const dc = loadDovecotConf(configDir);
    for (const w of dc.warnings) problems.push({ severity: 'warning', file: '', line: 0, text: w });
  } catch (e) {
    problems.push(fromError(e));
  }

  if (!cf) return problems;
  problems.push(...await checkTables(cf));
  try {
    const ctx = await openResolveContext(cf, () => {});
    for (const w of ctx.warnings) problems.push({ severity: 'warning', file: cf.file, line: 0, text: w });
    problems.push(...await checkNeverRules(cf, ctx));
  } catch (e) {
    problems.push(fromError(e));
  }
  if (master && master.length > 0) problems.push(...checkTransports(cf, master, masterFile));
  return problems;
}

export function formatProblem(p: CheckProblem): string {
  const where = p.file ? `${p.file}${p.line > 0 ? `, line ${p.line}` : ''}: ` : '';
  return `postern: ${p.severity}: ${where}${p.text}`;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  if (args.length > 0) {
    process.stderr.write('usage: postern [-c CONFIG_DIR] check\n');
    return 64;
  }
  const problems = await checkConfiguration(ctx.configDir);
  for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
  return problems.some((p) => p.severity === 'error') ? 1 : 0;
}
