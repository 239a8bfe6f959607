/**
 * managesieve-py - the response reader the tests' Python ManageSieve clients share (RFC 5804 §4):
 * `response()` reads lines, and the server's {n} literals, up to the line starting with OK, NO or
 * BYE, and returns them as sent; `lit(b)` makes a client literal {n+}. Paste it into a script after
 * the line that opens the socket `s` (a later `s = ctx.wrap_socket(s)` is picked up: `fill()` reads
 * the global).
 */
export const MANAGESIEVE_PY_READER = String.raw`buf = b''
def fill():
    global buf
    d = s.recv(65536)
    if not d: raise EOFError()
    buf += d
def response():
    global buf
    out = b''
    while True:
        while b'\r\n' not in buf: fill()
        line, buf = buf.split(b'\r\n', 1)
        out += line + b'\r\n'
        m = re.search(rb'\{(\d+)\}$', line)
        final = re.match(rb'(OK|NO|BYE)( |$)', line)
        if m:
            n = int(m.group(1))
            while len(buf) < n: fill()
            out += buf[:n]; buf = buf[n:]
            if not final: continue
            while b'\r\n' not in buf: fill()
            line, buf = buf.split(b'\r\n', 1)
            out += line + b'\r\n'
        if final: return out.decode('utf-8', 'replace')
def lit(b): return b'{%d+}\r\n' % len(b) + b`;
