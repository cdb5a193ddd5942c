"""DATA content: dot-stuffing, long lines, Return-Path, size limit,
SMTP smuggling (RFC 5321 2.3.8, 4.5.2), disconnect in the middle."""
import re
import smtplib

import pytest

from conftest import Raw
from helpers import (SENDER, assert_reply, begin, check_delivered, ehlo,
                     expect, log_lines, no_reply, qid, send_message,
                     wait_until)


def test_simple_message(petrel, raw):
    r = raw()
    content = (b"From: Sender <sender@example.org>\r\n"
               b"To: alice@localhost\r\nSubject: hello\r\n\r\n"
               b"Hello Alice.\r\n\r\n  indented\r\ntrailing space \r\n")
    q = send_message(r, content)
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)


def test_empty_message(petrel, raw):
    r = raw()
    q = send_message(r, b"")
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], b"", qid=q)


def test_dot_stuffing(petrel, raw):
    r = raw()
    wire = (b"Subject: dots\r\n\r\n..x\r\n..\r\n...\r\na.b\r\n"
            b"..\r\n.. two\r\nend\r\n")
    want = (b"Subject: dots\r\n\r\n.x\r\n.\r\n..\r\na.b\r\n"
            b".\r\n. two\r\nend\r\n")
    q = send_message(r, wire)
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], want, qid=q)


def test_smtplib_dot_stuffing(petrel):
    content = (b"Subject: smtplib dots\r\n\r\n.hidden\r\n.\r\n..two\r\n"
               b"last\r\n")
    with smtplib.SMTP("127.0.0.1", petrel.port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.mail(SENDER)[0] == 250
        assert s.rcpt("alice@localhost")[0] == 250
        code, resp = s.data(content)
        assert code == 250
        m = re.fullmatch(rb"2\.0\.0 Ok: queued as ([0-9A-Z]{13})", resp)
        assert m, resp
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=m.group(1).decode())


def test_998_octet_lines(petrel, raw):
    r = raw()
    content = (b"Subject: long\r\nX-Long: " + b"h" * (998 - 8) + b"\r\n\r\n"
               + b"x" * 998 + b"\r\n" + b"." + b"y" * 997 + b"\r\n")
    wire = content.replace(b"\r\n.", b"\r\n..")
    q = send_message(r, wire)
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)


def test_8bit_content(petrel, raw):
    r = raw()
    content = ("Subject: =?utf-8?q?caf=C3=A9?=\r\nContent-Type: text/plain; "
               "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "caf\u00e9 \u2603 \U0001f600\r\n").encode()
    ehlo(r)
    expect(r, f"MAIL FROM:<{SENDER}> BODY=8BITMIME", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    assert r.cmd("DATA")[0] == 354
    r.send(content + b".\r\n")
    q = qid(r.reply())
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, qid=q)


def test_null_sender(petrel, raw):
    r = raw()
    content = b"Subject: bounce\r\n\r\nundeliverable\r\n"
    q = send_message(r, content, sender="")
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content, sender="", qid=q)


@pytest.mark.parametrize("sent,kept", [
    (b"Return-Path: <forged@evil.example>\r\nSubject: rp\r\n\r\n"
     b"Return-Path: <body@x.example>\r\n",
     b"Subject: rp\r\n\r\nReturn-Path: <body@x.example>\r\n"),
    (b"Subject: rp\r\nReturn-Path: <forged@evil.example>\r\n"
     b"From: a@b.example\r\n\r\nbody\r\n",
     b"Subject: rp\r\nFrom: a@b.example\r\n\r\nbody\r\n"),
    (b"return-path: <forged@evil.example>\r\nSubject: rp\r\n\r\nbody\r\n",
     b"Subject: rp\r\n\r\nbody\r\n"),
    (b"Return-Path:\r\n <forged@evil.example>\r\nSubject: rp\r\n\r\nbody\r\n",
     b"Subject: rp\r\n\r\nbody\r\n"),
], ids=["first", "middle", "lowercase", "folded"])
def test_client_return_path_dropped(petrel, raw, sent, kept):
    r = raw()
    q = send_message(r, sent)
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], kept, qid=q)
    assert b"forged@evil.example" not in msgs[0]


