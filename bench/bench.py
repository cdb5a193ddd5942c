#!/usr/bin/python3
"""bench.py: run petrel, Postfix and OpenSMTPD one after another on the same
SMTP workloads (Postfix's smtp-source as the client), measure each from the
outside (/proc, strace, Maildir file counts) and print a markdown report.

Started by bench/run.sh, which installs the peers first. Every server runs
on 127.0.0.1 only, in a fresh directory per measurement, and is stopped by
pid (or `postfix -c DIR stop`) before the next one starts. Every load loop is
bounded in count and in time.
"""
import argparse
import array
import datetime
import fcntl
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DOMAIN = "bench.test"
SENDER = "a@bench.test"
# smtp-source -r N sends to user@, 2user@, ... Nuser@ (it prepends a number)
USERS = ["user"] + [f"{i}user" for i in range(2, 11)]
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOBODY = 65534          # Maildir owner for the peers' virtual users
# Calls that make data durable (a cache flush to the device) ...
FLUSH_CALLS = ("fsync", "fdatasync", "syncfs", "sync", "msync")
# ... and the ones only traced and shown: sync_file_range writes pages out
# (and may wait for that) but flushes no device cache and writes no inode,
# so it is never a durable sync on its own.
SYNC_CALLS = FLUSH_CALLS + ("sync_file_range",)

# (key, title, payload bytes, recipients, persistent sessions,
#  concurrent sessions or None for --sessions)
WORKLOADS = [
    ("w1", "4 KiB, 1 rcpt, 1 msg/session", 4096, 1, False, None),
    ("w2", "4 KiB, 1 rcpt, many msgs/session (-d)", 4096, 1, True, None),
    ("w3", "100 KiB, 1 rcpt, 1 msg/session", 102400, 1, False, None),
    ("w4", "4 KiB, 10 rcpts (10 users), 1 msg/session", 4096, 10, False,
     None),
    # within OpenSMTPD's listen backlog of 5: processing, not dropped SYNs
    ("w1s4", "4 KiB, 1 rcpt, 1 msg/session, 4 sessions", 4096, 1, False, 4),
]
W1 = WORKLOADS[0]        # the shape of the durable-sync count
# A run this long is not repeated (its noise is small, its cost is not).
REPEAT_MAX_S = 60.0
# Figures reported as the median over the repeated runs.
MEDIAN_FIELDS = ("ingest_rate", "e2e_rate", "cpu_per_1000",
                 "machine_per_1000", "peak_pss", "peak_rss", "listen_drops")


class BenchError(Exception):
    """A measurement could not be made; the message says why."""


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr,
          flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc_alive, timeout=20.0):
    """Wait until 127.0.0.1:port accepts; proc_alive() False aborts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise BenchError("server exited during start")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.settimeout(5)
                greeting = s.recv(512)
                s.sendall(b"QUIT\r\n")
                if greeting.startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"no 220 greeting on port {port} after {timeout:.0f}s")


def start_time(pid):
    """Start time of pid in ticks since boot (None if gone): with the pid,
    it names one process, so a recycled pid is never mistaken for it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rindex(")") + 2:].split()[19])


def identities(pids):
    return [(p, t) for p in pids if (t := start_time(p)) is not None]


def kill_gone(ids, timeout):
    """Wait up to timeout for the processes ids [(pid, start time)] to
    exit, then SIGKILL those still running (only if still the same)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(start_time(p) != t for p, t in ids):
            return
        time.sleep(0.05)
    for p, t in ids:
        if start_time(p) == t:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(ppid, cpu ticks incl. reaped children) or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime=14 stime=15 cutime=16 cstime=17
    ticks = sum(int(x) for x in fields[11:15])
    return int(fields[1]), ticks


def proc_tree(roots):
    """Every live pid under (and including) roots."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                children.setdefault(st[0], []).append(int(d))
    out, todo = [], [r for r in roots if pid_alive(r)]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu(roots):
    """CPU seconds of the tree: utime+stime of every live process plus
    cutime+cstime, which holds the children that exited and were reaped."""
    ticks = 0
    for p in proc_tree(roots):
        st = proc_stat(p)
        if st:
            ticks += st[1]
    return ticks / CLK_TCK


def tree_mem(roots):
    """(RSS, PSS) in bytes summed over the tree, from smaps_rollup."""
    rss = pss = 0
    for p in proc_tree(roots):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, pss


