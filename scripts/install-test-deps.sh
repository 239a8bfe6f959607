#!/bin/sh
# Install the Debian packages the tests and benchmarks run against, when missing:
# real Postfix and Dovecot (interop and side-by-side comparisons), swaks (an SMTP client nobody
# here wrote), faketime (real Postfix at fixed instants around DST changes; npm run test:clock),
# and the plug-ins real sites run around Postfix and Dovecot (below, one line per kind).
# Their own daemons are never started by the package scripts (policy-rc.d); each test runs them
# itself on loopback with a private configuration.
set -e
PKGS="postfix postfix-pcre postfix-sqlite dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-submissiond swaks libnet-ssleay-perl openssl fetchmail isync offlineimap3 faketime"
# DKIM/SPF/DMARC: independent verifiers and signers (python3-dkim's dkimverify/dkimsign, OpenDKIM)
PKGS="$PKGS python3-dkim opendkim opendkim-tools"
# SRS: postsrsd as the reference for Sender Rewriting Scheme addresses (SRS0/SRS1)
PKGS="$PKGS postsrsd"
# milters and policy services as Postfix sites run them (redis-server: rspamd's greylist module keeps its data there)
PKGS="$PKGS python3-milter rspamd redis-server postgrey postfix-policyd-spf-python"
# Sieve: Pigeonhole is the oracle; sieve-connect a real ManageSieve client
PKGS="$PKGS dovecot-sieve dovecot-managesieved sieve-connect"
# full-text search: Dovecot with an FTS plugin as a reference for bench/fts-bench.ts and test/fts-differential.test.ts
PKGS="$PKGS dovecot-fts-xapian"
# SQL and LDAP tables and user directories, with Postfix's and Dovecot's own drivers as references
PKGS="$PKGS postgresql mariadb-server slapd ldap-utils postfix-pgsql postfix-mysql postfix-ldap dovecot-pgsql dovecot-mysql dovecot-ldap"
# ACME: Let's Encrypt's test CA (pebble, with its challenge test server)
PKGS="$PKGS pebble"
# the web console's browser tests (driven headless by playwright-core, no browser download)
PKGS="$PKGS chromium"
# metrics: a real Prometheus scrapes /metrics in the tests; promtool checks the exposition
PKGS="$PKGS prometheus"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-test-deps: not root; missing Debian packages:$missing (interop tests will be skipped)" >&2
  exit 0
fi
echo "install-test-deps: installing$missing" >&2
# Never let the packages start their daemons on this machine's port 25/143/...
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "postfix postfix/mailname string postern-test.invalid" | debconf-set-selections
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-test-deps: done" >&2
