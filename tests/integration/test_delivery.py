"""Local delivery into Maildirs: layout of the delivered file, several
recipients, duplicates, aliases, source routes, many concurrent clients,
a real third-party client (swaks)."""
import concurrent.futures
import collections
import re
import smtplib
import subprocess
import uuid

from conftest import Raw
from helpers import (begin, check_delivered, ehlo, expect, log_lines, qid,
                     send_message, split_delivered, wait_until)


def test_delivered_layout_and_log(petrel, raw):
    r = raw()
    content = b"Subject: layout\r\nMessage-ID: <layout@test>\r\n\r\nbody\r\n"
    q = send_message(r, content)
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    msg = msgs[0]
    lines = msg.split(b"\n")
    assert lines[0] == b"Return-Path: <sender@example.org>"
    assert lines[1] == b"Delivered-To: alice@localhost"
    assert lines[2] == b"Received: from client.example (unknown [127.0.0.1])"
    check_delivered(msg, content, qid=q)
    assert petrel.wait_queue_empty()
    assert wait_until(lambda: log_lines(petrel, q, "status=sent",
                                        "deliver to=<alice@localhost>"), 5), \
        petrel.log()
    assert log_lines(petrel, q, "smtp accepted from=<sender@example.org>")
    # only new/ is filled; the Maildir has its three directories
    md = petrel.maildir("alice")
    assert sorted(p.name for p in md.iterdir()) == ["cur", "new", "tmp"]
    assert list((md / "tmp").iterdir()) == []


def test_helo_session(petrel, raw):
    r = raw()
    assert r.cmd("HELO old.example") == (250, ["250 mx.test"])
    expect(r, "MAIL FROM:<old@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<bob@localhost>", 250, "2.1.5")
    assert r.cmd("DATA")[0] == 354
    content = b"Subject: helo\r\n\r\nplain SMTP\r\n"
    r.send(content + b".\r\n")
    q = qid(r.reply())
    msgs = petrel.wait_messages("bob", 1)
    assert len(msgs) == 1
    rp, dt, rec, rest = split_delivered(msgs[0])
    assert rp == b"Return-Path: <old@example.org>"
    assert dt == b"Delivered-To: bob@localhost"
    assert rec.startswith(b"Received: from old.example (unknown [127.0.0.1])")
    assert q.encode() in rec
    assert rest == content.replace(b"\r\n", b"\n")


def test_two_recipients(petrel, raw):
    r = raw()
    content = b"Subject: both\r\n\r\nfor two\r\n"
    q = send_message(r, content, rcpts=("alice@localhost", "bob@localhost"))
    assert petrel.wait_queue_empty()
    for user in ("alice", "bob"):
        msgs = petrel.wait_messages(user, 1)
        assert len(msgs) == 1
        check_delivered(msgs[0], content, rcpt=f"{user}@localhost", qid=q,
                        single=False)
    assert wait_until(lambda: len(log_lines(petrel, q, "status=sent")) == 2,
                      5), petrel.log()


def test_two_domains(petrel, raw):
    r = raw()
    content = b"Subject: domains\r\n\r\nx\r\n"
    q = send_message(r, content,
                     rcpts=("alice@localhost", "carol@example.test"))
    msgs = petrel.wait_messages("carol", 1, domain="example.test")
    assert len(msgs) == 1
    check_delivered(msgs[0], content, rcpt="carol@example.test", qid=q,
                    single=False)
    assert len(petrel.wait_messages("alice", 1)) == 1


def test_duplicate_rcpt_delivered_once(petrel, raw):
    r = raw()
    begin(r, rcpts=("alice@localhost", "alice@localhost", "bob@localhost",
                    "alice@localhost"))
    content = b"Subject: dup\r\n\r\nonce\r\n"
    r.send(content + b".\r\n")
    q = qid(r.reply())
    assert len(petrel.wait_messages("bob", 1)) == 1
    assert petrel.wait_queue_empty()
    msgs = petrel.messages("alice")
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q, single=False)


def test_duplicate_rcpt_single_recipient(petrel, raw):
    r = raw()
    begin(r, rcpts=("alice@localhost", "alice@localhost"))
    content = b"Subject: dup\r\n\r\nonce\r\n"
    r.send(content + b".\r\n")
    q = qid(r.reply())
    assert petrel.wait_queue_empty()
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)
    assert petrel.messages("alice") == msgs


def test_source_route_delivers_to_mailbox(petrel, raw):
    r = raw()
    content = b"Subject: route\r\n\r\nrouted\r\n"
    ehlo(r)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<@a.example:alice@localhost>", 250, "2.1.5")
    assert r.cmd("DATA")[0] == 354
    r.send(content + b".\r\n")
    q = qid(r.reply())
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)


