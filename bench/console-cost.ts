/**
 * console-cost - what the web console costs the SMTP accept rate (docs/console.md): a whole
 * system (bin/postern start, the embedded default) receives N 2 KB messages from smtp-source
 * (20 sessions) with postern_console = no, then with postern_console = yes and a logged-in
 * administrator's dashboard fetched every second (services, queue scan, the maillog's charts),
 * alternating, ROUNDS times; prints each rate and the median ratio (on/off).
 *
 * The rate is noisy on a shared machine; the steadier figure printed first is the master's CPU
 * time per dashboard (utime+stime from /proc, 100 dashboards on an idle system with a few
 * hundred log lines): at one dashboard a second it is that many ms of CPU per second.
 *
 *   node bench/console-cost.ts [ROUNDS] [MESSAGES]
 */
import { readFileSync } from 'node:fs';
import { appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { request } from 'node:https';
import { PosternSystem } from '../test/harness/postern-system.ts';
import { freePort } from '../test/harness/free-port.ts';

const rounds = Number(process.argv[2] ?? 3);
const messages = Number(process.argv[3] ?? 2000);

function get(port: number, method: string, path: string, cookie = '', body?: string): Promise<{ status: number; cookie: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: '127.0.0.1', port, method, path, rejectUnauthorized: false, headers: {
      ...(cookie ? { Cookie: cookie } : {}),
      ...(body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) } : {}),
    } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, cookie: ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ') }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function run(consoleOn: boolean): Promise<number> {
  const sys = await PosternSystem.start();
  let timer: NodeJS.Timeout | undefined;
  try {
    const port = await freePort();
    appendFileSync(join(sys.configDir, 'main.cf'), [
      '', `postern_https_listen = 127.0.0.1:${port}`, `postern_console = ${consoleOn ? 'yes' : 'no'}`,
      `maillog_file_prefixes = ${sys.dir}`, `maillog_file = ${join(sys.dir, 'maillog')}`, '',
    ].join('\n'));
    if ((await sys.cli('reload')).status !== 0) throw new Error('reload failed');
    await new Promise((r) => setTimeout(r, 1500));
    let fetches = 0;
    if (consoleOn) {
      const login = await get(port, 'POST', '/console/login', '', new URLSearchParams({ user: 'postmaster@example.test', password: sys.password }).toString());
      if (login.status !== 303) throw new Error(`login: ${login.status}`);
      timer = setInterval(() => { void get(port, 'GET', '/console/', login.cookie).then((r) => { if (r.status === 200) fetches++; }); }, 1000);
    }
    const t0 = process.hrtime.bigint();
    // Asynchronous, so the dashboard fetches go on while smtp-source runs.
    await promisify(execFile)('smtp-source', ['-s', '20', '-m', String(messages), '-l', '2048', '-f', 'load@example.org', '-t', 'postmaster@example.test', `127.0.0.1:${sys.ports.smtp}`], { timeout: 600_000 });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (timer) clearInterval(timer);
    const rate = messages / secs;
    console.log(`console ${consoleOn ? 'on ' : 'off'}: ${rate.toFixed(1)} msg/s (${messages} in ${secs.toFixed(1)} s${consoleOn ? `, ${fetches} dashboards served` : ''})`);
    return rate;
  } finally {
    if (timer) clearInterval(timer);
    await sys.stop();
    rmSync(sys.dir, { recursive: true, force: true });
  }
}

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;   // utime + stime, in clock ticks of 10 ms
}

async function dashboardCpu(): Promise<void> {
  const sys = await PosternSystem.start();
  try {
    const port = await freePort();
    appendFileSync(join(sys.configDir, 'main.cf'), ['', `postern_https_listen = 127.0.0.1:${port}`, 'postern_console = yes',
      `maillog_file_prefixes = ${sys.dir}`, `maillog_file = ${join(sys.dir, 'maillog')}`, ''].join('\n'));
    if ((await sys.cli('reload')).status !== 0) throw new Error('reload failed');
    await new Promise((r) => setTimeout(r, 1500));
    await promisify(execFile)('smtp-source', ['-s', '5', '-m', '300', '-l', '2048', '-f', 'load@example.org', '-t', 'postmaster@example.test', `127.0.0.1:${sys.ports.smtp}`]);
    await new Promise((r) => setTimeout(r, 3000));
    const login = await get(port, 'POST', '/console/login', '', new URLSearchParams({ user: 'postmaster@example.test', password: sys.password }).toString());
    for (let i = 0; i < 5; i++) await get(port, 'GET', '/console/', login.cookie);   // warm up
    const n = 100;
    const c0 = cpuMs(sys.pid!);
    for (let i = 0; i < n; i++) await get(port, 'GET', '/console/', login.cookie);
    const per = (cpuMs(sys.pid!) - c0) / n;
    console.log(`master CPU per dashboard (services, queues, charts of ${readFileSync(join(sys.dir, 'maillog'), 'utf8').split('\n').length} log lines, TLS request): ${per.toFixed(2)} ms`);
  } finally {
    await sys.stop();
    rmSync(sys.dir, { recursive: true, force: true });
  }
}

await dashboardCpu();
const ratios: number[] = [];
for (let i = 0; i < rounds; i++) {
  const off = await run(false);
  const on = await run(true);
  ratios.push(on / off);
}
ratios.sort((a, b) => a - b);
if (ratios.length > 0)
console.log(`ratio on/off per round: ${ratios.map((r) => r.toFixed(3)).join(' ')}; median ${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)}`);