def machine_busy():
    """CPU seconds every CPU of this host spent busy: the first line of
    /proc/stat less idle, iowait and steal (steal is the hypervisor's, and
    guest time is already in user)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0]
         .split()[1:9]]
    # user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def machine_steal():
    """CPU seconds the hypervisor gave to others while this host wanted
    to run (steal, the eighth figure of /proc/stat's first line): on a
    shared VM this is how much a neighbour slowed a run down."""
    v = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(v[8]) / CLK_TCK


def listen_drops():
    """TcpExt ListenDrops (SYNs dropped at a full accept queue), this host."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:]))
            return int(d.get("ListenDrops", 0))
    return 0


def mem_available():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    """Peak RSS and PSS of a process tree, sampled every `period` s."""

    def __init__(self, roots, period=0.1):
        super().__init__(daemon=True)
        self.roots, self.period = roots, period
        self.peak_rss = self.peak_pss = 0
        self.stop_evt = threading.Event()

    def run(self):
        while not self.stop_evt.is_set():
            rss, pss = tree_mem(self.roots)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.stop_evt.wait(self.period)

    def stop(self):
        self.stop_evt.set()
        self.join(5)


class Counter(threading.Thread):
    """Counts files in Maildir new/ directories until `expected` is reached
    (or stopped); records the time it was first reached."""

    def __init__(self, dirs, expected, t0, period=0.05):
        super().__init__(daemon=True)
        self.dirs, self.expected, self.t0 = dirs, expected, t0
        self.period = period
        self.count = 0
        self.reached_at = None
        self.stop_evt = threading.Event()

    def current(self):
        n = 0
        for d in self.dirs:
            try:
                n += len(os.listdir(d))
            except FileNotFoundError:
                pass
        return n

    def run(self):
        while not self.stop_evt.is_set():
            self.count = self.current()
            if self.count >= self.expected:
                self.reached_at = time.monotonic()
                return
            self.stop_evt.wait(self.period)

    def stop(self):
        self.stop_evt.set()
        self.join(5)


# --------------------------------------------------------------- servers

class Server:
    """One MTA instance in its own directory on its own loopback port."""
    name = "?"
    stores = True       # False: a reference that keeps no mail (Sink)

    def __init__(self, base: Path):
        self.base0 = base
        self.base = base
        self.runs = 0
        self.port = None
        self.proc = None

    def fresh_base(self):
        """A new directory for each run (<base>-<n>). Earlier runs' files
        stay until the whole bench ends: removing them just before a
        measurement would slow it down, because on ext4 without a journal
        every new inode steps over each inode freed in the last 60 to 300
        s (fs/ext4/ialloc.c, recently_deleted())."""
        self.runs += 1
        self.base = self.base0.with_name(f"{self.base0.name}-{self.runs}")

    def setup(self, sessions):
        """Fresh directories and configuration for `sessions` at once."""
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def roots(self):
        """Pids whose process trees are the server."""
        return [self.proc.pid] if self.proc else []

    def stop(self):
        raise NotImplementedError

    def _spawn(self, argv):
        """Start argv in the run directory, its output to the log file,
        and wait until it listens."""
        self.log_fh = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.log_fh,
            stderr=self.log_fh, cwd=self.base)
        wait_port(self.port, lambda: self.proc.poll() is None)

    def _reap(self, timeout, tree=()):
        """SIGTERM the process _spawn started; SIGKILL its tree after
        timeout s. tree: identities() of processes to see gone too."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_tree()
                self.proc.wait(5)
        if tree:
            kill_gone(tree, 10)
        self.proc = None
        self.log_fh.close()

    def new_dirs(self, users):
        raise NotImplementedError

    def config_text(self):
        return ""

    def limit_lines(self, n=2):
        """The first n distinct log lines that mention a limit."""
        out = []
        try:
            with open(self.logfile, errors="replace") as f:
                for line in f:
                    if "limit" in line.lower():
                        line = line.strip()[:200]
                        if line not in out:
                            out.append(line)
                        if len(out) >= n:
                            break
        except (OSError, AttributeError):
            pass
        return out

    def log_tail(self, n=20):
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except (OSError, AttributeError):
            return ""

    def _kill_tree(self):
        """Last resort: SIGKILL every process of our tree, by pid."""
        for p in reversed(proc_tree(self.roots())):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Petrel(Server):
    name = "petrel"

    def __init__(self, base, binary, options=()):
        super().__init__(base)
        self.binary = binary
        # extra "section.key=value" settings (--petrel-set), for A/B runs
        # of a setting; a full run uses petrel's defaults
        self.options = {}
        for o in options:
            key, _, value = o.partition("=")
            section, _, name = key.partition(".")
            if not section or not name or not value:
                raise SystemExit(f"--petrel-set {o!r}: want section.key=value")
            self.options.setdefault(section, []).append(f"{name} = {value}")

    def setup(self, sessions):
        self.fresh_base()
        self.base.mkdir(parents=True)
        self.port = free_port()
        (self.base / "users").write_text(
            "".join(f"{u}@{DOMAIN}\n" for u in USERS))
        (self.base / "aliases").write_text("")
        self.conf = self.base / "petrel.conf"
        self.logfile = self.base / "petrel.log"
        # defaults everywhere except where the benchmark must differ
        sections = {
            "server": ["hostname = petrel.bench.local",
                       f"spool_dir = {self.base}/spool",
                       f"mail_dir = {self.base}/mail",
                       "log_level = info"],
            "smtp": [f"listen = 127.0.0.1:{self.port}",
                     f"max_sessions = {max(1000, sessions + 100)}",
                     f"max_sessions_per_client = {max(1000, sessions + 100)}"],
            "local": [f"domains = {DOMAIN}",
                      f"users_file = {self.base}/users",
                      f"aliases_file = {self.base}/aliases"],
        }
        for section, lines in self.options.items():
            sections.setdefault(section, []).extend(lines)
        self.conf.write_text("".join(
            f"[{sec}]\n" + "".join(f"{ln}\n" for ln in lines)
            for sec, lines in sections.items()))

    def config_text(self):
        return self.conf.read_text()

    def start(self):
        self._spawn([str(self.binary), "serve", "-c", str(self.conf)])

    def stop(self):
        self._reap(20)

    def new_dirs(self, users):
        return [self.base / "mail" / DOMAIN / u / "Maildir" / "new"
                for u in users]

    @staticmethod
    def version():
        try:
            rev = subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            rev = ""
        return f"petrel {rev or '(no git)'}"


POSTFIX_MASTER = """\
{port_line}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix(Server):
    """A private Postfix instance: its own config dir, queue and Maildirs,
    started with `postfix -c DIR start`. /etc/postfix is never touched."""
    name = "Postfix"

    def setup(self, sessions):
        self.fresh_base()
        self.port = free_port()
        self.confdir = self.base / "conf"
        self.queue = self.base / "queue"
        self.data = self.base / "data"
        self.mail = self.base / "mail"
        self.logfile = self.base / "maillog"
        for d in (self.confdir, self.queue, self.data, self.mail):
            d.mkdir(parents=True)
        os.chmod(self.base, 0o755)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data, pf.pw_uid, pf.pw_gid)
        os.chown(self.mail, NOBODY, NOBODY)
        b = self.base
        (self.confdir / "main.cf").write_text(f"""\
# private benchmark instance; Postfix defaults except what follows
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.local
mydomain = bench.local
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{self.confdir}/vmailbox
virtual_uid_maps = static:{NOBODY}
virtual_gid_maps = static:{NOBODY}
maillog_file = {self.logfile}
maillog_file_prefixes = {b}
default_process_limit = {max(100, sessions + 50)}
smtpd_client_connection_count_limit = {max(100, sessions + 50)}
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
""")
        (self.confdir / "master.cf").write_text(POSTFIX_MASTER.format(
            port_line=f"127.0.0.1:{self.port} inet n - n - - smtpd"))
        (self.confdir / "vmailbox").write_text(
            "".join(f"{u}@{DOMAIN} {u}/Maildir/\n" for u in USERS))
        self.master_pid = None

    def config_text(self):
        return ((self.confdir / "main.cf").read_text() +
                "# master.cf: this smtpd line, then Debian's services "
                "with chroot n (POSTFIX_MASTER in bench/bench.py)\n" +
                "127.0.0.1:PORT inet n - n - - smtpd\n")

    def _postfix(self, *args, timeout=60):
        return subprocess.run(["postfix", "-c", str(self.confdir), *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def start(self):
        r = self._postfix("start")
        if r.returncode != 0:
            raise BenchError("postfix start failed: " + r.stderr +
                             self.log_tail())
        pidfile = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.master_pid = int(pidfile.read_text().split()[0])
                break
            except (OSError, ValueError, IndexError):
                time.sleep(0.05)
        if self.master_pid is None:
            raise BenchError("postfix: no master.pid\n" + self.log_tail())
        wait_port(self.port, lambda: pid_alive(self.master_pid))

    def roots(self):
        return [self.master_pid] if self.master_pid else []

    def stop(self):
        if not self.master_pid:
            return
        tree = identities(proc_tree(self.roots()))
        try:
            self._postfix("stop")
        except subprocess.TimeoutExpired:
            pass
        kill_gone(tree, 30)
        self.master_pid = None

    def new_dirs(self, users):
        return [self.mail / u / "Maildir" / "new" for u in users]

    @staticmethod
    def version():
        r = subprocess.run(["postconf", "-d", "-h", "mail_version"],
                           capture_output=True, text=True, timeout=10)
        return "Postfix " + r.stdout.strip()


class OpenSMTPD(Server):
    """OpenSMTPD from Debian's package, extracted (not installed: it
    conflicts with postfix) into bench/.peers/. Its paths are compiled in
    (/var/spool/smtpd, /usr/libexec/opensmtpd, /var/lib/opensmtpd/empty,
    /run/smtpd.sock) and it needs users opensmtpd and opensmtpq, so it runs
    in a private mount namespace where those paths and /etc/passwd are bind
    mounts of files in its own directory: the host is not changed."""
    name = "OpenSMTPD"

    def __init__(self, base, root: Path, shim: Path = None):
        super().__init__(base)
        self.root = root
        self.smtpd = root / "usr" / "sbin" / "smtpd"
        # shim: listen_backlog.so, raising its compiled-in listen backlog
        self.shim = shim
        if shim:
            self.name = "OpenSMTPD (backlog 128)"

    def available(self):
        if not self.smtpd.exists():
            return "smtpd not extracted (bench/run.sh downloads it)"
        if shutil.which("unshare") is None or os.geteuid() != 0:
            return "needs root and unshare(1) for its private mount namespace"
        if self.shim and not self.shim.exists():
            return f"{self.shim} not built"
        return None

    def _free_ids(self):
        used_u = {p.pw_uid for p in pwd.getpwall()}
        import grp
        used_g = {g.gr_gid for g in grp.getgrall()}
        ids, i = [], 64990
        while len(ids) < 2 and i > 1000:
            if i not in used_u and i not in used_g:
                ids.append(i)
            i -= 1
        return ids

    def setup(self, sessions):
        self.fresh_base()
        self.port = free_port()
        b = self.base
        for d in ("varspool", "varlib/opensmtpd/empty", "run", "etc",
                  "mail"):
            (b / d).mkdir(parents=True)
        os.chmod(b, 0o755)
        d_id, q_id = self._free_ids()
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        (b / "etc/passwd").write_text(
            passwd.rstrip("\n") + "\n"
            f"opensmtpd:x:{d_id}:{d_id}::/var/lib/opensmtpd/empty:"
            "/usr/sbin/nologin\n"
            f"opensmtpq:x:{q_id}:{q_id}::/var/lib/opensmtpd/empty:"
            "/usr/sbin/nologin\n")
        (b / "etc/group").write_text(
            group.rstrip("\n") + "\n"
            f"opensmtpd:x:{d_id}:\nopensmtpq:x:{q_id}:\n")
        # no DNS: the host's resolver is not ours to load
        (b / "etc/resolv.conf").write_text(
            "nameserver 127.0.0.1\nlookup file bind\n"
            "options timeout:1 attempts:1\n")
        lines = []
        for u in USERS:
            home = b / "mail" / u
            home.mkdir()
            os.chown(home, NOBODY, NOBODY)
            lines.append(f"{u} {NOBODY}:{NOBODY}:{home}\n")
        (b / "userbase").write_text("".join(lines))
        self.conf = b / "smtpd.conf"
        self.conf.write_text(f"""\
# benchmark instance; OpenSMTPD defaults except what follows
table users file:{b}/userbase
listen on 127.0.0.1 port {self.port} hostname opensmtpd.bench.local
smtp limit max-mails 100000
action "local" maildir userbase <users>
match from any for domain "{DOMAIN}" action "local"
""")
        mounts = [
            (b / "etc/passwd", "/etc/passwd"),
            (b / "etc/group", "/etc/group"),
            (b / "etc/resolv.conf", "/etc/resolv.conf"),
            (b / "varspool", "/var/spool"),
            (b / "varlib", "/var/lib"),
            (b / "run", "/run"),
            (self.root / "usr/libexec", "/usr/libexec"),
        ]
        script = "set -e\n" + "".join(
            f"mount --bind '{src}' '{dst}'\n" for src, dst in mounts)
        libdirs = [str(p) for p in (self.root / "usr/lib/x86_64-linux-gnu",
                                    self.root / "lib/x86_64-linux-gnu")
                   if p.is_dir()]
        if libdirs:
            script += f"export LD_LIBRARY_PATH='{':'.join(libdirs)}'\n"
        if self.shim:
            script += (f"export LD_PRELOAD='{self.shim}' "
                       "BENCH_LISTEN_BACKLOG=128\n")
        script += f"exec '{self.smtpd}' -d -f '{self.conf}'\n"
        self.start_sh = b / "start.sh"
        self.start_sh.write_text(script)
        self.logfile = b / "smtpd.log"

    def config_text(self):
        return self.conf.read_text()

    def start(self):
        # unshare execs bash, which execs smtpd: proc.pid is smtpd's parent
        self._spawn(["unshare", "--mount", "--propagation", "private",
                     "bash", str(self.start_sh)])

    def stop(self):
        if self.proc is None:
            return
        # its children exit when the parent does: wait for them too
        self._reap(30, tree=identities(proc_tree(self.roots())))

    def new_dirs(self, users):
        return [self.base / "mail" / u / "Maildir" / "new" for u in users]

    def version(self):
        r = subprocess.run([str(self.smtpd), "-h"], capture_output=True,
                           text=True, timeout=10)
        m = re.search(r"OpenSMTPD \S+", r.stdout + r.stderr)
        v = m.group(0) if m else "OpenSMTPD"
        return v + (" (+ listen_backlog.so)" if self.shim else "")


# ----------------------------------------------------------- measurements

class Sink(Server):
    """Postfix's smtp-sink: answers every command with a success and
    stores nothing. Not a peer: what the same client, loopback TCP and
    machine allow an SMTP server that does no work of its own, the CPU's
    counterpart of the commit ceiling. One process, event-driven."""
    name = "smtp-sink"
    stores = False

    def setup(self, sessions):
        self.fresh_base()
        self.base.mkdir(parents=True)
        self.port = free_port()
        self.logfile = self.base / "smtp-sink.log"
        self.sessions = sessions

    def start(self):
        # as root it must switch to a user after binding (-u is required)
        user = "nobody" if os.geteuid() == 0 else \
            pwd.getpwuid(os.geteuid()).pw_name
        self.argv = ["smtp-sink", "-u", user, "-h", "sink.bench.local",
                     "-m", str(max(256, self.sessions + 64)),
                     f"127.0.0.1:{self.port}", "1024"]
        self._spawn(self.argv)

    def config_text(self):
        return " ".join(self.argv)

    def stop(self):
        self._reap(10)

    def new_dirs(self, users):
        return []

    @staticmethod
    def version():
        return "smtp-sink of " + Postfix.version()


class Floor(Sink):
    """bench/smtp_floor: the same job as smtp-sink, with the data read in
    64 KiB pieces and scanned with memmem (smtp-sink takes it a byte at a
    time, which on 100 KiB messages costs more than petrel's whole
    work). The floor under every workload, big messages included."""
    name = "floor"

    def __init__(self, base, binary: Path):
        super().__init__(base)
        self.binary = binary

    def start(self):
        self.argv = [str(self.binary), "-p", str(self.port), "-b", "1024"]
        self._spawn(self.argv)

    @staticmethod
    def version():
        return "floor (bench/smtp_floor.c)"


class DurableFloor(Floor):
    """bench/smtp_floor -j: the floor, with each message's data written to
    one preallocated file and made durable (fdatasync, shared by the
    messages written before it began) before its 250. Not a peer: about
    the least a server that acknowledges only what is on stable storage
    can do with this client, disk and machine; an MTA that keeps a file
    per message does more. Ingest only."""
    name = "durable floor"

    def start(self):
        self.argv = [str(self.binary), "-p", str(self.port), "-b", "1024",
                     "-j", str(self.base / "journal"),
                     "-t", str(durable_syncers(self.sessions))]
        self._spawn(self.argv)

    def config_text(self):
        # kept from the first run; -t follows each workload's sessions
        return (" ".join(self.argv) + "\n# -t: " +
                ", ".join(f"{durable_syncers(n)} at {n} sessions"
                          for n in sorted({workload_sessions(
                              w, self.sessions) for w in WORKLOADS})))

    @staticmethod
    def version():
        return "durable floor (bench/smtp_floor.c -j)"


def durable_syncers(sessions):
    """Syncer threads of the durable floor for this many sessions: the
    faster in runs on the bench VM (2026-12-08, 2,000 w1 messages, 3 runs
    each): at 4 sessions 4 syncers took 4,007-4,084 msg/s, 1 took
    3,449-4,064; at 20 sessions 1 took 6,381-6,447, 4 took 4,935-5,971
    (overlapping syncs help while few messages share one)."""
    return sessions if sessions <= 4 else 1


def workload_sessions(w, default):
    return w[5] if w[5] is not None else default


def median_run(runs):
    """One result from repeated runs of a workload: the median of each
    figure in MEDIAN_FIELDS over the runs that succeeded."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    out = dict(ok[0])
    for f in MEDIAN_FIELDS:
        out[f] = statistics.median(r[f] for r in ok)
    out["steal_max"] = max(r.get("steal_pct", 0.0) for r in ok)
    out["runs"] = len(ok)
    out["failed_runs"] = len(runs) - len(ok)
    return out


def smtp_source_argv(port, w, messages, sessions):
    _, _, size, rcpts, persistent, _ = w
    argv = ["smtp-source", "-s", str(sessions), "-m", str(messages),
            "-l", str(size), "-M", DOMAIN, "-f", SENDER,
            "-t", f"user@{DOMAIN}"]
    if rcpts > 1:
        argv[1:1] = ["-r", str(rcpts)]
    if persistent:
        argv.insert(1, "-d")
    return argv + [f"127.0.0.1:{port}"]


def run_load(srv, w, messages, sessions, timeout, strace_out=None):
    """Start srv fresh, send the workload, wait for every delivery.
    Returns a dict of figures; raises BenchError."""
    rcpts = w[3]
    srv.setup(sessions)
    tracer = None
    # the previous run's dirty pages written out now, not by the flusher
    # during this run (that would charge one server's writeback to the
    # next one's disk time and machine CPU)
    os.sync()
    try:
        srv.start()
        time.sleep(0.5)
        roots = srv.roots()
        if strace_out:
            tracer = start_strace(roots, strace_out)
        expected = messages * rcpts if srv.stores else 0
        dirs = srv.new_dirs(USERS[:rcpts])
        cpu0, drops0 = tree_cpu(roots), listen_drops()
        busy0, steal0 = machine_busy(), machine_steal()
        sampler = Sampler(roots)
        sampler.start()
        argv = smtp_source_argv(srv.port, w, messages, sessions)
        t0 = time.monotonic()
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=timeout, cwd=srv.base)
        except subprocess.TimeoutExpired:
            sampler.stop()
            raise BenchError(f"smtp-source did not finish in {timeout}s")
        t1 = time.monotonic()
        # Counting starts only now: end-to-end is max(t2, t1) - t0, so a
        # count during the ingest could not change a figure, and listing
        # a growing new/ every 50 ms takes the directory lock the server
        # needs for each delivery (it cost petrel 10-30% of w1s4's rate).
        counter = Counter(dirs, expected, t0)
        counter.start()
        if r.returncode != 0:
            counter.stop()
            sampler.stop()
            raise BenchError("smtp-source failed (a reply other than 2xx/3xx"
                             f"): {(r.stderr or r.stdout).strip()[-300:]}")
        counter.join(timeout)
        counter.stop()
        if counter.reached_at is None:
            sampler.stop()
            raise BenchError(f"only {counter.count}/{expected} deliveries in "
                             f"Maildir after {timeout}s")
        t2 = counter.reached_at
        time.sleep(1.0)     # let trailing work (queue removal) finish
        cpu1, drops1 = tree_cpu(roots), listen_drops()
        busy1, steal1 = machine_busy(), machine_steal()
        t3 = time.monotonic()
        sampler.stop()
        final = counter.current()
        if final != expected:
            raise BenchError(f"{final} files in Maildir for {expected} "
                             "deliveries (duplicates?)")
        syncs = stop_strace(tracer) if tracer else None
        tracer = None
        return {
            "messages": messages, "deliveries": expected,
            "ingest_s": t1 - t0, "e2e_s": max(t2, t1) - t0,
            "ingest_rate": messages / (t1 - t0),
            "e2e_rate": messages / (max(t2, t1) - t0),
            "cpu_s": cpu1 - cpu0,
            "cpu_per_1000": (cpu1 - cpu0) / messages * 1000,
            "machine_per_1000": (busy1 - busy0) / messages * 1000,
            "steal_pct": 100 * (steal1 - steal0) / (t3 - t0) /
            (os.cpu_count() or 1),
            "peak_rss": sampler.peak_rss, "peak_pss": sampler.peak_pss,
            "listen_drops": drops1 - drops0, "syncs": syncs,
            "argv": argv,
        }
    finally:
        if tracer:
            stop_strace(tracer)
        srv.stop()


def start_strace(roots, out):
    pids = proc_tree(roots)
    argv = ["strace", "-f", "-c", "-o", str(out),
            "-e", "trace=" + ",".join(SYNC_CALLS)]
    for p in pids:
        argv += ["-p", str(p)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.0)     # attach to every process and thread
    if proc.poll() is not None:
        raise BenchError("strace could not attach")
    return proc, out


def stop_strace(tracer):
    proc, out = tracer
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    counts = {}
    try:
        for line in Path(out).read_text().splitlines():
            f = line.split()
            if len(f) >= 5 and f[-1] in SYNC_CALLS:
                counts[f[-1]] = int(f[3])
    except OSError:
        pass
    return counts


def run_syncs(srv, messages, sessions, timeout, workdir):
    if shutil.which("strace") is None:
        raise BenchError("strace not installed")
    out = workdir / f"strace-{srv.name}.txt"
    r = run_load(srv, W1, messages, sessions, timeout,
                 strace_out=out)
    counts = r["syncs"] or {}
    total = sum(v for k, v in counts.items() if k in FLUSH_CALLS)
    return {"messages": messages, "counts": counts,
            "per_msg": total / messages, "argv": r["argv"]}


def run_idle(srv, sessions, timeout):
    """Memory per idle session: tree RSS/PSS before and while holding
    `sessions` greeted connections."""
    srv.setup(sessions)
    client = None
    try:
        srv.start()
        time.sleep(1.0)
        roots = srv.roots()
        rss0, pss0 = tree_mem(roots)
        argv = ["/usr/bin/python3", str(BENCH / "idle.py"), "--port",
                str(srv.port), "--count", str(sessions), "--open-timeout",
                str(timeout), "--stall", "30", "--hold", str(timeout + 120)]
        client = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = read_line(client, timeout + 30)
        m = re.match(r"READY greeted=(\d+) refused=(\d+) failed=(\d+) "
                     r"seconds=([\d.]+)", line or "")
        if not m:
            raise BenchError(f"idle client: {line!r}")
        greeted, refused, failed = (int(m.group(i)) for i in (1, 2, 3))
        time.sleep(1.0)
        rss1, pss1 = tree_mem(roots)
        nproc = len(proc_tree(roots))
        client.stdin.write("close\n")
        client.stdin.flush()
        tail = read_line(client, 60) or ""
        client.wait(30)
        client = None
        m2 = re.match(r"CLOSED still_open=(\d+)", tail)
        n = max(greeted, 1)
        notes = srv.limit_lines() if greeted < sessions else []
        return {
            "sessions": sessions, "greeted": greeted, "refused": refused,
            "failed": failed, "open_s": float(m.group(4)),
            "still_open": int(m2.group(1)) if m2 else None,
            "rss0": rss0, "rss1": rss1, "pss0": pss0, "pss1": pss1,
            "rss_per": (rss1 - rss0) / n, "pss_per": (pss1 - pss0) / n,
            "nproc": nproc, "argv": argv, "notes": notes,
        }
    finally:
        if client is not None:
            client.kill()
            client.wait(10)
        srv.stop()


def read_line(proc, timeout):
    """One line of proc's stdout, or None after timeout seconds."""
    box = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()),
                         daemon=True)
    t.start()
    t.join(timeout)
    return box[0].strip() if box else None


