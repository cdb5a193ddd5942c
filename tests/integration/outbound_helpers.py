"""Fixtures and helpers for the outbound delivery tests (test_outbound.py):
a DNS server (dnsmasq) with a test zone, receiving servers on loopback
addresses 127.0.0.2.. that all listen on one port P (delivery.remote_port is
one port for every MX host), a scripted SMTP peer, Postfix's smtp-sink and
Dovecot LMTP. Every process is started here and stopped by its pid."""
import email
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port
from helpers import wait_until

# Loopback addresses of the receivers (all on the shared port P).
RECEIVER_ADDR = "127.0.0.2"   # a second petrel: mx1.remote.test
SINK_ADDR = "127.0.0.3"       # smtp-sink: sink.test
DEAD_ADDR = "127.0.0.4"       # nothing listens here
PEER_ADDR = "127.0.0.5"       # the scripted peer: mx.peer.test
SHARED_ADDRS = [f"127.0.0.{i}" for i in range(2, 10)]

# The test zone. Everything else under .test is NXDOMAIN (--local=/test/).
DNS_RECORDS = [
    # remote.test: the receiving petrel
    "--mx-host=remote.test,mx1.remote.test,10",
    f"--host-record=mx1.remote.test,{RECEIVER_ADDR}",
    # fallback.test: MX 10 is dead, MX 20 is the receiving petrel
    "--mx-host=fallback.test,dead.fallback.test,10",
    "--mx-host=fallback.test,mx1.remote.test,20",
    f"--host-record=dead.fallback.test,{DEAD_ADDR}",
    # implicit.test: no MX, only an A record (RFC 5321 5.1 implicit MX)
    f"--host-record=implicit.test,{RECEIVER_ADDR}",
    # elsewhere.test: its only MX is dead (smarthost tests)
    "--mx-host=elsewhere.test,dead.elsewhere.test,10",
    f"--host-record=dead.elsewhere.test,{DEAD_ADDR}",
    # nullmx.test: RFC 7505 null MX
    "--mx-host=nullmx.test,.,0",
    # peer.test: the scripted peer
    "--mx-host=peer.test,mx.peer.test,10",
    f"--host-record=mx.peer.test,{PEER_ADDR}",
    # loop.test: its best MX is this host (the sender's hostname mx.test)
    "--mx-host=loop.test,mx.test,10",
    "--host-record=mx.test,127.0.0.1",
    # sink.test: smtp-sink
    "--mx-host=sink.test,mx.sink.test,10",
    f"--host-record=mx.sink.test,{SINK_ADDR}",
]

SMTP_SINK = "/usr/sbin/smtp-sink"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
NOBODY = pwd.getpwnam("nobody")


# --------------------------------------------------------------------------
# processes


