"""Greeting, EHLO, command replies, command sequencing, MAIL and RCPT
parameters and address rules (RFC 5321, 1870, 3461, 6152, 6531)."""
import pytest

from conftest import Raw
from helpers import EHLO_LINES, assert_reply, ehlo, expect


# ---- greeting and hello --------------------------------------------------

def test_greeting(petrel):
    r = Raw(petrel.port)
    try:
        assert r.reply() == (220, ["220 mx.test ESMTP petrel"])
    finally:
        r.close()


def test_ehlo_keywords(raw):
    r = raw()
    assert r.cmd("EHLO client.example") == (250, EHLO_LINES)


def test_helo(raw):
    r = raw()
    assert r.cmd("HELO client.example") == (250, ["250 mx.test"])


def test_ehlo_twice_is_fine(raw):
    r = raw()
    assert r.cmd("EHLO client.example") == (250, EHLO_LINES)
    assert r.cmd("EHLO other.example") == (250, EHLO_LINES)


@pytest.mark.parametrize("line", ["EHLO", "HELO", "EHLO ", "HELO "])
def test_hello_without_argument(raw, line):
    r = raw()
    expect(r, line, 501, "5.5.4")
    # still not greeted
    expect(r, "MAIL FROM:<a@b.example>", 503, "5.5.1")


