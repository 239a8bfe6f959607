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
