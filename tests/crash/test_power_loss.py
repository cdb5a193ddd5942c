"""Power loss, as the disk sees it. petrel's spool and Maildirs are on an
ext4 without a journal (where an fsync does the least), on a loop device
over an image file. Clients send mail; right after the last 250 petrel is
killed and the image file copied: the copy holds what the loop device was
given to write, not the blocks still dirty in the kernel's cache, which a
power loss would take with it (nothing of this test is old enough for the
kernel's own writeback in the few seconds it runs). e2fsck repairs the
copy as a boot would; mounted read-only, every acknowledged message must
be there whole, in each of its Maildirs or in the queue, and every file in
a Maildir must be a whole message.

A kill after the last 250 stops petrel's own writes, so whatever reaches
the image during the copy was begun before: a write a 250 depended on is
in the copy, and a later one (a queue file removed after its delivery)
cannot get there without what it came after."""
import os
import re
import subprocess

import pytest

from helpers import begin, qid

MARK_RE = re.compile(rb"^X-Power-Id: (\S+)$", re.M)


def content(mid, lines):
    head = f"Subject: power {mid}\r\nX-Power-Id: {mid}\r\n\r\n".encode()
    body = b"".join(f"{mid} line {n:05d} ".encode() + b"p" * 60 + b"\r\n"
                    for n in range(lines))
    return head + body + f"END {mid}\r\n".encode()


def lf(data):
    return data.replace(b"\r\n", b"\n")