def terminate(proc, timeout):
    """SIGTERM a process this test started (by its pid), SIGKILL if it is
    still there after timeout seconds; waits for it."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------
# the shared port


def pick_shared_port(addrs=SHARED_ADDRS, tries=50):
    """A TCP port free on every address of addrs at once (checked by binding
    them all together)."""
    for _ in range(tries):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((addrs[0], 0))
            port = s.getsockname()[1]
            for a in addrs[1:]:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(t)
                t.bind((a, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no port free on all of " + " ".join(addrs))


# --------------------------------------------------------------------------
# DNS: dnsmasq and a tiny query for its readiness


def dns_query(port, name, qtype, timeout=1.0):
    """One UDP query to 127.0.0.1:port; returns (rcode, ancount) or None."""
    types = {"A": 1, "MX": 15, "AAAA": 28}
    qid = os.getpid() & 0xFFFF
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        pkt += bytes([len(label)]) + label.encode()
    pkt += b"\x00" + struct.pack(">HH", types[qtype], 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(pkt, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
    except OSError:
        return None
    finally:
        s.close()
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", data[:12])
    return flags & 0xF, ancount


class Dnsmasq:
    """dnsmasq answering the test zone on 127.0.0.1:port (UDP and TCP)."""

    def __init__(self, base: Path, records=DNS_RECORDS):
        self.base = base
        self.records = list(records)
        self.proc = None
        self.port = None
        self.logfile = base / "dnsmasq.log"

    def start(self):
        for _ in range(5):
            self.port = free_port()
            self.log_fh = open(self.logfile, "ab")
            self.proc = subprocess.Popen(
                ["dnsmasq", "--no-daemon", f"--port={self.port}",
                 "--listen-address=127.0.0.1", "--bind-interfaces",
                 "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                 "--local=/test/", "--user=root", "--pid-file=",
                 "--log-queries", "--log-facility=-"] + self.records,
                stdout=self.log_fh, stderr=self.log_fh)
            deadline = time.time() + 5
            while time.time() < deadline and self.proc.poll() is None:
                if dns_query(self.port, "mx1.remote.test", "A", 0.2):
                    return self
                time.sleep(0.05)
            self.stop()     # port taken (UDP) or slow: try another port
        raise RuntimeError("dnsmasq did not start: " + self.log())

    def stop(self):
        if self.proc is not None:
            terminate(self.proc, 5)
            self.proc = None
            self.log_fh.close()

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------
# the scripted SMTP peer


def _pick(seq, i):
    """seq[i], the last element once i runs past the end."""
    return seq[min(i, len(seq) - 1)]


class Txn:
    """One MAIL transaction the peer saw."""

    def __init__(self, conn, mail_line):
        self.conn = conn
        self.mail = mail_line        # "MAIL FROM:<...> params"
        self.rcpts = []              # (RCPT line, reply) in order
        self.data = None             # body as received, dot-unstuffed, CRLF
        self.data_reply = None       # reply to the final dot, None if none

    @property
    def accepted(self):
        """Addresses whose RCPT got a 2xx."""
        return [_rcpt_addr(line) for line, rep in self.rcpts
                if rep.startswith("2")]

    @property
    def delivered(self):
        """The data was accepted (2xx to the final dot)."""
        return self.data_reply is not None and self.data_reply.startswith("2")


def _rcpt_addr(line):
    m = re.match(r"(?i)RCPT TO:\s*<([^>]*)>", line)
    return m.group(1).lower() if m else ""


class ScriptedPeer:
    """An SMTP server on addr:port whose replies come from scripts.

    Scripts are lists whose i-th element is used for the i-th use, the last
    one repeating:
      greeting[conn]         "220 ..." per connection
      mail[n]                reply to the n-th MAIL command
      rcpt[addr][n]          reply to the n-th RCPT for addr (lowercase);
                             default_rcpt when addr is not listed
      data_end[n]            reply to the n-th final dot
      actions[conn]          None, or what to do on that connection:
                             "drop_mail", "drop_rcpt", "drop_data" (close
                             instead of replying to that command),
                             "stall_data_end" (take the whole body, then
                             never reply: wait for release() or stop()),
                             "stall_greeting" (send nothing until the
                             client closes; see stall_durations)
    data_delay makes it wait before answering the final dot; in_txn and
    max_in_txn count transactions open at once (MAIL accepted, final dot
    not yet answered; a connection that ends mid-transaction closes its).
    EHLO advertises PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, SIZE and DSN
    when dsn=True; never STARTTLS or CHUNKING.
    Everything seen is kept in txns (Txn) and rcpt_lines / mail_lines."""

    def __init__(self, addr, port, name="mx.peer.test", dsn=False):
        self.addr, self.port, self.name, self.dsn = addr, port, name, dsn
        self.greeting = [f"220 {name} ESMTP scripted"]
        self.mail = ["250 2.1.0 Ok"]
        self.rcpt = {}
        self.default_rcpt = "250 2.1.5 Ok"
        self.data_end = ["250 2.0.0 Ok: queued"]
        self.actions = [None]
        self.data_delay = 0.0       # seconds before replying to the dot
        self.in_txn = 0             # transactions open now (MAIL
                                    # accepted, final dot not answered)
        self.max_in_txn = 0         # most transactions open at once
        self.txns = []
        self.connections = 0
        self.stall_durations = []   # stall_greeting: seconds until the
                                    # client closed
        self.stalled = threading.Event()    # a stall_data_end happened
        self._release = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._mail_n = 0
        self._rcpt_n = {}
        self._data_n = 0
        self._socks = []
        self._threads = []
        self.lsock = None

    # -- control --

    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.addr, self.port))
        s.listen(16)
        s.settimeout(0.2)
        self.lsock = s
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def release(self):
        """End a stall: the stalled connection is closed without a reply."""
        self._release.set()

    def stop(self):
        self._stop.set()
        self._release.set()
        with self._lock:
            socks = list(self._socks)
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        if self.lsock is not None:
            self.lsock.close()
            self.lsock = None

    # -- what it saw --

    def delivered(self):
        """Transactions whose data was accepted."""
        with self._lock:
            return [t for t in self.txns if t.delivered]

    def delivered_to(self, addr):
        """How many accepted transactions carried addr."""
        return sum(1 for t in self.delivered() if addr.lower() in t.accepted)

    def rcpt_lines(self, addr=None):
        with self._lock:
            return [line for t in self.txns for line, _ in t.rcpts
                    if addr is None or _rcpt_addr(line) == addr.lower()]

    def rcpt_tries(self, addr):
        with self._lock:
            return self._rcpt_n.get(addr.lower(), 0)

    # -- the server --

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                n = self.connections
                self.connections += 1
                self._socks.append(c)
            t = threading.Thread(target=self._serve, args=(c, n), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c, n):
        try:
            self._session(c, n)
        except (OSError, EOFError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _session(self, c, n):
        c.settimeout(30)
        f = c.makefile("rb")
        action = _pick(self.actions, n)

        def send(*lines):
            c.sendall("".join(ln + "\r\n" for ln in lines).encode())

        def readline():
            line = f.readline(4096)
            if not line:
                raise EOFError
            return line.decode("utf-8", "replace").rstrip("\r\n")

        if action == "stall_greeting":
            # say nothing; wait for the client to give up (or stop())
            t0 = time.time()
            c.settimeout(0.2)
            while not self._stop.is_set() and time.time() - t0 < 30:
                try:
                    if not c.recv(4096):
                        break
                except socket.timeout:
                    continue
            with self._lock:
                self.stall_durations.append(time.time() - t0)
            return
        send(_pick(self.greeting, n))
        if not _pick(self.greeting, n).startswith("2"):
            return
        counted = [False]

        def txn_open(opening):
            with self._lock:
                if opening and not counted[0]:
                    self.in_txn += 1
                    self.max_in_txn = max(self.max_in_txn, self.in_txn)
                elif not opening and counted[0]:
                    self.in_txn -= 1
                counted[0] = opening

        try:
            self._dialogue(n, action, send, readline, f, txn_open)
        finally:
            txn_open(False)

    def _dialogue(self, n, action, send, readline, f, txn_open):
        txn = None
        while not self._stop.is_set():
            line = readline()
            verb = line[:4].upper()
            if verb == "EHLO":
                ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES",
                       "SIZE 10240000"] + (["DSN"] if self.dsn else [])
                send(*([f"250-{self.name}"] +
                       [f"250-{e}" for e in ext[:-1]] + [f"250 {ext[-1]}"]))
            elif verb == "HELO":
                send(f"250 {self.name}")
            elif verb == "MAIL":
                if action == "drop_mail":
                    return
                with self._lock:
                    rep = _pick(self.mail, self._mail_n)
                    self._mail_n += 1
                    if rep.startswith("2"):
                        txn = Txn(n, line)
                        self.txns.append(txn)
                txn_open(rep.startswith("2"))
                send(rep)
            elif verb == "RCPT":
                if action == "drop_rcpt":
                    return
                addr = _rcpt_addr(line)
                with self._lock:
                    k = self._rcpt_n.get(addr, 0)
                    self._rcpt_n[addr] = k + 1
                    rep = _pick(self.rcpt.get(addr, [self.default_rcpt]), k)
                    if txn is None:
                        rep = "503 5.5.1 MAIL first"
                    else:
                        txn.rcpts.append((line, rep))
                send(rep)
            elif verb == "DATA":
                if action == "drop_data":
                    return
                if txn is None or not txn.accepted:
                    send("554 5.5.1 No valid recipients")
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                body = []
                while True:
                    raw = f.readline(65536)
                    if not raw:
                        raise EOFError
                    if raw == b".\r\n":
                        break
                    body.append(raw[1:] if raw.startswith(b".") else raw)
                with self._lock:
                    txn.data = b"".join(body)
                if action == "stall_data_end":
                    self.stalled.set()
                    self._release.wait(timeout=30)
                    return
                if self.data_delay:
                    time.sleep(self.data_delay)
                with self._lock:
                    rep = _pick(self.data_end, self._data_n)
                    self._data_n += 1
                    txn.data_reply = rep
                txn = None
                txn_open(False)
                send(rep)
            elif verb == "RSET":
                txn = None
                txn_open(False)
                send("250 2.0.0 Ok")
            elif verb == "NOOP":
                send("250 2.0.0 Ok")
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 Command not recognized")


# --------------------------------------------------------------------------
# Postfix smtp-sink


class SmtpSink:
    """smtp-sink on addr:port dumping every message into self.dir."""

    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.dir = Path(tempfile.mkdtemp(prefix="sink"))
        os.chown(self.dir, NOBODY.pw_uid, NOBODY.pw_gid)
        self.proc = None

    def start(self):
        self.err = open(self.dir.parent / (self.dir.name + ".log"), "wb")
        self.proc = subprocess.Popen(
            [SMTP_SINK, "-u", "nobody", "-d", f"{self.dir}/%M.",
             f"{self.addr}:{self.port}", "100"],
            stdout=self.err, stderr=self.err)
        ok = wait_until(lambda: self.proc.poll() is not None or _connects(
            self.addr, self.port), 5)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError("smtp-sink did not start")
        return self

    def messages(self):
        return sorted(p.read_bytes() for p in self.dir.rglob("*")
                      if p.is_file())

    def stop(self):
        if self.proc is not None:
            terminate(self.proc, 5)
            self.proc = None
            self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.unlink(self.dir.parent / (self.dir.name + ".log"))
        except FileNotFoundError:
            pass


def _connects(addr, port):
    try:
        with socket.create_connection((addr, port), 0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# Dovecot LMTP


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
first_valid_gid = 1
mail_uid = {uid}
mail_gid = {gid}
default_internal_user = root
default_internal_group = root
default_login_user = root
mail_location = maildir:{d}/store/%d/%n/Maildir
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0600
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@lmtp.test
}}
"""


