/**
 * config-error - the one error type for configuration files (main.cf, master.cf, dovecot.conf,
 * lookup-table sources). It always names the file and line, like Postfix's
 * "/etc/postfix/main.cf, line 12: missing '=' after attribute name: ..." so the administrator
 * knows what to change.
 */
export class ConfigError extends Error {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string) {
    super(line > 0 ? `${file}, line ${line}: ${message}` : `${file}: ${message}`);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
  }
}
