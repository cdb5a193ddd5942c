"""A full spool: petrel runs on a 4 MiB tmpfs spool (the Maildirs stay on
the normal disk) and is sent 512 KiB messages until the spool is full.
It must refuse with 452 4.3.1 (RFC 5321 4.2.2, 452 "insufficient system
storage"; RFC 3463 X.3.1 "mail system full"), keep running, lose nothing
it acknowledged, leave no half-written file, and accept mail again once
the queue drains."""
import errno
import os
import re
import subprocess
import time

import pytest

from helpers import split_delivered, wait_until
from petrel_integration_conftest import Raw

SENDER = "full@example.org"
RCPT = "alice@localhost"
MSG_SIZE = 512 * 1024
MAX_SENDS = 40              # 4 MiB / 512 KiB: full after about 8
ID_RE = re.compile(rb"^X-Full-Id: (\S+)$", re.M)
QID_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})$")


def content(mid):
    """About MSG_SIZE bytes, CRLF lines, no line starting with '.'."""
    head = (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: full {mid}\r\n"
            f"X-Full-Id: {mid}\r\n\r\n").encode()
    line = (f"{mid} " + "z" * 70 + "\r\n").encode()
    body = line * (MSG_SIZE // len(line))
    return head + body + f"TRAILER {mid} END\r\n".encode()


@pytest.fixture
def small_spool(tmp_path):
    """A 4 MiB tmpfs, unmounted afterwards by its exact path whatever the
    outcome. Request it before make_petrel, so that petrel is stopped
    first (fixtures are torn down in reverse order)."""
    d = tmp_path / "spoolfs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700",
                        "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {d}: "
                    f"{r.stderr.strip() or 'exit %d' % r.returncode}")
    try:
        yield d
    finally:
        for _ in range(50):
            u = subprocess.run(["umount", str(d)], capture_output=True,
                               text=True)
            if u.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"umount {d}: {u.stderr.strip()}")


@pytest.fixture
def full_petrel(small_spool, make_petrel):
    """petrel with its spool on the small tmpfs and alice's Maildir path a
    plain file: deliveries fail, so what is accepted stays in the spool."""
    p = make_petrel(users=[RCPT], start=False,
                    extra={"server.spool_dir": str(small_spool)})
    p.spool = small_spool
    block(p)
    p.start()
    return p


def block(p):
    d = p.mail / "localhost" / "alice"
    d.mkdir(parents=True, exist_ok=True)
    (d / "Maildir").write_text("blocked\n")


def unblock(p):
    (p.mail / "localhost" / "alice" / "Maildir").unlink()


def send(p, mid, how="DATA"):
    """One message on a new connection: ("250", qid) or (stage, reply
    line) for a refusal. The session must go on after a refusal: RSET
    and QUIT are answered."""
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        assert r.cmd("EHLO client.example")[0] == 250
        assert r.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
        assert r.cmd(f"RCPT TO:<{RCPT}>")[0] == 250
        data = content(mid)
        if how == "DATA":
            code, lines = r.cmd("DATA")
            if code != 354:
                out = ("DATA", lines[-1])
            else:
                r.send(data + b".\r\n")
                code, lines = r.reply()
                out = ("end of data", lines[-1])
        else:
            r.send(b"BDAT %d LAST\r\n" % len(data) + data)
            code, lines = r.reply()
            out = ("BDAT LAST", lines[-1])
        if code == 250:
            m = QID_RE.match(lines[-1])
            assert m, f"{how} {mid}: a 250 at {out[0]} that queued " \
                f"nothing: {lines!r}"
            out = ("250", m.group(1))
        assert r.cmd("RSET")[0] == 250, "session broken after " + str(out)
        assert r.cmd("QUIT")[0] == 221
        return out
    finally:
        r.close()


def fill(p, how="DATA"):
    """Send until the first refusal: ({mid: qid} accepted, mid, refusal)."""
    acked = {}
    for i in range(MAX_SENDS):
        mid = f"{how.lower()}{i}"
        stage, what = send(p, mid, how)
        if stage != "250":
            return acked, mid, (stage, what)
        acked[mid] = what
    pytest.fail(f"{MAX_SENDS} messages of {MSG_SIZE} bytes all accepted on "
                f"a 4 MiB spool")


