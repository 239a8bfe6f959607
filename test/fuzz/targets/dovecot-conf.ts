/**
 * Fuzz target: dovecot.conf (src/global/dovecot-conf.ts parseDovecotConf): sections, filters,
 * $variables, `<file` values and `!include`/`!include_try` globs. The input is parsed as
 * TMP/dovecot.conf with a few include files beside it; include and `<file` paths are confined
 * to that directory (absolute paths, `..` and `~` are rewritten before parsing) so the fuzzer
 * never reads the machine's own files. Only ConfigError may be thrown.
 */

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../../../src/global/dovecot-conf.ts';
import { ConfigError } from '../../../src/global/config-error.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { filesUnder } from '../fuzz-seeds.ts';

let dir = '';

/** Keeps every path the parser may open inside `dir`. */
export function confine(text: string): string {
  return text.split('\n').map((l) => (/!include|</.test(l) ? l.replace(/\.\./g, '__').replace(/[/~]/g, '_') : l)).join('\n');
}

export const target: FuzzTarget = {
  name: 'dovecot-conf',
  coverage: ['src/global/dovecot-conf.ts'],
  maxLen: 64 * 1024,
  dictionary: ['!include ', '!include_try ', 'conf.d/*.conf', 'inc.conf', 'self.conf', ' = ', ' {', '}', '\n}\n', 'protocol imap {',
    'local 127.0.0.1 {', 'remote 10.0.0.0/8 {', 'service imap-login {', 'inet_listener imap {', 'port = 143', 'passdb {',
    'userdb {', 'driver = passwd-file', 'args = ', 'namespace inbox {', 'mailbox Sent {', 'special_use = \\Sent', 'auto = subscribe',
    '$mail_plugins', 'mail_location = maildir:~/Maildir', '<', '<inc.conf', '"', "'", '#', '\\\n', 'plugin {', 'ssl_cert = <cert.pem'],
  seeds: () => filesUnder('src/global/testdata', /dovecot/),
  setup() {
    dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-dovecot-'));
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'conf.d', '10-a.conf'), 'mail_location = maildir:~/Maildir\nprotocol imap {\n  mail_plugins = $mail_plugins quota\n}\n');
    writeFileSync(join(dir, 'conf.d', '20-b.conf'), 'service lmtp {\n  unix_listener lmtp {\n    mode = 0600\n  }\n}\n');
    writeFileSync(join(dir, 'inc.conf'), 'auth_mechanisms = plain login\n');
    writeFileSync(join(dir, 'self.conf'), '!include self.conf\n');
    writeFileSync(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  },
  teardown() { if (dir) rmSync(dir, { recursive: true, force: true }); },
  run(data) {
    parseDovecotConf(confine(data.toString('latin1')), join(dir, 'dovecot.conf'));
  },
  expected: (e) => e instanceof ConfigError,
};
