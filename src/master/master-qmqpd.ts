/**
 * master-qmqpd - qmqpd(8) as the master runs it: qmqpd/qmqpd.ts given cleanup
 * (master-clients.ts). SERVICES.qmqpd inline, and SERVICE_MODULES.qmqpd, the module a worker
 * thread or a child process loads.
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { qmqpdService } from '../qmqpd/qmqpd.ts';
import { cleanup } from './master-clients.ts';

export const service: ServiceImpl = qmqpdService(cleanup);
