#!/usr/bin/python3
"""A scriptable test milter on Debian's python3-milter (libmilter): it records every event it
sees (with the macros of that stage) as JSON lines, and answers or edits as its plan says.

  /usr/bin/python3 test-milter.py SOCKET LOGFILE PLANFILE

SOCKET is libmilter's form (inet:PORT@127.0.0.1). PLANFILE is JSON:
  {"connect": "continue", "helo": ..., "mail": ..., "rcpt": {"bad@x": "reject", "*": "continue"},
   "data": ..., "header": ..., "eoh": ..., "body": ..., "eom": "continue",
   "edits": [["addheader", "X-A", "v"], ["insheader", 0, "X-Top", "v"], ["chgheader", "Subject", 1, "new"],
             ["delheader", "X-Del", 1], ["replacebody", "text"], ["addrcpt", "<x@y>", "NOTIFY=NEVER"],
             ["delrcpt", "<a@b>"], ["chgfrom", "<new@x>"], ["quarantine", "reason"], ["progress"]],
   "leadspace": false, "rcpt_rej": false, "noreply": false, "symlist_mail": ["j", "{mail_addr}"]}
Answers: continue, accept, reject, tempfail, discard, "reply:550 5.7.0 text" (multi-line with \\n).
The plan is read again at each connection, so a test can change it between sessions.
"""
import json
import sys
import Milter

SOCKET, LOG, PLAN = sys.argv[1], sys.argv[2], sys.argv[3]
MACROS = ['i', 'j', '_', 'v', '{daemon_name}', '{daemon_addr}', '{client_addr}', '{client_port}', '{client_name}',
          '{auth_authen}', '{auth_type}', '{mail_addr}', '{mail_host}', '{mail_mailer}', '{rcpt_addr}', '{rcpt_host}',
          '{rcpt_mailer}', '{tls_version}', '{cipher}', '{cipher_bits}', '{cert_subject}', '{cert_issuer}']


def plan():
    with open(PLAN) as f:
        return json.load(f)


def record(ev, **kw):
    with open(LOG, 'a') as f:
        f.write(json.dumps(dict(ev=ev, **kw)) + '\n')


def answer(ctx, what):
    if what is None or what == 'continue':
        return Milter.CONTINUE
    if what == 'accept':
        return Milter.ACCEPT
    if what == 'reject':
        return Milter.REJECT
    if what == 'tempfail':
        return Milter.TEMPFAIL
    if what == 'discard':
        return Milter.DISCARD
    if what == 'skip':
        return Milter.SKIP
    if what.startswith('reply:'):
        parts = what[6:].split('\n')
        code, xcode, text = parts[0].split(' ', 2)
        ctx.setreply(code, xcode, text, *parts[1:])
        return Milter.REJECT if code[0] == '5' else Milter.TEMPFAIL
    raise ValueError(what)


class TestMilter(Milter.Base):
    def __init__(self):
        self.p = plan()
        self.body_bytes = 0

    def macros(self):
        out = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                out[m] = v
        return out

    def connect(self, hostname, family, hostaddr):
        record('connect', hostname=hostname, addr=str(hostaddr[0]) if hostaddr else None, macros=self.macros())
        return answer(self, self.p.get('connect'))

    def hello(self, name):
        record('helo', name=name, macros=self.macros())
        return answer(self, self.p.get('helo'))

    def envfrom(self, f, *args):
        record('mail', addr=f, args=list(args), macros=self.macros())
        return answer(self, self.p.get('mail'))

    def envrcpt(self, to, *args):
        record('rcpt', addr=to, args=list(args), macros=self.macros())
        r = self.p.get('rcpt') or {}
        key = to.strip('<>')
        return answer(self, r.get(key, r.get('*')))

    def data(self):
        record('data', macros=self.macros())
        return answer(self, self.p.get('data'))

    def header(self, name, value):
        record('header', name=name, value=value)
        if self.p.get('noreply'):
            return Milter.NOREPLY
        return answer(self, self.p.get('header'))

    def eoh(self):
        record('eoh', macros=self.macros())
        return answer(self, self.p.get('eoh'))

    def body(self, chunk):
        self.body_bytes += len(chunk)
        record('body', text=chunk.decode('latin1'))
        return answer(self, self.p.get('body'))

    def eom(self):
        record('eom', macros=self.macros(), body_bytes=self.body_bytes)
        for e in self.p.get('edits', []):
            op = e[0]
            if op == 'addheader':
                self.addheader(e[1], e[2])
            elif op == 'insheader':
                self.addheader(e[2], e[3], e[1])
            elif op == 'chgheader':
                self.chgheader(e[1], e[2], e[3])
            elif op == 'delheader':
                self.chgheader(e[1], e[2], '')
            elif op == 'replacebody':
                self.replacebody(e[1].encode('latin1'))
            elif op == 'addrcpt':
                self.addrcpt(e[1], e[2] if len(e) > 2 else None)
            elif op == 'delrcpt':
                self.delrcpt(e[1])
            elif op == 'chgfrom':
                self.chgfrom(e[1], e[2] if len(e) > 2 else None)
            elif op == 'quarantine':
                self.quarantine(e[1])
            elif op == 'progress':
                self.progress()
        return answer(self, self.p.get('eom'))

    def unknown(self, cmd):
        record('unknown', cmd=cmd.decode('latin1') if isinstance(cmd, bytes) else cmd)
        return answer(self, self.p.get('unknown'))

    def abort(self):
        record('abort')
        return Milter.CONTINUE

    def close(self):
        record('close')
        return Milter.CONTINUE

    def negotiate(self, opts):
        # opts: [actions, protocol steps, ...]; keep every action, choose the protocol options.
        p = plan()
        r = super().negotiate(opts)
        if p.get('symlist_mail'):
            # python-milter 1.0.5's setsymlist() hands bytes to its C layer, which wants str.
            self._ctx.setsymlist(Milter.M_ENVFROM, ' '.join(p['symlist_mail']))
        if p.get('leadspace'):
            self._protocol |= Milter.P_HDR_LEADSPC
        if p.get('rcpt_rej'):
            self._protocol |= Milter.P_RCPT_REJ
        if p.get('noreply'):
            self._protocol |= Milter.P_NR_HDR
        opts[1] = self._protocol
        return r


Milter.factory = TestMilter
Milter.set_flags(Milter.ADDHDRS | Milter.CHGBODY | Milter.ADDRCPT | Milter.ADDRCPT_PAR | Milter.DELRCPT
                 | Milter.CHGHDRS | Milter.QUARANTINE | Milter.CHGFROM)
sys.stdout.write('ready\n')
sys.stdout.flush()
Milter.runmilter('test-milter', SOCKET, 240)