def test_verbs_case_insensitive(raw):
    r = raw()
    assert r.cmd("ehlo client.example") == (250, EHLO_LINES)
    expect(r, "MaIl FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "rcpt to:<alice@localhost>", 250, "2.1.5")
    expect(r, "rset", 250, "2.0.0")
    expect(r, "nOoP", 250, "2.0.0")
    assert r.cmd("helo client.example") == (250, ["250 mx.test"])
    expect(r, "mail from:<a@b.example>", 250, "2.1.0")
    expect(r, "Rcpt To:<alice@localhost>", 250, "2.1.5")
    c, lines = r.cmd("data")
    assert c == 354, lines


# ---- single command replies ------------------------------------------

@pytest.mark.parametrize("line,code,enh", [
    ("FOO", 500, "5.5.2"),
    ("FOO bar baz", 500, "5.5.2"),
    ("MAILFROM:<a@b.example>", 500, "5.5.2"),
    ("NOOP", 250, "2.0.0"),
    ("NOOP anything", 250, "2.0.0"),
    ("RSET", 250, "2.0.0"),
    ("VRFY alice", 252, "2.5.0"),
    ("VRFY <alice@localhost>", 252, "2.5.0"),
    ("VRFY", 501, "5.5.4"),
    ("HELP", 214, "2.0.0"),
    ("EXPN staff", 502, "5.5.1"),
    ("STARTTLS now", 501, "5.5.4"),
    # RFC 4954 4: never in cleartext (TLS and AUTH: test_tls_auth.py)
    ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", 538, "5.7.11"),
])
@pytest.mark.parametrize("greeted", [False, True])
def test_command_reply(raw, line, code, enh, greeted):
    r = raw()
    if greeted:
        ehlo(r)
    expect(r, line, code, enh)
    # the session goes on
    expect(r, "NOOP", 250, "2.0.0")


def test_quit(raw):
    r = raw()
    ehlo(r)
    expect(r, "QUIT", 221, "2.0.0")
    assert r.closed()


def test_quit_before_ehlo(raw):
    r = raw()
    expect(r, "quit", 221, "2.0.0")
    assert r.closed()


# ---- sequencing -------------------------------------------------------

def test_mail_before_ehlo(raw):
    r = raw()
    expect(r, "MAIL FROM:<a@b.example>", 503, "5.5.1")


def test_rcpt_before_mail(raw):
    r = raw()
    ehlo(r)
    expect(r, "RCPT TO:<alice@localhost>", 503, "5.5.1")


def test_rcpt_before_ehlo(raw):
    r = raw()
    expect(r, "RCPT TO:<alice@localhost>", 503, "5.5.1")


def test_data_before_mail(raw):
    r = raw()
    ehlo(r)
    expect(r, "DATA", 503, "5.5.1")


def test_data_before_ehlo(raw):
    r = raw()
    expect(r, "DATA", 503, "5.5.1")


def test_data_with_only_rejected_recipients(raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "RCPT TO:<nobody@localhost>", 550, "5.1.1")
    expect(r, "RCPT TO:<someone@remote.example>", 550, "5.7.1")
    expect(r, "DATA", 554, "5.5.1")
    expect(r, "NOOP", 250, "2.0.0")


def test_nested_mail(raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "MAIL FROM:<c@d.example>", 503, "5.5.1")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    expect(r, "MAIL FROM:<c@d.example>", 503, "5.5.1")


def test_rset_ends_transaction(raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    expect(r, "RSET", 250, "2.0.0")
    expect(r, "RCPT TO:<alice@localhost>", 503, "5.5.1")
    expect(r, "DATA", 503, "5.5.1")
    expect(r, "MAIL FROM:<c@d.example>", 250, "2.1.0")


def test_data_with_argument(raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    expect(r, "DATA now", 501, "5.5.4")
    c, lines = r.cmd("DATA")
    assert c == 354, lines


# ---- MAIL -------------------------------------------------------------

@pytest.mark.parametrize("line,code,enh", [
    ("MAIL FROM:<a@b.example>", 250, "2.1.0"),
    ("MAIL FROM:<>", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> SIZE=1000", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> SIZE=52428800", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> BODY=8BITMIME", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> BODY=7BIT", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> RET=HDRS ENVID=abc+2Bdef", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> RET=FULL", 250, "2.1.0"),
    ("MAIL FROM:<a@b.example> SMTPUTF8", 250, "2.1.0"),
    # RFC 5321 2.4: ESMTP keywords are case-insensitive
    ("MAIL FROM:<a@b.example> size=1000 body=8bitmime", 250, "2.1.0"),
    # address syntax
    ("MAIL FROM:<a@@b.example>", 501, "5.1.7"),
    ("MAIL FROM:<a..b@b.example>", 501, "5.1.7"),
    ("MAIL FROM:<a@b..example>", 501, "5.1.7"),
    ("MAIL FROM:<@b.example>", 501, "5.1.7"),
    # parameters
    ("MAIL FROM:<a@b.example> FOO=bar", 555, "5.5.4"),
    ("MAIL FROM:<a@b.example> XYZZY", 555, "5.5.4"),
    ("MAIL FROM:<a@b.example> SIZE=abc", 501, "5.5.4"),
    ("MAIL FROM:<a@b.example> SIZE=", 501, "5.5.4"),
    ("MAIL FROM:<a@b.example> RET=XYZ", 501, "5.5.4"),
    ("MAIL FROM:<a@b.example> BODY=8BITMIME BODY=8BITMIME", 501, "5.5.4"),
    ("MAIL FROM:<a@b.example> SIZE=10 SIZE=10", 501, "5.5.4"),
    ("MAIL FROM:<a@b.example> BODY=BINARYMIME", 504, "5.5.4"),
    ("MAIL FROM:<a@b.example> SIZE=52428801", 552, "5.3.4"),
    # RFC 6531: UTF-8 addresses need the SMTPUTF8 parameter
    ("MAIL FROM:<j\u00f6rg@b.example>", 553, "5.6.7"),
    ("MAIL FROM:<jorg@b\u00fccher.example>", 553, "5.6.7"),
    ("MAIL FROM:<j\u00f6rg@b.example> SMTPUTF8", 250, "2.1.0"),
    ("MAIL FROM:<jorg@b\u00fccher.example> SMTPUTF8", 250, "2.1.0"),
])
def test_mail(raw, line, code, enh):
    r = raw()
    ehlo(r)
    expect(r, line, code, enh)
    if code != 250:
        # no transaction was started
        expect(r, "RCPT TO:<alice@localhost>", 503, "5.5.1")
        expect(r, "MAIL FROM:<ok@b.example>", 250, "2.1.0")
    else:
        expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")


# ---- RCPT -------------------------------------------------------------

LOCAL64 = "l" * 64
LOCAL65 = "l" * 65


def _domain(n):
    """A syntactically valid domain of exactly n octets (labels <= 49)."""
    labels = []
    left = n
    while left > 0:
        take = min(49, left)
        if left - take == 1:   # never leave a 1-octet tail: ".x" needs 2
            take -= 1
        labels.append("d" * take)
        left -= take + 1       # the dot before the next label
    dom = ".".join(labels)
    assert len(dom) == n, (len(dom), n)
    return dom


# "<alice@" + domain + ">" : 256 octets is the limit (RFC 5321 4.5.3.1.3)
PATH256 = "alice@" + _domain(256 - 2 - 6)
PATH257 = "alice@" + _domain(257 - 2 - 6)


@pytest.mark.parametrize("line,code,enh", [
    ("RCPT TO:<alice@localhost>", 250, "2.1.5"),
    ("RCPT TO:<bob@localhost>", 250, "2.1.5"),
    ("RCPT TO:<carol@example.test>", 250, "2.1.5"),
    ("RCPT TO:<nobody@localhost>", 550, "5.1.1"),
    ("RCPT TO:<carol@localhost>", 550, "5.1.1"),
    ("RCPT TO:<alice@example.test>", 550, "5.1.1"),
    # RFC 5321 4.5.1: postmaster is always accepted
    ("RCPT TO:<postmaster@localhost>", 250, "2.1.5"),
    ("RCPT TO:<postmaster@example.test>", 250, "2.1.5"),
    ("RCPT TO:<postmaster>", 250, "2.1.5"),
    ("RCPT TO:<POSTMASTER@LOCALHOST>", 250, "2.1.5"),
    ("RCPT TO:<Postmaster>", 250, "2.1.5"),
    # no open relay
    ("RCPT TO:<someone@remote.example>", 550, "5.7.1"),
    ("RCPT TO:<postmaster@remote.example>", 550, "5.7.1"),
    ("RCPT TO:<alice@localhost.remote.example>", 550, "5.7.1"),
    # relay tricks must not relay: they are unknown local users
    ("RCPT TO:<alice%remote.example@localhost>", 550, "5.1.1"),
    ("RCPT TO:<remote.example!alice@localhost>", 550, "5.1.1"),
    ('RCPT TO:<"alice@remote.example"@localhost>', 550, "5.1.1"),
    # source route: stripped, the mailbox is what counts
    ("RCPT TO:<@a.example:alice@localhost>", 250, "2.1.5"),
    ("RCPT TO:<@a.example,@b.example:alice@localhost>", 250, "2.1.5"),
    ("RCPT TO:<@a.example:someone@remote.example>", 550, "5.7.1"),
    # RFC 5321 4.5.3.1: local part 64, path 256
    (f"RCPT TO:<{LOCAL64}@localhost>", 550, "5.1.1"),
    (f"RCPT TO:<{LOCAL65}@localhost>", 501, "5.1.3"),
    (f"RCPT TO:<{PATH256}>", 550, "5.7.1"),
    (f"RCPT TO:<{PATH257}>", 501, "5.1.3"),
    # syntax
    ("RCPT TO:<>", 501, "5.1.3"),
    ("RCPT TO:<a@@localhost>", 501, "5.1.3"),
    # DSN parameters (RFC 3461)
    ("RCPT TO:<alice@localhost> NOTIFY=SUCCESS,FAILURE "
     "ORCPT=rfc822;alice@localhost", 250, "2.1.5"),
    ("RCPT TO:<alice@localhost> NOTIFY=NEVER", 250, "2.1.5"),
    ("RCPT TO:<alice@localhost> NOTIFY=DELAY", 250, "2.1.5"),
    ("RCPT TO:<alice@localhost> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
    ("RCPT TO:<alice@localhost> NOTIFY=BOGUS", 501, "5.5.4"),
    ("RCPT TO:<alice@localhost> FOO=bar", 555, "5.5.4"),
    # UTF-8 recipient without SMTPUTF8 on MAIL
    ("RCPT TO:<j\u00f6rg@localhost>", 553, "5.6.7"),
])
def test_rcpt(raw, line, code, enh):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    expect(r, line, code, enh)
    # the transaction survives any RCPT failure
    expect(r, "RCPT TO:<bob@localhost>", 250, "2.1.5")


def test_rcpt_utf8_with_smtputf8(raw):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<a@b.example> SMTPUTF8", 250, "2.1.0")
    # a well-formed UTF-8 local part: unknown user, not a syntax error
    expect(r, "RCPT TO:<j\u00f6rg@localhost>", 550, "5.1.1")


def test_max_recipients(make_petrel):
    users = [f"u{i}@localhost" for i in range(5)]
    p = make_petrel(extra={"smtp.max_recipients": "3"}, users=users)
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        ehlo(r)
        expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
        for u in users[:3]:
            expect(r, f"RCPT TO:<{u}>", 250, "2.1.5")
        expect(r, f"RCPT TO:<{users[3]}>", 452, "4.5.3")
        expect(r, f"RCPT TO:<{users[4]}>", 452, "4.5.3")
        r.send(b"DATA\r\n")
        assert r.reply()[0] == 354
        r.send(b"Subject: three\r\n\r\nbody\r\n.\r\n")
        assert_reply(r.reply(), 250, "2.0.0")
        for u in users[:3]:
            assert len(p.wait_messages(u.split("@")[0], 1)) == 1
        assert p.wait_queue_empty()
        for u in users[3:]:
            assert p.messages(u.split("@")[0]) == []
    finally:
        r.close()


def test_alias_loop(make_petrel):
    p = make_petrel(users=["alice@localhost"], aliases="a: b\nb: a\n")
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        ehlo(r)
        expect(r, "MAIL FROM:<x@y.example>", 250, "2.1.0")
        expect(r, "RCPT TO:<a@localhost>", 550, "5.4.6")
        expect(r, "RCPT TO:<b@localhost>", 550, "5.4.6")
        expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    finally:
        r.close()