def test_queue_and_log_after_delivery(petrel, raw):
    r = raw()
    q = send_message(r, b"Subject: log\r\n\r\nx\r\n")
    assert len(petrel.wait_messages("alice", 1)) == 1
    assert petrel.wait_queue_empty()
    assert petrel.tmp_files() == []
    assert wait_until(lambda: log_lines(petrel, q, "deliver to=<alice@localhost>",
                                        "status=sent"), 5), petrel.log()
    assert log_lines(petrel, q, f"smtp accepted from=<{SENDER}>"), petrel.log()


# ---- SMTP smuggling (RFC 5321 2.3.8, 4.1.1.4) ------------------------------

SMUGGLED = (b"MAIL FROM:<evil@x.example>\r\n"
            b"RCPT TO:<bob@localhost>\r\n"
            b"DATA\r\n"
            b"From: evil@x.example\r\nSubject: smuggled\r\n\r\nevil\r\n")
FAKE_ENDS = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r\r\n",
             b"\n", b"\r"]


def _smuggle_ids(v):
    return v.decode().replace("\r", "CR").replace("\n", "LF")


def _marker_and_check(petrel, r):
    """After a rejected DATA: the session is in sync, a later message
    goes through, and nothing else was ever accepted."""
    assert_reply(r.cmd("VRFY marker"), 252, "2.5.0")
    send_message(r, b"Subject: marker\r\n\r\nok\r\n",
                 rcpts=("carol@example.test",))
    assert len(petrel.wait_messages("carol", 1, domain="example.test")) == 1
    assert petrel.wait_queue_empty()
    assert petrel.messages("alice") == []
    assert petrel.messages("bob") == []
    assert len(log_lines(petrel, "smtp accepted")) == 1, petrel.log()
    assert wait_until(lambda: petrel.tmp_files() == [], 5)


@pytest.mark.parametrize("fake", FAKE_ENDS, ids=_smuggle_ids)
def test_smuggling_one_write(petrel, raw, fake):
    r = raw()
    begin(r)
    r.send(b"Subject: smuggle\r\n\r\nhello" + fake + SMUGGLED + b".\r\n")
    assert_reply(r.reply(), 550, "5.6.0")
    _marker_and_check(petrel, r)


@pytest.mark.parametrize("fake", FAKE_ENDS, ids=_smuggle_ids)
def test_smuggling_split_writes(petrel, raw, fake):
    """The fake end arrives alone: the server must keep waiting."""
    r = raw()
    begin(r)
    r.send(b"Subject: smuggle\r\n\r\nhello" + fake)
    assert no_reply(r), r.buf
    r.send(SMUGGLED)
    assert no_reply(r), r.buf
    r.send(b".\r\n")
    assert_reply(r.reply(), 550, "5.6.0")
    _marker_and_check(petrel, r)


@pytest.mark.parametrize("where", [b"Subject: bare\nLF\r\n\r\nbody\r\n",
                                   b"Subject: x\r\n\r\nbody\nmore\r\n",
                                   b"Subject: x\r\n\r\nbody\rmore\r\n",
                                   b"Subject: x\r\n\r\nbody\r\n\n",
                                   b"Subject: x\r\n\r\nbody\r\n\r"],
                         ids=["header-lf", "body-lf", "body-cr",
                              "lf-before-end", "cr-before-end"])
def test_bare_cr_lf_rejected(petrel, raw, where):
    r = raw()
    begin(r)
    r.send(where + b"\r\n.\r\n")
    assert_reply(r.reply(), 550, "5.6.0")
    _marker_and_check(petrel, r)


@pytest.mark.parametrize("line", [b"NOOP\nRSET\r\n", b"NOOP\rRSET\r\n",
                                  b"MAIL FROM:<a@b.example>\nNOOP\r\n",
                                  b"MAIL FROM:<a@b.example>\rNOOP\r\n"],
                         ids=["lf", "cr", "mail-lf", "mail-cr"])
def test_bare_lf_in_command(raw, line):
    r = raw()
    ehlo(r)
    r.send(line)
    assert_reply(r.reply(), 500, "5.5.2")
    assert_reply(r.cmd("VRFY x"), 252, "2.5.0")
    # the MAIL part never ran: a MAIL now is not nested
    expect(r, "MAIL FROM:<c@d.example>", 250, "2.1.0")


# ---- size limit ---------------------------------------------------------

def _small(make_petrel):
    return make_petrel(users=["alice@localhost"],
                       extra={"smtp.max_message_size": "10K"})


