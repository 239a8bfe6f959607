/**
 * Fuzz regression (target master-cf): a joined `-oNAME=VALUE` option. Postfix's daemons read
 * their command line with getopt, so `smtpd -osmtpd_tls_wrappermode=yes` runs smtpd with
 * smtpd_tls_wrappermode=yes. parseMasterCf copies postconf's pcf_normalize_daemon_args, which
 * looks for an option letter that takes a value anywhere after the second character and so
 * splits the token at the "o" of "wrapperm|o|de": the entry gets the override `de = yes` and
 * no smtpd_tls_wrappermode (postconf -M 3.7 prints the same "-o smtpd_tls_wrapperm -o de=yes"
 * and warns "unused parameter: de=yes", but the daemon Postfix starts does not see that
 * split). A port 465 service written this way would run without TLS wrapper mode.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMasterCf } from '../../../src/global/master-cf.ts';

test('smtpd -osmtpd_tls_wrappermode=yes sets smtpd_tls_wrappermode=yes, as the daemon\'s getopt does', {
}, () => {
  const [e] = parseMasterCf('smtps inet n - y - - smtpd -osmtpd_tls_wrappermode=yes\n', 'master.cf');
  assert.deepEqual(e!.overrides, { smtpd_tls_wrappermode: 'yes' });
  const [v] = parseMasterCf('smtps inet n - y - - smtpd -vosmtpd_tls_wrappermode=yes\n', 'master.cf');
  assert.deepEqual(v!.overrides, { smtpd_tls_wrappermode: 'yes' }, '-v then -o in one cluster');
});
