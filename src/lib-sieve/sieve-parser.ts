/**
 * sieve-parser - the syntax tree of a Sieve script (RFC 5228 §8.2 grammar):
 *
 *   commands     = *command
 *   command      = identifier arguments (";" / block)
 *   block        = "{" commands "}"
 *   arguments    = *argument [ test / test-list ]
 *   argument     = string-list / number / tag
 *   test         = identifier arguments
 *   test-list    = "(" test *("," test) ")"
 *   string-list  = "[" string *("," string) "]" / string
 *
 * Blocks and tests nest at most 32 levels (Pigeonhole's SIEVE_MAX_BLOCK_NESTING and
 * SIEVE_MAX_TEST_NESTING, with its wording), so a hostile script cannot exhaust the stack; a
 * command or test takes at most 32 arguments (SIEVE_MAX_COMMAND_ARGUMENTS).
 * The first syntax error ends the parse (as Pigeonhole's "parse failed"); command names are not
 * checked here but by sieve-validate.ts.
 */
import { SieveLexer, SieveSyntaxError, type Token } from './sieve-lexer.ts';

export const SIEVE_MAX_BLOCK_NESTING = 32;
export const SIEVE_MAX_TEST_NESTING = 32;
/** Pigeonhole's SIEVE_MAX_COMMAND_ARGUMENTS. */
export const SIEVE_MAX_COMMAND_ARGUMENTS = 32;

interface Pos { line: number; column: number }
export type SieveArg =
  | ({ type: 'string'; value: string; multiline: boolean } & Pos)
  | ({ type: 'stringlist'; values: string[] } & Pos)
  | ({ type: 'number'; value: number } & Pos)
  | ({ type: 'tag'; name: string } & Pos);

export interface SieveAstNode extends Pos {
  /** Identifier as written (compared case-insensitively). */
  name: string;
  args: SieveArg[];
  tests: SieveAstNode[];
  /** The tests came as a parenthesised test-list. */
  testList: boolean;
  /** Commands only: the block, or null after ";". */
  block: SieveAstNode[] | null;
}

function describe(t: Token): string {
  switch (t.type) {
    case 'eof': return 'end of file';
    case 'punct': return `'${t.text}'`;
    case 'identifier': return `identifier '${t.text}'`;
    case 'tag': return `tag ':${t.text}'`;
    case 'number': return 'number';
    case 'string': return 'string';
  }
}

export class SieveParser {
  private readonly lx: SieveLexer;
  private tok: Token;

  constructor(src: string) {
    this.lx = new SieveLexer(src);
    this.tok = this.lx.next();
  }

  private adv(): Token {
    const t = this.tok;
    this.tok = this.lx.next();
    return t;
  }

  private err(msg: string, t: Token = this.tok): never {
    throw new SieveSyntaxError(msg, t.line, t.column);
  }

  private isIdentifier(): boolean {
    return this.tok.type === 'identifier';
  }

  private isPunct(c: string): boolean {
    return this.tok.type === 'punct' && this.tok.text === c;
  }

  /** The whole script; throws SieveSyntaxError. */
  parse(): SieveAstNode[] {
    const cmds = this.commands(0);
    if (this.tok.type !== 'eof') this.err(`unexpected ${describe(this.tok)} found at (the presumed) end of file`);
    return cmds;
  }

  private commands(depth: number): SieveAstNode[] {
    const out: SieveAstNode[] = [];
    while (this.tok.type === 'identifier') out.push(this.command(depth));
    return out;
  }

  private command(depth: number): SieveAstNode {
    const id = this.adv();
    const node: SieveAstNode = { name: id.text, args: [], tests: [], testList: false, block: null, line: id.line, column: id.column };
    this.arguments(node, 0);
    if (this.isPunct(';')) { this.adv(); return node; }
    if (this.isPunct('{')) {
      const open = this.adv();
      if (depth + 1 > SIEVE_MAX_BLOCK_NESTING) this.err(`cannot nest command blocks deeper than ${SIEVE_MAX_BLOCK_NESTING} levels`, open);
      node.block = this.commands(depth + 1);
      if (!this.isPunct('}')) this.err(`expected end of compound block '}', but found ${describe(this.tok)}`);
      this.adv();
      return node;
    }
    this.err(`expected end of command ';' or the beginning of a compound block '{', but found ${describe(this.tok)}`);
  }

  private arguments(node: SieveAstNode, testDepth: number): void {
    for (;;) {
      const t = this.tok;
      if (node.args.length >= SIEVE_MAX_COMMAND_ARGUMENTS && (t.type === 'string' || t.type === 'number' || t.type === 'tag' || this.isPunct('['))) {
        this.err(`too many arguments for ${testDepth === 0 ? 'command' : 'test'} '${node.name}'`);
      }
      if (t.type === 'string') {
        this.adv();
        node.args.push({ type: 'string', value: t.text, multiline: t.multiline, line: t.line, column: t.column });
      } else if (t.type === 'number') {
        this.adv();
        node.args.push({ type: 'number', value: t.num, line: t.line, column: t.column });
      } else if (t.type === 'tag') {
        this.adv();
        node.args.push({ type: 'tag', name: t.text.toLowerCase(), line: t.line, column: t.column });
      } else if (this.isPunct('[')) {
        node.args.push(this.stringList());
      } else break;
    }
    if (this.tok.type === 'identifier') {
      node.tests.push(this.test(testDepth + 1));
    } else if (this.isPunct('(')) {
      this.adv();
      node.testList = true;
      for (;;) {
        if (!this.isIdentifier()) {
          this.err(`expecting test identifier after '${node.tests.length ? ',' : '('}' in test list, but found ${describe(this.tok)}`);
        }
        node.tests.push(this.test(testDepth + 1));
        if (this.isPunct(',')) { this.adv(); continue; }
        if (this.isPunct(')')) { this.adv(); break; }
        this.err(`expecting ',' or end of test list ')', but found ${describe(this.tok)}`);
      }
    }
  }

  private test(depth: number): SieveAstNode {
    const id = this.tok;
    if (depth > SIEVE_MAX_TEST_NESTING) this.err(`cannot nest tests deeper than ${SIEVE_MAX_TEST_NESTING} levels`, id);
    this.adv();
    const node: SieveAstNode = { name: id.text, args: [], tests: [], testList: false, block: null, line: id.line, column: id.column };
    this.arguments(node, depth);
    return node;
  }

  private stringList(): SieveArg {
    const open = this.adv();
    const values: string[] = [];
    for (;;) {
      if (this.tok.type !== 'string') {
        this.err(`expecting string after '${values.length ? ',' : '['}' in string list, but found ${describe(this.tok)}`);
      }
      values.push(this.adv().text);
      if (this.isPunct(',')) { this.adv(); continue; }
      if (this.isPunct(']')) { this.adv(); break; }
      this.err(`expecting ',' or end of string list ']', but found ${describe(this.tok)}`);
    }
    return { type: 'stringlist', values, line: open.line, column: open.column };
  }
}

export function parseSieve(src: string): SieveAstNode[] {
  return new SieveParser(src).parse();
}