def test_size_advertised(make_petrel):
    p = _small(make_petrel)
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        assert "250-SIZE 10240" in ehlo(r)
        expect(r, "MAIL FROM:<a@b.example> SIZE=10241", 552, "5.3.4")
        expect(r, "MAIL FROM:<a@b.example> SIZE=10240", 250, "2.1.0")
    finally:
        r.close()


def test_message_too_big_without_size(make_petrel):
    p = _small(make_petrel)
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        begin(r)
        line = b"z" * 78 + b"\r\n"
        r.send(b"Subject: big\r\n\r\n" + line * 300 + b".\r\n")  # 24 KB
        assert_reply(r.reply(), 552, "5.3.4")
        # the session goes on, and a small message still passes
        expect(r, "NOOP", 250, "2.0.0")
        small = b"Subject: small\r\n\r\n" + line * 100   # 8 KB
        q = send_message(r, small)
        msgs = p.wait_messages("alice", 1)
        assert len(msgs) == 1
        check_delivered(msgs[0], small, qid=q)
        assert p.wait_queue_empty()
        assert wait_until(lambda: p.tmp_files() == [], 5)
        assert len(p.messages("alice")) == 1
        assert len(log_lines(p, "smtp accepted")) == 1
    finally:
        r.close()


def test_message_too_big_alone(make_petrel):
    p = _small(make_petrel)
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        begin(r)
        r.send(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 40
               + b".\r\n")
        assert_reply(r.reply(), 552, "5.3.4")
        assert_reply(r.cmd("QUIT"), 221, "2.0.0")
        assert wait_until(lambda: p.tmp_files() == [] and
                          p.queue_files() == [], 5)
        assert p.messages("alice") == []
        assert log_lines(p, "smtp accepted") == []
    finally:
        r.close()


# ---- disconnect in the middle -------------------------------------------

@pytest.mark.parametrize("tail", [b"", b"half a mess", b"line\r\n.",
                                  b"line\r\n"])
def test_disconnect_mid_data(petrel, raw, tail):
    r = raw()
    begin(r)
    r.send(b"Subject: cut\r\n\r\n" + tail)
    r.close()
    assert wait_until(lambda: petrel.tmp_files() == [] and
                      petrel.queue_files() == [], 5), \
        (petrel.tmp_files(), petrel.queue_files())
    # the server is fine and has accepted nothing
    r2 = raw()
    send_message(r2, b"Subject: next\r\n\r\nafter\r\n",
                 rcpts=("bob@localhost",))
    assert len(petrel.wait_messages("bob", 1)) == 1
    assert petrel.messages("alice") == []
    assert len(log_lines(petrel, "smtp accepted")) == 1


# ---- the end of data split across reads -----------------------------------

@pytest.mark.parametrize("cut", range(1, 5))
def test_end_marker_split_across_writes(petrel, raw, cut):
    """CRLF.CRLF may arrive in pieces; it still ends the data, once."""
    r = raw()
    begin(r)
    content = b"Subject: split end\r\n\r\nbody"
    end = b"\r\n.\r\n"
    r.send(content + end[:cut])
    assert no_reply(r, 0.2), r.buf
    r.send(end[cut:])
    q = qid(r.reply())
    assert_reply(r.cmd("VRFY x"), 252, "2.5.0")
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], content + b"\r\n", qid=q)


def test_dot_stuffing_split_across_writes(petrel, raw):
    r = raw()
    begin(r)
    r.send(b"Subject: split dots\r\n\r\nfirst\r\n.")
    assert no_reply(r, 0.2), r.buf
    r.send(b".x\r\n.")
    assert no_reply(r, 0.2), r.buf
    r.send(b".\r\nlast\r\n.\r\n")
    q = qid(r.reply())
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], b"Subject: split dots\r\n\r\nfirst\r\n.x\r\n"
                    b".\r\nlast\r\n", qid=q)


def test_quit_mid_transaction_delivers_nothing(petrel, raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    expect(r, "QUIT", 221, "2.0.0")
    assert r.closed()
    r2 = raw()
    send_message(r2, b"Subject: other\r\n\r\nx\r\n", rcpts=("bob@localhost",))
    assert len(petrel.wait_messages("bob", 1)) == 1
    assert petrel.wait_queue_empty()
    assert petrel.messages("alice") == []