def run_ceiling(binary, workdir, threads, seconds, sizes):
    """(bytes, threads, commits/s) for every size and thread count."""
    rows = []
    for size in sizes:
        for n in threads:
            d = workdir / f"ceiling-{size}-{n}"
            argv = [str(binary), "-d", str(d), "-t", str(n), "-s",
                    str(seconds), "-b", str(size)]
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=seconds + 120)
            # d stays until the bench ends: see Server.fresh_base()
            m = re.search(r"ops_per_s=([\d.]+)", r.stdout)
            if r.returncode != 0 or not m:
                raise BenchError(f"commit_ceiling -t {n} -b {size}: "
                                 f"{r.stderr.strip()}")
            rows.append((size, n, float(m.group(1))))
    return rows, [str(binary), "-d", "DIR", "-t", "N", "-s", str(seconds),
                  "-b", "BYTES"]


# ------------------------------------------------------------------ report

def mib(b):
    return f"{b / 1048576:.1f}"


def fmt(x, nd=0):
    return f"{x:,.{nd}f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"


def paired_ratios(res, key, peer, f, me="petrel"):
    """me ÷ peer for figure f of workload key, one per round both ran
    (a round runs the servers one right after the other, so a slow phase
    of the machine hits both sides of a ratio)."""
    mine = res["rounds"].get((key, me), {})
    theirs = res["rounds"].get((key, peer), {})
    return [mine[i][f] / theirs[i][f] for i in sorted(mine)
            if i in theirs and theirs[i][f]]


