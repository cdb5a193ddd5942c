"""A message acknowledged with 250 is never lost: not when its Maildir
cannot be written, not across SIGTERM, not across SIGKILL at any moment.
Nothing delivered is ever a partial message."""
import concurrent.futures
import random
import re
import smtplib
import threading
import time

from conftest import Raw
from helpers import (check_delivered, log_lines, send_message,
                     split_delivered, wait_until)


def block(p, user="alice", domain="localhost"):
    """Make the user's Maildir path a regular file: deliveries must fail."""
    d = p.mail / domain / user
    d.mkdir(parents=True, exist_ok=True)
    (d / "Maildir").write_text("in the way\n")


def unblock(p, user="alice", domain="localhost"):
    (p.mail / domain / user / "Maildir").unlink()


def connect(p):
    r = Raw(p.port)
    assert r.reply()[0] == 220
    return r


def test_deferred_while_maildir_blocked(make_petrel):
    p = make_petrel(users=["alice@localhost"], start=False)
    block(p)
    p.start()
    r = connect(p)
    content = b"Subject: blocked\r\n\r\nwait for me\r\n"
    try:
        q = send_message(r, content)
    finally:
        r.close()
    assert wait_until(lambda: log_lines(p, q, "status=deferred"), 10), \
        p.log()
    assert p.queue_files() != []
    assert p.messages("alice") == []
    # a retry happens too (retry_initial = 1 s), and is deferred again
    assert wait_until(lambda: len(log_lines(p, q, "status=deferred")) >= 2,
                      10), p.log()
    assert p.queue_files() != []
    unblock(p)
    msgs = p.wait_messages("alice", 1, timeout=20)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)
    assert p.wait_queue_empty()
    assert log_lines(p, q, "deliver to=<alice@localhost>", "status=sent")


def test_one_recipient_blocked_other_delivered_once(make_petrel):
    p = make_petrel(users=["alice@localhost", "bob@localhost"], start=False)
    block(p)
    p.start()
    r = connect(p)
    content = b"Subject: half\r\n\r\nfor both\r\n"
    try:
        q = send_message(r, content,
                         rcpts=("alice@localhost", "bob@localhost"))
    finally:
        r.close()
    assert len(p.wait_messages("bob", 1)) == 1
    assert wait_until(lambda: len(log_lines(p, q, "status=deferred")) >= 2,
                      10), p.log()
    assert p.queue_files() != []
    unblock(p)
    msgs = p.wait_messages("alice", 1, timeout=20)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q, single=False)
    assert p.wait_queue_empty()
    # the retries were for alice only: bob got it once
    bob = p.messages("bob")
    assert len(bob) == 1
    check_delivered(bob[0], content, rcpt="bob@localhost", qid=q,
                    single=False)


def test_restart_keeps_queue(make_petrel):
    p = make_petrel(users=["alice@localhost"], start=False)
    block(p)
    p.start()
    r = connect(p)
    content = b"Subject: restart\r\n\r\nsurvive SIGTERM\r\n"
    try:
        q = send_message(r, content)
    finally:
        r.close()
    assert p.stop() == 0
    assert p.queue_files() != []
    assert p.messages("alice") == []
    p.start()
    unblock(p)
    msgs = p.wait_messages("alice", 1, timeout=20)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)
    assert p.wait_queue_empty()
    assert p.tmp_files() == []


def test_sigkill_right_after_250(make_petrel):
    """Kill -9 the moment the 250 arrives, five times; all five arrive
    after a restart, complete."""
    p = make_petrel(users=["alice@localhost"], start=False)
    sent = {}
    for i in range(5):
        p.start()
        body = b"".join(b"line %d of message %d\r\n" % (k, i)
                        for k in range(200 * (i + 1)))
        content = b"Subject: kill %d\r\n\r\n" % i + body + b"END %d\r\n" % i
        r = connect(p)
        try:
            q = send_message(r, content)
            p.kill()
        finally:
            r.close()
        sent[q] = content
    p.start()
    assert p.wait_queue_empty(timeout=30)
    msgs = p.wait_messages("alice", 5)
    got = {}
    for m in msgs:
        rec = split_delivered(m)[2]
        q = re.search(rb"with ESMTP id ([0-9A-Z]{13})", rec).group(1).decode()
        got.setdefault(q, []).append(m)
    assert set(got) == set(sent)
    for q, ms in got.items():
        for m in ms:
            check_delivered(m, sent[q], qid=q)
    assert p.tmp_files() == []


