#!/bin/sh
# The one test command (README, .ci/run): type-check, then every test.
#   npm test                 everything
#   npm test -- PATTERN...   only test files whose path contains PATTERN
# Debian packages the interop tests need (real Postfix, Dovecot, swaks) are installed when missing.
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-node.sh
PATH="$PWD/node_modules/.bin:$PATH"; export PATH
sh scripts/install-test-deps.sh
echo "== tsc --noEmit" >&2
tsc --noEmit -p .
files=$(find src test bench -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ $# -gt 0 ]; then
  sel=""
  for f in $files; do for p in "$@"; do case "$f" in *"$p"*) sel="$sel $f";; esac; done; done
  files=$sel
fi
echo "== node --test ($(echo $files | wc -w) files)" >&2
# Bounds, so a hang fails with a name instead of blocking CI: --test-timeout is per test and
# per before/after hook (10 min: the slowest test measured takes 155 s under a moved clock, most
# well under 60 s); --test-force-exit ends a file once its tests and hooks are over (or timed
# out) even if a server it started still holds the event loop.
# shellcheck disable=SC2086
rc=0
node --disable-warning=ExperimentalWarning --test --test-concurrency=2 --test-timeout=600000 --test-force-exit $files || rc=$?
# A tripwire: tests run as root; one that renamed or wrote a file over /dev/null would break
# every later command on this machine. Say so rather than let it pass unnoticed.
if [ ! -c /dev/null ]; then
  echo "test: /dev/null is no longer a character device after the tests ($(ls -l /dev/null 2>&1)); a test replaced it" >&2
  rc=1
fi
exit $rc