class Dovecot:
    """Dovecot's LMTP server on 127.0.0.1:port and on the unix socket
    self.socket, delivering into self.dir/store/DOMAIN/USER/Maildir. Mail
    is stored as the user nobody: Dovecot refuses mail access as root. Its
    directory is short and under /tmp because of socket path limits."""

    def __init__(self, users, broken=()):
        self.dir = Path(tempfile.mkdtemp(prefix="dv"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.socket = self.dir / "run" / "lmtp"
        self.store = self.dir / "store"
        self.store.mkdir()
        os.chown(self.store, NOBODY.pw_uid, NOBODY.pw_gid)
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(DOVECOT_CONF.format(
            d=self.dir, port=self.port, uid=NOBODY.pw_uid,
            gid=NOBODY.pw_gid))
        (self.dir / "users").write_text("".join(
            f"{u}:{{PLAIN}}x::::{self.home(u)}\n" for u in users))
        # a user whose mailbox cannot be written: its delivery fails after
        # DATA (LMTP gives one reply per recipient there)
        for u in broken:
            local, domain = u.split("@")
            p = self.store / domain / local
            p.mkdir(parents=True, mode=0o755)
            os.chown(self.store / domain, NOBODY.pw_uid, NOBODY.pw_gid)
            # p stays root-owned and read-only for nobody
        self.proc = None

    def home(self, user):
        local, domain = user.split("@")
        return self.store / domain / local

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        ok = wait_until(lambda: self.proc.poll() is not None or (
            _connects("127.0.0.1", self.port) and self.socket.exists()), 10)
        if self.proc.poll() is not None or not ok:
            raise RuntimeError("dovecot did not start: " + self.log())
        return self

    def messages(self, user):
        local, domain = user.split("@")
        new = self.store / domain / local / "Maildir" / "new"
        if not new.is_dir():
            return []
        return sorted(p.read_bytes() for p in new.iterdir())

    def log(self):
        try:
            return (self.dir / "dovecot.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc is not None:
            terminate(self.proc, 10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# sending mail and reading reports


def submit(port, sender, rcpts, content, mail_opts=(), rcpt_opts=None,
           host="127.0.0.1"):
    """One transaction with smtplib; rcpt_opts maps a recipient to its RCPT
    parameters. Returns the queue id from the DATA reply."""
    rcpt_opts = rcpt_opts or {}
    with smtplib.SMTP(host, port, local_hostname="client.example",
                      timeout=10) as s:
        s.ehlo()
        code, resp = s.mail(sender, list(mail_opts))
        assert code == 250, (code, resp)
        for r in rcpts:
            code, resp = s.rcpt(r, list(rcpt_opts.get(r, ())))
            assert code == 250, (r, code, resp)
        code, resp = s.data(content)
        assert code == 250, (code, resp)
    m = re.search(rb"queued as ([0-9A-Z]+)", resp)
    assert m, resp
    return m.group(1).decode()


def parse(raw: bytes):
    """A delivered message as an email.message.Message (compat32 policy:
    headers as sent)."""
    return email.message_from_bytes(raw)


class Report:
    """A parsed DSN (RFC 3464 inside RFC 6522 multipart/report)."""

    def __init__(self, raw: bytes):
        self.raw = raw
        self.msg = parse(raw)
        self.parts = (self.msg.get_payload()
                      if self.msg.is_multipart() else [])
        self.status_part = next(
            (p for p in self.parts
             if p.get_content_type() in ("message/delivery-status",
                                         "message/global-delivery-status")),
            None)
        blocks = self.status_part.get_payload() if self.status_part else []
        self.per_message = blocks[0] if blocks else None
        self.per_rcpt = blocks[1:]

    def rcpt(self, addr):
        """The per-recipient block whose Final-Recipient is addr."""
        for b in self.per_rcpt:
            fr = nospace(b.get("Final-Recipient", ""))
            if fr.lower() == "rfc822;" + addr.lower():
                return b
        return None

    def final_recipients(self):
        return sorted(nospace(b.get("Final-Recipient", "")).split(";", 1)[-1]
                      .lower() for b in self.per_rcpt)

    def actions(self):
        return {nospace(b.get("Final-Recipient", "")).split(";", 1)[-1]
                .lower(): b.get("Action", "").strip().lower()
                for b in self.per_rcpt}


def nospace(s):
    return re.sub(r"\s+", "", str(s))


def reports(petrel, user, domain="localhost"):
    """The DSNs in a local mailbox, parsed."""
    return [Report(m) for m in petrel.messages(user, domain)]


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def shared_port():
    """The port every receiver listens on (delivery.remote_port)."""
    return pick_shared_port()


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = Dnsmasq(tmp_path_factory.mktemp("dns")).start()
    yield d
    d.stop()


@pytest.fixture
def peer(shared_port):
    """Factory: a scripted peer on PEER_ADDR:P (stopped at the end)."""
    peers = []

    def make(addr=PEER_ADDR, **kw):
        p = ScriptedPeer(addr, shared_port, **kw)
        peers.append(p)
        return p.start()

    yield make
    for p in peers:
        p.stop()


@pytest.fixture
def make_sender(make_petrel, dns, shared_port):
    """Factory: the sending petrel: alice, bob and postmaster at localhost,
    clients on loopback may relay, DNS from dnsmasq, remote_port P."""

    def make(extra=None, users=("alice@localhost", "bob@localhost"),
             start=True, **kw):
        conf = {"smtp.trusted_networks": "127.0.0.0/8",
                "delivery.dns_servers": f"127.0.0.1:{dns.port}",
                "delivery.dns_timeout": "2s",
                "delivery.remote_port": str(shared_port),
                "delivery.connect_timeout": "3s",
                "delivery.client_command_timeout": "10s",
                "delivery.client_data_timeout": "10s"}
        conf.update(extra or {})
        return make_petrel(extra=conf, users=list(users), start=start,
                           name="sender", **kw)

    return make


RECEIVER_DOMAINS = ("remote.test implicit.test fallback.test elsewhere.test "
                    "nowhere.test")
RECEIVER_USERS = ("bob@remote.test", "carl@implicit.test", "bob@fallback.test",
                  "bob@elsewhere.test", "zed@nowhere.test")


@pytest.fixture
def make_receiver(make_petrel, shared_port):
    """Factory: a receiving petrel on addr:P (and 127.0.0.1:its own port, so
    the fixture can see it start), hostname mx1.remote.test."""

    def make(addr=RECEIVER_ADDR, extra=None, users=RECEIVER_USERS,
             domains=RECEIVER_DOMAINS, start=True):
        own = free_port()
        conf = {"server.hostname": "mx1.remote.test",
                "smtp.listen": f"{addr}:{shared_port} 127.0.0.1:{own}",
                "local.domains": domains}
        conf.update(extra or {})
        p = make_petrel(extra=conf, users=list(users), start=False,
                        name="receiver")
        p.port = own
        if start:
            p.start()
        return p

    return make
