#!/bin/sh
# The hostile-client soak (issue 13), not part of `npm test`:
#   npm run soak [-- --minutes N] [--only ATTACK,...]   (default 10 minutes, every attack)
# Starts one whole Postern on a fresh configuration (mynetworks = 127.0.0.1/32, so 127.0.0.2-9 are
# outside clients), runs all nine attacks of issue 13 at once from 127.0.0.2 ... 127.0.0.9 while a
# normal client from 127.0.0.1 sends a message, logs in over IMAP and over POP3 every 2 s, and
# samples the server's RSS every second (test/soak/hostile-soak.ts says what each attack does).
# Prints per attack the outcomes it saw, the normal clients' p50/p99/max, and the memory; exit
# status 1 when a normal exchange failed or took over 2 s, memory grew from minute 2 to the last
# minute by more than the stated bound, a service restarted, the master died or mail was lost.
set -e
cd "$(dirname "$0")/.."
sh scripts/ensure-node.sh
PATH="$PWD/node_modules/.bin:$PATH"; export PATH
exec node --disable-warning=ExperimentalWarning test/soak/hostile-soak.ts "$@"
