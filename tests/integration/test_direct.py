"""Delivery at commit ([queue] direct_local): a message only for local
Maildirs is there before the 250 and never enters the queue; anything else
(a remote recipient, NOTIFY=SUCCESS, over 50 recipients), or a failed
delivery, takes the queue, and nothing is delivered twice."""
import os
import re
import signal
import subprocess

import pytest

from helpers import (begin, check_delivered, ehlo, expect, log_lines, qid,
                     send_message, wait_until)


def test_in_maildir_before_250(petrel, raw):
    r = raw()
    content = b"Subject: direct\r\n\r\nat once\r\n"
    q = send_message(r, content)
    # no waiting: the copy is on disk when the 250 arrives
    msgs = petrel.messages("alice")
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)
    assert petrel.queue_files() == []
    assert petrel.tmp_files() == []
    assert wait_until(lambda: log_lines(
        petrel, q, "queue removed: delivered at commit"), 5), petrel.log()
    assert len(log_lines(petrel, q, "status=sent")) == 1


def test_two_mailboxes_before_250(make_petrel, raw):
    """Two recipients, or an alias to two mailboxes: in both Maildirs
    before the 250, one copy each, with one filesystem sync for the two
    (batch_sync) or an fsync each."""
    for batch in ("yes", "no"):
        p = make_petrel(users=["alice@localhost", "bob@localhost"],
                        aliases="team: alice, bob\n",
                        extra={"queue.batch_sync": batch})
        r = raw(p.port)
        for n, rcpts in enumerate((("alice@localhost", "bob@localhost"),
                                   ("team@localhost",)), 1):
            content = b"Subject: two\r\n\r\nx\r\n"
            q = send_message(r, content, rcpts=rcpts)
            assert len(p.messages("alice")) == n
            assert len(p.messages("bob")) == n
            check_delivered(p.messages("bob")[-1], content,
                            rcpt="bob@localhost", qid=q, single=False)
            assert p.queue_files() == []
            assert wait_until(lambda: log_lines(
                p, q, "queue removed: delivered at commit"), 5), p.log()
            assert len(log_lines(p, q, "status=sent")) == 2
        assert p.tmp_files() == []


class SyncTrace:
    """strace on a running petrel, counting its syncfs(2) calls and its
    fsync(2) calls on files and on Maildir new/ directories; with times,
    also when each call began and ended. calls: the calls to trace."""

    def __init__(self, pid, out, times=False, calls="syncfs,fsync"):
        self.out = out
        self.proc = subprocess.Popen(
            ["strace", "-f", "-y", *(["-ttt", "-T"] if times else []),
             "-e", "trace=" + calls, "-o", str(out), "-p", str(pid)],
            stderr=subprocess.PIPE, text=True)
        # trace only once every thread petrel has is traced (later ones
        # are followed): strace says "Process N attached with M threads"
        # after attaching them all, or "Process N attached" for each
        threads = len(os.listdir(f"/proc/{pid}/task"))
        attached = 0
        while attached < threads:
            line = self.proc.stderr.readline()
            m = re.search(r"attached(?: with (\d+) threads)?$", line.strip())
            assert m, line
            attached += int(m.group(1) or 1)

    def intervals(self, call="fsync"):
        """After stop(), of a trace with times: (start, end, path) of each
        call (fsync or syncfs), path as strace shows the descriptor."""
        out = []
        for start, end, name, args in self.calls():
            m = re.match(r"\d+<(.*?)>(\(deleted\))?", args)
            if name == call and m:
                out.append((start, end, m.group(1) + (m.group(2) or "")))
        return out

    def calls(self):
        """After stop(), of a trace with times: (start, end, call, args) of
        every call, in order of their start."""
        out, begun = [], {}
        for line in self.out.read_text().splitlines():
            pid, at, rest = line.split(None, 2)
            if m := re.match(r"(\w+)\((.*)\) += \S+.* <([\d.]+)>$", rest):
                out.append((float(at), float(at) + float(m.group(3)),
                            m.group(1), m.group(2)))
            elif m := re.match(r"(\w+)\((.*) <unfinished", rest):
                begun[pid] = (float(at), m.group(1), m.group(2))
            elif m := re.match(r"<\.\.\. (\w+) resumed>(.*)\) += \S+.* "
                               r"<([\d.]+)>$", rest):
                start, call, args = begun.pop(pid)
                out.append((start, start + float(m.group(3)), call,
                            args + m.group(2)))
        return sorted(out)

    def stop(self):
        """Counts: "syncfs"; fsyncs of a "new/", of an unnamed file
        ("files": O_TMPFILE, shown as deleted) and of anything "other"."""
        self.proc.send_signal(signal.SIGINT)    # strace detaches
        self.proc.wait(timeout=10)
        self.proc.stderr.close()
        got = {"syncfs": 0, "new": 0, "files": 0, "other": 0}
        for line in self.out.read_text().splitlines():
            if "syncfs(" in line:
                got["syncfs"] += 1
            # a call on one line, or begun on one ("<unfinished ...>")
            elif m := re.search(r"fsync\(\d+<(.*?)>(\(deleted\))?"
                                r"(\)|  ?<unfinished)", line):
                got["files" if m.group(2) else "new"
                    if m.group(1).endswith("/new") else "other"] += 1
        return got


