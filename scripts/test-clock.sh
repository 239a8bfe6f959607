#!/bin/sh
# npm run test:clock [-- 'YYYY-MM-DD HH:MM:SS'...]: the whole test command (scripts/test.sh) once
# per date, with the clock set to that date by libfaketime (Debian's faketime, installed when
# missing) and running on from there. The clock is moved by one offset from the real time, the
# same in every process of the run (an absolute start time would start each child process's
# clock anew, and Postern's and Postfix's processes would disagree by seconds). The defaults are
# the dates that break date code: a 1st and a 7th (a one-digit day: Postfix pads it with a space,
# Dovecot with a zero), the 29th of February and the 31st of December, the last two just before
# midnight so the suite crosses into the next day, month and year while it runs.
# TZ=Zone/Name npm run test:clock runs them in another zone.
# Slow (one full suite per date): not part of `npm test`.
set -e
cd "$(dirname "$0")/.."
if ! command -v faketime >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "test-clock: faketime is not installed (Debian package faketime)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends faketime >/dev/null
fi
[ $# -gt 0 ] || set -- '2026-12-01 09:00:00' '2026-12-07 09:00:00' '2028-02-29 23:57:00' '2026-12-31 23:57:00'
# Timers run on the monotonic clock: leave it alone, move only the calendar. libfaketime 0.9.10
# has a bug with this setting: clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) fails with EINVAL
# (its issue #426), and that is Python 3.11's time.sleep(). Python test clients must wait with
# threading.Event().wait() or select() instead (test/harness/smtp-load.py). One test skips itself
# here, saying so: sendmail-vs-postfix's DST differential moves real Postfix's clock with
# libfaketime at fixed instants, which a run of its own under libfaketime cannot do reliably.
# Programs that do not read libc's clock keep the real one: the ACME tests skip themselves (pebble
# is a Go program and dates certificates by the real clock), and the console test starts Chromium
# without libfaketime (test/harness/test-clock.ts), which never loads a page with it.
FAKETIME_DONT_FAKE_MONOTONIC=1; export FAKETIME_DONT_FAKE_MONOTONIC
# The library itself, not the faketime(1) wrapper: the wrapper's named semaphore can collide with
# a stale one ("sem_open: File exists") and end a run; a plain offset needs no shared state.
lib=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketimeMT\.so\.1$' | head -n 1)
[ -n "$lib" ] || { echo "test-clock: libfaketimeMT.so.1 not found (Debian package libfaketime)" >&2; exit 1; }
# libfaketime keeps a semaphore and a shared-memory counter for the whole process tree, created
# by the first preloaded process with mode 0600 and named in FAKETIME_SHARED for its children. A
# child that runs as another user (PostgreSQL as postgres, Dovecot's and Postfix's unprivileged
# processes) cannot open them and exits ("sem_open failed ... Permission denied"). Create the pair
# once here, open it to every user, name it for the whole run, and remove it at the end.
shared=$(LD_PRELOAD="$lib" FAKETIME=+0 sh -c 'echo "$FAKETIME_SHARED"')
sem=${shared%% *}; shm=${shared##* }
[ -n "$sem" ] && [ -e "/dev/shm/sem.${sem#/}" ] && [ -e "/dev/shm/${shm#/}" ] || { echo "test-clock: libfaketime did not create its shared state ($shared)" >&2; exit 1; }
chmod 0666 "/dev/shm/sem.${sem#/}" "/dev/shm/${shm#/}"
trap 'rm -f "/dev/shm/sem.${sem#/}" "/dev/shm/${shm#/}"' EXIT
FAKETIME_SHARED="$shared"; export FAKETIME_SHARED
failed=""
for d in "$@"; do
  echo "== test:clock: the suite on $d ${TZ:+($TZ)}" >&2
  offset=$(( $(date -d "$d" +%s) - $(date +%s) )); [ "$offset" -lt 0 ] || offset="+$offset"
  LD_PRELOAD="$lib" FAKETIME="$offset" sh scripts/test.sh || failed="$failed [$d]"
done
[ -z "$failed" ] || { echo "test:clock: failed on$failed" >&2; exit 1; }
echo "test:clock: passed on every date" >&2
