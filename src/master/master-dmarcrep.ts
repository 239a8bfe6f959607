/**
 * master-dmarcrep - the DMARC aggregate report sender (dmarcrep/dmarcrep.ts) as the master runs
 * it, given cleanup (master-clients.ts) to submit the report mail. Planned from main.cf when
 * postern_dmarc_reporting = yes (master-plan.ts).
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { dmarcrepService } from '../dmarcrep/dmarcrep.ts';
import { cleanup } from './master-clients.ts';

export const service: ServiceImpl = dmarcrepService(cleanup);