@pytest.fixture
def mounted_fs(tmp_path):
    """mounted_fs(kind): a directory on a fresh filesystem of that kind,
    mounted for this test only: "tmpfs", "ext4" (mkfs.ext4's default,
    with a journal) or "ext4-nojournal", the last two on a loop device.
    Mounting needs root: the test is skipped without it."""
    mounts = []

    def make(kind):
        if os.geteuid() != 0:
            pytest.skip("mounting a filesystem needs root")
        mnt = tmp_path / f"mnt-{kind}"
        mnt.mkdir()
        if kind == "tmpfs":
            cmd = ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)]
        else:
            img = tmp_path / f"{kind}.img"
            with open(img, "wb") as f:
                f.truncate(64 << 20)
            opts = ["-O", "^has_journal"] if kind == "ext4-nojournal" else []
            subprocess.run(["mkfs.ext4", "-q", "-F", *opts, str(img)],
                           check=True, capture_output=True)
            cmd = ["mount", "-o", "loop", str(img), str(mnt)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount {kind}: {r.stderr.strip()}")
        mounts.append(mnt)
        return mnt

    yield make
    for mnt in mounts:
        # lazily: a petrel still running keeps a directory open there
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def commit_at_once(p, raw, contents):
    """One connection per content, every end of data sent at once so that
    the commits are under way together; each copy in alice's Maildir
    before its 250, once."""
    conns = []
    for _ in contents:
        c = raw(p.port)
        begin(c)
        conns.append(c)
    for c, content in zip(conns, contents):
        c.send(content + b".\r\n")
    ids = [qid(c.reply()) for c in conns]
    msgs = p.messages("alice")
    for content, q in zip(contents, ids):
        check_delivered(the_one(msgs, content), content, qid=q)


def alone_then_busy(p, raw, tmp_path):
    """After a first message (which makes the Maildir), 3 messages one
    after the other, then 20 whose commits run at once, all for alice:
    each copy there before its 250, once. The traces of the two parts."""
    send_message(raw(p.port), b"Subject: first\r\n\r\nx\r\n")
    trace = SyncTrace(p.proc.pid, tmp_path / "strace.out")
    try:
        r = raw(p.port)
        for n in range(1, 4):
            content = b"Subject: alone %d\r\n\r\nx\r\n" % n
            q = send_message(r, content)
            check_delivered(the_one(p.messages("alice"), content), content,
                            qid=q)
        alone = trace.stop()
        trace = SyncTrace(p.proc.pid, tmp_path / "strace2.out")
        commit_at_once(p, raw, [b"Subject: busy %d\r\n\r\nx\r\n" % n
                                for n in range(20)])
        busy = trace.stop()
    finally:
        if trace.proc.poll() is None:
            trace.stop()
    assert p.queue_files() == []
    assert p.tmp_files() == []
    assert len(p.messages("alice")) == 24
    return alone, busy


def the_one(msgs, content):
    """The one message among msgs with content's Subject line."""
    got = [m for m in msgs if content.split(b"\r\n")[0] + b"\n" in m]
    assert len(got) == 1, (content, len(got))
    return got[0]


def test_busy_commits_share_a_filesystem_sync(make_petrel, raw, tmp_path):
    """One-mailbox deliveries at commit, with every directory synced
    (always_dir_sync): one at a time, each file and new/ get an fsync of
    their own (no syncfs); 20 commits at once share syncs of the
    filesystem (batch_sync)."""
    p = make_petrel(users=["alice@localhost"],
                    extra={"server.workers": "8",
                           "queue.always_dir_sync": "yes"})
    alone, busy = alone_then_busy(p, raw, tmp_path)
    assert alone["syncfs"] == 0
    assert alone["new"] >= 1 and alone["files"] >= 3
    assert busy["syncfs"] >= 1


@pytest.mark.parametrize("kind,covers", [("tmpfs", True), ("ext4", True),
                                        ("ext4-nojournal", False)])
def test_lone_fsync_covers_the_name(mounted_fs, make_petrel, raw, tmp_path,
                                    kind, covers):
    """Where a file's fsync makes its new name durable (ext4 with its
    journal, tmpfs), a one-mailbox delivery takes that fsync alone, at any
    load: no fsync of new/, no filesystem sync. ext4 without a journal
    takes it too when alone, holding new/ (no fsync of new/ either), and
    the shared syncs when busy."""
    mail = mounted_fs(kind) / "mail"
    p = make_petrel(users=["alice@localhost"], start=False,
                    extra={"server.workers": "8",
                           "server.mail_dir": str(mail)})
    p.mail = mail
    p.start()
    alone, busy = alone_then_busy(p, raw, tmp_path)
    if covers:
        assert (alone["syncfs"], alone["new"], alone["files"]) == (0, 0, 3)
        assert (busy["syncfs"], busy["new"], busy["files"]) == (0, 0, 20)
    else:
        assert (alone["syncfs"], alone["new"], alone["files"]) == (0, 0, 3)
        assert busy["syncfs"] >= 1


def test_racing_fsyncs_take_turns(mounted_fs, make_petrel, raw, tmp_path):
    """On ext4 without a journal two fsyncs that write one directory's
    blocks at once can miss each other's writes (newfile.h), and a file's
    first fsync after its link writes new/'s blocks: commits to one
    Maildir too few to share a filesystem sync (4 at once, 6 times) make
    their fsyncs one after the other, never two files' at once, and need
    no fsync of new/. Each copy is there before its 250, once."""
    mail = mounted_fs("ext4-nojournal") / "mail"
    p = make_petrel(users=["alice@localhost"], start=False,
                    extra={"server.workers": "8",
                           "server.mail_dir": str(mail)})
    p.mail = mail
    p.start()
    send_message(raw(p.port), b"Subject: first\r\n\r\nx\r\n")  # mkdirs
    trace = SyncTrace(p.proc.pid, tmp_path / "strace.out", times=True)
    try:
        for rnd in range(6):
            commit_at_once(p, raw, [b"Subject: turn %d.%d\r\n\r\nx\r\n"
                                    % (rnd, n) for n in range(4)])
        counts = trace.stop()
    finally:
        if trace.proc.poll() is None:
            trace.stop()
    assert (counts["syncfs"], counts["new"], counts["files"]) == (0, 0, 24)
    files = sorted((a, b) for a, b, path in trace.intervals()
                   if path.endswith("(deleted)"))
    assert len(files) == 24
    for (a1, b1), (a2, b2) in zip(files, files[1:]):
        assert b1 <= a2, (a1, b1, a2, b2)
    assert len(p.messages("alice")) == 25
    assert p.queue_files() == [] and p.tmp_files() == []


def test_queued_commits_take_turns(mounted_fs, make_petrel, raw, tmp_path):
    """The same for queue/ (direct_local = no, spool on ext4 without a
    journal): 4 commits at once make their fsyncs into queue/ one after
    the other, with no filesystem sync; 20 at once share filesystem
    syncs. Everything is delivered once."""
    fs = mounted_fs("ext4-nojournal")
    p = make_petrel(users=["alice@localhost"], start=False,
                    extra={"server.workers": "8",
                           "server.spool_dir": str(fs / "spool"),
                           "server.mail_dir": str(fs / "mail"),
                           "queue.direct_local": "no"})
    p.spool, p.mail = fs / "spool", fs / "mail"
    p.start()
    send_message(raw(p.port), b"Subject: first\r\n\r\nx\r\n")  # mkdirs
    assert p.wait_messages("alice", 1)

    def at_once(n, tag):
        conns = []
        for _ in range(n):
            c = raw(p.port)
            begin(c)
            conns.append(c)
        for i, c in enumerate(conns):
            c.send(b"Subject: %s %d\r\n\r\nx\r\n.\r\n" % (tag, i))
        for c in conns:
            qid(c.reply())
            c.close()

    trace = SyncTrace(p.proc.pid, tmp_path / "strace.out", times=True)
    try:
        for rnd in range(4):
            at_once(4, b"turn%d" % rnd)
        alone = trace.stop()
        spool = sorted((a, b) for a, b, path in trace.intervals()
                       if "/spool/tmp/" in path)
        trace = SyncTrace(p.proc.pid, tmp_path / "strace2.out", times=True)
        at_once(20, b"busy")
        busy = trace.stop()
        busy_spool = [x for x in trace.intervals() if "/spool/tmp/" in x[2]]
    finally:
        if trace.proc.poll() is None:
            trace.stop()
    assert alone["syncfs"] == 0, alone
    assert len(spool) == 16
    for (a1, b1), (a2, b2) in zip(spool, spool[1:]):
        assert b1 <= a2, (a1, b1, a2, b2)
    # most of the 20 queue files only linked, for the shared syncs
    assert busy["syncfs"] >= 1 and len(busy_spool) <= 10, (busy, busy_spool)
    assert wait_until(lambda: len(p.messages("alice")) == 37, 15)
    assert wait_until(lambda: p.queue_files() == [], 10)


def test_new_maildirs_made_durable_by_a_filesystem_sync(mounted_fs,
                                                       make_petrel, raw,
                                                       tmp_path):
    """On ext4 without a journal, a directory's fsync can miss a block
    that another fsync of ours is writing (newfile.h), and the first
    deliveries to new Maildirs of one domain all write the domain's: the
    directories a first delivery makes are made durable by a sync of the
    filesystem and an fsync of the new new/, never by a directory's fsync
    of their own, and no file's fsync in that new/ begins before that sync
    ended. 4 at once (held fsyncs: 2 users, 2 messages each), then 12
    (shared syncs: 10 users, 2 of them with 2 messages); each copy there
    before its 250, once."""
    mail = mounted_fs("ext4-nojournal") / "mail"
    users = [f"new{n}" for n in range(12)]
    p = make_petrel(users=[f"{u}@localhost" for u in users], start=False,
                    extra={"server.workers": "8",
                           "server.mail_dir": str(mail)})
    p.mail = mail
    p.start()
    trace = SyncTrace(p.proc.pid, tmp_path / "strace.out", times=True)
    try:
        for rnd, group in enumerate((users[:2], users[2:])):
            to = group + group[:2]
            conns = []
            for u in to:
                c = raw(p.port)
                begin(c, (f"{u}@localhost",))
                conns.append(c)
            contents = [b"Subject: first %d.%d\r\n\r\nx\r\n" % (rnd, i)
                        for i in range(len(to))]
            for c, content in zip(conns, contents):
                c.send(content + b".\r\n")
            for c, u, content in zip(conns, to, contents):
                q = qid(c.reply())
                check_delivered(the_one(p.messages(u), content), content,
                                rcpt=f"{u}@localhost", qid=q)
        counts = trace.stop()
    finally:
        if trace.proc.poll() is None:
            trace.stop()
    # no fsync of a Maildir/ or above; the shared syncs' flush (fsgroup.c)
    # is an fsync of mail_dir
    dirs = {path for a, b, path in trace.intervals()
            if not path.endswith(("(deleted)", "/new"))}
    assert dirs <= {str(mail)}, dirs
    made = {}
    for a, b, path in trace.intervals("syncfs"):
        if path.endswith("/Maildir/new"):
            made.setdefault(path[:-len("/new")], []).append(b)
    assert sorted(made) == sorted(str(p.maildir(u)) for u in users), made
    files = [(a, path) for a, b, path in trace.intervals()
             if path.endswith("(deleted)")]
    assert files                # the 4 at once take held fsyncs
    for a, path in files:
        box = path.rsplit("/tmp/", 1)[0]
        assert a >= min(made[box]), (path, a, made[box])
    for u in users:
        assert len(p.messages(u)) == (2 if u in users[:2] + users[2:4]
                                      else 1)


@pytest.mark.parametrize("direct", ["yes", "no"])
def test_many_mailboxes_contents_by_one_sync(make_petrel, raw, tmp_path,
                                            direct):
    """A message for 8 mailboxes (at commit, or through the queue): the
    contents of its 8 files are written out by one sync of the
    filesystem, which ends before the first of them is named in new/ (no
    write-out per file), and a second sync makes them durable. A message
    for 2 keeps a write-out per file and the one sync."""
    users = [f"m{n}" for n in range(8)]
    p = make_petrel(users=[f"{u}@localhost" for u in users],
                    extra={"queue.direct_local": direct})
    r = raw(p.port)
    rcpts = [f"{u}@localhost" for u in users]
    send_message(r, b"Subject: first\r\n\r\nx\r\n", rcpts=rcpts)
    for u in users:         # the Maildirs made before the trace
        assert len(p.wait_messages(u, 1)) == 1
    assert p.wait_queue_empty()
    got = dict.fromkeys(users, 1)
    for n, to in ((2, rcpts[:2]), (8, rcpts)):
        trace = SyncTrace(p.proc.pid, tmp_path / f"strace{n}.out",
                          times=True,
                          calls="syncfs,sync_file_range,linkat,rename")
        try:
            content = b"Subject: to %d\r\n\r\nx\r\n" % n
            q = send_message(r, content, rcpts=to)
            for u in users[:n]:
                got[u] += 1
                msgs = p.wait_messages(u, got[u])
                check_delivered(the_one(msgs, content), content,
                                rcpt=f"{u}@localhost", qid=q, single=False)
            assert p.wait_queue_empty()
        finally:
            trace.stop()
        calls = trace.calls()
        files = [c for c in calls if "/Maildir/tmp/" in c[3]]
        writes = [c for c in files if c[2] == "sync_file_range"]
        links = [c for c in calls if c[2] in ("linkat", "rename") and
                 "/Maildir/new/" in c[3]]
        syncs = [c for c in calls if c[2] == "syncfs"]
        assert len(links) == n, calls
        if n == 2:
            assert len(writes) >= 2, calls
            assert len(syncs) >= 1, calls
        else:
            assert writes == [], writes
            assert len(syncs) >= 2, calls
            first_link = min(c[0] for c in links)
            assert any(c[1] <= first_link for c in syncs), calls
            assert any(c[0] >= max(c[1] for c in links) for c in syncs), \
                calls


def test_retry_for_one_mailbox_of_eight_writes_it_out(make_petrel, raw,
                                                      tmp_path):
    """8 mailboxes, one of which cannot be made: the 7 go at commit, the
    message is queued, and the retry for the last one writes one file:
    its own write-out, no sync of the filesystem for its contents."""
    users = [f"m{n}" for n in range(8)]
    p = make_petrel(users=[f"{u}@localhost" for u in users])
    blocker = p.mail / "localhost" / "m7"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory\n")
    content = b"Subject: seven then one\r\n\r\nx\r\n"
    q = send_message(raw(p.port), content,
                     rcpts=[f"{u}@localhost" for u in users])
    assert q in p.queue_files()
    for u in users[:7]:
        assert len(p.messages(u)) == 1
    trace = SyncTrace(p.proc.pid, tmp_path / "strace.out", times=True,
                      calls="syncfs,sync_file_range,linkat,rename")
    try:
        blocker.unlink()
        msgs = p.wait_messages("m7", 1)
        check_delivered(msgs[0], content, rcpt="m7@localhost", qid=q,
                        single=False)
        assert p.wait_queue_empty()
    finally:
        trace.stop()
    calls = trace.calls()
    writes = [c for c in calls if c[2] == "sync_file_range" and
              "/m7/Maildir/tmp/" in c[3]]
    assert len(writes) >= 1, calls
    for u in users[:7]:
        assert len(p.messages(u)) == 1


def test_big_message_two_mailboxes(make_petrel, raw):
    """Over the spool's 128 KiB in memory: the body is in a file before
    queue/<id> is named; both copies are whole and nothing stays queued."""
    p = make_petrel(users=["alice@localhost", "bob@localhost"])
    r = raw(p.port)
    body = b"".join(b"line %06d of a big message\r\n" % i
                    for i in range(8000))
    content = b"Subject: big\r\n\r\n" + body
    q = send_message(r, content, rcpts=("alice@localhost", "bob@localhost"))
    for user in ("alice", "bob"):
        msgs = p.messages(user)
        assert len(msgs) == 1
        check_delivered(msgs[0], content, rcpt=f"{user}@localhost", qid=q,
                        single=False)
    assert p.queue_files() == []
    assert p.tmp_files() == []
    assert wait_until(lambda: log_lines(
        p, q, "queue removed: delivered at commit"), 5), p.log()


def test_many_recipients_take_the_queue(make_petrel, raw):
    """Over 50 recipients: the 250 does not wait for 51 deliveries."""
    users = [f"u{i}@localhost" for i in range(51)]
    p = make_petrel(users=users)
    r = raw(p.port)
    q = send_message(r, b"Subject: many\r\n\r\nx\r\n", rcpts=users)
    assert wait_until(lambda: log_lines(p, q, "queue removed"), 15), p.log()
    assert not log_lines(p, q, "delivered at commit")
    for u in ("u0", "u50"):
        assert len(p.messages(u)) == 1


def test_one_failed_mailbox_of_two(make_petrel, raw):
    """alice's copy is made at commit; bob's Maildir cannot be: the message
    is queued with alice journaled as delivered, and the queue delivers to
    bob only, once it can. Each gets one copy."""
    p = make_petrel(users=["alice@localhost", "bob@localhost"])
    blocker = p.mail / "localhost" / "bob"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory\n")
    r = raw(p.port)
    content = b"Subject: half\r\n\r\nlater for bob\r\n"
    q = send_message(r, content, rcpts=("alice@localhost", "bob@localhost"))
    assert q in p.queue_files()
    assert len(p.messages("alice")) == 1
    assert log_lines(p, q, "to=<bob@localhost>", "status=deferred")
    blocker.unlink()
    msgs = p.wait_messages("bob", 1)
    check_delivered(msgs[0], content, rcpt="bob@localhost", qid=q,
                    single=False)
    assert p.wait_queue_empty()
    assert len(p.messages("alice")) == 1
    assert len(p.messages("bob")) == 1
    assert len(log_lines(p, q, "to=<alice@localhost>", "status=sent")) == 1


def test_off_takes_the_queue(make_petrel, raw):
    p = make_petrel(extra={"queue.direct_local": "no"},
                    users=["alice@localhost"])
    r = raw(p.port)
    content = b"Subject: queued\r\n\r\nvia the queue\r\n"
    q = send_message(r, content)
    msgs = p.wait_messages("alice", 1)
    check_delivered(msgs[0], content, qid=q)
    assert wait_until(lambda: log_lines(p, q, "queue removed"), 5), p.log()
    assert not log_lines(p, q, "delivered at commit")


def test_remote_recipient_takes_the_queue(make_petrel, raw):
    """One recipient is elsewhere: the whole message is queued and the
    local copy is made once, by the queue."""
    petrel = make_petrel(extra={"smtp.trusted_networks": "127.0.0.0/8"},
                         users=["alice@localhost"])
    r = raw(petrel.port)
    content = b"Subject: mixed\r\n\r\nlocal and remote\r\n"
    q = send_message(r, content,
                     rcpts=("alice@localhost", "someone@remote.invalid"))
    assert wait_until(lambda: len(petrel.messages("alice")) == 1, 10)
    assert q in petrel.queue_files()       # the remote one waits
    # a retry pass has run (retry_initial 1 s) and made no second copy
    assert wait_until(lambda: len(log_lines(
        petrel, q, "to=<someone@remote.invalid>", "status=deferred")) >= 2,
        15), petrel.log()
    assert len(petrel.messages("alice")) == 1
    assert not log_lines(petrel, q, "delivered at commit")


def test_failed_mailbox_falls_back_to_the_queue(petrel, raw):
    """bob's Maildir cannot be made: the message is queued, then delivered
    by the queue once it can be."""
    blocker = petrel.mail / "localhost" / "bob"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory\n")
    r = raw()
    content = b"Subject: fallback\r\n\r\nlater\r\n"
    q = send_message(r, content, rcpts=("bob@localhost",))
    assert q in petrel.queue_files()
    assert log_lines(petrel, q, "to=<bob@localhost>", "status=deferred")
    blocker.unlink()
    msgs = petrel.wait_messages("bob", 1)
    check_delivered(msgs[0], content, rcpt="bob@localhost", qid=q)
    assert petrel.wait_queue_empty()
    assert not log_lines(petrel, q, "delivered at commit")
    assert len(petrel.messages("bob")) == 1


def test_notify_success_takes_the_queue(petrel, raw):
    """A success notice is the queue's job: such a message is queued, and
    the notice reaches the sender."""
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<bob@localhost>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost> NOTIFY=SUCCESS", 250, "2.1.5")
    assert r.cmd("DATA")[0] == 354
    r.send(b"Subject: dsn\r\n\r\nnotify me\r\n.\r\n")
    q = qid(r.reply())
    assert len(petrel.wait_messages("alice", 1)) == 1
    notices = petrel.wait_messages("bob", 1)
    assert len(notices) == 1 and b"multipart/report" in notices[0]
    assert not log_lines(petrel, q, "delivered at commit")
    assert wait_until(lambda: log_lines(petrel, q, "queue removed"), 10)
