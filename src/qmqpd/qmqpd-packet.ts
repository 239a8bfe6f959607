/**
 * qmqpd-packet - an incremental reader of one QMQP request (http://cr.yp.to/proto/qmqp.html):
 *
 *   packet = netstring( netstring(message) netstring(sender) netstring(recipient)... )
 *   netstring(s) = decimal length ":" s ","            (http://cr.yp.to/proto/netstrings.txt)
 *
 * As Postfix's qmqpd, the outer length is read and ignored, and the end of the recipients is
 * the outer netstring's "," (qmqpd_copy_recipients()). Each inner netstring has a limit
 * (message: message_size_limit; sender and recipients: line_length_limit) that is checked on
 * the ANNOUNCED length, before any of the data is read, so "999999999:" costs nothing; the
 * total of message + sender + recipients is bounded by message_size_limit too ("the maximal
 * size of a message, including envelope information"). Errors carry Postfix's texts:
 * "netstring format error" / "netstring length exceeds storage limit", with the stage
 * ("receiving message content", "receiving sender address", "receiving recipient address").
 */

export type QmqpStage = 'receiving QMQP packet header' | 'receiving message content' | 'receiving sender address' | 'receiving recipient address';

export class QmqpFormatError extends Error {
  override name = 'QmqpFormatError';
  readonly stage: QmqpStage;
  readonly reason: 'netstring format error' | 'netstring length exceeds storage limit';
  constructor(reason: QmqpFormatError['reason'], stage: QmqpStage) {
    super(`${reason} while ${stage}`);
    this.reason = reason; this.stage = stage;
  }
}

export interface QmqpRequest {
  message: Buffer;
  sender: string;
  recipients: string[];
}

/** Longest length field we read: 20 digits is far above any limit (Postfix: overflow → size error). */
const MAX_DIGITS = 20;

type Part = 'outer' | 'message' | 'sender' | 'rcpt';

export class QmqpReader {
  private readonly messageLimit: number;
  private readonly lineLimit: number;
  private part: Part = 'outer';
  /** 'len': reading digits; 'data': reading `need` bytes; 'comma': expecting ','; 'next': a recipient or the final ','. */
  private mode: 'len' | 'data' | 'comma' | 'next' = 'len';
  private digits = '';
  private need = 0;
  private chunks: Buffer[] = [];
  private total = 0;
  private message: Buffer = Buffer.alloc(0);
  private sender = '';
  private readonly recipients: string[] = [];
  private result: QmqpRequest | undefined;

  /** @param messageLimit message_size_limit (0 = none) @param lineLimit line_length_limit */
  constructor(messageLimit: number, lineLimit: number) {
    this.messageLimit = messageLimit > 0 ? messageLimit : Number.MAX_SAFE_INTEGER;
    this.lineLimit = lineLimit;
  }

  get stage(): QmqpStage {
    switch (this.part) {
      case 'outer': return 'receiving QMQP packet header';
      case 'message': return 'receiving message content';
      case 'sender': return 'receiving sender address';
      default: return 'receiving recipient address';
    }
  }

  get done(): boolean { return this.result !== undefined; }

  /**
   * Feed bytes; returns the request once complete (bytes after it are ignored: one message per
   * connection). Throws QmqpFormatError.
   */
  feed(b: Buffer): QmqpRequest | undefined {
    let i = 0;
    while (i < b.length && !this.result) {
      switch (this.mode) {
        case 'next': {
          if (b[i] === 0x2c) { i++; this.result = { message: this.message, sender: this.sender, recipients: this.recipients }; break; }
          this.mode = 'len';
          break;
        }
        case 'len': {
          const c = b[i++]!;
          if (c === 0x3a) { this.startData(); break; }
          if (c < 0x30 || c > 0x39 || this.digits.length >= MAX_DIGITS) {
            throw new QmqpFormatError(this.digits.length >= MAX_DIGITS ? 'netstring length exceeds storage limit' : 'netstring format error', this.stage);
          }
          this.digits += String.fromCharCode(c);
          break;
        }
        case 'data': {
          const n = Math.min(this.need, b.length - i);
          this.chunks.push(b.subarray(i, i + n));
          i += n;
          this.need -= n;
          if (this.need === 0) this.mode = 'comma';
          break;
        }
        case 'comma': {
          if (b[i++] !== 0x2c) throw new QmqpFormatError('netstring format error', this.stage);
          this.endData();
          break;
        }
      }
    }
    return this.result;
  }

  private startData(): void {
    if (this.digits === '') throw new QmqpFormatError('netstring format error', this.stage);
    const len = Number(this.digits);
    this.digits = '';
    if (this.part === 'outer') {
      // The outer length is ignored (qmqpd.c: "Read and ignore the over-all netstring length").
      this.part = 'message';
      this.mode = 'len';
      return;
    }
    const limit = this.part === 'message' ? this.messageLimit : this.lineLimit;
    if (len > limit || this.total + len > this.messageLimit) throw new QmqpFormatError('netstring length exceeds storage limit', this.stage);
    this.total += len;
    this.need = len;
    this.chunks = [];
    this.mode = len === 0 ? 'comma' : 'data';
  }

  private endData(): void {
    const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    if (this.part === 'message') {
      this.message = Buffer.from(data);
      this.part = 'sender';
      this.mode = 'len';
    } else if (this.part === 'sender') {
      this.sender = data.toString('utf8');
      this.part = 'rcpt';
      this.mode = 'next';
    } else {
      this.recipients.push(data.toString('utf8'));
      this.mode = 'next';
    }
  }
}
