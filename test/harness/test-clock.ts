/**
 * test-clock - whether this test process runs under `npm run test:clock` (scripts/test-clock.sh):
 * libfaketime preloaded, the calendar of this process tree moved by one offset. A test that
 * needs a program whose clock libfaketime cannot move (a Go program such as pebble reads the
 * kernel's clock itself, without libc) skips itself with clockMovedSkip(why): the two clocks
 * would disagree by the offset, which is not what the test is about.
 */
export const clockMoved = (process.env.LD_PRELOAD ?? '').includes('faketime');

/** A node:test `skip` value: the reason when the clock is moved, else false. */
export function clockMovedSkip(why: string): string | false {
  return clockMoved && `${why}; npm run test:clock moves only the calendar of processes that use libc's clock`;
}

/**
 * The environment without libfaketime, for a program that cannot run under it: Chromium's
 * processes never finish loading a page with it preloaded. Such a program keeps the real clock;
 * give it only what does not depend on the two clocks agreeing (session cookies, no expiry).
 */
export function withoutTestClock(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || k.startsWith('FAKETIME')) continue;
    if (k === 'LD_PRELOAD') {
      const rest = v.split(/[:\s]+/).filter((l) => l && !l.includes('faketime')).join(':');
      if (rest) out[k] = rest;
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** What libfaketime needs in a child's environment to keep the moved clock. */
const FAKETIME_VARS = 'LD_PRELOAD FAKETIME FAKETIME_DONT_FAKE_MONOTONIC FAKETIME_SHARED';

/**
 * A main.cf line for a real Postfix under a moved clock: its master passes its daemons only the
 * variables of import_environment, so without this they run on the real clock while the test
 * and Postern run on the moved one (a certificate made "now" is then not yet valid to smtpd).
 * Empty when the clock is not moved. Postfix 3.7's default list, plus libfaketime's.
 */
export function postfixClockLine(): string {
  return clockMoved ? `import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME ${FAKETIME_VARS}` : '';
}

/** The same for a real Dovecot's dovecot.conf (Dovecot 2.3's default list, plus libfaketime's). */
export function dovecotClockLine(): string {
  return clockMoved ? `import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS NOTIFY_SOCKET ${FAKETIME_VARS}` : '';
}
