/**
 * postern - the command-line interface: one command, Postfix/Dovecot-shaped subcommands.
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] [-v] COMMAND [ARGS...]
 *   postern COMMAND [-c CONFIG_DIR] [ARGS...]
 *
 * CONFIG_DIR holds main.cf, master.cf and dovecot.conf (like `postfix -c`). Without -c, the
 * MAIL_CONFIG environment variable (as Postfix) is used, else the default configuration
 * directory (global/config-dir.ts).
 *
 * Each subcommand is a module exporting `main(args, ctx): Promise<number>`; the table below is
 * the whole registry (no self-registration). Modules are imported lazily so `postern map -q` does
 * not pay for loading the IMAP server.
 */
import '../util/uv-threadpool.ts';   // first: sizes the file-system thread pool
import { enableCompileCache } from 'node:module';
import { FatalError, setVerbose } from '../util/msg.ts';
import { defaultConfigDir } from '../global/config-dir.ts';
import type { CliContext } from './cli-context.ts';

type CommandMain = (args: string[], ctx: CliContext) => Promise<number>;
interface Command { summary: string; load: () => Promise<{ main: CommandMain }> }

const COMMANDS: Record<string, Command> = {
  start: { summary: 'start the mail system in the foreground (like postfix start-fg)', load: () => import('./postern-script.ts') },
  stop: { summary: 'stop a running system (SIGTERM to the master)', load: () => import('./postern-script.ts') },
  reload: { summary: 're-read configuration (SIGHUP to the master)', load: () => import('./postern-script.ts') },
  logrotate: { summary: 'rotate maillog_file (as postfix logrotate)', load: () => import('./postern-script.ts') },
  status: { summary: 'is the mail system running?', load: () => import('./postern-script.ts') },
  conf: { summary: 'show or edit main.cf/master.cf parameters (postconf)', load: () => import('./postconf.ts') },
  map: { summary: 'build, query or dump lookup tables (postmap)', load: () => import('./postmap.ts') },
  check: { summary: 'check the configuration (postfix check)', load: () => import('./postcheck.ts') },
  user: { summary: 'manage the user directory (doveadm user/pw)', load: () => import('./doveadm-user.ts') },
  pw: { summary: 'make a password hash (doveadm pw)', load: () => import('./doveadm-user.ts') },
  queue: { summary: 'list, flush, delete, hold, release, requeue or show queued mail (postqueue/postsuper/postcat)', load: () => import('./postqueue.ts') },
  qshape: { summary: 'queue shape: recipient domains by message age (qshape)', load: () => import('./postqueue.ts') },
  init: { summary: "write a working configuration from the seed's Table 2 questions", load: () => import('./postinit.ts') },
  dkim: { summary: 'DKIM signing keys: keygen, list, rotate, remove (opendkim-genkey)', load: () => import('./postdkim.ts') },
  dns: { summary: 'DNS records to publish (MX, A, SPF, DKIM, DMARC, PTR) and --check of what is published', load: () => import('./postdns.ts') },
  cert: { summary: 'the TLS certificate: status, ACME renew [--force], import CERT KEY', load: () => import('./postern-cert.ts') },
  tlsrpt: { summary: 'SMTP TLS Reporting (RFC 8460): print or send the daily reports', load: () => import('./postern-tlsrpt.ts') },
  dmarc: { summary: 'DMARC aggregate reports (RFC 7489): send the daily reports, summarise received ones', load: () => import('./postern-dmarc.ts') },
  newaliases: { summary: 'build the alias_database indexes (newaliases)', load: () => import('./newaliases.ts') },
  alias: { summary: 'build or query aliases(5) tables (postalias)', load: () => import('./newaliases.ts') },
  sendmail: { summary: 'submit mail (sendmail(1): -t -i -f -F -N -R -V -bs -bv -bp)', load: () => import('./sendmail.ts') },
  explain: { summary: 'trace the decisions for an address (class, rewrites, transport, TLS, restrictions) or the path of a queued/delivered message', load: () => import('./postexplain.ts') },
  index: { summary: 'rebuild the full-text search index of a user\'s mailboxes (doveadm fts rescan/index)', load: () => import('./postern-index.ts') },
  sieve: { summary: 'check Sieve scripts or show what one would do with a message (sievec, sieve-test)', load: () => import('./postern-sieve.ts') },
};

function usage(): string {
  const lines = ['usage: postern [-c CONFIG_DIR] [-v] COMMAND [ARGS...]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  return lines.join('\n');
}

/** Pull `-c DIR` and `-v` out of argv wherever they stand before `--`. */
export function parseGlobal(argv: string[]): { configDir?: string; verbose: number; rest: string[] } {
  const rest: string[] = [];
  let configDir: string | undefined;
  let verbose = 0;
  let cmdSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { rest.push(...argv.slice(i)); break; }
    if (a === '-c') {
      const v = argv[++i];
      if (v === undefined) throw new FatalError('option -c requires a CONFIG_DIR argument');
      configDir = v;
    } else if (a.startsWith('-c') && a.length > 2 && !cmdSeen) {
      configDir = a.slice(2);
    } else if (a === '-v' && !cmdSeen) {
      verbose++;
    } else {
      if (!a.startsWith('-')) cmdSeen = true;
      rest.push(a);
    }
  }
  return { configDir, verbose, rest };
}

export async function run(argv: string[]): Promise<number> {
  const g = parseGlobal(argv);
  setVerbose(g.verbose);
  const [name, ...args] = g.rest;
  if (!name || name === 'help' || name === '-h' || name === '--help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 64;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`postern: unknown command "${name}"\n${usage()}\n`);
    return 64; // EX_USAGE
  }
  const ctx: CliContext = {
    configDir: g.configDir ?? process.env.MAIL_CONFIG ?? defaultConfigDir(),
    configDirExplicit: g.configDir !== undefined || process.env.MAIL_CONFIG !== undefined,
    command: name,
  };
  const mod = await cmd.load();
  return mod.main(args, ctx);
}

if (import.meta.main) {
  // Cache compiled code between runs: CLI start-up drops from ~100 ms to ~30 ms.
  enableCompileCache?.();
  run(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err: unknown) => {
      if (err instanceof FatalError) {
        process.stderr.write(`postern: fatal: ${err.message}\n`);
      } else {
        process.stderr.write(`postern: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      }
      process.exitCode = 1;
    },
  );
}