def test_sigkill_mid_data(make_petrel):
    """A crash in the middle of DATA leaves nothing behind after restart."""
    p = make_petrel(users=["alice@localhost"])
    r = connect(p)
    try:
        r.cmd("EHLO client.example")
        assert r.cmd("MAIL FROM:<a@b.example>")[0] == 250
        assert r.cmd("RCPT TO:<alice@localhost>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(b"Subject: half\r\n\r\n" + b"half a message\r\n" * 1000)
        time.sleep(0.3)
        p.kill()
    finally:
        r.close()
    p.start()
    assert wait_until(lambda: p.tmp_files() == [], 10), p.tmp_files()
    assert p.queue_files() == []
    # a message after the restart still goes through, alone
    r = connect(p)
    try:
        content = b"Subject: after\r\n\r\nok\r\n"
        q = send_message(r, content)
    finally:
        r.close()
    msgs = p.wait_messages("alice", 1)
    assert p.wait_queue_empty()
    msgs = p.messages("alice")
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)


def test_sigterm_with_open_data_session(make_petrel):
    """SIGTERM while a client is in the middle of DATA: petrel exits 0,
    nothing partial is ever delivered, no temporary file survives."""
    p = make_petrel(users=["alice@localhost"])
    r = connect(p)
    try:
        r.cmd("EHLO client.example")
        assert r.cmd("MAIL FROM:<a@b.example>")[0] == 250
        assert r.cmd("RCPT TO:<alice@localhost>")[0] == 250
        assert r.cmd("DATA")[0] == 354
        r.send(b"Subject: half\r\n\r\nnot finished\r\n")
        time.sleep(0.2)
        assert p.stop() == 0
    finally:
        r.close()
    assert p.queue_files() == []
    p.start()
    assert wait_until(lambda: p.tmp_files() == [], 10), p.tmp_files()
    time.sleep(0.3)
    assert p.messages("alice") == []
    assert log_lines(p, "smtp accepted") == []


# ---- crash test: SIGKILL at random moments under load ---------------------

def crash_message(mid):
    """The message for id mid; its size and lines follow from mid."""
    rng = random.Random(mid)
    lines = ["From: crash@example.org", "To: alice@localhost",
             f"Subject: {mid}", f"Message-ID: <{mid}@crash.test>", ""]
    for k in range(rng.randint(1, 1500)):
        lines.append(f"{mid} {k} " + "x" * rng.randint(0, 70))
    lines.append(f"TRAILER {mid}")
    return ("\r\n".join(lines) + "\r\n").encode()


def crash_client(port, rnd, t, stop, acked, lock):
    for n in range(2000):
        if stop.is_set():
            return
        mid = f"r{rnd}t{t}n{n}"
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=5)
        except OSError:
            time.sleep(0.01)
            continue
        try:
            s.sendmail("crash@example.org", ["alice@localhost"],
                       crash_message(mid))
            with lock:
                acked.add(mid)
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            s.close()


def test_sigkill_under_load(make_petrel):
    p = make_petrel(users=["alice@localhost"], start=False)
    rng = random.Random(5321)
    acked = set()
    lock = threading.Lock()
    for rnd in range(8):
        p.start()
        stop = threading.Event()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(crash_client, p.port, rnd, t, stop, acked,
                              lock) for t in range(4)]
            time.sleep(rng.uniform(0.3, 1.3))
            p.kill()
            stop.set()
            for f in futs:
                f.result(timeout=60)
    assert acked, "no message was ever acknowledged"
    p.kill()
    p.start()
    assert p.wait_queue_empty(timeout=90), p.queue_files()
    delivered = {}
    for m in p.messages("alice"):
        rest = split_delivered(m)[3]
        subj = re.search(rb"^Subject: (\S+)$", rest, re.M)
        assert subj, m[:500]
        mid = subj.group(1).decode()
        # complete, byte for byte: never a partial message
        assert rest == crash_message(mid).replace(b"\r\n", b"\n"), mid
        assert rest.endswith(b"TRAILER %s\n" % mid.encode())
        delivered[mid] = delivered.get(mid, 0) + 1
    print(f"acked={len(acked)} delivered={len(delivered)} "
          f"dups={sum(v - 1 for v in delivered.values())}")
    lost = sorted(acked - set(delivered))
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged lost"
    assert p.tmp_files() == []
