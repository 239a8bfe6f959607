#!/bin/sh
# npm run bench [-- --rounds N] [-- SCENARIO...]: the side-by-side benchmarks against real Postfix
# and Dovecot (bench/run.ts; see bench/README.md). Installs the Debian packages they need when
# missing (as the tests do), then runs every scenario or those named.
#   npm run bench                          everything, 5 rounds
#   npm run bench -- smtp-accept lookup    only these (prefix match on the name)
#   npm run bench -- --list                the scenarios and what the missing ones need
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-node.sh
PATH="$PWD/node_modules/.bin:$PATH"; export PATH
sh scripts/install-test-deps.sh
exec node --disable-warning=ExperimentalWarning bench/run.ts "$@"
