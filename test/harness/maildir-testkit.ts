/**
 * maildir-testkit - test helpers for the store's tests (not used by production code).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The file in cur/ of a UID (dovecot-uidlist: "<uid> [ext] :<base>"). */
export function fileOfUid(root: string, uid: number): string {
  const line = readFileSync(join(root, 'dovecot-uidlist'), 'latin1').split('\n').slice(1).find((l) => l.startsWith(`${uid} `));
  assert.ok(line, `UID ${uid} in dovecot-uidlist`);
  const base = line.slice(line.indexOf(':') + 1);
  const f = readdirSync(join(root, 'cur')).find((n) => n === base || n.startsWith(base + ':'));
  assert.ok(f, 'message file present');
  return f;
}
