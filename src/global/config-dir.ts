/**
 * config-dir - the default configuration directory (Postfix's DEF_CONFIG_DIR of
 * global/mail_params.h, which is /etc/postfix), used when neither `-c DIR` nor the MAIL_CONFIG
 * environment variable names one (cli/postern.ts, cli/sendmail.ts), and against which
 * master/default-config.ts decides where mail data lives.
 *
 * It is `/etc/postern` for root and `$XDG_CONFIG_HOME/postern` (else `~/.config/postern`) for
 * other users, so a newcomer can run `postern start` without privileges.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultConfigDir(): string {
  if (process.getuid?.() === 0) return '/etc/postern';
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'postern');
}
