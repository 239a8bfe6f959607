/**
 * imapd-child - Postern's imapd (imapd-testkit.ts) in a process of its own, for tests that must
 * change what the kernel allows that process without touching the machine: run it under
 * `unshare -U -r` after lowering the user namespace's inotify limits
 * (/proc/sys/user/max_inotify_watches, max_inotify_instances: per user namespace since Linux
 * 4.9, writable by the namespace's root, and counted against the parent's as well).
 *
 *   unshare -U -r sh -c 'echo 40 > /proc/sys/user/max_inotify_watches && exec node test/harness/imapd-child.ts CONF_JSON'
 *
 * CONF_JSON: { users: [[user, pass]], conf?: dovecot.conf text }. Prints one line of JSON,
 * { port, dir, maildirs: { user: path } }, then serves until its standard input closes; the log
 * goes to standard error.
 */
import { startFixture } from './imapd-testkit.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as { users: [string, string][]; conf?: string };
const fx = await startFixture({ users: o.users, ...(o.conf !== undefined ? { conf: o.conf } : {}) });
const maildirs: Record<string, string> = {};
for (const [u] of o.users) maildirs[u] = fx.maildir(u);
process.stdout.write(JSON.stringify({ port: fx.port, dir: fx.dir, maildirs }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => { void fx.stop().finally(() => process.exit(0)); });
process.stdin.on('error', () => { void fx.stop().finally(() => process.exit(0)); });
