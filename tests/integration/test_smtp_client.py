"""The SMTP/LMTP client module (src/smtp/client.c) through its test driver
petrel-smtpc, against a scripted peer written here, a real petrel, Postfix's
smtp-sink and a scripted LMTP peer. The scripted peer records exactly what
it received: commands, the pipelined batch, the raw (dot-stuffed) DATA."""
import base64
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import BIN, free_port
from helpers import check_delivered

# the driver from the same build as the petrel under test (BIN is
# <build>/src/petrel), unless PETREL_SMTPC names one
SMTPC = os.environ.get("PETREL_SMTPC", str(Path(BIN).resolve().parents[1] /
                                           "tests" / "tools" / "petrel-smtpc"))
SMTP_SINK = "/usr/sbin/smtp-sink"
SENDER = "sender@example.org"

FULL_CAPS = ("PIPELINING", "SIZE 10485760", "8BITMIME", "SMTPUTF8", "DSN",
             "ENHANCEDSTATUSCODES")

# dot-stuffing cases: a leading dot, a lone dot, two dots, a dot after an
# empty line, and the dot-stuffing of the very first line
MESSAGE = (b".first line starts with a dot\r\n"
           b"Subject: client test\r\n"
           b"\r\n"
           b"hello\r\n"
           b".\r\n"
           b"..two\r\n"
           b"\r\n"
           b". dot space\r\n"
           b"last line\r\n")


def stuff(msg: bytes) -> bytes:
    """RFC 5321 4.5.2 transparency, as the wire should carry it."""
    return b"".join(b"." + ln if ln.startswith(b".") else ln
                    for ln in msg.splitlines(keepends=True))


# ---- a scripted peer ---------------------------------------------------------