def paired_ratio(res, key, peer, f, me="petrel"):
    """paired_ratios() as the report shows it (fmt_ratios())."""
    return fmt_ratios(paired_ratios(res, key, peer, f, me))


def fmt_ratios(rs):
    """The median of the ratios rs, with the lowest and highest."""
    if not rs:
        return "–"
    if len(rs) == 1:
        return f"{rs[0]:.2f}×"
    return (f"{statistics.median(rs):.2f}× "
            f"({min(rs):.2f}–{max(rs):.2f})")


# Issue 6's targets, petrel against Postfix measured in one run:
# (label, figure, Postfix ratio wanted, True: at least / False: at most)
RATIO_TARGETS = [
    ("ingest ≥ 5× Postfix", "ingest_rate", 5.0, True),
    ("end-to-end ≥ 3× Postfix", "e2e_rate", 3.0, True),
    ("CPU per message ≤ 0.2× Postfix", "cpu_per_1000", 0.2, False),
]
IDLE_PSS_MAX = 16 * 1024    # bytes per idle session
IDLE_HELD = 10000           # sessions held at once
COMMIT_WRITERS = 16         # ingest at or above this many writers' rate


def measured(r):
    """Is r (a load, sync or idle result) a figure, not a failure or a
    skip?"""
    return bool(r) and "error" not in r and not r.get("skipped")


