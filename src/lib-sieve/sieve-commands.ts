/**
 * sieve-commands - the table of Sieve commands and tests the validator knows: for each, the
 * extension that brings it, its tagged arguments (with their parameter types and the group
 * they belong to: MATCH-TYPE, COMPARATOR, ADDRESS-PART, ...), its positional arguments, whether
 * it takes tests and a block. RFC 5228 §§3-5 (core), and each extension's RFC:
 * fileinto/reject/envelope/encoded-character (RFC 5228, 5429), imap4flags (5232), vacation
 * (5230) and vacation-seconds (6131), copy (3894), body (5173), variables (5229), include (6609),
 * relational (5231), subaddress (5233), date and index (5260), mailbox (5490), environment
 * (5183), regex (draft-ietf-sieve-regex-01), duplicate (7352), spamtest/virustest (5235),
 * editheader (5293), enotify (5435), mime/foreverypart/extracttext (5703), special-use (8579),
 * ihave (5463), vnd.dovecot.debug (Pigeonhole).
 *
 * The semantic checks beyond this table (argument values, placement) are in sieve-validate.ts.
 */

export type SieveArgType = 'string' | 'stringlist' | 'number';

export interface TagSpec {
  /** The extension that must be required for the tag to exist. */
  ext?: string;
  /** The tag takes one parameter of this type. */
  param?: SieveArgType;
  /** Tags of one group exclude each other (Pigeonhole: "encountered duplicate MATCH-TYPE argument"). */
  group?: string;
  /** Tags with the same id count as the same argument (vacation :days / :seconds). */
  id?: string;
}

export interface PosSpec { name: string; type: SieveArgType; optional?: 'first' | 'last' }

export interface CmdSpec {
  kind: 'command' | 'test';
  /** The extension that brings the command or test (absent: core). */
  ext?: string;
  tags: Record<string, TagSpec>;
  pos: PosSpec[];
  /** Tests the command/test takes: none, exactly one, or a parenthesised list. */
  tests: 'none' | 'one' | 'list';
  /** Commands: a block is required. */
  block?: boolean;
}

const COMPARATOR: Record<string, TagSpec> = { comparator: { param: 'string', group: 'COMPARATOR' } };
const MATCH: Record<string, TagSpec> = {
  is: { group: 'MATCH-TYPE' },
  contains: { group: 'MATCH-TYPE' },
  matches: { group: 'MATCH-TYPE' },
  regex: { group: 'MATCH-TYPE', ext: 'regex' },
  value: { group: 'MATCH-TYPE', ext: 'relational', param: 'string' },
  count: { group: 'MATCH-TYPE', ext: 'relational', param: 'string' },
};
const ADDRESS_PART: Record<string, TagSpec> = {
  all: { group: 'ADDRESS-PART' },
  localpart: { group: 'ADDRESS-PART' },
  domain: { group: 'ADDRESS-PART' },
  user: { group: 'ADDRESS-PART', ext: 'subaddress' },
  detail: { group: 'ADDRESS-PART', ext: 'subaddress' },
};
const INDEX: Record<string, TagSpec> = { index: { ext: 'index', param: 'number' }, last: { ext: 'index' } };
const MIME: Record<string, TagSpec> = {
  mime: { ext: 'mime' },
  anychild: { ext: 'mime' },
  type: { ext: 'mime', group: 'MIME-OPTION' },
  subtype: { ext: 'mime', group: 'MIME-OPTION' },
  contenttype: { ext: 'mime', group: 'MIME-OPTION' },
  param: { ext: 'mime', group: 'MIME-OPTION', param: 'stringlist' },
};
const FLAGS: Record<string, TagSpec> = { flags: { ext: 'imap4flags', param: 'stringlist' } };
const MATCHING = { ...COMPARATOR, ...MATCH };

const cmd = (c: Partial<CmdSpec>): CmdSpec => ({ kind: 'command', tags: {}, pos: [], tests: 'none', ...c });
const test = (c: Partial<CmdSpec>): CmdSpec => ({ kind: 'test', tags: {}, pos: [], tests: 'none', ...c });

