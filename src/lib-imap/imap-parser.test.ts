import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapParser, type ImapParserEvent, type ImapArg } from './imap-parser.ts';

function all(p: ImapParser, autoAccept = true): ImapParserEvent[] {
  const out: ImapParserEvent[] = [];
  for (let ev = p.next(); ev; ev = p.next()) {
    out.push(ev);
    if (ev.type === 'literal' && autoAccept) p.acceptLiteral();
  }
  return out;
}

function parse(s: string | Buffer, opts = {}): ImapParserEvent[] {
  const p = new ImapParser(opts);
  p.push(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
  return all(p);
}

/** Compact rendering of an argument tree for assertions. */
function show(args: ImapArg[]): string {
  return args.map((a): string => {
    switch (a.type) {
      case 'atom': return a.value;
      case 'number': return `#${a.value}`;
      case 'string': return JSON.stringify(a.value.toString('latin1'));
      case 'literal': return `{${a.literal8 ? '~' : ''}${a.value.toString('latin1')}}`;
      case 'nil': return 'NIL';
      case 'list': return `(${show(a.items)})`;
    }
  }).join(' ');
}

test('a simple command: tag, name, typed arguments', () => {
  const ev = parse('a1 login "joe" {4}\r\npass\r\n').at(-1);
  assert.equal(ev?.type, 'command');
  if (ev?.type !== 'command') return;
  assert.equal(ev.tag, 'a1');
  assert.equal(ev.command, 'LOGIN');
  assert.equal(show(ev.args), '"joe" {pass}');
});

test('FETCH with a bracketed section stays one atom; lists, numbers, NIL', () => {
  const [ev] = parse('t FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM "To")]<0.100> MODSEQ) (CHANGEDSINCE 12345 VANISHED) NIL\r\n');
  assert.ok(ev?.type === 'command');
  assert.equal(show(ev.args), '1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM "To")]<0.100> MODSEQ) (CHANGEDSINCE #12345 VANISHED) NIL');
});

test('UID commands are reported as "UID FETCH"', () => {
  const [ev] = parse('x uid fetch 1 UID\r\n');
  assert.ok(ev?.type === 'command');
  assert.equal(ev.command, 'UID FETCH');
  assert.equal(show(ev.args), '#1 UID');
});

test('quoted string escapes; invalid escape is BAD with the tag', () => {
  const [ev] = parse('a SELECT "a\\"b\\\\c"\r\n');
  assert.ok(ev?.type === 'command');
  assert.equal(show(ev.args), '"a\\"b\\\\c"');
  const [e2, e3] = parse('b SELECT "a\\x"\r\nc NOOP\r\n');
  assert.deepEqual([e2?.type, e2?.type === 'error' && e2.tag], ['error', 'b']);
  assert.ok(e3?.type === 'command' && e3.tag === 'c', 'parser goes on with the next command');
});

test('a synchronising literal pauses until the server accepts it; byte-at-a-time feeding works', () => {
  const p = new ImapParser();
  const input = Buffer.from('A003 APPEND saved-messages (\\Seen) {24}\r\nFrom: x@y\r\n\r\nhi there!\r\n\r\n');
  const evs: ImapParserEvent[] = [];
  for (const b of input) {
    p.push(Buffer.from([b]));
    for (let ev = p.next(); ev; ev = p.next()) {
      evs.push(ev);
      if (ev.type === 'literal') {
        assert.equal(ev.size, 24);
        assert.equal(ev.sync, true);
        assert.equal(ev.command, 'APPEND');
        p.acceptLiteral();
      }
    }
  }
  assert.deepEqual(evs.map((e) => e.type), ['literal', 'command']);
  const c = evs[1]!;
  assert.ok(c.type === 'command');
  assert.equal(show(c.args), 'saved-messages (\\Seen) {From: x@y\r\n\r\nhi there!\r\n}');
});

test('an announced 4 GB literal is refused before any byte is read', () => {
  const p = new ImapParser({ maxLiteralSize: 10 * 1024 * 1024 });
  p.push(Buffer.from('a APPEND INBOX {4294967296}\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'error');
  assert.equal(ev.tag, 'a');
  assert.equal(ev.code, 'TOOBIG');
  assert.equal(ev.fatal, false);
  p.push(Buffer.from('b NOOP\r\n'));
  const ev2 = p.next();
  assert.ok(ev2?.type === 'command' && ev2.tag === 'b');
});

test('a non-synchronising 4 GB literal is fatal (the connection cannot resynchronise)', () => {
  const p = new ImapParser({ maxLiteralSize: 1 << 20, maxNonSyncLiteral: 1 << 20 });
  p.push(Buffer.from('a APPEND INBOX {4294967296+}\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'error' && ev.tag === 'a' && ev.code === 'TOOBIG' && ev.fatal);
});

test('data pushed while a synchronising literal awaits the server is bounded', () => {
  const p = new ImapParser({ maxLineLength: 1000 });
  p.push(Buffer.from('a APPEND INBOX {100}\r\n'));
  assert.equal(p.next()?.type, 'literal');
  p.push(Buffer.alloc(5000, 0x61));
  const ev = p.next();
  assert.ok(ev?.type === 'error' && ev.fatal);
  assert.ok(p.bufferedBytes < 1000);
});

test('the server can reject a literal (APPEND over quota) and the parser resynchronises', () => {
  const p = new ImapParser();
  p.push(Buffer.from('a APPEND INBOX {5000}\r\nb NOOP\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'literal' && ev.size === 5000);
  p.rejectLiteral();
  const ev2 = p.next();
  assert.ok(ev2?.type === 'command' && ev2.tag === 'b');
});

test('LITERAL+ and LITERAL-: non-synchronising literal over 4096 is BAD and its data skipped', () => {
  const small = parse('a APPEND INBOX {3+}\r\nabc\r\n');
  assert.deepEqual(small.map((e) => e.type), ['literal', 'command']);
  assert.ok(small[0]?.type === 'literal' && small[0].sync === false);
  const big = 'x'.repeat(5000);
  const evs = parse(`a APPEND INBOX {5000+}\r\n${big}\r\nb NOOP\r\n`);
  assert.deepEqual(evs.map((e) => e.type), ['error', 'command']);
  assert.ok(evs[0]?.type === 'error' && evs[0].tag === 'a' && evs[0].code === 'TOOBIG');
  assert.ok(evs[1]?.type === 'command' && evs[1].tag === 'b');
  const allowed = parse(`a APPEND INBOX {5000+}\r\n${big}\r\n`, { maxNonSyncLiteral: 1 << 20 });
  assert.deepEqual(allowed.map((e) => e.type), ['literal', 'command']);
});

test('literal8 ~{N} is typed', () => {
  const [, ev] = parse('a APPEND INBOX ~{3}\r\na\x00b\r\n');
  assert.ok(ev?.type === 'command');
  const a = ev.args[1];
  assert.ok(a?.type === 'literal' && a.literal8 && a.value.equals(Buffer.from('a\x00b')));
});

test('streaming a literal: chunks, never buffered whole', () => {
  const p = new ImapParser();
  p.push(Buffer.from('a APPEND INBOX {100000}\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'literal');
  p.acceptLiteral({ stream: true });
  let got = 0;
  let last = false;
  for (let i = 0; i < 100; i++) {
    p.push(Buffer.alloc(1000, 0x61));
    assert.ok(p.bufferedBytes <= 1000);
    for (let e = p.next(); e; e = p.next()) {
      if (e.type === 'literal-chunk') { got += e.data.length; last = e.last; }
    }
  }
  assert.equal(got, 100000);
  assert.ok(last);
  p.push(Buffer.from('\r\n'));
  const c = p.next();
  assert.ok(c?.type === 'command');
  const lit = c.args[1];
  assert.ok(lit?.type === 'literal' && lit.streamed && lit.size === 100000);
});

test('over-long line: BAD with tag, memory stays bounded, parser goes on', () => {
  const p = new ImapParser({ maxLineLength: 1000 });
  p.push(Buffer.from('tag1 SEARCH '));
  for (let i = 0; i < 1000; i++) {
    p.push(Buffer.alloc(1000, 0x41));
    const ev = p.next();
    if (i === 0) { assert.ok(ev?.type === 'error' && ev.tag === 'tag1' && ev.code === 'TOOBIG'); }
    else assert.equal(ev, undefined);
    assert.ok(p.bufferedBytes < 2000, 'skipping does not buffer');
  }
  p.push(Buffer.from('\r\nt2 NOOP\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'command' && ev.tag === 't2');
});

test('100,000-deep parentheses: BAD, no stack overflow', () => {
  const deep = '('.repeat(100_000) + ')'.repeat(100_000);
  const evs = parse(`a FETCH 1 ${deep}\r\nb NOOP\r\n`, { maxLineLength: 1 << 20 });
  assert.ok(evs[0]?.type === 'error' && evs[0].tag === 'a' && /nested/.test(evs[0].message));
  assert.ok(evs[1]?.type === 'command' && evs[1].tag === 'b');
  // with the default 64k line limit it is refused as too long
  const evs2 = parse(`a FETCH 1 ${deep}\r\nb NOOP\r\n`);
  assert.ok(evs2[0]?.type === 'error' && evs2[0].tag === 'a');
  assert.ok(evs2.at(-1)?.type === 'command');
});

test('NUL byte in a command line is BAD with the tag', () => {
  const evs = parse('a1 LOGIN us\x00er pass\r\na2 NOOP\r\na3 LOGIN "u\x00" p\r\n');
  // Dovecot's texts, with the command named
  assert.ok(evs[0]?.type === 'error' && evs[0].tag === 'a1' && evs[0].command === 'LOGIN' && evs[0].message === 'Invalid characters in atom');
  assert.ok(evs[1]?.type === 'command' && evs[1].tag === 'a2');
  assert.ok(evs[2]?.type === 'error' && evs[2].tag === 'a3' && evs[2].message === 'NULs not allowed in strings');
});

test('unbalanced lists and stray characters are BAD', () => {
  for (const bad of ['a FETCH 1 (FLAGS\r\n', 'a FETCH 1 FLAGS)\r\n', 'a X {12\r\n', '+ x\r\n', 'a\r\n', 'a SELECT a{b\r\n', 'a SELECT a(b\r\n']) {
    const [ev] = parse(bad);
    assert.equal(ev?.type, 'error', bad);
  }
});

test('brackets: a section only after a FETCH attribute name; elsewhere `[` and `]` are atom characters (RFC 3501 §9)', () => {
  const atoms = (line: string): string[] => {
    const [ev] = parse(line);
    assert.ok(ev?.type === 'command', line);
    return ev.args.map((a) => (a.type === 'atom' ? a.value : a.type));
  };
  assert.deepEqual(atoms('a FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>\r\n'), ['number', 'BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>']);
  assert.deepEqual(atoms("a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n"), ["!#$&'+,-.0123456789:;<=>?@^_`|[}"]);
  assert.deepEqual(atoms('a LIST "" [%\r\n'), ['string', '[%']);
  assert.deepEqual(atoms('a SELECT ]]]\r\n'), [']]]']);
  // an unclosed section ends at the space: FETCH then says what is missing, the session goes on
  assert.deepEqual(atoms('a FETCH 1 BODY[TEXT\r\n'), ['number', 'BODY[TEXT']);
  assert.deepEqual(atoms('a FETCH 1 BODY[HEADER.FIELDS (FROM)\r\n'), ['number', 'BODY[HEADER.FIELDS', 'list']);
  const [nil] = parse('a SEARCH SUBJECT nil\r\n');
  assert.ok(nil?.type === 'command' && nil.args[1]?.type === 'nil' && nil.args[1].raw === 'nil');
});

test('an error on a line ending in {N+} also skips the literal data', () => {
  const evs = parse('a FETCH ) {5+}\r\nb NOO\r\nc NOOP\r\n');
  assert.equal(evs[0]?.type, 'error');
  assert.ok(evs[1]?.type === 'command' && evs[1].tag === 'c');
});

test('raw lines for AUTHENTICATE / IDLE', () => {
  const p = new ImapParser();
  p.push(Buffer.from('a IDLE\r\nDONE\r\nb NOOP\r\n'));
  const ev = p.next();
  assert.ok(ev?.type === 'command' && ev.command === 'IDLE');
  p.expectRawLine();
  const l = p.next();
  assert.ok(l?.type === 'line' && l.data.toString() === 'DONE');
  const c = p.next();
  assert.ok(c?.type === 'command' && c.tag === 'b');
});

test('fuzz: random bytes and mutations never throw and never hang', () => {
  let seed = 12345;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const samples = [
    'a1 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (FROM)]<0.10> FLAGS)\r\n',
    'a2 APPEND INBOX (\\Seen) "01-Jan-2020 10:00:00 +0000" {5+}\r\nhello\r\n',
    'a3 SEARCH CHARSET UTF-8 OR FROM "x" (SUBJECT {3}\r\nabc)\r\n',
    'a4 LOGIN ~{3}\r\nx\x00y "p"\r\n',
  ];
  const alphabet = Buffer.from('(){}[]"\\~+*% \r\n0123456789aZ\x00\xff');
  for (let iter = 0; iter < 3000; iter++) {
    const base = Buffer.from(samples[rnd(samples.length)]!, 'latin1');
    const b = Buffer.from(base);
    const muts = 1 + rnd(6);
    for (let m = 0; m < muts; m++) b[rnd(b.length)] = rnd(3) === 0 ? rnd(256) : alphabet[rnd(alphabet.length)]!;
    const p = new ImapParser({ maxLineLength: 4096, maxLiteralSize: 100 });
    let off = 0;
    let events = 0;
    while (off < b.length) {
      const n = 1 + rnd(8);
      p.push(b.subarray(off, off + n));
      off += n;
      for (let ev = p.next(); ev; ev = p.next()) {
        events++;
        assert.ok(events < 10_000);
        if (ev.type === 'literal') { if (rnd(2)) p.acceptLiteral({ stream: rnd(2) === 0 }); else p.rejectLiteral(); }
      }
    }
    assert.ok(p.bufferedBytes <= b.length + 4096);
  }
});

test('accepted literals count toward the command (imap_max_line_length covers the whole command)', () => {
  const p = new ImapParser({ maxLineLength: 100 });
  p.push(Buffer.from('a LOGIN {10}\r\n'));
  assert.ok(p.next()?.type === 'literal');
  assert.equal(p.commandBytes, 14);
  p.acceptLiteral();
  assert.equal(p.commandBytes, 24);
  p.push(Buffer.from('0123456789 {20}\r\n'));
  assert.ok(p.next()?.type === 'literal');
  assert.equal(p.commandBytes, 24 + 7);
  p.rejectLiteral();
  // APPEND's message data is bounded by the server, not by the line limit
  const q = new ImapParser({ maxLineLength: 100 });
  q.push(Buffer.from('a APPEND INBOX {500}\r\n'));
  assert.ok(q.next()?.type === 'literal');
  q.acceptLiteral({ uncounted: true });
  q.push(Buffer.from('x'.repeat(500) + '\r\n'));
  const c = q.next();
  assert.ok(c?.type === 'command' && c.args[1]?.type === 'literal');
});

test('a raw line over the limit comes as tooLong, with or without its LF, and the rest is skipped', () => {
  for (const end of ['\r\n', '']) {
    const p = new ImapParser({ maxLineLength: 100 });
    p.expectRawLine();
    p.push(Buffer.from('A'.repeat(500) + end));
    const ev = p.next();
    assert.ok(ev?.type === 'line' && ev.tooLong === true && ev.data.length === 0);
    if (end === '') p.push(Buffer.from('AAAA\r\n'));
    p.push(Buffer.from('b NOOP\r\n'));
    const c = p.next();
    assert.ok(c?.type === 'command' && c.tag === 'b', end);
    assert.ok(p.bufferedBytes < 100);
  }
});

test('a command line over the limit names its tag and command', () => {
  const p = new ImapParser({ maxLineLength: 100 });
  p.push(Buffer.from('a SEARCH TEXT ' + 'x'.repeat(500)));
  const ev = p.next();
  assert.ok(ev?.type === 'error' && ev.tag === 'a' && ev.command === 'SEARCH' && ev.message === 'Too long argument');
});

test('a rejected non-synchronising literal ends its command: the next line is a new command', () => {
  const p = new ImapParser();
  p.push(Buffer.from('b SETMETADATA INBOX (/private/x {5+}\r\nhello)\r\nc NOOP\r\n'));
  const lit = p.next();
  assert.ok(lit?.type === 'literal' && !lit.sync);
  p.rejectLiteral();
  const next = p.next();
  assert.ok(next?.type === 'command' && next.tag === 'c' && next.command === 'NOOP', JSON.stringify(next));
});