DURABLE_FLOOR = DurableFloor.name


def targets(res):
    """The issue's targets against this run's figures: a list of
    (target, where, figure, verdict, durable floor's figure), verdict
    "met", "not met" or "not measured". A ratio is the paired median over
    the rounds. The durable floor's figure is the same figure for the
    durable floor where it means something (ingest), else "–"."""
    rows = []

    def verdict(label, where, fig, ok, floor=None):
        """fig None: nothing measured; ok: the figure meets the target."""
        rows.append((label, where, "–" if fig is None else fig,
                     "not measured" if fig is None else
                     "met" if ok else "not met",
                     "–" if floor is None else floor))

    for label, f, want, at_least in RATIO_TARGETS:
        for key, *_ in WORKLOADS:
            rs = paired_ratios(res, key, "Postfix", f)
            med = statistics.median(rs) if rs else None
            fl = paired_ratios(res, key, "Postfix", f, me=DURABLE_FLOOR) \
                if f == "ingest_rate" else []
            verdict(label, key, fmt_ratios(rs) if rs else None,
                    med is not None and
                    (med >= want if at_least else med <= want),
                    fmt_ratios(fl) if fl else None)
    for sess in res["idle_sizes"]:
        r = res["idle"].get((sess, "petrel"))
        ok = measured(r)
        verdict("memory per idle session < 16 KiB", f"idle {sess}",
                f"{fmt(r['pss_per'])} B PSS" if ok else None,
                ok and r["pss_per"] < IDLE_PSS_MAX)
    r = res["idle"].get((IDLE_HELD, "petrel"))
    ok = measured(r)
    verdict(f"{fmt(IDLE_HELD)} sessions held", f"idle {IDLE_HELD}",
            f"{r['greeted']} greeted" if ok else None,
            ok and r["greeted"] >= IDLE_HELD)
    # the ceiling commits one file of w1's size per operation: compare
    # the workloads of that shape with enough sessions to match it
    size = W1[2]
    ceiling = {n: ops for b, n, ops in res["ceiling"].get("rows", [])
               if b == size}.get(COMMIT_WRITERS)
    for w in WORKLOADS:
        if w[2] != size or w[3] != 1 or \
                workload_sessions(w, res["sessions"]) < COMMIT_WRITERS:
            continue
        me = res["load"].get((w[0], "petrel"))
        fl = res["load"].get((w[0], "floor"))
        dfl = res["load"].get((w[0], DURABLE_FLOOR))
        ok = measured(me) and ceiling is not None
        fig = (f"{fmt(me['ingest_rate'])} vs {fmt(ceiling)} /s" +
               (f" (floor {fmt(fl['ingest_rate'])} /s)" if measured(fl)
                else "")) if ok else None
        verdict(f"ingest ≥ the {COMMIT_WRITERS}-writer commit rate", w[0],
                fig, ok and me["ingest_rate"] >= ceiling,
                f"{fmt(dfl['ingest_rate'])} /s" if measured(dfl) else None)
    return rows


def session_ms(res, w, name):
    """Milliseconds a message of workload w takes in one session's turn
    (sessions ÷ ingest rate, medians), or None."""
    r = res["load"].get((w[0], name))
    if not measured(r) or not r["ingest_rate"]:
        return None
    return 1000.0 * workload_sessions(w, res["sessions"]) / r["ingest_rate"]


# <linux/fs.h>: the inode flags of ext2/3/4 (chattr)
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000