export const SIEVE_COMMANDS: Record<string, CmdSpec> = {
  // RFC 5228 control commands
  require: cmd({ pos: [{ name: 'capabilities', type: 'stringlist' }] }),
  if: cmd({ tests: 'one', block: true }),
  elsif: cmd({ tests: 'one', block: true }),
  else: cmd({ block: true }),
  stop: cmd({}),
  // RFC 5228 actions
  keep: cmd({ tags: { ...FLAGS } }),
  discard: cmd({}),
  redirect: cmd({ tags: { copy: { ext: 'copy' } }, pos: [{ name: 'address', type: 'string' }] }),
  fileinto: cmd({
    ext: 'fileinto',
    tags: {
      copy: { ext: 'copy' }, ...FLAGS, create: { ext: 'mailbox' },
      specialuse: { ext: 'special-use', param: 'string' },
    },
    pos: [{ name: 'folder', type: 'string' }],
  }),
  reject: cmd({ ext: 'reject', pos: [{ name: 'reason', type: 'string' }] }),
  ereject: cmd({ ext: 'ereject', pos: [{ name: 'reason', type: 'string' }] }),
  vacation: cmd({
    ext: 'vacation',
    tags: {
      days: { param: 'number', id: 'period' },
      seconds: { param: 'number', ext: 'vacation-seconds', id: 'period' },
      subject: { param: 'string' }, from: { param: 'string' }, addresses: { param: 'stringlist' },
      mime: {}, handle: { param: 'string' },
    },
    pos: [{ name: 'reason', type: 'string' }],
  }),
  setflag: cmd({ ext: 'imap4flags', pos: [{ name: 'variable name', type: 'string', optional: 'first' }, { name: 'list of flags', type: 'stringlist' }] }),
  addflag: cmd({ ext: 'imap4flags', pos: [{ name: 'variable name', type: 'string', optional: 'first' }, { name: 'list of flags', type: 'stringlist' }] }),
  removeflag: cmd({ ext: 'imap4flags', pos: [{ name: 'variable name', type: 'string', optional: 'first' }, { name: 'list of flags', type: 'stringlist' }] }),
  set: cmd({
    ext: 'variables',
    tags: {
      lower: { group: 'MOD40' }, upper: { group: 'MOD40' }, lowerfirst: { group: 'MOD30' }, upperfirst: { group: 'MOD30' },
      quotewildcard: { group: 'MOD20' }, quoteregex: { group: 'MOD20', ext: 'regex' }, length: { group: 'MOD10' },
      encodeurl: { group: 'MOD15', ext: 'enotify' },
    },
    pos: [{ name: 'name', type: 'string' }, { name: 'value', type: 'string' }],
  }),
  include: cmd({
    ext: 'include',
    tags: { personal: { group: 'LOCATION' }, global: { group: 'LOCATION' }, once: {}, optional: {} },
    pos: [{ name: 'value', type: 'string' }],
  }),
  return: cmd({ ext: 'include' }),
  global: cmd({ ext: 'include', pos: [{ name: 'value', type: 'stringlist' }] }),
  addheader: cmd({ ext: 'editheader', tags: { last: {} }, pos: [{ name: 'field name', type: 'string' }, { name: 'value', type: 'string' }] }),
  deleteheader: cmd({
    ext: 'editheader',
    tags: { ...MATCHING, index: { param: 'number' }, last: {} },
    pos: [{ name: 'field name', type: 'string' }, { name: 'value patterns', type: 'stringlist', optional: 'last' }],
  }),
  notify: cmd({
    ext: 'enotify',
    tags: { from: { param: 'string' }, importance: { param: 'string' }, options: { param: 'stringlist' }, message: { param: 'string' } },
    pos: [{ name: 'method', type: 'string' }],
  }),
  foreverypart: cmd({ ext: 'foreverypart', tags: { name: { param: 'string' } }, block: true }),
  break: cmd({ ext: 'foreverypart', tags: { name: { param: 'string' } } }),
  extracttext: cmd({
    ext: 'extracttext',
    tags: {
      first: { param: 'number' },
      lower: { group: 'MOD40' }, upper: { group: 'MOD40' }, lowerfirst: { group: 'MOD30' }, upperfirst: { group: 'MOD30' },
      quotewildcard: { group: 'MOD20' }, quoteregex: { group: 'MOD20', ext: 'regex' }, length: { group: 'MOD10' },
    },
    pos: [{ name: 'varname', type: 'string' }],
  }),
  error: cmd({ ext: 'ihave', pos: [{ name: 'message', type: 'string' }] }),
  debug_log: cmd({ ext: 'vnd.dovecot.debug', pos: [{ name: 'message', type: 'string' }] }),
};