@pytest.fixture
def loopfs(tmp_path):
    """A fresh 256 MiB ext4 without a journal on a loop device: (image,
    mount point). Needs root, else the test is skipped."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    img, mnt = tmp_path / "fs.img", tmp_path / "fs"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(256 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", str(img)],
                   check=True, capture_output=True)
    r = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a loop device: {r.stderr.strip()}")
    mounts = [mnt]
    yield img, mnt, mounts
    for m in reversed(mounts):
        # lazily: the killed petrel's descriptors may still be closing
        subprocess.run(["umount", "-l", str(m)], check=False)


def after_power_loss(img, tmp_path, mounts, name):
    """The copy of img, repaired by e2fsck and mounted read-only."""
    copy, mnt = tmp_path / f"{name}.img", tmp_path / name
    subprocess.run(["cp", "--sparse=always", str(img), str(copy)],
                   check=True)
    r = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True,
                       text=True)
    assert r.returncode < 4, r.stdout + r.stderr    # 4: left uncorrected
    mnt.mkdir()
    subprocess.run(["mount", "-o", "loop,ro", str(copy), str(mnt)],
                   check=True)
    mounts.append(mnt)
    return mnt


def send_at_once(p, raw, msgs, rcpts, kill_after=None):
    """Each message on its own connection, every end of data sent at once
    so that the commits run together; returns {mid: qid} of the 250s.
    rcpts: the recipients of every message, or a list of them per message.
    With kill_after, petrel is killed once that many 250s are read: the
    rest are under way then, and not counted."""
    conns = []
    for i in range(len(msgs)):
        c = raw(p.port)
        begin(c, rcpts[i] if isinstance(rcpts, list) else rcpts)
        conns.append(c)
    for c, (mid, data) in zip(conns, msgs):
        c.send(data + b".\r\n")
    acked = {}
    for c, (mid, data) in zip(conns, msgs):
        if kill_after is not None and len(acked) == kill_after:
            p.kill()
            break
        acked[mid] = qid(c.reply())
    for c in conns:
        c.close()       # within petrel's sessions per client
    return acked


def check_survivors(root, sent, rcpts_of, queued_ok):
    """Every message of rcpts_of (mid -> its users) whole in each of its
    users' Maildirs or (queued_ok) in queue/; every Maildir file a whole
    message of sent (mid -> content)."""
    boxes = {}
    for d, _, files in os.walk(root / "mail"):
        if os.path.basename(d) not in ("new", "cur"):
            continue
        user = d.split(os.sep)[-3]
        for f in files:
            with open(os.path.join(d, f), "rb") as fh:
                data = lf(fh.read())
            m = MARK_RE.search(data)
            assert m, f"{d}/{f}: no X-Power-Id: {data[:200]!r}"
            mid = m.group(1).decode()
            assert lf(sent[mid]) in data, f"{d}/{f} is not whole"
            boxes.setdefault(user, set()).add(mid)
    queue = {}
    qdir = root / "spool" / "queue"
    if qdir.is_dir():
        for f in qdir.iterdir():
            data = lf(f.read_bytes())
            if m := MARK_RE.search(data):
                queue[m.group(1).decode()] = data
    for mid, users in rcpts_of.items():
        data = sent[mid]
        for user in users:
            if mid in boxes.get(user, ()):
                continue
            assert queued_ok and mid in queue, \
                f"{mid} acknowledged, lost for {user}"
            assert lf(data) in queue[mid], f"queue file of {mid} not whole"


def start_on(mnt, make_petrel, direct, users=()):
    """petrel with spool and Maildirs on mnt, for alice, bob and users."""
    p = make_petrel(users=["alice@localhost", "bob@localhost", *users],
                    start=False,
                    extra={"server.workers": "8",
                           "server.spool_dir": str(mnt / "spool"),
                           "server.mail_dir": str(mnt / "mail"),
                           "queue.direct_local": direct})
    p.spool, p.mail = mnt / "spool", mnt / "mail"
    return p.start()


def run_load(p, raw, sent, rcpts_of, tag, lone_rounds=6):
    """Commits to one Maildir 4 at once (held fsyncs), then 20 at once
    (shared filesystem syncs), then 4 at once for two Maildirs."""
    loads = [(4, ("alice@localhost",))] * lone_rounds + \
        [(20, ("alice@localhost",)), (4, ("alice@localhost", "bob@localhost"))]
    for rnd, (n, rcpts) in enumerate(loads):
        msgs = [(f"{tag}-{rnd}-{i}", content(f"{tag}-{rnd}-{i}", 20 + 37 * i))
                for i in range(n)]
        send_at_once(p, raw, msgs, rcpts)
        for mid, data in msgs:
            sent[mid] = data
            rcpts_of[mid] = [r.split("@")[0] for r in rcpts]


@pytest.mark.parametrize("direct", ["yes", "no"])
def test_power_loss_under_load(loopfs, make_petrel, raw, tmp_path, direct):
    """The same, with the power lost while 20 commits are under way: of
    the last 20 messages only the 250s read before the kill count, and no
    file in a Maildir may be part of a message."""
    img, mnt, mounts = loopfs
    p = start_on(mnt, make_petrel, direct)
    sent, rcpts_of = {}, {}
    run_load(p, raw, sent, rcpts_of, f"d{direct}", lone_rounds=2)
    msgs = {f"k{direct}-{i}": content(f"k{direct}-{i}", 20 + 41 * i)
            for i in range(20)}
    acked = send_at_once(p, raw, list(msgs.items()), ("alice@localhost",),
                         kill_after=7)
    assert len(acked) == 7 and p.proc is None
    root = after_power_loss(img, tmp_path, mounts, "after")
    for mid in acked:
        sent[mid] = msgs[mid]
        rcpts_of[mid] = ["alice"]
    check_survivors(root, {**msgs, **sent}, rcpts_of, queued_ok=direct == "no")


@pytest.mark.parametrize("direct", ["yes", "no"])
def test_acknowledged_mail_survives_power_loss(loopfs, make_petrel, raw,
                                               tmp_path, direct):
    """direct=yes: delivered before the 250 (held fsyncs, shared syncs,
    two mailboxes); no: every message queued first, delivered after."""
    img, mnt, mounts = loopfs
    p = start_on(mnt, make_petrel, direct)
    sent, rcpts_of = {}, {}
    run_load(p, raw, sent, rcpts_of, f"d{direct}")
    p.kill()
    root = after_power_loss(img, tmp_path, mounts, "after")
    check_survivors(root, sent, rcpts_of, queued_ok=direct == "no")
    assert len(sent) == 6 * 4 + 20 + 4


@pytest.mark.parametrize("direct", ["yes", "no"])
def test_new_maildirs_survive_power_loss(loopfs, make_petrel, raw, tmp_path,
                                         direct):
    """First deliveries to new Maildirs of one domain at once, 4 (held
    fsyncs: 2 users, 2 messages each) then 12 (shared syncs: 10 users, 2
    of them with 2 messages): the directories a delivery relies on are
    durable before its 250."""
    img, mnt, mounts = loopfs
    users = [f"new{n}" for n in range(12)]
    p = start_on(mnt, make_petrel, direct,
                 users=[f"{u}@localhost" for u in users])
    sent, rcpts_of = {}, {}
    for rnd, group in enumerate((users[:2], users[2:12])):
        to = group + group[:2]
        msgs = [(f"n{direct}-{rnd}-{i}", content(f"n{direct}-{rnd}-{i}",
                                                 20 + 29 * i))
                for i in range(len(to))]
        send_at_once(p, raw, msgs, [(f"{u}@localhost",) for u in to])
        for (mid, data), u in zip(msgs, to):
            sent[mid] = data
            rcpts_of[mid] = [u]
    p.kill()
    root = after_power_loss(img, tmp_path, mounts, "after")
    check_survivors(root, sent, rcpts_of, queued_ok=direct == "no")
    assert len(sent) == 4 + 12


@pytest.mark.parametrize("direct", ["yes", "no"])
def test_many_mailboxes_survive_power_loss(loopfs, make_petrel, raw,
                                           tmp_path, direct):
    """Messages for 8 mailboxes each, 4 at once, then 12 at once with the
    power lost after 5 of their 250s: their files' contents go out by one
    filesystem sync before any is named (maildir.c, contents_sync); no
    Maildir file may be part of a message and none acknowledged may be
    lost."""
    img, mnt, mounts = loopfs
    users = [f"m{n}" for n in range(8)]
    to = tuple(f"{u}@localhost" for u in users)
    p = start_on(mnt, make_petrel, direct, users=to)
    sent, rcpts_of, every = {}, {}, {}
    for rnd, (n, kill) in enumerate(((4, None), (12, 5))):
        msgs = [(f"m{direct}-{rnd}-{i}", content(f"m{direct}-{rnd}-{i}",
                                                 20 + 31 * i))
                for i in range(n)]
        every.update(msgs)
        acked = send_at_once(p, raw, msgs, to, kill_after=kill)
        assert len(acked) == (kill or n)
        for mid in acked:
            sent[mid] = every[mid]
            rcpts_of[mid] = list(users)
    assert p.proc is None
    root = after_power_loss(img, tmp_path, mounts, "after")
    check_survivors(root, every, rcpts_of, queued_ok=direct == "no")
    assert len(sent) == 4 + 5
