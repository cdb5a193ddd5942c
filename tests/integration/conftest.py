"""Integration fixtures: run the real petrel binary on a temporary spool and
free loopback ports, and talk to it with real clients."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("PETREL_BIN", str(ROOT / "build" / "src" / "petrel"))
SANITIZED = os.environ.get("PETREL_SANITIZED") == "1"


def free_ports(n):
    """n distinct free loopback ports (all bound at once, so no repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    return free_ports(1)[0]


class Petrel:
    """One petrel server process with its own directory."""

    def __init__(self, base: Path, extra=None, users=(), aliases=""):
        self.base = base
        self.port, self.sub_port, self.smtps_port = free_ports(3)
        self.spool = base / "spool"
        self.mail = base / "mail"
        self.conf = base / "petrel.conf"
        self.users_file = base / "users"
        self.aliases_file = base / "aliases"
        self.logfile = base / "petrel.log"
        self.proc = None
        self.users_file.write_text("".join(u + "\n" for u in users))
        self.aliases_file.write_text(aliases)
        sections = {
            "server": {
                "hostname": "mx.test",
                "spool_dir": str(self.spool),
                "mail_dir": str(self.mail),
                "log_level": "info",
                "workers": "2",
            },
            "smtp": {
                "listen": f"127.0.0.1:{self.port}",
                "submission_listen": f"127.0.0.1:{self.sub_port}",
                "smtps_listen": f"127.0.0.1:{self.smtps_port}",
            },
            "tls": {"dir": str(base / "tls")},
            "local": {
                "domains": "localhost example.test",
                "users_file": str(self.users_file),
                "aliases_file": str(self.aliases_file),
            },
            "queue": {"retry_initial": "1", "retry_max": "2"},
            # tests talk to loopback only: no DNS server here answers
            "delivery": {"dns_servers": "127.0.0.1:9", "dns_timeout": "1s"},
        }
        for key, value in (extra or {}).items():
            sec, name = key.split(".", 1)
            sections.setdefault(sec, {})[name] = value
        text = ""
        for sec, kv in sections.items():
            text += f"[{sec}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
        self.conf.write_text(text)

    def start(self, timeout=10):
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen([BIN, "serve", "-c", str(self.conf)],
                                     stdout=self.log_fh, stderr=self.log_fh)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("petrel exited: " + self.log())
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              0.5) as c:
                    self._end_probe(c)
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("petrel did not start: " + self.log())

    @staticmethod
    def _end_probe(c):
        """QUIT the readiness probe and read to its EOF: petrel closes
        only after it has freed the session, so its per-client slot is
        free again before a test connects (a bare close races with the
        test's own connects)."""
        try:
            c.settimeout(2)
            buf = b""
            while b"\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    return
                buf += chunk
            c.sendall(b"QUIT\r\n")
            while c.recv(4096):
                pass
        except OSError:
            pass

    def stop(self):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log_fh.close()
        return rc

    def kill(self):
        """SIGKILL: a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.log_fh.close()

    def log(self):
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def maildir(self, user, domain="localhost"):
        return self.mail / domain / user / "Maildir"

    def messages(self, user, domain="localhost"):
        new = self.maildir(user, domain) / "new"
        if not new.is_dir():
            return []
        return sorted(p.read_bytes() for p in new.iterdir())

    def wait_messages(self, user, count, domain="localhost", timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.messages(user, domain)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.02)
        return self.messages(user, domain)

    def queue_files(self):
        q = self.spool / "queue"
        return sorted(p.name for p in q.iterdir()) if q.is_dir() else []

    def tmp_files(self):
        t = self.spool / "tmp"
        return sorted(p.name for p in t.iterdir()) if t.is_dir() else []

    def wait_queue_empty(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.queue_files():
                return True
            time.sleep(0.02)
        return False


@pytest.fixture
def make_petrel(tmp_path):
    """Factory: make_petrel(extra={...}, users=[...], aliases="...")."""
    servers = []

    def make(extra=None, users=(), aliases="", start=True, name="p"):
        base = tmp_path / f"{name}{len(servers)}"
        base.mkdir()
        p = Petrel(base, extra, users, aliases)
        servers.append(p)
        if start:
            p.start()
        return p

    yield make
    for p in servers:
        rc = p.stop()
        # a sanitizer finding makes the process exit non-zero
        if rc not in (None, 0):
            pytest.fail(f"petrel exited {rc}:\n{p.log()[-4000:]}")


@pytest.fixture
def petrel(make_petrel):
    """A running petrel with users alice and bob at localhost."""
    return make_petrel(users=["alice@localhost", "bob@localhost",
                              "carol@example.test"])


class Raw:
    """A raw SMTP connection, for what smtplib will not send."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self):
        """Read one (possibly multiline) reply: (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got %r" % self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def cmd(self, line: str):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True if the server closed the connection (after any data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def raw(petrel):
    conns = []

    def connect(port=None):
        r = Raw(port or petrel.port)
        conns.append(r)
        code, _ = r.reply()
        assert code == 220
        return r

    yield connect
    for r in conns:
        r.close()
