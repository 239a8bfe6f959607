/**
 * cli-context - what every subcommand is given: the configuration directory and its own name.
 *
 * The default configuration directory is `/etc/postern` for root and
 * `$XDG_CONFIG_HOME/postern` (else `~/.config/postern`) for other users, so a newcomer can run
 * `postern start` without privileges. `-c DIR` or MAIL_CONFIG (Postfix's variable) override it.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CliContext {
  configDir: string;
  /** true when -c or MAIL_CONFIG named the directory (so an error should not suggest the default). */
  configDirExplicit: boolean;
  /** The subcommand name, for modules serving several (start/stop/reload/status). */
  command: string;
}

export function defaultConfigDir(): string {
  if (process.getuid?.() === 0) return '/etc/postern';
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'postern');
}