export const SIEVE_TESTS: Record<string, CmdSpec> = {
  true: test({}),
  false: test({}),
  not: test({ tests: 'one' }),
  allof: test({ tests: 'list' }),
  anyof: test({ tests: 'list' }),
  address: test({
    tags: { ...MATCHING, ...ADDRESS_PART, ...INDEX, ...MIME },
    pos: [{ name: 'header list', type: 'stringlist' }, { name: 'key list', type: 'stringlist' }],
  }),
  header: test({
    tags: { ...MATCHING, ...INDEX, ...MIME },
    pos: [{ name: 'header names', type: 'stringlist' }, { name: 'key list', type: 'stringlist' }],
  }),
  envelope: test({
    ext: 'envelope',
    tags: { ...MATCHING, ...ADDRESS_PART },
    pos: [{ name: 'envelope part', type: 'stringlist' }, { name: 'key list', type: 'stringlist' }],
  }),
  exists: test({ tags: { ...MIME }, pos: [{ name: 'header names', type: 'stringlist' }] }),
  size: test({ tags: { over: { group: 'SIZE' }, under: { group: 'SIZE' } }, pos: [{ name: 'limit', type: 'number' }] }),
  body: test({
    ext: 'body',
    tags: { ...MATCHING, raw: { group: 'BODY-TRANSFORM' }, content: { group: 'BODY-TRANSFORM', param: 'stringlist' }, text: { group: 'BODY-TRANSFORM' } },
    pos: [{ name: 'key list', type: 'stringlist' }],
  }),
  string: test({ ext: 'variables', tags: { ...MATCHING }, pos: [{ name: 'source', type: 'stringlist' }, { name: 'key list', type: 'stringlist' }] }),
  date: test({
    ext: 'date',
    tags: { ...MATCHING, ...INDEX, zone: { param: 'string', group: 'ZONE' }, originalzone: { group: 'ZONE' } },
    pos: [{ name: 'header name', type: 'string' }, { name: 'date part', type: 'string' }, { name: 'key list', type: 'stringlist' }],
  }),
  currentdate: test({
    ext: 'date',
    tags: { ...MATCHING, zone: { param: 'string', group: 'ZONE' } },
    pos: [{ name: 'date part', type: 'string' }, { name: 'key list', type: 'stringlist' }],
  }),
  mailboxexists: test({ ext: 'mailbox', pos: [{ name: 'mailbox names', type: 'stringlist' }] }),
  environment: test({ ext: 'environment', tags: { ...MATCHING }, pos: [{ name: 'name', type: 'string' }, { name: 'key list', type: 'stringlist' }] }),
  duplicate: test({
    ext: 'duplicate',
    tags: {
      handle: { param: 'string' }, header: { param: 'string', group: 'UNIQUE' }, uniqueid: { param: 'string', group: 'UNIQUE' },
      seconds: { param: 'number' }, last: {},
    },
  }),
  spamtest: test({ ext: 'spamtest', tags: { ...MATCHING, percent: { ext: 'spamtestplus' } }, pos: [{ name: 'value', type: 'string' }] }),
  virustest: test({ ext: 'virustest', tags: { ...MATCHING }, pos: [{ name: 'value', type: 'string' }] }),
  hasflag: test({
    ext: 'imap4flags', tags: { ...MATCHING },
    pos: [{ name: 'variable list', type: 'stringlist', optional: 'first' }, { name: 'list of flags', type: 'stringlist' }],
  }),
  valid_notify_method: test({ ext: 'enotify', pos: [{ name: 'notification-uris', type: 'stringlist' }] }),
  notify_method_capability: test({
    ext: 'enotify', tags: { ...MATCHING },
    pos: [{ name: 'notification-uri', type: 'string' }, { name: 'notification-capability', type: 'string' }, { name: 'key-list', type: 'stringlist' }],
  }),
  ihave: test({ ext: 'ihave', pos: [{ name: 'capabilities', type: 'stringlist' }] }),
  specialuse_exists: test({
    ext: 'special-use',
    pos: [{ name: 'mailbox', type: 'string', optional: 'first' }, { name: 'special-use-flags', type: 'stringlist' }],
  }),
};

/** Extensions that only modify others (no command of their own) and what they need. */
export const SIEVE_EXTENSION_DEPENDS: Record<string, string[]> = {
  'vacation-seconds': ['vacation'],
  'spamtestplus': ['spamtest'],
  'foreverypart': [],
  'extracttext': ['foreverypart'],
};
