/**
 * cli-context - what every subcommand is given: the configuration directory and its own name.
 *
 * The configuration directory is `-c DIR`, else MAIL_CONFIG (Postfix's variable), else the
 * default of global/config-dir.ts (`/etc/postern` for root, `~/.config/postern` for others).
 */

export interface CliContext {
  configDir: string;
  /** true when -c or MAIL_CONFIG named the directory (so an error should not suggest the default). */
  configDirExplicit: boolean;
  /** The subcommand name, for modules serving several (start/stop/reload/status). */
  command: string;
}