def test_alias_to_two_users(make_petrel):
    p = make_petrel(users=["alice@localhost", "bob@localhost"],
                    aliases="team: alice, bob\n")
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        content = b"Subject: team\r\n\r\nhello team\r\n"
        q = send_message(r, content, rcpts=("team@localhost",))
        assert p.wait_queue_empty()
        for user in ("alice", "bob"):
            msgs = p.wait_messages(user, 1)
            assert len(msgs) == 1
            rp, dt, rec, rest = split_delivered(msgs[0])
            assert rp == b"Return-Path: <sender@example.org>"
            assert q.encode() in rec
            assert rest == content.replace(b"\r\n", b"\n")
        assert p.messages("team") == []
    finally:
        r.close()


def test_utf8_user_and_alias(make_petrel):
    """RFC 6531: a user with a UTF-8 local part, in the users file and as
    an alias target, gets mail sent with SMTPUTF8; ASCII letters fold, the
    rest matches byte for byte."""
    p = make_petrel(users=["j\u00f6rg@localhost"],
                    aliases="\u00e9quipe: j\u00f6rg\n")
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        ehlo(r)
        content = b"Subject: utf8\r\n\r\nhallo\r\n"
        for rcpt in ("j\u00f6rg@localhost", "J\u00f6RG@LocalHost",
                     "\u00e9quipe@localhost"):
            expect(r, "MAIL FROM:<sender@example.org> SMTPUTF8", 250,
                   "2.1.0")
            expect(r, f"RCPT TO:<{rcpt}>", 250, "2.1.5")
            assert r.cmd("DATA")[0] == 354
            r.send(content + b".\r\n")
            qid(r.reply())
        # \u00d6 is another letter than \u00f6: not this user
        expect(r, "MAIL FROM:<sender@example.org> SMTPUTF8", 250, "2.1.0")
        expect(r, "RCPT TO:<j\u00d6rg@localhost>", 550, "5.1.1")
        msgs = p.wait_messages("j\u00f6rg", 3)
        assert len(msgs) == 3
        for m in msgs:
            rp, dt, rec, rest = split_delivered(m)
            assert dt == "Delivered-To: j\u00f6rg@localhost".encode()
            assert rest == content.replace(b"\r\n", b"\n")
    finally:
        r.close()


def test_several_messages_one_session(petrel, raw):
    r = raw()
    qids = []
    for i in range(10):
        qids.append(send_message(r, b"Subject: n%d\r\n\r\n%d\r\n" % (i, i)))
    assert len(set(qids)) == 10
    msgs = petrel.wait_messages("alice", 10)
    assert len(msgs) == 10
    assert petrel.wait_queue_empty()
    bodies = sorted(split_delivered(m)[3] for m in msgs)
    assert bodies == sorted(b"Subject: n%d\n\n%d\n" % (i, i)
                            for i in range(10))


def _send_one(port, i, token):
    msg = (f"From: load@example.org\r\nTo: alice@localhost\r\n"
           f"Subject: load {i}\r\nMessage-ID: <{token}@load.test>\r\n\r\n"
           f"token {token}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo(f"c{i}.example")
        refused = s.sendmail("load@example.org", ["alice@localhost"], msg)
        assert refused == {}
    return token


def test_200_concurrent_sessions(make_petrel):
    # the per-client limit (50 by default) would refuse most of them
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_sessions_per_client": "500"})
    n = 200
    tokens = [uuid.uuid4().hex for _ in range(n)]
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        futs = [ex.submit(_send_one, p.port, i, t)
                for i, t in enumerate(tokens)]
        done = [f.result(timeout=120) for f in futs]
    assert sorted(done) == sorted(tokens)
    msgs = p.wait_messages("alice", n, timeout=60)
    assert p.wait_queue_empty(timeout=60)
    msgs = p.messages("alice")
    seen = collections.Counter()
    for m in msgs:
        found = re.findall(rb"^token ([0-9a-f]{32})$", m, re.M)
        assert len(found) == 1, m
        seen[found[0].decode()] += 1
    assert seen == collections.Counter(tokens)


# ---- swaks ----------------------------------------------------------------

def test_swaks_delivers(petrel):
    res = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{petrel.port}",
         "--to", "alice@localhost", "--from", "x@y.example", "--silent", "2"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    rp, dt, rec, rest = split_delivered(msgs[0])
    assert rp == b"Return-Path: <x@y.example>"
    assert dt == b"Delivered-To: alice@localhost"
    assert b"by mx.test (petrel) with ESMTP id " in rec
    assert b"\nSubject: test " in b"\n" + rest
    assert petrel.wait_queue_empty()


def test_swaks_relay_denied(petrel):
    res = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{petrel.port}",
         "--to", "nobody@remote.example", "--from", "x@y.example",
         "--silent", "2"],
        capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "550 5.7.1" in res.stdout + res.stderr
    assert log_lines(petrel, "smtp accepted") == []
