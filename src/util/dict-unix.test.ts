import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DictError } from './dict.ts';
import { openUnixDict, getpwnam, getgrnam, UNIX_FILES } from './dict-unix.ts';
import { openProxyDict } from './dict-proxy.ts';

test('unix:passwd.byname and unix:group.byname answer from /etc/passwd and /etc/group', async () => {
  const pw = await openUnixDict('passwd.byname');
  assert.match((await pw.lookup('root'))!, /^root:[^:]*:0:0:/);
  assert.equal(await pw.lookup('no-such-user-zz'), undefined);
  assert.equal(await pw.lookup('root@example.com'), undefined, 'an address is never an account');
  assert.equal(await pw.lookup(''), undefined);
  const gr = await openUnixDict('group.byname');
  assert.match((await gr.lookup('root'))!, /^root:[^:]*:0:/);
  await assert.rejects(openUnixDict('shadow.byname'), (e: unknown) => e instanceof DictError && e.kind === 'config' && /unix:shadow\.byname/.test(e.message));
});

test('hostile passwd files: junk lines are skipped, a missing file is a retry error, changes are seen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-unix-'));
  const saved = { ...UNIX_FILES };
  try {
    UNIX_FILES.passwd = join(dir, 'passwd');
    UNIX_FILES.group = join(dir, 'group');
    writeFileSync(UNIX_FILES.passwd, `x\0y:x:1:1::/:/bin/sh\n+nis\nshort:x:1\nbad:x:abc:1::/:/bin/sh\n${'a'.repeat(100000)}\nok:x:1001:1002:O K:/home/ok:/bin/sh\r\nok:x:9:9::/dup:/bin/sh\n`);
    assert.equal(getpwnam('bad'), undefined);
    assert.equal(getpwnam('short'), undefined);
    assert.deepEqual({ ...getpwnam('ok')!, line: undefined }, { name: 'ok', passwd: 'x', uid: 1001, gid: 1002, gecos: 'O K', dir: '/home/ok', shell: '/bin/sh\r', line: undefined });
    writeFileSync(UNIX_FILES.passwd, 'new:x:5:5::/n:/bin/sh\n' + '#'.repeat(10) + '\n');
    assert.equal(getpwnam('new')!.uid, 5, 'a rewritten file is re-read');
    assert.throws(() => getgrnam('x'), (e: unknown) => e instanceof DictError && e.kind === 'retry' && e.message.includes(join(dir, 'group')));
  } finally { Object.assign(UNIX_FILES, saved); rmSync(dir, { recursive: true, force: true }); }
});

test('proxy:type:name opens type:name; proxy:proxy: is refused', async () => {
  const seen: string[] = [];
  const d = await openProxyDict('unix:passwd.byname', {}, async (spec) => { seen.push(spec); return openUnixDict('passwd.byname'); });
  assert.deepEqual(seen, ['unix:passwd.byname']);
  assert.ok(await d.lookup('root'));
  await assert.rejects(openProxyDict('proxy:unix:passwd.byname', {}, async () => { throw new Error('not reached'); }), /cannot itself be proxy/);
});