def delivered(p):
    """{mid: [file bytes]} of alice's Maildir new/."""
    out = {}
    for m in p.messages("alice"):
        rest = split_delivered(m)[3]
        found = ID_RE.search(rest)
        assert found, m[:300]
        out.setdefault(found.group(1).decode(), []).append(m)
    return out


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_full_spool_reply_is_452_4_3_1(full_petrel, how):
    p = full_petrel
    acked, mid, (stage, line) = fill(p, how)
    assert acked, f"the first message was already refused: {line!r}"
    assert p.proc.poll() is None, p.log()[-3000:]
    assert line.startswith("452 4.3.1 "), \
        f"full spool, {len(acked)} accepted, then at {stage}: {line!r}"
    assert "insufficient system storage" in line.lower(), line
    assert p.tmp_files() == [], p.tmp_files()


def fill_up(path):
    """Write path until the file system has not a byte left."""
    chunk = b"f" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for _ in range(1024):                   # 64 MiB at most
            try:
                if os.write(fd, chunk) == 0:
                    break
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return
                chunk = chunk[:len(chunk) // 2]
        pytest.fail(f"{path}: never full")
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["DATA", "BDAT"])
def test_spool_full_before_the_message(full_petrel, how):
    """Not even the envelope fits: the DATA command (or the BDAT chunk)
    is refused with 452 4.3.1, no empty file stays in tmp/, and mail is
    accepted as soon as there is room."""
    p = full_petrel
    filler = p.spool / "filler"
    fill_up(filler)
    stage, line = send(p, "first", how)
    assert stage != "250", "accepted with no space left"
    assert line.startswith("452 4.3.1 "), f"at {stage}: {line!r}"
    assert p.proc.poll() is None, p.log()[-3000:]
    assert p.tmp_files() == [], p.tmp_files()
    filler.unlink()
    stage, q = send(p, "second", how)
    assert stage == "250", f"refused with room again: {stage}: {q!r}"
    assert p.tmp_files() == []


def test_full_spool_loses_nothing(full_petrel):
    p = full_petrel
    acked, mid, (stage, line) = fill(p)
    refused = [mid]
    # a temporary failure: the client keeps the message and retries
    assert line[:1] == "4", f"at {stage}: {line!r}"
    # petrel keeps running, says why, and removed the half-written file
    # (left behind, it would keep the space used)
    assert p.proc.poll() is None, p.log()[-3000:]
    assert wait_until(lambda: [ln for ln in p.log().splitlines()
                               if "No space left on device" in ln], 5), \
        p.log()[-3000:]
    assert p.tmp_files() == [], p.tmp_files()
    # still full: more attempts are refused the same way, nothing crashes
    for i in range(3):
        m = f"again{i}"
        stage2, what = send(p, m)
        assert stage2 != "250", f"{m} accepted on a full spool"
        assert what[:1] == "4", f"at {stage2}: {what!r}"
        refused.append(m)
    assert p.proc.poll() is None, p.log()[-3000:]
    assert p.tmp_files() == [], p.tmp_files()
    assert len([f for f in p.queue_files() if not f.endswith(".j")]) == \
        len(acked)

    # free space: deliveries work again and the queue drains
    unblock(p)
    assert p.wait_queue_empty(timeout=30), p.queue_files()
    # room again: a full round of messages is accepted
    for i in range(len(acked)):
        m = f"after{i}"
        stage2, what = send(p, m)
        assert stage2 == "250", f"{m} refused after the queue drained: " \
            f"{stage2}: {what!r}"
        acked[m] = what
    assert p.wait_queue_empty(timeout=30), p.queue_files()
    assert p.proc.poll() is None, p.log()[-3000:]

    got = delivered(p)
    for m, q in acked.items():
        assert len(got.get(m, [])) == 1, \
            f"{m} ({q}) delivered {len(got.get(m, []))} times"
        rest = split_delivered(got[m][0])[3]
        assert rest == content(m).replace(b"\r\n", b"\n"), f"{m} altered"
        assert q.encode() in split_delivered(got[m][0])[2]
    # a refused message is the client's to retry: never delivered too
    for m in refused:
        assert m not in got, f"{m} was refused, yet delivered"
    assert set(got) == set(acked)
    assert p.tmp_files() == []
    assert p.queue_files() == []
