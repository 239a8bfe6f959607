/**
 * run-as - the system account a private database server runs as when the tests run as root
 * (PostgreSQL refuses to run as root; MariaDB is told --user): its uid and gid, to chown the
 * data directory before the server starts. undefined when the account does not exist (the
 * server's tests then skip with a reason).
 */
import { spawnSync } from 'node:child_process';

export function account(name: string): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return undefined;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}
