#!/bin/sh
# The long fuzzing run (issue 8, docs/fuzzing.md):
#   npm run fuzz -- TARGET|all [--minutes N] [--seed S] [--out DIR] [--no-coverage]
#   sh scripts/fuzz.sh smtp-address --minutes 10
# Runs in-process, coverage-guided by V8 block coverage; findings are written to --out
# (default $TMPDIR/postern-fuzz/TARGET). Exit status 1 when a target had a finding.
# The heap is capped so a memory blow-up ends the run instead of the machine.
set -e
cd "$(dirname "$0")/.."
PATH="$PWD/node_modules/.bin:$PATH"; export PATH
exec node --disable-warning=ExperimentalWarning --max-old-space-size=${POSTERN_FUZZ_HEAP_MB:-1024} test/fuzz/fuzz-main.ts "$@"
