"""Torture: SIGKILL petrel again and again while clients send mail, with
the kills aimed at each phase of a message's life, then check what the
Maildirs and the spool hold once a last start has drained the queue.

Phases aimed at (each kill is logged with what it hit, see KILL lines):
  load      a random moment under load (4 smtplib clients, always on)
  data      a raw client is in the middle of its body (sent slowly), or
            has sent all of it but the final dot
  dot       raw clients have just sent the final dot: the commit is
            running. Aimed at one of its steps: a file of one of these
            messages being written (held open in the spool's tmp/ or a
            Maildir's tmp/, unnamed there where O_TMPFILE works: seen in
            /proc/PID/fd), or just named (in queue/ or a new/, before
            the directory sync and the 250), or a timed moment
  maildir   a delivery has a file open in some Maildir's tmp/ (it has
            no name there where O_TMPFILE works: seen in /proc/PID/fd)
  backlog   200 messages queued for a user whose Maildir is blocked
  scan      within a few ms of exec, with that big queue: startup, the
            tmp/ clean-up, the queue scan
  recovery  the recovery pass is delivering the backlog

A cycle is 13 kills, one or two of each phase. `make test` runs the
bounded form: cycles for about 40 s (at least one), then the last start
and the checks, about a minute in all. PETREL_TORTURE=long (`make
torture`) runs cycles for 3 minutes, 4 to 5 minutes in all.
PETREL_TORTURE_SEED repeats a run's kill timing (the seed is printed;
the interleaving of threads still varies)."""
import collections
import functools
import os
import random
import re
import shutil
import smtplib
import subprocess
import threading
import time

from helpers import split_delivered
from petrel_integration_conftest import BIN, Raw

LONG = os.environ.get("PETREL_TORTURE") == "long"
BUDGET = 180.0 if LONG else 40.0     # seconds of cycles, then the checks
MAX_CYCLES = 200 if LONG else 40
SENDER = "torture@example.org"
HELO = "torture.example"
USERS = [f"u{i}@localhost" for i in range(10)]
BUSY = 4        # messages for up to 3 recipients go to the first BUSY
BACKLOG = 200
ID_RE = re.compile(rb"^X-Torture-Id: (\S+)\r?$", re.M)
QID_RE = re.compile(rb"queued as ([0-9A-Z]{13})")
REC_QID_RE = re.compile(rb" with ESMTP id ([0-9A-Z]{13})")


def backlog_user(k):
    return f"bl{k}@localhost"


def recipients(mid):
    """Who message mid goes to; follows from mid alone."""
    if mid.startswith("B"):            # B<cycle>-<n>: the backlog user
        return [backlog_user(int(mid[1:].split("-")[0]))]
    rng = random.Random("rcpt " + mid)
    # 1 in 10 is for 8 mailboxes: its files' contents go out by one
    # filesystem sync before any is named (maildir.c, contents_sync)
    n = rng.choice((1, 1, 1, 1, 1, 1, 2, 2, 3, 8))
    return sorted(rng.sample(USERS if n > 3 else USERS[:BUSY], n))


@functools.lru_cache(maxsize=1024)
def message(mid):
    """The exact content of message mid as a client sends it (CRLF lines,
    before dot-stuffing): headers with the id, a body, a trailer line."""
    rng = random.Random(mid)
    rcpts = recipients(mid)
    lines = [f"From: <{SENDER}>",
             "To: " + ", ".join(f"<{r}>" for r in rcpts),
             f"Subject: torture {mid}",
             f"Message-ID: <{mid}@torture.test>",
             f"X-Torture-Id: {mid}",
             ""]
    if mid.startswith(("S", "D")):     # raw clients: large, slow to send
        n = rng.randint(1500, 2500)
    elif rng.random() < 0.1:
        n = rng.randint(300, 3000)
    else:
        n = rng.randint(1, 300)
    for k in range(n):
        lead = "." if rng.random() < 0.05 else ""   # dot-stuffing matters
        lines.append(f"{lead}{mid} line {k} " + "y" * rng.randint(0, 90))
    lines.append(f"TRAILER {mid} END")
    return ("\r\n".join(lines) + "\r\n").encode()


def stuffed(content):
    """RFC 5321 4.5.2: a line starting with '.' gets one more."""
    return re.sub(rb"(?m)^\.", b"..", content)


