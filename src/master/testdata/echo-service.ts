/**
 * echo-service - a test service for master-process.test.ts: greets each connection with
 * `hello <listener> pid=<pid>`, answers each line with `echo <line>`; the line `FAIL` makes it
 * call ctx.failed(), `SLOW` answers after 300 ms (a session still running at stop).
 */
import type { ServiceImpl } from '../../lib-master/master-service.ts';
import { serveSessions } from '../../lib-master/master-session.ts';

export const service: ServiceImpl = {
  name: 'smtpd',
  async start(ctx) {
    return serveSessions(ctx, (sock, listener) => {
      sock.setEncoding('latin1');
      sock.on('error', () => {});
      sock.write(`hello ${listener.name} pid=${process.pid}\n`);
      let buf = '';
      sock.on('data', (d: string) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line === 'FAIL') { ctx.failed(new Error('told to fail')); sock.end('failing\n'); }
          else if (line === 'QUIT') sock.end('bye\n');
          else if (line === 'SLOW') setTimeout(() => sock.write('slow done\n'), 300);
          else sock.write(`echo ${line}\n`);
        }
      });
    }, { drainMs: 5000 });
  },
};
