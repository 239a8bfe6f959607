/**
 * sys-exits - <sysexits.h> exit codes → delivery status, exactly as Postfix's
 * global/sys_exits.c table that pipe(8) and local(8) use for external commands:
 * EX_OSERR and EX_TEMPFAIL defer (4.3.0), every other listed code bounces with its own
 * enhanced status code, an unlisted non-zero code bounces (5.3.0).
 */

export interface SysExit { code: number; name: string; dsn: string; text: string; soft: boolean }

const TABLE: readonly SysExit[] = [
  { code: 64, name: 'EX_USAGE', dsn: '5.3.0', text: 'command line usage error', soft: false },
  { code: 65, name: 'EX_DATAERR', dsn: '5.6.0', text: 'data format error', soft: false },
  { code: 66, name: 'EX_NOINPUT', dsn: '5.3.0', text: 'cannot open input', soft: false },
  { code: 67, name: 'EX_NOUSER', dsn: '5.1.1', text: 'user unknown', soft: false },
  { code: 68, name: 'EX_NOHOST', dsn: '5.1.2', text: 'host name unknown', soft: false },
  { code: 69, name: 'EX_UNAVAILABLE', dsn: '5.3.0', text: 'service unavailable', soft: false },
  { code: 70, name: 'EX_SOFTWARE', dsn: '5.3.0', text: 'internal software error', soft: false },
  { code: 71, name: 'EX_OSERR', dsn: '4.3.0', text: 'system resource problem', soft: true },
  { code: 72, name: 'EX_OSFILE', dsn: '5.3.0', text: 'critical OS file missing', soft: false },
  { code: 73, name: 'EX_CANTCREAT', dsn: '5.2.0', text: "can't create user output file", soft: false },
  { code: 74, name: 'EX_IOERR', dsn: '5.3.0', text: 'input/output error', soft: false },
  { code: 75, name: 'EX_TEMPFAIL', dsn: '4.3.0', text: 'temporary failure', soft: true },
  { code: 76, name: 'EX_PROTOCOL', dsn: '5.5.0', text: 'remote error in protocol', soft: false },
  { code: 77, name: 'EX_NOPERM', dsn: '5.7.0', text: 'permission denied', soft: false },
  { code: 78, name: 'EX_CONFIG', dsn: '5.3.5', text: 'local configuration error', soft: false },
];

const BY_CODE = new Map(TABLE.map((e) => [e.code, e]));

/** The sys_exits.c entry for a code in 64..78, else undefined. */
export function sysExit(code: number): SysExit | undefined {
  return BY_CODE.get(code);
}

export const SYSEXITS: readonly SysExit[] = TABLE;