def spread_subdirs(path):
    """Mark path a top of directory hierarchies (chattr +T), so ext4 puts
    each new subdirectory (one per run) in a block group of its own, as
    it does for /home's, instead of beside its siblings. Files go to
    their directory's group, so a server's run no longer creates its
    files where the run before it just deleted thousands: on ext4
    without a journal, each new inode steps over every inode of its
    group freed in the last 60 to 360 s (fs/ext4/ialloc.c,
    recently_deleted()). Returns what the report says about it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])   # the kernel reads and writes an int
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        flags[0] |= FS_TOPDIR_FL
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, flags, True)
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & FS_TOPDIR_FL:
            return "not spread (the filesystem keeps no top-directory flag)"
        return ("spread over block groups, one per run (the work "
                "directory has chattr +T)")
    except OSError as e:
        return f"not spread (chattr +T: {e.strerror})"
    finally:
        os.close(fd)


def machine_info(workdir):
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    df = subprocess.run(["df", "-hT", str(workdir)], capture_output=True,
                        text=True, timeout=10).stdout.strip().splitlines()
    return {
        "nproc": os.cpu_count(), "cpu": cpu,
        "mem": f"{mem / 2**30:.1f} GiB", "kernel": platform.release(),
        "df": df[-1] if df else "?",
        "load": Path("/proc/loadavg").read_text().split()[:3],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def report(res):
    L = []
    a = L.append
    mi = res["machine"]
    a(f"# petrel benchmark results{' (SMOKE)' if res['smoke'] else ''}\n")
    a(f"- date: {res['date']}")
    a(f"- machine: {mi['nproc']} CPUs ({mi['cpu']}), {mi['mem']} memory, "
      f"Linux {mi['kernel']}")
    a(f"- disk (spools and Maildirs): `{mi['df']}`")
    if mi.get("spread"):
        a(f"- run directories: {mi['spread']}")
    a(f"- load average at start: {' '.join(mi['load'])}; at end: "
      f"{' '.join(res['load_end'])}")
    a(f"- servers: {', '.join(res['versions'])}")
    a(f"- messages per workload: {res['messages']}, concurrent sessions: "
      f"{res['sessions']} (unless the workload says otherwise); each "
      f"figure is the median of {res['repeat']} runs, taken in turns, "
      "each round starting with the next server, after a sync(2) "
      f"before every run (a run over {REPEAT_MAX_S:.0f} s is not "
      "repeated; `runs` says how many counted)")
    if res.get("note"):
        a(f"- note: {res['note']}")
    for s in res["skipped"]:
        a(f"- **not run**: {s}")
    a("")
    names = res["servers"]
    peers = [n for n in names if n != "petrel"]

    a("## Targets\n")
    a("The targets of the issue that asked for this benchmark, against "
      "this run. A ratio is the median over the rounds of petrel's run ÷ "
      "Postfix's run of the same round (lowest and highest in brackets). "
      "durable floor: the same figure for bench/smtp_floor.c -j, which "
      "answers 250 once the message's data is on stable storage and does "
      "nothing else (no file per message, no Maildir), in the same "
      "rounds; where it misses a target too, a server that makes each "
      "message durable before its 250 can hardly meet it on this machine. "
      "What bounds the ones not met: bench/README.md, \"What bounds the "
      "figures\".\n")
    a("| target | where | figure | verdict | durable floor |")
    a("|---|---|---|---|---|")
    for t, where, fig, verdict, floor in targets(res):
        a(f"| {t} | {where} | {fig} | "
          f"{'**not met**' if verdict == 'not met' else verdict} | "
          f"{floor} |")
    a("")

    a("## Throughput\n")
    a("ingest = messages / time until smtp-source exits (every message got "
      "250); end-to-end = messages / time until every delivery is a file in "
      "a Maildir `new/`. CPU = server process tree (children included); "
      "machine CPU = every CPU of the host over the same time (client, "
      "harness and kernel threads included: work a server leaves to the "
      "kernel's flusher threads shows here). "
      "Memory = peak of the tree, sampled every 100 ms. Steal = share of "
      "the CPUs' time over the run that the hypervisor gave to other "
      "guests (the highest of the runs): a run with much of it was slowed "
      "by a neighbour, not by the server.\n")
    a("| workload | server | ingest msg/s | end-to-end msg/s | CPU s / 1000 "
      "msg | machine CPU s / 1000 msg | peak PSS MiB | peak RSS MiB "
      "| listen drops | steal % | runs |")
    a("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    sinks = res.get("sinks", [])
    for key, title, *_ in WORKLOADS:
        for n in names + sinks:
            r = res["load"].get((key, n))
            if r is None:
                continue
            if "error" in r:
                a(f"| {key}: {title} | {n} | FAILED: {r['error']} "
                  "| | | | | | | | |")
                continue
            e2e = "–" if n in sinks else fmt(r["e2e_rate"])
            a(f"| {key}: {title} | {n} | {fmt(r['ingest_rate'])} | "
              f"{e2e} | {r['cpu_per_1000']:.2f} | "
              f"{r['machine_per_1000']:.2f} | "
              f"{mib(r['peak_pss'])} | {mib(r['peak_rss'])} | "
              f"{r['listen_drops']:.0f} | "
              f"{r.get('steal_max', r.get('steal_pct', 0.0)):.0f} | "
              f"{r.get('runs', 1)} |")
    a("")

    if peers:
        a("## petrel ÷ peer\n")
        a("Above 1 is better for petrel in the rates; below 1 is better for "
          "petrel in CPU, memory and syncs. A load figure is the median "
          "over the rounds of petrel's run ÷ the peer's run of the same "
          "round (they ran one right after the other), with the lowest "
          "and highest of those ratios in brackets; a peer run only once "
          "(over 60 s) pairs with petrel's run of that round.\n")
        a("| workload | figure | " + " | ".join(f"÷ {p}" for p in peers) +
          " |")
        a("|---|---|" + "---:|" * len(peers))
        figs = [("ingest msg/s", "ingest_rate"),
                ("end-to-end msg/s", "e2e_rate"),
                ("CPU per msg", "cpu_per_1000"),
                ("machine CPU per msg", "machine_per_1000"),
                ("peak PSS", "peak_pss")]
        for key, *_ in WORKLOADS:
            me = res["load"].get((key, "petrel"))
            if not me or "error" in me:
                continue
            for label, f in figs:
                cells = []
                for p in peers:
                    o = res["load"].get((key, p))
                    cells.append(paired_ratio(res, key, p, f)
                                 if o and "error" not in o else "–")
                a(f"| {key} | {label} | " + " | ".join(cells) + " |")
        me = res["syncs"].get("petrel")
        if me and "error" not in me:
            cells = []
            for p in peers:
                o = res["syncs"].get(p)
                cells.append(ratio(me["per_msg"], o["per_msg"])
                             if o and "error" not in o else "–")
            a("| w1 | durable syncs per msg | " + " | ".join(cells) + " |")
        for sess in res["idle_sizes"]:
            me = res["idle"].get((sess, "petrel"))
            if not measured(me):
                continue
            cells = []
            for p in peers:
                o = res["idle"].get((sess, p))
                cells.append(ratio(me["pss_per"], o["pss_per"])
                             if measured(o) else "–")
            a(f"| idle {sess} | PSS per session | " + " | ".join(cells) +
              " |")
        a("")

    if sinks:
        a("## Protocol ceiling\n")
        a("Servers that answer every command with a success and store "
          "nothing, run in the same rounds, on the same workloads and "
          "client: their ingest is what smtp-source, loopback TCP and this "
          "machine's CPUs allow before a server does work of its own, as "
          "the commit ceiling below is what the disk allows. smtp-sink is "
          "Postfix's test server; it takes the data in one byte at a time "
          "(about 0.5 ms of user CPU per 100 KiB message here), so in w3 "
          "its own work is a server's. floor (bench/smtp_floor.c) does the "
          "same with 64 KiB reads and memmem, and is the floor for every "
          "workload. durable floor (smtp_floor -j) stores each message's "
          "data in one preallocated file and answers 250 once an fdatasync "
          "that began after the data was written has returned (group "
          "commit; 1 syncing thread, or one per session up to 4 sessions): "
          "the floor plus the least a durable commit costs. A server's "
          "share is the median over the rounds of its run ÷ the sink's run "
          "of the same round.\n")
    for sk in sinks:
        a(f"**{sk}**\n")
        a(f"| workload | {sk} msg/s | {sk} CPU s / 1000 msg | machine CPU "
          "s / 1000 msg | " + " | ".join(f"{n} ÷ {sk}" for n in names) +
          " |")
        a("|---|---:|---:|---:|" + "---:|" * len(names))
        for key, *_ in WORKLOADS:
            r = res["load"].get((key, sk))
            if r is None:
                continue
            if "error" in r:
                a(f"| {key} | FAILED: {r['error']} | | |" + " |" * len(names))
                continue
            cells = []
            for n in names:
                o = res["load"].get((key, n))
                cells.append(paired_ratio(res, key, sk, "ingest_rate", me=n)
                             if o and "error" not in o else "–")
            a(f"| {key} | {fmt(r['ingest_rate'])} | "
              f"{r['cpu_per_1000']:.2f} | {r['machine_per_1000']:.2f} | " +
              " | ".join(cells) + " |")
        a("")
    if "floor" in sinks:
        a("**Time per message in a session**\n")
        a("A session's turn per message = sessions ÷ ingest rate (medians): "
          "the client's round trips, the server's work and its waits, the "
          "commit's among them. The floor's is what the client and "
          "loopback TCP take; a server's figure in brackets is what it "
          "adds to that.\n")
        cols = names + [n for n in sinks if n == DURABLE_FLOOR]
        a("| workload | sessions | floor ms | " +
          " | ".join(f"{n} ms" for n in cols) + " |")
        a("|---|---:|---:|" + "---:|" * len(cols))
        for w in WORKLOADS:
            base = session_ms(res, w, "floor")
            if base is None:
                continue
            cells = []
            for n in cols:
                ms = session_ms(res, w, n)
                cells.append("–" if ms is None else
                             f"{ms:.2f} (+{ms - base:.2f})")
            a(f"| {w[0]} | {workload_sessions(w, res['sessions'])} | "
              f"{base:.2f} | " + " | ".join(cells) + " |")
        a("")

    a("## Durable syncs per message\n")
    a(f"w1 shape, {res['sync_messages']} messages, `strace -f -c` attached "
      "to every process of the server (new children followed). syncs / msg "
      "counts the calls that flush to the device ("
      + ", ".join(FLUSH_CALLS) + "); `sync_file_range` is traced and listed "
      "but not counted: it only starts or waits for the write-out of pages, "
      "and makes nothing durable on its own. Counts include delivery to "
      "the Maildir.\n")
    a("| server | syncs / msg | calls |")
    a("|---|---:|---|")
    for n in names:
        r = res["syncs"].get(n)
        if r is None:
            continue
        if "error" in r:
            a(f"| {n} | FAILED | {r['error']} |")
            continue
        calls = ", ".join(f"{k} {v}" for k, v in sorted(r["counts"].items()))
        a(f"| {n} | {r['per_msg']:.2f} | {calls or 'none'} |")
    a("")

    a("## Idle sessions\n")
    a("N connections opened (at most 64 connecting at once), each waits for "
      "its 220 greeting and then stays silent; the server tree's memory is "
      "measured before and while they are held. Per session = (after − "
      "before) / greeted.\n")
    a("| server | sessions | got 220 | open s | processes | RSS before → "
      "after MiB | PSS before → after MiB | PSS bytes/session | RSS "
      "bytes/session |")
    a("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sess in res["idle_sizes"]:
        for n in names:
            r = res["idle"].get((sess, n))
            if r is None:
                continue
            if "error" in r or r.get("skipped"):
                why = r.get("error") or r.get("skipped")
                a(f"| {n} | {sess} | {'FAILED' if 'error' in r else 'skipped'}"
                  f": {why} | | | | | | |")
                continue
            a(f"| {n} | {sess} | {r['greeted']}"
              f"{'' if r['greeted'] == sess else ' (NOT ALL)'} | "
              f"{r['open_s']:.1f} | {r['nproc']} | "
              f"{mib(r['rss0'])} → {mib(r['rss1'])} | "
              f"{mib(r['pss0'])} → {mib(r['pss1'])} | "
              f"{fmt(r['pss_per'])} | {fmt(r['rss_per'])} |")
    notes = [(sess, n, line) for sess in res["idle_sizes"] for n in names
             for line in res["idle"].get((sess, n), {}).get("notes", [])]
    if notes:
        a("\nWhere not every session was greeted, the server's log said:\n")
        for sess, n, line in notes:
            a(f"- {n}, {sess} sessions: `{line}`")
    a(f"\nDescriptor limit (RLIMIT_NOFILE) for servers and client: "
      f"{res['machine']['nofile']}.")
    a("")

    a("## Commit ceiling of this disk\n")
    if "error" in res["ceiling"]:
        a(f"FAILED: {res['ceiling']['error']}\n")
    else:
        a("bench/commit_ceiling: per operation, create a file in tmp/, "
          "write BYTES (4 KiB as in w1, 100 KiB as in w3), fdatasync, "
          "rename into new/, fsync(new/); threads "
          f"loop for {res['ceiling']['seconds']} s. An MTA that pays one such "
          "commit per message without batching cannot ingest faster than "
          "this. ms per commit = threads ÷ commits/s: how long one "
          "writer waits for its commit while that many commit at once.\n")
        a("| bytes | threads | commits/s | ms per commit |")
        a("|---:|---:|---:|---:|")
        for size, n, ops in res["ceiling"]["rows"]:
            a(f"| {fmt(size)} | {n} | {fmt(ops)} | "
              f"{1000.0 * n / ops if ops else 0:.2f} |")
    a("")

    a("## Commands\n")
    a("```")
    for c in res["commands"]:
        a(c)
    a("```")
    if res.get("configs"):
        a("\n<details><summary>Server configurations</summary>\n")
        for n, text in res["configs"].items():
            a(f"{n}:\n\n```\n{text.rstrip()}\n```\n")
        a("</details>")
    return "\n".join(L) + "\n"


# -------------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="tiny counts, petrel only, for CI")
    ap.add_argument("--servers",
                    default="petrel,postfix,opensmtpd,opensmtpd-backlog,"
                    "sink,floor,durable-floor",
                    help="what to run; sink: Postfix's smtp-sink, floor: "
                    "bench/smtp_floor; both store nothing (the protocol "
                    "ceiling); durable-floor: smtp_floor -j, which makes "
                    "each message durable before its 250 and no more")
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--sync-messages", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per workload and server; the table shows "
                         "the median of each figure (a run over "
                         f"{REPEAT_MAX_S:.0f} s is not repeated)")
    ap.add_argument("--idle", default="1000,10000",
                    help="idle session counts")
    ap.add_argument("--ceiling-threads", default="1,4,8,16,64")
    ap.add_argument("--ceiling-seconds", type=float, default=5)
    ap.add_argument("--ceiling-sizes", default="4096,102400",
                    help="bytes per commit (w1's and w3's message sizes)")
    ap.add_argument("--timeout", type=int, default=600,
                    help="longest wait for one load run, seconds")
    ap.add_argument("--petrel", default=os.environ.get(
        "PETREL_BIN", str(REPO / "build" / "src" / "petrel")))
    ap.add_argument("--ceiling-bin", default=str(BENCH / ".peers" /
                                                 "commit_ceiling"))
    ap.add_argument("--floor-bin", default=str(BENCH / ".peers" /
                                               "smtp_floor"))
    ap.add_argument("--opensmtpd-root", default=str(BENCH / ".peers" /
                                                    "opensmtpd"))
    ap.add_argument("--workdir", default=None,
                    help="parent for the temporary directory (/var/tmp)")
    ap.add_argument("--results", default=None,
                    help="also write the report here (full run default: "
                         "bench/RESULTS.md)")
    ap.add_argument("--workloads", default=",".join(w[0] for w in WORKLOADS),
                    help="which load workloads to run (comma-separated)")
    ap.add_argument("--petrel-set", action="append", default=[],
                    metavar="SECTION.KEY=VALUE",
                    help="extra petrel setting (repeatable), for A/B runs")
    ap.add_argument("--note", default="")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    a = ap.parse_args()
    if a.smoke:
        a.servers, a.messages, a.sessions = \
            "petrel,sink,floor,durable-floor", 40, 4
        a.repeat = 1
        a.sync_messages, a.idle = 20, "50"
        a.ceiling_threads, a.ceiling_seconds = "1,4", 0.5
        a.timeout = 20
    elif a.results is None:
        a.results = str(BENCH / "RESULTS.md")
    want = [w.strip() for w in a.workloads.split(",") if w.strip()]
    unknown = set(want) - {w[0] for w in WORKLOADS}
    if unknown:
        ap.error(f"--workloads: unknown {', '.join(sorted(unknown))}")
    WORKLOADS[:] = [w for w in WORKLOADS if w[0] in want]
    if not 1 <= a.repeat <= 20:
        ap.error("--repeat out of range (1..20)")
    for n in ("messages", "sessions", "sync_messages"):
        if not 1 <= getattr(a, n) <= 1000000:
            ap.error(f"--{n.replace('_', '-')} out of range")
    return a


def main():
    a = parse_args()
    t_start = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    wd = Path(tempfile.mkdtemp(prefix="petrel-bench.", dir=a.workdir or
                               "/var/tmp"))
    os.chmod(wd, 0o755)
    spread = spread_subdirs(wd)
    log(f"work directory {wd}: run directories {spread}")

    binary = wd / "bin" / "petrel"
    binary.parent.mkdir()
    # a private copy: other people may rebuild build/src/petrel meanwhile
    shutil.copy2(a.petrel, binary)
    servers = [Petrel(wd / "petrel", binary, a.petrel_set)]
    skipped = []
    want = [s.strip().lower() for s in a.servers.split(",") if s.strip()]
    if "postfix" in want:
        if os.geteuid() != 0:
            skipped.append("Postfix: needs root (postfix start)")
        elif shutil.which("postfix") is None:
            skipped.append("Postfix: not installed")
        else:
            servers.append(Postfix(wd / "postfix"))
    for key, shim in (("opensmtpd", None),
                      ("opensmtpd-backlog", BENCH / ".peers" /
                       "listen_backlog.so")):
        if key not in want:
            continue
        o = OpenSMTPD(wd / key, Path(a.opensmtpd_root), shim)
        # run.sh leaves the reason here when it could not fetch OpenSMTPD
        why_file = Path(a.opensmtpd_root + ".unavailable")
        why = (why_file.read_text().strip() if why_file.exists()
               else o.available())
        if why:
            skipped.append(f"{o.name}: {why}")
            log(f"{o.name} not run: {why}")
        else:
            servers.append(o)
    # the no-storage reference: load runs only (no syncs, no idle)
    sinks = []
    if "sink" in want:
        if shutil.which("smtp-sink") is None:
            skipped.append("smtp-sink: not installed (package postfix)")
        else:
            sinks.append(Sink(wd / "sink"))
    for key, cls in (("floor", Floor), ("durable-floor", DurableFloor)):
        if key not in want:
            continue
        if not Path(a.floor_bin).exists():
            skipped.append(f"{cls.name}: no {a.floor_bin} (bench/run.sh "
                           "builds it)")
        else:
            sinks.append(cls(wd / key, Path(a.floor_bin)))
    loaders = servers + sinks

    res = {
        "smoke": a.smoke, "date": datetime.datetime.now(
            datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": dict(machine_info(wd), spread=spread),
        "messages": a.messages,
        "sessions": a.sessions, "sync_messages": a.sync_messages,
        "repeat": a.repeat,
        "servers": [s.name for s in servers], "skipped": skipped,
        "sinks": [s.name for s in sinks],
        "versions": [], "load": {}, "rounds": {}, "syncs": {}, "idle": {},
        "idle_sizes": [int(x) for x in a.idle.split(",") if x],
        "ceiling": {}, "commands": [], "configs": {}, "note": a.note,
    }
    for s in loaders:
        try:
            res["versions"].append(s.version())
        except (OSError, subprocess.SubprocessError) as e:
            res["versions"].append(f"{s.name} (version unknown: {e})")
    petrel_failed = False

    def record(table, key, fn):
        nonlocal petrel_failed
        try:
            table[key] = fn()
        except BenchError as e:
            log(f"{key}: FAILED: {e}")
            table[key] = {"error": str(e).splitlines()[0][:200]}
            if "petrel" in key or a.smoke:   # smoke: every part must work
                petrel_failed = True

    try:
        runs = {}
        # repetitions outermost: a change in background load hits every
        # server alike
        for rep in range(a.repeat):
            # each round starts with the next server: a run pays for what
            # the run before it left (files deleted in the last minute
            # slow every new inode on ext4 without a journal), so no
            # server may always follow the same one
            order = loaders[rep % len(loaders):] + \
                loaders[:rep % len(loaders)]
            for w in WORKLOADS:
                for s in order:
                    key = (w[0], s.name)
                    prev = runs.get(key, [])
                    if prev and ("error" in prev[0] or
                                 prev[0]["ingest_s"] > REPEAT_MAX_S):
                        continue
                    log(f"{w[0]} {w[1]}: {s.name} (run {rep + 1})")
                    one = {}
                    record(one, key, lambda: run_load(
                        s, w, a.messages, workload_sessions(w, a.sessions),
                        a.timeout))
                    one[key]["round"] = rep
                    runs.setdefault(key, []).append(one[key])
                    if s.name not in res["configs"]:
                        try:
                            res["configs"][s.name] = s.config_text()
                        except (OSError, AttributeError):
                            pass
        for key, rs in runs.items():
            res["load"][key] = median_run(rs)
            res["rounds"][key] = {r["round"]: r for r in rs
                                  if "error" not in r}
        for s in servers:
            log(f"durable syncs: {s.name}")
            record(res["syncs"], s.name,
                   lambda: run_syncs(s, a.sync_messages, a.sessions,
                                     a.timeout, wd))
        for sess in res["idle_sizes"]:
            for s in servers:
                key = (sess, s.name)
                guess = guard_idle(res, s.name, sess)
                if guess:
                    res["idle"][key] = {"skipped": guess}
                    log(f"idle {sess}: {s.name}: skipped: {guess}")
                    continue
                log(f"idle {sess}: {s.name}")
                record(res["idle"], key,
                       lambda: run_idle(s, sess, idle_timeout(sess)))
        log("commit ceiling")
        threads = [int(x) for x in a.ceiling_threads.split(",") if x]
        try:
            sizes = [int(x) for x in a.ceiling_sizes.split(",") if x]
            rows, argv = run_ceiling(Path(a.ceiling_bin), wd, threads,
                                     a.ceiling_seconds, sizes)
            res["ceiling"] = {"rows": rows, "seconds": a.ceiling_seconds}
            res["commands"].append("# commit ceiling, N in " +
                                   a.ceiling_threads + ", BYTES in " +
                                   a.ceiling_sizes + "\n" + " ".join(argv))
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            res["ceiling"] = {"error": str(e)}
            petrel_failed = True
    finally:
        for s in loaders:
            try:
                s.stop()
            except Exception as e:      # keep stopping the others
                log(f"stopping {s.name}: {e}")

    cmds = ["# this report (make bench runs bench/run.sh without options)\n"
            + " ".join(["bench/run.sh"] + sys.argv[1:])]
    for w in WORKLOADS:
        argv = smtp_source_argv("PORT", w, a.messages,
                                workload_sessions(w, a.sessions))
        cmds.append(f"# {w[0]}: {w[1]}\n" + " ".join(argv))
    cmds.append("# durable syncs (during a w1-shaped run of "
                f"{a.sync_messages} messages)\nstrace -f -c -o FILE -e trace="
                + ",".join(SYNC_CALLS) + " -p PID [-p PID ...]")
    for sess in res["idle_sizes"]:
        t = idle_timeout(sess)
        cmds.append(f"# idle sessions\n/usr/bin/python3 bench/idle.py "
                    f"--port PORT --count {sess} --open-timeout {t} "
                    f"--stall 30 --hold {t + 120}")
    res["commands"] = cmds + res["commands"]
    res["load_end"] = Path("/proc/loadavg").read_text().split()[:3]
    text = report(res)
    print(text)
    if a.results:
        Path(a.results).write_text(text)
        log(f"wrote {a.results}")
    if not a.keep:
        shutil.rmtree(wd, ignore_errors=True)
    log(f"done in {time.monotonic() - t_start:.0f} s")
    return 1 if petrel_failed else 0


def idle_timeout(sessions):
    """Seconds allowed for opening `sessions` idle sessions."""
    return max(60, sessions // 50)


def guard_idle(res, name, sess):
    """Skip an idle run that would take too much of this shared machine:
    estimate from the smallest run of the same server."""
    smaller = [k for k in res["idle"] if k[1] == name and k[0] < sess]
    if not smaller:
        return None
    prev = res["idle"][max(smaller)]
    if "error" in prev or prev.get("skipped"):
        return "the smaller run did not succeed"
    need = prev["pss_per"] * sess * 1.5
    avail = mem_available()
    if need > avail * 0.5:
        return (f"would need about {need / 2**30:.1f} GiB, more than half "
                f"of the {avail / 2**30:.1f} GiB available")
    if prev["nproc"] > prev["sessions"] // 2:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        running = sum(1 for d in os.listdir("/proc") if d.isdigit())
        if sess + running > pid_max * 0.8:
            return (f"one process per session: {sess} more processes would "
                    f"near pid_max {pid_max}")
    return None


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so every started server is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