class Conn:
    """A buffered line reader over a (possibly TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        sock.settimeout(15)

    def recv_more(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            chunk = None
        except (OSError, ssl.SSLError):
            chunk = b""
        finally:
            if timeout is not None:
                self.sock.settimeout(15)
        if chunk:
            self.buf += chunk
        return chunk

    def readline(self):
        while b"\r\n" not in self.buf:
            if not self.recv_more():
                return None
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def reply(self, text):
        self.send(text + "\r\n")

    def wait_close(self, limit=15):
        """Say nothing until the client hangs up (a stalled server)."""
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.recv_more(0.2) == b"":
                return


class Peer:
    """A scripted SMTP (or LMTP) server on a free loopback port, serving
    connections one after the other in a thread. Options:
      caps          EHLO keywords after the first line
      lmtp          expect LHLO, answer each accepted rcpt after DATA
      greeting      the 220 line (or another)
      ehlo          the EHLO reply code when not 250 (e.g. 502)
      mail          the MAIL reply
      rcpt          {addr: reply} (default 250 2.1.5 Ok)
      data          the DATA reply (354 ...); data_always: 354 even when
                    no rcpt was accepted (a broken server)
      final         the final reply; lmtp_final {addr: reply}
      drop_after    close after this many DATA bytes
      stall         "greeting", "MAIL", "end": stop answering there
      flood         on EHLO, send a never-ending line
      tls           an ssl server context: offer STARTTLS
      tls_garbage   answer 220 to STARTTLS, then send no TLS at all
      auth          {user: password}, offered as "AUTH <auth_mechs>"
    Records: commands (str), batch (the lines that came with MAIL before
    any reply), early (a command came before the previous reply when
    PIPELINING was not offered), messages (raw DATA, still stuffed),
    creds (decoded AUTH), tls_used, quit."""

    def __init__(self, **opts):
        self.opts = {
            "caps": FULL_CAPS, "lmtp": False,
            "greeting": "220 peer.test ESMTP scripted",
            "ehlo": 250, "mail": "250 2.1.0 Ok", "rcpt": {},
            "data": "354 End data with <CR><LF>.<CR><LF>",
            "data_always": False,
            "final": "250 2.0.0 Ok: queued as SCRIPTED", "lmtp_final": {},
            "drop_after": None, "stall": None, "flood": False,
            "tls": None, "tls_garbage": False, "auth": None,
            "auth_mechs": "PLAIN LOGIN",
        }
        self.opts.update(opts)
        self.commands = []
        self.batch = None
        self.early = False
        self.messages = []
        self.creds = []
        self.tls_used = False
        self.quit = False
        self.errors = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping = True
        self.thread.join(20)
        self.lsock.close()
        assert not self.errors, self.errors

    def cmds(self, verb):
        return [c for c in self.commands if c.upper().startswith(verb)]

    def _run(self):
        while not self.stopping:
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._session(Conn(sock))
            except Exception as e:		# recorded, raised by close()
                self.errors.append(repr(e))
            finally:
                try:
                    sock.close()
                except OSError:
                    pass

    def _session(self, io):
        o = self.opts
        if o["stall"] == "greeting":
            io.wait_close()
            return
        io.reply(o["greeting"])
        mail_ok = False
        accepted = []
        self.offered = ()	# what the last EHLO offered
        while True:
            raw = io.readline()
            if raw is None:
                return
            line = raw.decode("utf-8", "surrogateescape")
            self.commands.append(line)
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "LHLO"):
                if (verb == "LHLO") != o["lmtp"]:
                    io.reply("500 5.5.1 wrong hello")
                    continue
                if o["flood"]:
                    io.send(b"250-" + b"x" * 200000)
                    io.wait_close()
                    return
                if o["ehlo"] != 250:
                    io.reply(f"{o['ehlo']} 5.5.1 EHLO not understood")
                    continue
                caps = list(o["caps"])
                if o["tls"] is not None and not self.tls_used:
                    caps.append("STARTTLS")
                if o["auth"] is not None:
                    caps.append("AUTH " + o["auth_mechs"])
                self.offered = caps
                lines = ["peer.test greets you"] + caps
                io.send("".join(f"250{'-' if i < len(lines) - 1 else ' '}"
                                f"{ln}\r\n" for i, ln in enumerate(lines)))
            elif verb == "HELO":
                self.offered = ()
                io.reply("250 peer.test")
            elif verb == "STARTTLS":
                io.reply("220 2.0.0 Ready to start TLS")
                if o["tls_garbage"]:
                    io.send(b"this is not TLS\r\n" * 20)
                    io.wait_close(5)
                    return
                io.sock = o["tls"].wrap_socket(io.sock, server_side=True)
                io.buf = b""
                self.tls_used = True
                self.offered = ()
                self.commands.append("<TLS>")
            elif verb == "AUTH":
                self._auth(io, line)
            elif verb == "MAIL":
                if o["stall"] == "MAIL":
                    io.wait_close()
                    return
                self._batch_check(io, line)
                mail_ok = o["mail"].startswith("2")
                accepted = []
                io.reply(o["mail"])
            elif verb == "RCPT":
                self._early_check(io)
                if not mail_ok:
                    io.reply("503 5.5.1 Error: need MAIL command")
                    continue
                addr = line[line.index("<") + 1:line.index(">")]
                r = o["rcpt"].get(addr, "250 2.1.5 Ok")
                if r.startswith("2"):
                    accepted.append(addr)
                io.reply(r)
            elif verb == "DATA":
                if not accepted and not o["data_always"]:
                    io.reply("554 5.5.1 Error: no valid recipients")
                    continue
                io.reply(o["data"])
                if not o["data"].startswith("354"):
                    continue
                content = self._read_data(io)
                if content is None:
                    return
                self.messages.append(content)
                if o["stall"] == "end":
                    io.wait_close()
                    return
                if o["lmtp"]:
                    for a in accepted:
                        io.reply(o["lmtp_final"].get(a, "250 2.0.0 Ok"))
                else:
                    io.reply(o["final"])
                mail_ok = False
            elif verb == "RSET":
                mail_ok = False
                io.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.quit = True
                io.reply("221 2.0.0 Bye")
                return
            else:
                io.reply("502 5.5.2 Error: command not recognized")

    def _auth(self, io, line):
        parts = line.split()
        mech = parts[1].upper()
        if mech == "PLAIN" and len(parts) == 3:
            _, user, pw = base64.b64decode(parts[2]).split(b"\0")
        elif mech == "LOGIN" and "LOGIN" in self.opts["auth_mechs"]:
            io.reply("334 VXNlcm5hbWU6")
            user = base64.b64decode(io.readline())
            io.reply("334 UGFzc3dvcmQ6")
            pw = base64.b64decode(io.readline())
        else:
            io.reply("504 5.5.4 mechanism not supported")
            return
        self.creds.append((mech, user.decode(), pw.decode()))
        if self.opts["auth"].get(user.decode()) == pw.decode():
            io.reply("235 2.7.0 Authentication successful")
        else:
            io.reply("535 5.7.8 Error: authentication failed")

    def _batch_check(self, io, mail):
        """PIPELINING offered: everything up to DATA must come with MAIL
        (RFC 2920 3.1), before any reply: wait for it a little."""
        if "PIPELINING" not in self.offered:
            self._early_check(io)
            return
        deadline = time.time() + 2
        while b"DATA\r\n" not in io.buf and time.time() < deadline:
            io.recv_more(0.1)
        rest = io.buf.split(b"\r\n")[:-1]
        self.batch = [mail] + [x.decode("utf-8", "surrogateescape")
                               for x in rest]

    def _early_check(self, io):
        if "PIPELINING" in self.offered:
            return
        if io.buf or io.recv_more(0.05):
            self.early = True

    def _read_data(self, io):
        """The raw DATA content up to CRLF.CRLF (still stuffed), or None
        if the connection is to be dropped or was lost."""
        data = bytearray(b"\r\n") + io.buf	# the CRLF before DATA
        io.buf = b""
        pos = 0
        while True:
            i = data.find(b"\r\n.\r\n", pos)
            if i >= 0:
                io.buf = bytes(data[i + 5:])
                return bytes(data[2:i + 2])
            pos = max(0, len(data) - 4)
            drop = self.opts["drop_after"]
            if drop is not None and len(data) - 2 >= drop:
                io.sock.close()
                return None
            if not io.recv_more():
                return None
            data += io.buf
            io.buf = b""


@pytest.fixture
def peers():
    made = []

    def make(**opts):
        p = Peer(**opts)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory):
    """A server context with a throwaway self-signed certificate."""
    d = tmp_path_factory.mktemp("peer-tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-keyout", "k.pem", "-out", "c.pem",
                    "-subj", "/CN=peer.test"],
                   cwd=d, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    return ctx


# ---- the driver ----------------------------------------------------------------

@pytest.fixture
def smtpc(tmp_path):
    """Run petrel-smtpc: smtpc(port, *args, to=[...], msg=bytes) ->
    results {addr: (result, code, enh, text)}, status, diag, tls."""
    if not os.access(SMTPC, os.X_OK):
        pytest.skip(f"{SMTPC} not built")
    n = [0]

    def run(port, *args, to=("a@example.test",), msg=MESSAGE,
            sender=SENDER, timeout=20):
        n[0] += 1
        f = tmp_path / f"msg{n[0]}.eml"
        f.write_bytes(msg)
        cmd = [SMTPC, "127.0.0.1", str(port), "--from", sender]
        for t in to:
            cmd += ["--to", t]
        cmd += [*args, str(f)]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace")
        assert p.returncode == 0, (cmd, out, p.stderr)
        lines = out.splitlines()
        results = {}
        for ln in lines[:-2]:
            addr, res, code, enh, text = (ln.split(" ", 4) + [""])[:5]
            results[addr] = (res, int(code), enh, text)
        st = lines[-2].split(" ", 2)
        assert st[0] == "status", out
        return SimpleNamespace(results=results, status=st[1],
                               diag=st[2] if len(st) > 2 else "",
                               tls=lines[-1].split(" ", 1)[1],
                               elapsed=time.time() - t0, out=out)
    return run


def res(r, addr):
    return r.results[addr][0]


# ---- scripted SMTP peer --------------------------------------------------------

def test_pipelined_batch_results_and_stuffing(peers, smtpc):
    p = peers(rcpt={"t@example.test": "450 4.2.1 mailbox busy",
                    "p@example.test": "550 5.1.1 no such user"})
    r = smtpc(p.port, "--notify", "SUCCESS,FAILURE",
              "--orcpt", "rfc822;orig@example.test", "--ret", "HDRS",
              "--envid", "env+2B1",
              to=["a@example.test", "t@example.test", "p@example.test",
                  "b@example.test"])
    assert r.status == "DONE", r.out
    assert r.results["a@example.test"][:3] == ("OK", 250, "2.0.0")
    assert r.results["a@example.test"][3] == "Ok: queued as SCRIPTED"
    assert r.results["b@example.test"][0] == "OK"
    assert r.results["t@example.test"] == ("TEMP", 450, "4.2.1",
                                           "mailbox busy")
    assert r.results["p@example.test"] == ("PERM", 550, "5.1.1",
                                           "no such user")
    size = len(MESSAGE)
    # RFC 2920: MAIL, every RCPT and DATA in one batch, before any reply
    assert p.batch == [
        f"MAIL FROM:<{SENDER}> SIZE={size} RET=HDRS ENVID=env+2B1",
        *[f"RCPT TO:<{a}@example.test> NOTIFY=SUCCESS,FAILURE "
          "ORCPT=rfc822;orig@example.test" for a in "atpb"],
        "DATA"], p.batch
    assert p.messages == [stuff(MESSAGE)]
    assert p.quit


def test_no_extensions_one_by_one(peers, smtpc):
    """Without PIPELINING the client waits for each reply; without DSN,
    SIZE, 8BITMIME no parameter is sent."""
    p = peers(caps=(), rcpt={"p@example.test": "550 5.1.1 unknown"})
    r = smtpc(p.port, "--notify", "NEVER", "--ret", "FULL", "--envid", "x",
              "--8bit", to=["a@example.test", "p@example.test"])
    assert r.status == "DONE", r.out
    assert res(r, "a@example.test") == "OK"
    assert res(r, "p@example.test") == "PERM"
    assert p.cmds("MAIL") == [f"MAIL FROM:<{SENDER}>"]
    assert p.cmds("RCPT") == ["RCPT TO:<a@example.test>",
                              "RCPT TO:<p@example.test>"]
    assert not p.early, p.commands
    assert p.messages == [stuff(MESSAGE)]	# 8-bit sent as is


def test_dsn_params_only_when_offered(peers, smtpc):
    p = peers(caps=("PIPELINING", "DSN"))
    r = smtpc(p.port, "--notify", "DELAY,FAILURE", "--ret", "FULL")
    assert r.status == "DONE" and res(r, "a@example.test") == "OK"
    assert p.cmds("MAIL") == [f"MAIL FROM:<{SENDER}> RET=FULL"]
    assert p.cmds("RCPT") == ["RCPT TO:<a@example.test> "
                              "NOTIFY=FAILURE,DELAY"]


def test_size_refused_before_mail(peers, smtpc):
    p = peers(caps=("PIPELINING", "SIZE 100"))
    r = smtpc(p.port, to=["a@example.test", "b@example.test"],
              msg=b"Subject: big\r\n\r\n" + b"x" * 200 + b"\r\n")
    assert r.status == "DONE", r.out
    for a in ("a@example.test", "b@example.test"):
        result, code, enh, text = r.results[a]
        assert (result, code, enh) == ("PERM", 0, "5.3.4")
        assert "too big" in text
    assert p.cmds("MAIL") == [] and p.quit


def test_smtputf8_refused_when_not_offered(peers, smtpc):
    p = peers(caps=("PIPELINING", "8BITMIME"))
    r = smtpc(p.port, "--smtputf8", to=["пользователь@example.test"])
    result, code, enh, text = r.results["пользователь@example.test"]
    assert (r.status, result, enh) == ("DONE", "PERM", "5.6.7"), r.out
    assert "SMTPUTF8" in text
    assert p.cmds("MAIL") == []


def test_smtputf8_and_8bitmime_params(peers, smtpc):
    p = peers()
    msg = "Subject: héllo\r\n\r\nçà\r\n".encode()
    r = smtpc(p.port, "--smtputf8", "--8bit", to=["ñ@example.test"],
              msg=msg)
    assert r.status == "DONE" and res(r, "ñ@example.test") == "OK", r.out
    assert p.cmds("MAIL") == [f"MAIL FROM:<{SENDER}> SIZE={len(msg)} "
                              "BODY=8BITMIME SMTPUTF8"]
    assert p.cmds("RCPT") == ["RCPT TO:<ñ@example.test>"]
    assert p.messages == [msg]


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("reply,result", [("550 5.7.1 sender denied", "PERM"),
                                          ("451 4.3.0 try later", "TEMP")])
def test_mail_refused(peers, smtpc, pipelining, reply, result):
    caps = FULL_CAPS if pipelining else ("SIZE 1000000",)
    p = peers(caps=caps, mail=reply)
    r = smtpc(p.port, to=["a@example.test", "b@example.test"])
    assert r.status == "DONE", r.out
    code, enh, text = reply.split(" ", 2)
    for a in ("a@example.test", "b@example.test"):
        assert r.results[a] == (result, int(code), enh, text)
    assert p.messages == [] and p.quit
    assert len(p.cmds("RCPT")) == (2 if pipelining else 0)


@pytest.mark.parametrize("pipelining", [True, False])
def test_no_rcpt_accepted(peers, smtpc, pipelining):
    caps = FULL_CAPS if pipelining else ()
    p = peers(caps=caps, rcpt={"a@example.test": "550 5.1.1 unknown",
                               "b@example.test": "452 4.5.3 too many"})
    r = smtpc(p.port, to=["a@example.test", "b@example.test"])
    assert r.status == "DONE"
    assert r.results["a@example.test"][:2] == ("PERM", 550)
    assert r.results["b@example.test"][:2] == ("TEMP", 452)
    assert p.messages == [] and p.quit
    # without pipelining DATA is never sent
    assert len(p.cmds("DATA")) == (1 if pipelining else 0)


def test_354_with_no_rcpt_gets_a_lone_dot(peers, smtpc):
    """RFC 2920 3.1: a broken server says 354 although no rcpt was
    accepted: the client ends the empty content at once."""
    p = peers(rcpt={"a@example.test": "550 5.1.1 unknown"},
              data_always=True)
    r = smtpc(p.port)
    assert r.status == "DONE" and res(r, "a@example.test") == "PERM"
    assert p.messages == [b""] and p.quit


@pytest.mark.parametrize("final,result", [("452 4.3.1 disk full", "TEMP"),
                                          ("554 5.6.0 content rejected",
                                           "PERM")])
def test_final_reply_applies_to_accepted(peers, smtpc, final, result):
    p = peers(final=final, rcpt={"p@example.test": "550 5.1.1 unknown"})
    r = smtpc(p.port, to=["a@example.test", "p@example.test"])
    code, enh, text = final.split(" ", 2)
    assert r.results["a@example.test"] == (result, int(code), enh, text)
    assert r.results["p@example.test"][:3] == ("PERM", 550, "5.1.1")


def test_line_ends_normalised(peers, smtpc):
    """Only CRLF ends a line: a bare LF or CR goes out as CRLF (no
    smuggled end of data), and a last line without CRLF is ended."""
    p = peers()
    msg = b"Subject: x\r\n\r\na\nb\rc\r\n\n.\r\n.\nend"
    r = smtpc(p.port, msg=msg)
    assert res(r, "a@example.test") == "OK", r.out
    assert p.messages == [b"Subject: x\r\n\r\na\r\nb\r\nc\r\n\r\n..\r\n"
                          b"..\r\nend\r\n"]


def test_body_offset_and_large_message(peers, smtpc):
    """The message starts at body_off; 3 MB streams in chunks."""
    p = peers()
    body = b"".join(b"%s line %d of a long message\r\n" %
                    (b"." if i % 7 == 0 else b"", i) for i in range(90000))
    envelope = b"ENVELOPE\nsender x\n\n"
    r = smtpc(p.port, "--body-off", str(len(envelope)), msg=envelope + body)
    assert res(r, "a@example.test") == "OK", r.out
    assert p.messages == [stuff(body)]
    assert f"SIZE={len(body)}" in p.batch[0]


def test_drop_mid_data(peers, smtpc):
    p = peers(drop_after=100000)
    body = b"x" * 998 + b"\r\n"
    r = smtpc(p.port, to=["a@example.test", "b@example.test"],
              msg=body * 3000)
    assert r.status == "DONE", r.out
    for a in ("a@example.test", "b@example.test"):
        result, code, enh, text = r.results[a]
        assert (result, code, enh) == ("TEMP", 0, "4.4.2"), r.out
        assert text.startswith("lost connection with [127.0.0.1]:")
        assert "while sending" in text


def test_lost_before_mail_is_next_host(peers, smtpc):
    p = peers(stall="greeting")
    r = smtpc(p.port, "--timeout", "1")
    assert r.status == "NEXT_HOST", r.out
    assert "timed out while receiving the initial server greeting" in r.diag
    assert res(r, "a@example.test") == "PENDING"
    assert r.elapsed < 5


@pytest.mark.parametrize("stall,step", [("MAIL", "sending MAIL FROM"),
                                        ("end", "end of data")])
def test_timeout_after_mail_is_temp(peers, smtpc, stall, step):
    p = peers(stall=stall)
    r = smtpc(p.port, "--timeout", "1")
    assert r.status == "DONE", r.out
    result, code, enh, text = r.results["a@example.test"]
    assert (result, code, enh) == ("TEMP", 0, "4.4.2")
    assert "timed out" in text and step in text, text
    assert r.elapsed < 5


def test_greeting_refused(peers, smtpc):
    p = peers(greeting="554 5.7.1 no thanks")
    r = smtpc(p.port)
    assert r.status == "NEXT_HOST", r.out
    assert r.diag.startswith("host [127.0.0.1]:"), r.diag
    assert r.diag.endswith("refused to talk to me: 554 5.7.1 no thanks")
    assert p.quit and p.cmds("EHLO") == []


def test_helo_fallback(peers, smtpc):
    p = peers(ehlo=502)
    r = smtpc(p.port, "--notify", "SUCCESS")
    assert r.status == "DONE" and res(r, "a@example.test") == "OK", r.out
    assert [c.split()[0] for c in p.commands[:2]] == ["EHLO", "HELO"]
    assert p.cmds("MAIL") == [f"MAIL FROM:<{SENDER}>"]
    assert p.cmds("RCPT") == ["RCPT TO:<a@example.test>"]


def test_endless_reply_line(peers, smtpc):
    p = peers(flood=True)
    r = smtpc(p.port, "--timeout", "10")
    assert r.status == "NEXT_HOST", r.out
    assert "reply too long" in r.diag
    assert r.elapsed < 5


def test_connect_refused(smtpc):
    r = smtpc(free_port())
    assert r.status == "NEXT_HOST", r.out
    assert r.diag.startswith("connect to [127.0.0.1]:")


def test_abort(peers, smtpc):
    p = peers(stall="greeting")
    r = smtpc(p.port, "--abort", "200")
    assert (r.status, r.diag) == ("NEXT_HOST", "aborted"), r.out
    assert r.elapsed < 5


def test_no_command_injection(peers, smtpc):
    """A CR or LF in an address never reaches the wire: that rcpt is
    refused locally (5.1.3) and the others go."""
    p = peers()
    bad = "b@example.test>\r\nRSET\r\nNOOP\r\nRCPT\tTO:<c@example.test"
    r = smtpc(p.port, to=["a@example.test", bad])
    assert r.status == "DONE", r.out
    assert res(r, "a@example.test") == "OK"
    assert not any(c.startswith(("RSET", "NOOP", "RCPT TO:<b", "RCPT\t"))
                   for c in p.commands), p.commands
    assert p.cmds("RCPT") == ["RCPT TO:<a@example.test>"]
    assert "5.1.3" in r.out


def test_null_sender(peers, smtpc):
    p = peers()
    r = smtpc(p.port, sender="")
    assert res(r, "a@example.test") == "OK"
    assert p.batch[0].startswith("MAIL FROM:<> ")


# ---- STARTTLS and AUTH ------------------------------------------------------------

def test_starttls_opportunistic(peers, smtpc, server_tls):
    p = peers(tls=server_tls)
    r = smtpc(p.port, "--tls", "opportunistic", "--peer-name", "peer.test")
    assert r.status == "DONE" and res(r, "a@example.test") == "OK", r.out
    assert r.tls.startswith("TLSv1."), r.out
    assert p.tls_used
    # RFC 3207 4.2: EHLO again after the handshake
    assert [c.split()[0] for c in p.commands[:4]] == ["EHLO", "STARTTLS",
                                                      "<TLS>", "EHLO"]
    assert p.messages == [stuff(MESSAGE)]


def test_starttls_not_used_when_tls_none(peers, smtpc, server_tls):
    p = peers(tls=server_tls)
    r = smtpc(p.port)
    assert res(r, "a@example.test") == "OK" and r.tls == "-"
    assert p.cmds("STARTTLS") == []


def test_tls_required_not_offered(peers, smtpc):
    p = peers()
    r = smtpc(p.port, "--tls", "required")
    assert r.status == "NEXT_HOST", r.out
    assert "TLS is required" in r.diag
    assert p.cmds("MAIL") == [] and p.quit


@pytest.mark.parametrize("mode", ["opportunistic", "required"])
def test_tls_handshake_failure(peers, smtpc, server_tls, mode):
    p = peers(tls=server_tls, tls_garbage=True)
    r = smtpc(p.port, "--tls", mode)
    assert r.status == "NEXT_HOST", r.out
    assert "TLS handshake with [127.0.0.1]:" in r.diag
    assert p.cmds("MAIL") == []


@pytest.mark.parametrize("mechs", ["PLAIN LOGIN", "LOGIN"])
def test_auth(peers, smtpc, server_tls, mechs):
    p = peers(tls=server_tls, auth={"joe": "s3cret:x"}, auth_mechs=mechs)
    r = smtpc(p.port, "--tls", "opportunistic", "--auth", "joe:s3cret:x")
    assert r.status == "DONE" and res(r, "a@example.test") == "OK", r.out
    assert p.creds == [(mechs.split()[0], "joe", "s3cret:x")]
    assert p.commands.index("<TLS>") < p.commands.index(
        p.cmds("AUTH")[0])


def test_auth_refused(peers, smtpc, server_tls):
    p = peers(tls=server_tls, auth={"joe": "right"})
    r = smtpc(p.port, "--tls", "opportunistic", "--auth", "joe:wrong")
    assert r.status == "NEXT_HOST", r.out
    assert "535 5.7.8" in r.diag
    assert p.cmds("MAIL") == []


def test_auth_needs_tls(peers, smtpc):
    p = peers(auth={"joe": "pw"})
    r = smtpc(p.port, "--tls", "opportunistic", "--auth", "joe:pw")
    assert r.status == "NEXT_HOST", r.out
    assert "AUTH requires TLS" in r.diag
    assert p.cmds("AUTH") == [] and p.creds == []


# ---- scripted LMTP peer -----------------------------------------------------------

def test_lmtp_per_rcpt_replies(peers, smtpc):
    p = peers(lmtp=True, caps=("PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"),
              rcpt={"x@example.test": "550 5.1.1 unknown"},
              lmtp_final={"b@example.test": "452 4.2.2 mailbox full",
                          "c@example.test": "552 5.2.2 over quota"})
    r = smtpc(p.port, "--lmtp", to=["a@example.test", "x@example.test",
                                    "b@example.test", "c@example.test"])
    assert r.status == "DONE", r.out
    assert r.results["a@example.test"][:3] == ("OK", 250, "2.0.0")
    assert r.results["x@example.test"][:3] == ("PERM", 550, "5.1.1")
    assert r.results["b@example.test"] == ("TEMP", 452, "4.2.2",
                                           "mailbox full")
    assert r.results["c@example.test"] == ("PERM", 552, "5.2.2",
                                           "over quota")
    assert p.commands[0] == "LHLO smtpc.test"
    assert p.cmds("EHLO") == [] and p.cmds("HELO") == []
    assert p.messages == [stuff(MESSAGE)]


def test_lmtp_lhlo_refused_no_helo(peers, smtpc):
    p = peers(lmtp=True, ehlo=500)
    r = smtpc(p.port, "--lmtp")
    assert r.status == "NEXT_HOST", r.out
    assert p.cmds("HELO") == []


# ---- a real petrel ------------------------------------------------------------------

@pytest.mark.parametrize("tls", ["none", "opportunistic"])
def test_real_petrel(petrel, smtpc, tls):
    r = smtpc(petrel.port, "--tls", tls, "--notify", "FAILURE",
              to=["alice@localhost", "nobody@localhost"])
    assert r.status == "DONE", r.out
    assert r.results["alice@localhost"][:3] == ("OK", 250, "2.0.0")
    assert r.results["nobody@localhost"][0] == "PERM"
    assert (r.tls != "-") == (tls == "opportunistic"), r.out
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], MESSAGE, rcpt="alice@localhost",
                    helo="smtpc.test")


# ---- Postfix smtp-sink ------------------------------------------------------------

@pytest.fixture
def sink(tmp_path):
    if not os.access(SMTP_SINK, os.X_OK):
        pytest.skip(f"{SMTP_SINK} not installed (Debian package postfix)")
    procs = []

    def start(*flags):
        port = free_port()
        cmd = [SMTP_SINK, *flags]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        proc = subprocess.Popen(cmd + [f"127.0.0.1:{port}", "10"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        procs.append(proc)
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return port
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("smtp-sink did not start")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(5)


def test_smtp_sink(sink, smtpc):
    port = sink()
    r = smtpc(port, "--notify", "SUCCESS,FAILURE", "--8bit",
              to=["a@example.test", "b@example.test"],
              msg=MESSAGE * 2000)
    assert r.status == "DONE", r.out
    for a in ("a@example.test", "b@example.test"):
        assert r.results[a][:2] == ("OK", 250), r.out


def test_smtp_sink_lmtp(sink, smtpc):
    port = sink("-L")
    r = smtpc(port, "--lmtp", to=["a@example.test", "b@example.test",
                                  "c@example.test"])
    assert r.status == "DONE", r.out
    for a in ("a@example.test", "b@example.test", "c@example.test"):
        assert r.results[a][:2] == ("OK", 250), r.out


def test_smtp_sink_hard_rcpt_reject(sink, smtpc):
    """smtp-sink -f rcpt: a hard reject to every RCPT (and no PIPELINING)."""
    port = sink("-B", "550 5.1.1 rejected by sink", "-f", "rcpt")
    r = smtpc(port, to=["a@example.test", "b@example.test"])
    assert r.status == "DONE", r.out
    for a in ("a@example.test", "b@example.test"):
        assert r.results[a] == ("PERM", 550, "5.1.1", "rejected by sink"), \
            r.out


def test_smtp_sink_disconnect_at_data(sink, smtpc):
    """smtp-sink -q data: it hangs up on DATA, after MAIL: TEMP, DONE."""
    port = sink("-q", "data")
    r = smtpc(port, to=["a@example.test"])
    assert r.status == "DONE", r.out
    result, code, enh, text = r.results["a@example.test"]
    assert (result, code, enh) == ("TEMP", 0, "4.4.2"), r.out
    assert text.startswith("lost connection with"), r.out