class Ledger:
    """What the clients did, shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()  # mids whose end of data may have been sent
        self.acked = {}         # mid -> queue id of the 250 the client got
        self.partial = set()    # mids cut off before their final dot
        self.refused = []       # any SMTP error reply: none is expected

    def attempt(self, mid):
        with self.lock:
            self.attempted.add(mid)

    def ack(self, mid, resp):
        m = QID_RE.search(resp)
        with self.lock:
            if m is None:
                self.refused.append((mid, 250, resp))
            else:
                self.acked[mid] = m.group(1).decode()

    def refuse(self, mid, code, resp):
        with self.lock:
            self.refused.append((mid, code, resp))

    def acked_count(self, prefix):
        with self.lock:
            return sum(1 for m in self.acked if m.startswith(prefix))


class Refused(Exception):
    pass


def smtp_connect(port):
    s = smtplib.SMTP("127.0.0.1", port, local_hostname=HELO, timeout=10)
    try:
        code, resp = s.ehlo(HELO)
        if code != 250:
            raise smtplib.SMTPResponseException(code, resp)
    except BaseException:
        s.close()
        raise
    return s


def smtp_send(s, mid, ledger):
    """One transaction on an open smtplib connection. Connection errors
    propagate; an SMTP error reply is recorded and raises Refused."""
    code, resp = s.mail(SENDER)
    if code != 250:
        ledger.refuse(mid, code, resp)
        raise Refused()
    for r in recipients(mid):
        code, resp = s.rcpt(r)
        if code != 250:
            ledger.refuse(mid, code, resp)
            raise Refused()
    ledger.attempt(mid)
    try:
        code, resp = s.data(message(mid))
    except smtplib.SMTPResponseException as e:
        ledger.refuse(mid, e.smtp_code, e.smtp_error)
        raise Refused() from e
    ledger.ack(mid, resp)


def send_stream(port, prefix, count, ledger, stop):
    """Send <prefix><n> for n < count, on one connection at a time,
    reconnecting after a connection error (the server was killed)."""
    s = None
    n = 0
    while n < count and not stop.is_set():
        if s is None:
            try:
                s = smtp_connect(port)
            except (OSError, smtplib.SMTPException):
                s = None
                time.sleep(0.02)
                continue
        mid = f"{prefix}{n}"
        n += 1
        try:
            smtp_send(s, mid, ledger)
        except (Refused, OSError, smtplib.SMTPException):
            s.close()
            s = None
    if s is not None:
        try:
            s.quit()
        except (OSError, smtplib.SMTPException):
            s.close()


def raw_begin(port, mid, ledger):
    """Raw connection through DATA's 354 for message mid, or None."""
    try:
        r = Raw(port)
    except OSError:
        return None
    try:
        steps = [None, f"EHLO {HELO}", f"MAIL FROM:<{SENDER}>"]
        steps += [f"RCPT TO:<{x}>" for x in recipients(mid)] + ["DATA"]
        for line in steps:
            code, lines = r.reply() if line is None else r.cmd(line)
            want = 220 if line is None else 354 if line == "DATA" else 250
            if code != want:
                ledger.refuse(mid, code, lines)
                r.close()
                return None
        return r
    except (OSError, EOFError):
        r.close()
        return None


def slow_client(port, mid, ledger, ready, whole):
    """Send mid's content slowly and never the final dot. Sets ready in the
    middle of the body or, if whole, when all but the dot is out."""
    with ledger.lock:
        ledger.partial.add(mid)
    r = raw_begin(port, mid, ledger)
    if r is None:
        ready.set()
        return
    try:
        data = stuffed(message(mid))
        chunks = [data[i:i + 512] for i in range(0, len(data), 512)]
        for i, c in enumerate(chunks):
            r.send(c)
            if not whole and i == len(chunks) // 2:
                ready.set()
            time.sleep(0.002)
        ready.set()
        r.closed(timeout=30)        # until the kill closes it
    except (OSError, EOFError):
        pass
    finally:
        ready.set()
        r.close()


def maildir_tmp_files(p):
    out = set()
    root = p.mail / "localhost"
    if root.is_dir():
        for user in root.iterdir():
            t = user / "Maildir" / "tmp"
            if t.is_dir():
                out.update(t / f for f in os.listdir(t))
    return out


