/**
 * handoff-bench - what the master's hand-over of a connection to a worker costs, in isolation:
 * a server that only writes a banner, two child processes, 20 concurrent clients opening
 * connections one after another (3,000 in all), in two arrangements:
 *   pass    the parent accepts (pauseOnConnect) and passes each socket to the next child over
 *           IPC, as the master does for postern_process_count > 1 (src/master/master-pool.ts)
 *   shared  the children accept on the one listening socket themselves (the parent gives them
 *           the server and stops listening), as Postfix's daemons and Node's cluster "shared
 *           handle" mode do
 * Prints connections/s and the parent's CPU per connection (which includes the clients, run in
 * the same process, the same in both arrangements).
 *
 *   node bench/handoff-bench.ts [--rounds 2]
 */
import { fork } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';

const CONNECTIONS = 3000;
const CLIENTS = 20;

if (process.argv[2] === 'child') {
  process.on('message', (m: string, h: Socket | Server) => {
    if (m === 'conn') (h as Socket).end('220 ready\r\n');
    else if (m === 'server') { (h as Server).on('connection', (s) => s.end('220 ready\r\n')); process.send!('ready'); }
  });
} else {
  const i = process.argv.indexOf('--rounds');
  const rounds = i >= 0 ? Number(process.argv[i + 1]) : 2;
  for (let r = 1; r <= rounds; r++) {
    for (const mode of ['pass', 'shared'] as const) {
      const kids = [0, 1].map(() => fork(new URL(import.meta.url), ['child'], { execArgv: ['--disable-warning=ExperimentalWarning'] }));
      const server = createServer({ pauseOnConnect: true });
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const port = (server.address() as { port: number }).port;
      let next = 0;
      if (mode === 'pass') server.on('connection', (s) => { kids[next++ % 2]!.send('conn', s); });
      else {
        await Promise.all(kids.map((k) => new Promise((res) => { k.once('message', res); k.send('server', server); })));
        server.close();
      }
      let started = 0;
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await Promise.all(Array.from({ length: CLIENTS }, async () => {
        while (started < CONNECTIONS) {
          started++;
          await new Promise<void>((res) => {
            const c = connect(port, '127.0.0.1');
            c.once('data', () => { c.destroy(); res(); });
            c.once('error', () => res());
          });
        }
      }));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      console.log(`round ${r} ${mode}: ${(CONNECTIONS / (ms / 1000)).toFixed(0)} connections/s, parent CPU ${((cpu.user + cpu.system) / CONNECTIONS).toFixed(0)} µs per connection`);
      server.close();
      for (const k of kids) k.kill();
    }
  }
}
