/**
 * trigger-service - a test service for master-trigger.test.ts, registered as `qmgr`: a trigger
 * `ping:X` for it is answered with the trigger `pong` carrying `X pid=<pid> thread=<threadId>`,
 * which nobody listens to where the service runs, so it travels back through the master.
 */
import { threadId } from 'node:worker_threads';
import { onTrigger, trigger } from '../../global/mail-trigger.ts';
import type { ServiceImpl } from '../../lib-master/master-service.ts';

export const service: ServiceImpl = {
  name: 'qmgr',
  async start() {
    const off = onTrigger('qmgr', (what) => {
      if (what.startsWith('ping:')) trigger('pong', `${what.slice(5)} pid=${process.pid} thread=${threadId}`);
    });
    return { async stop() { off(); } };
  },
};
