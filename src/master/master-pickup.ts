/**
 * master-pickup - pickup(8) as the master runs it: pickup/pickup.ts given cleanup
 * (master-clients.ts). SERVICES.pickup inline, and SERVICE_MODULES.pickup, the module a worker
 * thread or a child process loads.
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { pickupService } from '../pickup/pickup.ts';
import { cleanup } from './master-clients.ts';

export const service: ServiceImpl = pickupService(cleanup);