def held_open(pid, marks):
    """{/proc/PID/fd/N: target} for the files petrel holds open whose path
    contains one of marks. Unnamed files (O_TMPFILE) show only here, as
    ".../tmp/#<inode> (deleted)"."""
    out = {}
    fds = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return out
    for n in names:
        try:
            target = os.readlink(f"{fds}/{n}")
        except OSError:
            continue
        if any(m in target for m in marks):
            out[f"{fds}/{n}"] = target
    return out


def maildir_tmp_open(pid):
    """Files petrel holds open in some Maildir's tmp/: a delivery being
    written."""
    return set(held_open(pid, ("/Maildir/tmp/",)).values())


def torture_id(path):
    """The X-Torture-Id in the head of the file at path (also a
    /proc/PID/fd link, which opens an unnamed file), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(8192)
    except OSError:
        return None
    m = ID_RE.search(head)
    return m.group(1).decode() if m else None


def new_count(p, user):
    d = p.mail / "localhost" / user.split("@")[0] / "Maildir" / "new"
    try:
        return len(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return 0


class Torture:
    def __init__(self, p, rng):
        self.p = p
        self.rng = rng
        self.ledger = Ledger()
        self.kills = []
        # mid -> number of kills at which its file was in queue/
        self.in_queue = collections.Counter()
        self.tmp_pending = set()     # spool tmp/ names seen at kills
        self.mtmp_seen = set()       # Maildir tmp/ leftovers seen so far
        self.log_off = 0
        self.last_kill = 0.0
        self.seq = collections.Counter()

    def mid(self, prefix):
        self.seq[prefix] += 1
        return f"{prefix}{self.seq[prefix]}"

    def _mark(self):
        self.log_off = self.p.logfile.stat().st_size \
            if self.p.logfile.exists() else 0

    def start(self):
        self._mark()
        self.p.start(timeout=60)
        # tmp/ is cleaned before petrel listens: nothing from a kill stays
        left = self.tmp_pending & set(self.p.tmp_files())
        assert not left, f"spool tmp/ files survived a restart: {left}"
        self.tmp_pending.clear()

    def start_nowait(self):
        """Exec petrel and return at once (for kills during startup)."""
        p = self.p
        self._mark()
        p.log_fh = open(p.logfile, "ab")
        p.proc = subprocess.Popen([BIN, "serve", "-c", str(p.conf)],
                                  stdout=p.log_fh, stderr=p.log_fh)
        return time.monotonic()

    def kill(self, phase, **info):
        p = self.p
        assert p.proc is not None and p.proc.poll() is None, \
            f"petrel exited on its own before a kill:\n{p.log()[-4000:]}"
        p.kill()
        self.last_kill = time.time()
        # petrel is dead: queue/ now holds exactly what a restart finds.
        # Each file must be a complete message (never half of one).
        mids = set()
        qdir = p.spool / "queue"
        for name in p.queue_files():
            if name.endswith(".j"):
                continue
            data = (qdir / name).read_bytes()
            m = ID_RE.search(data)
            assert m, f"queue file {name} holds no id: {data[:300]!r}"
            mid = m.group(1).decode()
            assert data.endswith(message(mid)), \
                f"queue file {name} ({mid}) is not a complete message"
            mids.add(mid)
        for mid in mids:
            self.in_queue[mid] += 1
        tmp = p.tmp_files()
        self.tmp_pending.update(tmp)
        mtmp = maildir_tmp_files(p)
        new_mtmp = mtmp - self.mtmp_seen
        self.mtmp_seen |= mtmp
        with open(p.logfile, "rb") as f:
            f.seek(self.log_off)
            seg = f.read().decode(errors="replace")
        rec = dict(n=len(self.kills) + 1, phase=phase, queued=len(mids),
                   spool_tmp=len(tmp), maildir_tmp=len(new_mtmp),
                   started="serve started" in seg,
                   accepted=seg.count(" smtp accepted "),
                   sent=seg.count(" status=sent "),
                   removed=seg.count(" queue removed"), **info)
        self.kills.append(rec)
        print("KILL " + " ".join(f"{k}={v}" for k, v in rec.items()),
              flush=True)
        return rec

    # ---- one kill each, petrel running before, dead after -------------

    def kill_load(self):
        time.sleep(self.rng.uniform(0.2, 1.5 if not LONG else 3.0))
        self.kill("load")

    def kill_data(self, whole):
        ready = threading.Event()
        mid = self.mid("S")
        th = threading.Thread(target=slow_client, args=(
            self.p.port, mid, self.ledger, ready, whole))
        th.start()
        assert ready.wait(30), "slow client never got going"
        time.sleep(self.rng.uniform(0, 0.03))
        self.kill("data", whole=whole)
        th.join(60)
        assert not th.is_alive()

    def commit_dirs(self, mids):
        """Where the commit of mids names its files: queue/ and the new/
        of each of their recipients (delivery at commit)."""
        dirs = [str(self.p.spool / "queue")]
        for r in sorted({r for mid in mids for r in recipients(mid)}):
            dirs.append(str(self.p.maildir(r.split("@")[0]) / "new"))
        return dirs

    def commit_marks(self):
        """Path pieces of the files a commit writes (as /proc shows them:
        resolved)."""
        return (os.path.realpath(self.p.spool / "tmp") + "/",
                "/Maildir/tmp/")

    @staticmethod
    def names(dirs):
        """(dir, name) of every entry: plain strings, so that polling
        directories of thousands of files stays fast."""
        out = set()
        for d in dirs:
            try:
                out.update((d, f) for f in os.listdir(d))
            except FileNotFoundError:
                pass
        return out

    def aim_commit(self, mode, mids, marks, open_before, names_before,
                   dirs):
        """Poll (1 s at most) for the moment mode aims at; returns what
        was hit (a short string) or None."""
        pid = self.p.proc.pid
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            if mode == "open":
                # a file of ours being written: opened after the dot
                # (a spilled message's own spool file was open before)
                for fd, target in held_open(pid, marks).items():
                    if open_before.get(fd) == target:
                        continue
                    if torture_id(fd) in mids:
                        return "spool tmp" if "/Maildir/" not in target \
                            else "maildir tmp"
            else:
                fresh = self.names(dirs) - names_before
                names_before |= fresh   # read each new name once
                for d, f in fresh:
                    if torture_id(os.path.join(d, f)) in mids:
                        return os.path.basename(d)
        return None

    def kill_dot(self, n=3):
        """Raw clients send all but the final dot, then the dots go out
        together and petrel is killed during the commit: while a file of
        theirs is written (open), the moment one is named (named), or
        after a delay (timed)."""
        conns = []
        for _ in range(n):
            mid = self.mid("D")
            r = raw_begin(self.p.port, mid, self.ledger)
            if r is not None:
                r.send(stuffed(message(mid)))
                conns.append((mid, r))
        assert conns, "no raw client got to DATA"
        time.sleep(0.1)                 # petrel has the body, not the dot
        mids = {mid for mid, _ in conns}
        mode = self.rng.choice(("open", "named", "timed"))
        dirs = self.commit_dirs(mids)
        marks = self.commit_marks()
        open_before = held_open(self.p.proc.pid, marks)
        names_before = self.names(dirs)     # aim_commit() adds to it
        # timed: 0.1 to 30 ms, log-uniform; the commit waits for a worker
        # (maybe busy with deliveries), then writes, syncs, names
        delay = 10 ** self.rng.uniform(-4, -1.5)
        for mid, r in conns:
            self.ledger.attempt(mid)
            r.send(b".\r\n")
        t0 = time.perf_counter()
        hit = None
        if mode == "timed":
            while time.perf_counter() - t0 < delay:
                pass
        else:
            hit = self.aim_commit(mode, mids, marks, open_before,
                                  names_before, dirs)
        waited = time.perf_counter() - t0
        rec = self.kill("dot", mode=mode, hit=hit,
                        after_ms=round(waited * 1000, 2))
        acks = 0
        for mid, r in conns:
            try:
                r.sock.settimeout(5)
                code, lines = r.reply()
                if code == 250:
                    self.ledger.ack(mid, lines[0].encode())
                    acks += 1
                else:
                    self.ledger.refuse(mid, code, lines)
            except (OSError, EOFError):
                pass
            finally:
                r.close()
        # a 250 seen / in queue/ at the kill (committed, maybe without 250)
        in_q = sum(1 for mid, _ in conns if self.in_queue[mid])
        rec["dot_outcome"] = f"acked={acks} queued={in_q} of={len(conns)}"
        print(f"KILL {rec['n']} dot outcome {rec['dot_outcome']}")

    def kill_maildir(self):
        """Kill the moment petrel has a file open in some Maildir's tmp/
        (named or not), or a new one shows there."""
        deadline = time.time() + 10
        hit = False
        pid = self.p.proc.pid
        while time.time() < deadline and not hit:
            hit = bool(maildir_tmp_open(pid)) or \
                bool(maildir_tmp_files(self.p) - self.mtmp_seen)
            if not hit:
                time.sleep(0.0005)
        self.kill("maildir", aimed=hit)

    def kill_recovery(self, user):
        """Kill once the recovery pass delivered a few more backlog
        messages (it is then in the middle of the pass)."""
        target = new_count(self.p, user) + self.rng.randint(5, 50)
        deadline = time.time() + 30
        while time.time() < deadline and new_count(self.p, user) < target:
            time.sleep(0.001)
        self.kill("recovery", backlog_delivered=new_count(self.p, user))

    def backlog(self, k):
        """Queue BACKLOG messages for a user whose Maildir path is a plain
        file (deliveries fail, messages stay), then kill."""
        user = backlog_user(k)
        d = self.p.mail / "localhost" / user.split("@")[0]
        d.mkdir(parents=True, exist_ok=True)
        (d / "Maildir").write_text("blocked\n")
        stop = threading.Event()
        ths = [threading.Thread(target=send_stream, args=(
            self.p.port, f"B{k}-{t}-", BACKLOG // 4, self.ledger, stop))
            for t in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join(120)
        assert self.ledger.acked_count(f"B{k}-") == BACKLOG, \
            self.ledger.refused[-5:]
        rec = self.kill("backlog")
        assert rec["queued"] >= BACKLOG
        (d / "Maildir").unlink()
        return user

    def cycle(self, k):
        p = self.p
        self.start()
        self.kill_load()
        self.start()
        self.kill_data(whole=False)
        self.start()
        self.kill_dot()
        self.start()
        self.kill_maildir()
        self.start()
        user = self.backlog(k)
        self.start_nowait()
        time.sleep(self.rng.uniform(0, 0.003))
        self.kill("scan")
        self.start_nowait()
        time.sleep(self.rng.uniform(0.002, 0.012))
        self.kill("scan")
        self.start()
        self.kill_recovery(user)
        self.start()
        self.kill_recovery(user)
        self.start()
        self.kill_dot()
        self.start()
        self.kill_data(whole=True)
        self.start()
        self.kill_maildir()
        self.start()
        self.kill_load()
        assert p.proc is None


def test_torture(make_petrel):
    t_begin = time.monotonic()
    users = USERS + [backlog_user(k) for k in range(MAX_CYCLES)]
    p = make_petrel(users=users, start=False,
                    extra={"queue.max_deliveries": "8"})
    seed = int(os.environ.get("PETREL_TORTURE_SEED",
                              random.randrange(1 << 30)))
    print(f"seed={seed} (PETREL_TORTURE_SEED to repeat the kill timing)")
    t = Torture(p, random.Random(seed))
    led = t.ledger

    stop = threading.Event()
    clients = [threading.Thread(target=send_stream, args=(
        p.port, f"L{c}-", 1_000_000, led, stop)) for c in range(4)]
    try:
        for th in clients:
            th.start()
        for k in range(MAX_CYCLES):
            t.cycle(k)
            if time.monotonic() - t_begin > BUDGET:
                break
    finally:
        stop.set()
        for th in clients:
            th.join(60)
    assert not any(th.is_alive() for th in clients)

    # the last start: everything still queued is delivered
    t.start()
    assert p.wait_queue_empty(timeout=180), \
        f"queue not drained: {p.queue_files()[:20]}\n{p.log()[-3000:]}"
    elapsed = time.monotonic() - t_begin

    # ---- what the Maildirs hold ----------------------------------------
    copies = collections.defaultdict(list)       # (mid, rcpt) -> [qid]
    for rcpt in users:
        new = p.maildir(rcpt.split("@")[0]) / "new"
        if not new.is_dir():
            continue
        for f in sorted(new.iterdir()):
            data = f.read_bytes()
            try:
                rp, dt, rec, rest = split_delivered(data)
            except ValueError:
                raise AssertionError(f"{f}: delivered file cut short: "
                                     f"{data[-200:]!r}") from None
            m = ID_RE.search(rest)
            assert m, f"{f}: delivered file holds no id: {data[:300]!r}"
            mid = m.group(1).decode()
            # never a partial message, never one no client finished
            assert mid not in led.partial, \
                f"{f}: {mid} was cut off before its final dot, yet delivered"
            assert mid in led.attempted, f"{f}: {mid} was never sent whole"
            assert rest == message(mid).replace(b"\r\n", b"\n"), \
                f"{f}: {mid} delivered incomplete or altered"
            assert rp == b"Return-Path: <%s>" % SENDER.encode(), (f, rp)
            assert dt == b"Delivered-To: %s" % rcpt.encode(), (f, dt)
            assert rcpt in recipients(mid), f"{f}: {mid} is not for {rcpt}"
            q = REC_QID_RE.search(rec)
            assert q, (f, rec)
            q = q.group(1).decode()
            if mid in led.acked:
                assert q == led.acked[mid], \
                    f"{f}: {mid} acknowledged as {led.acked[mid]}, " \
                    f"delivered as {q}"
            copies[(mid, rcpt)].append(q)

    # every acknowledged message reached every one of its recipients
    lost = [(mid, r) for mid in led.acked for r in recipients(mid)
            if (mid, r) not in copies]
    assert not lost, f"{len(lost)} acknowledged deliveries lost: {lost[:20]}"
    # a message delivered at all (acknowledged or not) reached everyone:
    # the queue is empty, so every recipient is final
    half = [(mid, r) for mid in {m for m, _ in copies}
            for r in recipients(mid) if (mid, r) not in copies]
    assert not half, f"messages delivered to only some recipients: {half[:20]}"

    # Duplicates. A copy is delivered, then the message's recipients are
    # journaled or its queue file removed; a kill in between leaves the
    # file in queue/ and the next start delivers it again. So a duplicate
    # is allowed only for a message whose file was in queue/ right after
    # some kill (read from queue/ while petrel was dead, which is exactly
    # what the next start found), and at most one extra copy per such
    # kill: each process lifetime delivers a mailbox's copy at most once.
    dups = {k: len(v) for k, v in copies.items() if len(v) > 1}
    bad = {k: n for k, n in dups.items() if n > 1 + t.in_queue[k[0]]}
    assert not bad, "duplicates without a kill while queued: " + \
        ", ".join(f"{m}->{r} x{n} (in queue at {t.in_queue[m]} kills)"
                  for (m, r), n in list(bad.items())[:20])

    assert not led.refused, f"SMTP errors: {led.refused[:10]}"
    # petrel found every queue file readable and every step worked
    errors = [ln for ln in p.log().splitlines() if any(w in ln for w in (
        "cannot read message", "queue open failed", "remove failed",
        "journal write failed", "commit failed", "write failed",
        "create failed"))]
    assert not errors, "\n".join(errors[:20])

    # the spool after recovery: no tmp/ file, an empty queue/
    assert p.tmp_files() == [], p.tmp_files()
    assert p.queue_files() == [], p.queue_files()
    # Maildir tmp/: a kill may leave a file there (the Maildir spec lets
    # readers delete those after 36 hours); none may be newer than the
    # last kill, when no kill can explain it
    leftovers = maildir_tmp_files(p)
    late = [f for f in leftovers if f.stat().st_mtime > t.last_kill]
    assert not late, f"Maildir tmp/ files written after the last kill: {late}"

    phases = collections.Counter(k["phase"] for k in t.kills)
    dots = collections.Counter(k["dot_outcome"] for k in t.kills
                               if "dot_outcome" in k)
    aims = collections.Counter(f"{k['mode']}:{k['hit'] or 'missed'}"
                               for k in t.kills if k["phase"] == "dot"
                               and k["mode"] != "timed")
    dup_msgs = len({m for m, _ in dups})
    print(f"SUMMARY kills={len(t.kills)} phases={dict(phases)} "
          f"acked={len(led.acked)} attempted={len(led.attempted)} "
          f"partial={len(led.partial)} "
          f"delivered_msgs={len({m for m, _ in copies})} "
          f"delivered_files={sum(len(v) for v in copies.values())} "
          f"unacked_delivered="
          f"{len({m for m, _ in copies} - set(led.acked))} "
          f"dup_msgs={dup_msgs} "
          f"maildir_tmp_leftovers={len(leftovers)} "
          f"dot_outcomes={dict(dots)} dot_aims={dict(aims)} "
          f"elapsed={elapsed:.1f}s")
    assert len(t.kills) >= (20 if LONG else 10)
    assert len(led.acked) >= 100, "too little load to prove anything"
    # passed: drop the Maildirs (up to GBs; pytest keeps 3 runs' tmp dirs)
    shutil.rmtree(p.mail)
