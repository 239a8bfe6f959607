/**
 * mail-quota: Dovecot's quota test (quota_grace for deliveries) and quota_warning matching, and
 * the warning runner against hostile scripts: one that hangs is killed at the timeout, one that
 * fails or does not exist is logged, a flood of warnings is capped, and none of it blocks the
 * caller. Real /bin/sh scripts in a temp dir. quota_warning parsing from dovecot.conf text
 * (lib-auth/auth-quota-warning.ts), with the administrator's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../global/dovecot-conf.ts';
import { quotaWarningsFor, type QuotaWarning } from '../lib-auth/auth-quota-warning.ts';
import { quotaGrace, quotaTestAlloc, quotaWarningToRun, runQuotaWarning, QUOTA_WARNING_MAX_RUNNING } from './mail-quota.ts';

const me = { user: 'u@x.test', uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

test('quotaTestAlloc: limit, grace for the message that crosses it, already over, too large, message count', () => {
  const u = { bytes: 9000, messages: 3, limitBytes: 10240 };
  assert.equal(quotaTestAlloc(u, 1240, 0), 'ok');
  assert.equal(quotaTestAlloc(u, 1241, 0), 'over');
  assert.equal(quotaTestAlloc(u, 2264, 1024), 'ok');
  assert.equal(quotaTestAlloc(u, 2265, 1024), 'over');
  assert.equal(quotaTestAlloc({ ...u, bytes: 10240 }, 1, 1024), 'over');
  assert.equal(quotaTestAlloc({ ...u, bytes: 0 }, 20000, 1024), 'toolarge');
  assert.equal(quotaTestAlloc({ bytes: 0, messages: 2, limitMessages: 2 }, 1), 'over');
  assert.equal(quotaTestAlloc({ bytes: 0, messages: 1, limitMessages: 2 }, 1), 'ok');
  assert.equal(quotaTestAlloc({ bytes: 1e15, messages: 1e9 }, 2 ** 64), 'ok');
  assert.equal(quotaGrace({ quotaBytes: 10240 }), 1024);
  assert.equal(quotaGrace({ quotaBytes: 10240, quotaGraceBytes: 0 }), 0);
  assert.equal(quotaGrace({}), 0);
});

const conf = (extra: string) => parseDovecotConf(`service quota-warning {\n  executable = script /bin/true\n}\nplugin {\n${extra}\n}\n`, '/etc/dovecot/dovecot.conf');

test('quota_warning settings: order, %% and %u, userdb override, errors that name the setting', () => {
  const warns: string[] = [];
  const c = conf('  quota_warning = storage=95%% quota-warning 95 %u\n  quota_warning2 = -storage=100%% quota-warning below %u\n  quota_warning3 = messages=10 nosuch 1\n  quota_warning4 = bogus=1 quota-warning x');
  const w = quotaWarningsFor(c, {}, (a) => a.replace('%u', 'u@x.test'), (m) => warns.push(m));
  assert.deepEqual(w.map((x) => [x.setting, x.reverse, x.limit, x.argv]), [
    ['quota_warning', false, { bytes: { value: 95, percent: true } }, ['/bin/true', '95', 'u@x.test']],
    ['quota_warning2', true, { bytes: { value: 100, percent: true } }, ['/bin/true', 'below', 'u@x.test']],
  ]);
  assert.match(warns[0]!, /quota_warning3 = messages=10 nosuch 1: service "nosuch" is not declared/);
  assert.match(warns[1]!, /quota_warning4 .*unknown limit "bogus"/);
  // A userdb field of the same name overrides plugin {}.
  const o = quotaWarningsFor(c, { quota_warning: 'storage=50%% quota-warning 50' }, (a) => a, () => {});
  assert.deepEqual(o[0]!.argv, ['/bin/true', '50']);
});

test('quotaWarningToRun: the first matching warning only; thresholds in % of the limit; reverse on a drop', () => {
  const mk = (setting: string, pct: number, reverse = false): QuotaWarning => ({ setting, reverse, limit: { bytes: { value: pct, percent: true } }, argv: [setting] });
  const ws = [mk('w50', 50), mk('w80', 80), mk('below', 100, true)];
  const lim = { bytes: 0, messages: 0, limitBytes: 1000 };
  assert.equal(quotaWarningToRun(ws, { bytes: 0, messages: 0 }, { bytes: 900, messages: 1 }, lim)?.warning.setting, 'w50');
  assert.equal(quotaWarningToRun(ws, { bytes: 600, messages: 1 }, { bytes: 900, messages: 2 }, lim)?.warning.setting, 'w80');
  assert.equal(quotaWarningToRun(ws, { bytes: 100, messages: 1 }, { bytes: 400, messages: 2 }, lim), undefined);
  assert.equal(quotaWarningToRun(ws, { bytes: 1000, messages: 2 }, { bytes: 10, messages: 1 }, lim)?.warning.setting, 'below');
  assert.equal(quotaWarningToRun(ws, { bytes: 0, messages: 0 }, { bytes: 900, messages: 1 }, { bytes: 0, messages: 0 }), undefined);
});

test('runQuotaWarning: hanging script killed at the timeout, failures logged, floods capped, never blocking', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qw-'));
  try {
    const logs: string[] = [];
    const log = { info: (m: string) => logs.push('info ' + m), warn: (m: string) => logs.push('warn ' + m) };
    const hang = join(dir, 'hang.sh');
    writeFileSync(hang, `#!/bin/sh\nsleep 30 &\necho $! > ${join(dir, 'pid')}\nwait\n`, { mode: 0o755 });
    const t0 = Date.now();
    await runQuotaWarning({ setting: 'quota_warning', reverse: false, limit: {}, argv: [hang] }, me, 'test', log, 300);
    assert.ok(Date.now() - t0 < 10_000);
    assert.ok(logs.some((l) => /warn .*killed after 300 ms/.test(l)), logs.join('\n'));
    // The script's own child (the background sleep) went with it.
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    let alive = true;
    for (let i = 0; i < 100 && alive; i++) {
      try { process.kill(pid, 0); await new Promise((r) => setTimeout(r, 20)); } catch { alive = false; }
    }
    assert.equal(alive, false, 'the script\'s child process was left running');
    await runQuotaWarning({ setting: 'quota_warning', reverse: false, limit: {}, argv: [join(dir, 'missing.sh')] }, me, 'test', log);
    assert.ok(logs.some((l) => /warn .*missing\.sh: .*ENOENT/.test(l)), logs.join('\n'));
    const fail = join(dir, 'fail.sh');
    writeFileSync(fail, '#!/bin/sh\necho "no mail server" >&2\nexit 3\n', { mode: 0o755 });
    await runQuotaWarning({ setting: 'quota_warning', reverse: false, limit: {}, argv: [fail] }, me, 'test', log);
    assert.ok(logs.some((l) => /warn .*fail\.sh: exit 3: no mail server/.test(l)), logs.join('\n'));
    // A flood: at most QUOTA_WARNING_MAX_RUNNING at once, the rest dropped with a log line.
    const out = join(dir, 'out');
    const slow = join(dir, 'slow.sh');
    writeFileSync(slow, `#!/bin/sh\necho "$1" >> ${out}\nsleep 0.3\n`, { mode: 0o755 });
    const runs = Array.from({ length: QUOTA_WARNING_MAX_RUNNING + 10 }, (_, i) =>
      runQuotaWarning({ setting: 'quota_warning', reverse: false, limit: {}, argv: [slow, String(i)] }, me, 'test', log, 20_000));
    await Promise.all(runs);
    assert.equal(readFileSync(out, 'utf8').split('\n').filter(Boolean).length, QUOTA_WARNING_MAX_RUNNING);
    assert.equal(logs.filter((l) => /already running/.test(l)).length, 10);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
