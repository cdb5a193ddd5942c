"""TLS (STARTTLS RFC 3207, implicit TLS RFC 8314, SNI, reload, client
certificates) and SMTP AUTH (RFC 4954: PLAIN, LOGIN, SCRAM-SHA-256 and
-PLUS with tls-exporter, RFC 5802/7677/9266), rate limiting, relay and
submission rules (RFC 6409), with real certificates made by openssl."""
import email.utils
import hashlib
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import BIN, Raw
from helpers import (EHLO_LINES, assert_reply, check_delivered, expect,
                     log_lines, no_reply, qid, split_delivered, wait_until)
from tlshelpers import (OpenSSLSock, Scram, auth_plain, b64, ca_ctx,
                        connect, der, login, make_pki, noverify_ctx,
                        peer_cn, scram_exchange, smtps_conn, starttls,
                        tls_conn)

USERS = ["alice@localhost", "bob@localhost"]
AUTH_LINE_13 = "250-AUTH PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS"
AUTH_LINE_12 = "250-AUTH PLAIN LOGIN SCRAM-SHA-256"
MSG = (b"From: Alice <alice@localhost>\r\nTo: x@localhost\r\n"
       b"Subject: hello\r\n\r\nbody line\r\n")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_petrel(make_petrel, pki):
    """Factory: a petrel with the mx.test certificate and the passwords
    set with "petrel passwd" (alice: secret, bob: hunter2) before start."""

    def make(extra=None, passwords=True, cert=True, aliases="", start=True):
        conf = {}
        if cert:
            conf = {"tls.cert_file": str(pki.mx_crt),
                    "tls.key_file": str(pki.mx_key)}
        conf.update(extra or {})
        p = make_petrel(extra=conf, users=USERS, aliases=aliases,
                        start=False)
        if passwords:
            for user, pw in (("alice@localhost", "secret"),
                             ("bob@localhost", "hunter2")):
                res = subprocess.run([BIN, "passwd", "-c", str(p.conf), user],
                                     input=pw.encode() + b"\n",
                                     capture_output=True, timeout=20)
                assert res.returncode == 0, res
        if start:
            p.start()
        return p

    return make


@pytest.fixture
def conns():
    """Connections to close at the end of a test."""
    opened = []
    yield opened
    for r in opened:
        try:
            r.close()
        except OSError:
            pass


def sub_session(p, pki, conns, user="alice@localhost", password="secret"):
    """Submission port: STARTTLS (verified), EHLO, AUTH PLAIN."""
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    login(r, user, password)
    return r


def headers_of(text: bytes):
    """Header names (lowercased) and raw field lines of a message with LF
    line ends, up to the first empty line; folds joined."""
    head = text.split(b"\n\n", 1)[0]
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    return [(f.split(b":", 1)[0].lower(), f) for f in fields]


def submit(r, content, sender="alice@localhost", rcpt="alice@localhost"):
    expect(r, f"MAIL FROM:<{sender}>", 250, "2.1.0")
    expect(r, f"RCPT TO:<{rcpt}>", 250, "2.1.5")
    expect(r, "DATA", 354)
    r.send(content + b".\r\n")
    return qid(r.reply())


# ---- EHLO and STARTTLS ------------------------------------------------------

def test_ehlo_before_tls_offers_starttls_not_auth(tls_petrel, conns):
    p = tls_petrel(passwords=False)
    for port in (p.port, p.sub_port):
        r = connect(port)
        conns.append(r)
        code, lines = r.cmd("EHLO client.example")
        assert code == 250
        assert lines == EHLO_LINES
        assert not any(ln[4:].startswith("AUTH") for ln in lines), lines


def test_ehlo_after_starttls_lists_auth_not_starttls(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, lines = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r)
    assert r.sock.version() == "TLSv1.3"
    assert AUTH_LINE_13 in lines, lines
    assert [ln for ln in lines if "AUTH" in ln] == [AUTH_LINE_13]
    assert not any("STARTTLS" in ln for ln in lines), lines
    assert lines[0] == "250-mx.test" and lines[-1] == "250 CHUNKING"


def test_ehlo_on_tls12_has_no_plus(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, lines = tls_conn(p.port, ca_ctx(pki.ca, tls12=True))
    conns.append(r)
    assert r.sock.version() == "TLSv1.2"
    assert [ln for ln in lines if "AUTH" in ln] == [AUTH_LINE_12]
    assert not any("STARTTLS" in ln for ln in lines), lines


def test_starttls_inside_tls_is_503(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r)
    expect(r, "STARTTLS", 503, "5.5.1")
    expect(r, "NOOP", 250, "2.0.0")		# still inside the same TLS


def test_starttls_with_argument_is_501(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r = connect(p.port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    expect(r, "STARTTLS now", 501, "5.5.4")
    starttls(r, ca_ctx(pki.ca))			# a plain STARTTLS still works
    expect(r, "EHLO client.example", 250)


def test_starttls_forgets_ehlo(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, _ = tls_conn(p.port, ca_ctx(pki.ca), ehlo=False)
    conns.append(r)
    expect(r, "MAIL FROM:<sender@example.org>", 503, "5.5.1")
    expect(r, "EHLO client.example", 250)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")


def test_quit_inside_tls_gets_221(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r)
    expect(r, "QUIT", 221, "2.0.0")
    assert r.closed(5)
    r, _ = smtps_conn(p.smtps_port, ca_ctx(pki.ca))
    conns.append(r)
    expect(r, "QUIT", 221, "2.0.0")
    assert r.closed(5)


# ---- certificate verification ----------------------------------------------

def test_certificate_verifies_with_test_ca(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r)
    assert peer_cn(r.sock) == "mx.test"
    assert r.sock.getpeercert(binary_form=True) == der(pki.mx_crt)


def test_wrong_ca_fails_handshake(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r = connect(p.port)
    conns.append(r)
    with pytest.raises(ssl.SSLCertVerificationError):
        starttls(r, ca_ctx(pki.wrong_ca))
    # the server survives a client that gives up mid-handshake
    r2, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r2)
    expect(r2, "NOOP", 250)


def test_smtps_greets_after_handshake(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r = Raw(p.smtps_port)
    conns.append(r)
    assert no_reply(r, 0.5), r.buf		# no plaintext greeting
    r.sock = ca_ctx(pki.ca).wrap_socket(r.sock, server_hostname="mx.test")
    assert r.reply() == (220, ["220 mx.test ESMTP petrel"])
    assert peer_cn(r.sock) == "mx.test"


class SMTPSForTest(smtplib.SMTP_SSL):
    """smtplib's implicit TLS to 127.0.0.1 with the name mx.test for SNI
    and host name checks."""

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection(("127.0.0.1", port), timeout)
        return self.context.wrap_socket(sock, server_hostname="mx.test")


def test_smtps_with_smtplib(tls_petrel, pki):
    p = tls_petrel()
    s = SMTPSForTest(context=ca_ctx(pki.ca), timeout=10)
    try:
        assert s.connect("mx.test", p.smtps_port) == \
            (220, b"mx.test ESMTP petrel")
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert "scram-sha-256-plus" in s.esmtp_features["auth"].lower()
        assert s.login("alice@localhost", "secret")[0] == 235
        s.sendmail("alice@localhost", ["bob@localhost"], MSG)
        s.quit()
    finally:
        s.close()
    msgs = p.wait_messages("bob", 1)
    assert len(msgs) == 1
    _, _, rec, _ = split_delivered(msgs[0])
    assert b" with ESMTPSA id " in rec, rec


# ---- self-signed default ----------------------------------------------------

def test_self_signed_certificate_by_default(tls_petrel, conns):
    p = tls_petrel(passwords=False, cert=False)
    tdir = p.base / "tls"
    crt, key = tdir / "selfsigned.crt", tdir / "selfsigned.key"
    assert crt.is_file() and key.is_file()
    assert key.stat().st_mode & 0o777 == 0o600
    assert tdir.stat().st_mode & 0o777 == 0o700
    m = re.search(r"fingerprint=([0-9A-F:]+)", p.log())
    assert m, p.log()
    r, lines = tls_conn(p.port, noverify_ctx())
    conns.append(r)
    assert AUTH_LINE_13 in lines
    peer = r.sock.getpeercert(binary_form=True)
    assert peer == der(crt)
    fp = ":".join(f"{b:02X}" for b in hashlib.sha256(peer).digest())
    assert m.group(1) == fp


# ---- CVE-2011-0411: no plaintext injection into TLS ------------------------

def test_starttls_pipelined_command_is_dropped(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r = connect(p.port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    r.send(b"STARTTLS\r\nRSET\r\n")
    assert r.reply() == (220, ["220 2.0.0 Ready to start TLS"])
    assert r.buf == b"", r.buf		# nothing answered in plaintext
    r.sock = ca_ctx(pki.ca).wrap_socket(r.sock, server_hostname="mx.test")
    code, lines = r.cmd("EHLO client.example")
    assert code == 250 and lines[0] == "250-mx.test", lines
    assert AUTH_LINE_13 in lines
    assert no_reply(r), r.buf		# and no late reply to RSET either
    expect(r, "NOOP", 250, "2.0.0")


# ---- bad handshakes ---------------------------------------------------------

def test_garbage_handshake_ends_only_that_session(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    other = connect(p.port)
    conns.append(other)
    expect(other, "EHLO client.example", 250)
    r = connect(p.port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    expect(r, "STARTTLS", 220, "2.0.0")
    r.send(b"NOT A TLS RECORD " + os.urandom(512))
    assert r.closed(5)
    expect(other, "NOOP", 250)
    r2, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r2)
    expect(r2, "NOOP", 250)


def test_smtps_handshake_timeout(tls_petrel, conns):
    p = tls_petrel(passwords=False, extra={"tls.handshake_timeout": "1"})
    r = Raw(p.smtps_port)
    conns.append(r)
    t0 = time.time()
    assert r.closed(6)
    took = time.time() - t0
    assert 0.8 <= took <= 4, took
    assert r.buf == b""			# no plaintext greeting, ever


# ---- AUTH -------------------------------------------------------------------

def test_auth_in_cleartext_is_538(tls_petrel, conns):
    p = tls_petrel()
    for port in (p.port, p.sub_port):
        r = connect(port)
        conns.append(r)
        expect(r, "EHLO client.example", 250)
        assert_reply(auth_plain(r, "alice@localhost", "secret"), 538,
                     "5.7.11")
    assert "secret" not in p.log()


def test_submission_mail_before_auth_is_530(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    expect(r, "MAIL FROM:<alice@localhost>", 530, "5.7.0")
    login(r)
    expect(r, "MAIL FROM:<alice@localhost>", 250, "2.1.0")


def test_auth_plain_good_and_bad(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    assert_reply(auth_plain(r, "alice@localhost", "wrong"), 535, "5.7.8")
    assert_reply(auth_plain(r, "alice@localhost", "secret"), 235, "2.7.0")
    assert log_lines(p, "auth ok", "alice@localhost")
    assert "wrong" not in p.log() and "secret" not in p.log()


def test_auth_plain_without_initial_response(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    assert r.cmd("AUTH PLAIN") == (334, ["334 "])	# RFC 4954 4: empty
    assert_reply(r.cmd(b64("\0alice@localhost\0secret")), 235, "2.7.0")


def test_auth_errors(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    expect(r, "AUTH CRAM-MD5", 504, "5.5.4")
    expect(r, "AUTH PLAIN !!!notbase64!!!", 501, "5.5.2")
    assert r.cmd("AUTH LOGIN") == (334, ["334 VXNlcm5hbWU6"])
    assert_reply(r.cmd("*"), 501)
    # the session is usable after each of these
    login(r)
    expect(r, "AUTH PLAIN " + b64("\0alice@localhost\0secret"), 503, "5.5.1")


def test_auth_inside_transaction_is_503(tls_petrel, pki, conns):
    p = tls_petrel()
    r = sub_session(p, pki, conns)
    expect(r, "MAIL FROM:<alice@localhost>", 250, "2.1.0")
    expect(r, "AUTH PLAIN " + b64("\0bob@localhost\0hunter2"), 503, "5.5.1")
    expect(r, "RCPT TO:<bob@localhost>", 250, "2.1.5")


def test_auth_login_exchange(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    assert r.cmd("AUTH LOGIN") == (334, ["334 VXNlcm5hbWU6"])
    assert r.cmd(b64("bob@localhost")) == (334, ["334 UGFzc3dvcmQ6"])
    assert_reply(r.cmd(b64("hunter2")), 235, "2.7.0")
    expect(r, "MAIL FROM:<bob@localhost>", 250, "2.1.0")


def test_smtplib_login(tls_petrel, pki):
    p = tls_petrel()
    ctx = ca_ctx(pki.ca)
    ctx.check_hostname = False		# smtplib names the host 127.0.0.1
    with smtplib.SMTP("127.0.0.1", p.sub_port, timeout=10) as s:
        s.ehlo("client.example")
        assert s.starttls(context=ctx)[0] == 220
        s.ehlo("client.example")
        code, msg = s.login("alice@localhost", "secret")
        assert (code, msg) == (235, b"2.7.0 Authentication successful")


# ---- SCRAM ------------------------------------------------------------------

def test_scram_sha_256(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    replies = scram_exchange(r, "SCRAM-SHA-256",
                             Scram("alice@localhost", "secret"))
    assert [c for c, _ in replies] == [334, 334, 235], replies
    assert_reply(replies[-1], 235, "2.7.0")
    expect(r, "MAIL FROM:<alice@localhost>", 250, "2.1.0")


def test_scram_sha_256_wrong_password(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    replies = scram_exchange(r, "SCRAM-SHA-256",
                             Scram("alice@localhost", "not-secret"))
    assert [c for c, _ in replies] == [334, 535], replies
    assert_reply(replies[-1], 535, "5.7.8")


def test_scram_y_flag_on_tls12_is_accepted(tls_petrel, pki, conns):
    """Without -PLUS on offer, "y" (client could bind) is fine."""
    p = tls_petrel()
    r, lines = tls_conn(p.sub_port, ca_ctx(pki.ca, tls12=True))
    conns.append(r)
    assert AUTH_LINE_12 in lines
    replies = scram_exchange(r, "SCRAM-SHA-256",
                             Scram("alice@localhost", "secret", gs2="y,,"))
    assert [c for c, _ in replies] == [334, 334, 235], replies


def test_scram_downgrade_is_refused(tls_petrel, pki, conns):
    """"y" while the server offered -PLUS means someone stripped it
    (RFC 5802 6): the exchange fails, wherever the server notices."""
    p = tls_petrel()
    r, lines = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    assert AUTH_LINE_13 in lines
    replies = scram_exchange(r, "SCRAM-SHA-256",
                             Scram("alice@localhost", "secret", gs2="y,,"))
    assert_reply(replies[-1], 535, "5.7.8")
    assert all(c == 334 for c, _ in replies[:-1]), replies


def test_scram_plus_wrong_binding(tls_petrel, pki, conns):
    p = tls_petrel()
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    scram = Scram("alice@localhost", "secret", gs2="p=tls-exporter,,",
                  cb=bytes(32))
    replies = scram_exchange(r, "SCRAM-SHA-256-PLUS", scram)
    assert_reply(replies[-1], 535, "5.7.8")
    assert all(c == 334 for c, _ in replies[:-1]), replies


def test_scram_plus_with_tls_exporter(tls_petrel, pki, conns):
    p = tls_petrel()
    r = connect(p.sub_port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    expect(r, "STARTTLS", 220, "2.0.0")
    r.sock = OpenSSLSock(r.sock, pki.ca)
    assert r.sock.version() == "TLSv1.3"
    code, lines = r.cmd("EHLO client.example")
    assert AUTH_LINE_13 in lines, lines
    scram = Scram("alice@localhost", "secret", gs2="p=tls-exporter,,",
                  cb=r.sock.exporter())
    replies = scram_exchange(r, "SCRAM-SHA-256-PLUS", scram)
    assert [c for c, _ in replies] == [334, 334, 235], replies
    assert_reply(replies[-1], 235, "2.7.0")
    expect(r, "MAIL FROM:<alice@localhost>", 250, "2.1.0")


# ---- failure rate limit -----------------------------------------------------

def test_auth_failures_are_rate_limited(tls_petrel, pki, conns):
    p = tls_petrel(extra={"auth.max_failures": "3"})
    r, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r)
    t0 = time.time()
    assert_reply(auth_plain(r, "alice@localhost", "guess1"), 535, "5.7.8")
    assert time.time() - t0 >= 0.8		# failures are answered slowly
    assert_reply(auth_plain(r, "alice@localhost", "guess2"), 535, "5.7.8")
    assert_reply(auth_plain(r, "alice@localhost", "guess3"), 421, "4.7.0")
    assert r.closed(5)
    # the address is blocked: even the right password gets 421 at once
    r2, _ = tls_conn(p.sub_port, ca_ctx(pki.ca))
    conns.append(r2)
    t0 = time.time()
    assert_reply(auth_plain(r2, "alice@localhost", "secret"), 421, "4.7.0")
    assert time.time() - t0 < 0.8
    assert r2.closed(5)
    fails = log_lines(p, "auth failed", "127.0.0.1")
    assert len(fails) == 3, p.log()
    assert "guess" not in p.log()


# ---- relay, sender ownership, swaks ----------------------------------------

def test_authenticated_submission_relays(tls_petrel, pki, conns):
    p = tls_petrel()
    r = sub_session(p, pki, conns)
    q = submit(r, MSG, rcpt="someone@remote.example")
    assert wait_until(lambda: log_lines(p, q, "someone@remote.example",
                                        "deferred"))
    assert p.queue_files()


def test_mx_without_auth_does_not_relay(tls_petrel, pki, conns):
    p = tls_petrel()
    r = connect(p.port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<someone@remote.example>", 550, "5.7.1")
    r2, _ = tls_conn(p.port, ca_ctx(pki.ca))	# TLS alone is not enough
    conns.append(r2)
    expect(r2, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r2, "RCPT TO:<someone@remote.example>", 550, "5.7.1")


def test_trusted_networks_relay(tls_petrel, conns):
    p = tls_petrel(passwords=False,
                   extra={"smtp.trusted_networks": "127.0.0.0/8"})
    r = connect(p.port)
    conns.append(r)
    expect(r, "EHLO client.example", 250)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<someone@remote.example>", 250, "2.1.5")


def test_sender_ownership(tls_petrel, pki, conns, tmp_path):
    smap = tmp_path / "sender_map"
    smap.write_text("shared@localhost: alice@localhost\n")
    p = tls_petrel(aliases="al: alice\n",
                   extra={"auth.sender_map_file": str(smap)})
    r = sub_session(p, pki, conns)
    for sender, code, enh in (("alice@localhost", 250, "2.1.0"),
                              ("bob@localhost", 553, "5.7.1"),
                              ("al@localhost", 250, "2.1.0"),
                              ("shared@localhost", 250, "2.1.0"),
                              ("other@example.org", 553, "5.7.1")):
        expect(r, f"MAIL FROM:<{sender}>", code, enh)
        expect(r, "RSET", 250)
    # bob is not in the map for shared@localhost
    r2 = sub_session(p, pki, conns, "bob@localhost", "hunter2")
    expect(r2, "MAIL FROM:<shared@localhost>", 553, "5.7.1")
    expect(r2, "MAIL FROM:<bob@localhost>", 250, "2.1.0")


def test_swaks_submission(tls_petrel):
    p = tls_petrel()
    res = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{p.sub_port}", "--tls",
         "--auth", "PLAIN", "--auth-user", "alice@localhost",
         "--auth-password", "secret", "--to", "x@remote.example",
         "--from", "alice@localhost", "--helo", "client.example",
         "--timeout", "10"],
        capture_output=True, timeout=30)
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, out + res.stderr.decode(errors="replace")
    assert "235 2.7.0" in out and "250 2.0.0 Ok: queued as" in out, out
    assert wait_until(lambda: log_lines(p, "x@remote.example", "deferred"))
    assert p.queue_files()


# ---- submission fix-ups and Received ---------------------------------------

def test_submission_adds_date_and_message_id(tls_petrel, pki, conns):
    p = tls_petrel()
    r = sub_session(p, pki, conns)
    submit(r, MSG)
    msgs = p.wait_messages("alice", 1)
    assert len(msgs) == 1
    _, _, rec, rest = split_delivered(msgs[0])
    assert b" with ESMTPSA id " in rec, rec
    assert re.search(rb"\n\t\(using TLSv1\.3 \S+\)\n", rec), rec
    names = [n for n, _ in headers_of(rest)]
    assert names.count(b"date") == 1 and names.count(b"message-id") == 1
    fields = dict(headers_of(rest))
    date = fields[b"date"].split(b":", 1)[1].strip().decode()
    when = email.utils.parsedate_to_datetime(date)
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 120
    assert re.fullmatch(rb"Message-ID: <[^<>@\s]+@[^<>@\s]+>",
                        fields[b"message-id"], re.I), fields[b"message-id"]
    # the rest is the original, unchanged
    added = {fields[b"date"], fields[b"message-id"]}
    kept = b"\n".join(ln for ln in rest.split(b"\n") if ln not in added)
    assert kept == MSG.replace(b"\r\n", b"\n")


def test_submission_keeps_date_and_message_id(tls_petrel, pki, conns):
    p = tls_petrel()
    r = sub_session(p, pki, conns)
    orig = (b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            b"Message-ID: <abc.123@client.example>\r\n" + MSG)
    submit(r, orig)
    msgs = p.wait_messages("alice", 1)
    assert len(msgs) == 1
    _, _, _, rest = split_delivered(msgs[0])
    assert rest == orig.replace(b"\r\n", b"\n")
    names = [n for n, _ in headers_of(rest)]
    assert names.count(b"date") == 1 and names.count(b"message-id") == 1


def test_mx_makes_no_fixups_and_says_esmtps(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False)
    r, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(r)
    q = submit(r, MSG, sender="sender@example.org")
    msgs = p.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], MSG)
    _, _, rec, _ = split_delivered(msgs[0])
    assert rec.startswith(b"Received: from client.example (unknown "
                          b"[127.0.0.1])\n\t(using TLSv1.3 "), rec
    assert b"by mx.test (petrel) with ESMTPS id %s" % q.encode() in rec
    assert log_lines(p, "smtp tls", "TLSv1.3", "client=[127.0.0.1]")


# ---- SNI, reload, check -----------------------------------------------------

def test_sni_picks_certificate(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False,
                   extra={"tls.sni": f"alt.test={pki.alt_crt}:{pki.alt_key}"})
    for name, crt in (("alt.test", pki.alt_crt), ("mx.test", pki.mx_crt)):
        r, _ = tls_conn(p.port, ca_ctx(pki.ca), hostname=name)
        conns.append(r)
        assert peer_cn(r.sock) == name
        assert r.sock.getpeercert(binary_form=True) == der(crt)
    # no SNI at all: the default certificate
    ctx = ca_ctx(pki.ca)
    ctx.check_hostname = False
    r = starttls(connect(p.port), ctx, hostname=None)
    conns.append(r)
    assert r.sock.getpeercert(binary_form=True) == der(pki.mx_crt)


def test_sighup_reloads_certificate(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False, start=False)
    crt, key = p.base / "cert.pem", p.base / "key.pem"
    shutil.copyfile(pki.mx_crt, crt)
    shutil.copyfile(pki.mx_key, key)
    text = p.conf.read_text()
    text = text.replace(f"cert_file = {pki.mx_crt}", f"cert_file = {crt}")
    text = text.replace(f"key_file = {pki.mx_key}", f"key_file = {key}")
    p.conf.write_text(text)
    p.start()
    old, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(old)
    assert old.sock.getpeercert(binary_form=True) == der(pki.mx_crt)
    shutil.copyfile(pki.mx2_key, key)
    shutil.copyfile(pki.mx2_crt, crt)
    os.kill(p.proc.pid, signal.SIGHUP)
    assert wait_until(lambda: log_lines(p, "tls reloaded")), p.log()
    new, _ = tls_conn(p.port, ca_ctx(pki.ca))
    conns.append(new)
    assert new.sock.getpeercert(binary_form=True) == der(pki.mx2_crt)
    expect(old, "NOOP", 250, "2.0.0")		# live sessions keep theirs
    expect(old, "MAIL FROM:<sender@example.org>", 250, "2.1.0")


def test_check_reports_key_mismatch(tls_petrel, pki):
    p = tls_petrel(passwords=False, start=False,
                   extra={"tls.key_file": str(pki.alt_key)})
    res = subprocess.run([BIN, "check", "-c", str(p.conf)],
                         capture_output=True, timeout=20)
    out = (res.stdout + res.stderr).decode(errors="replace")
    assert res.returncode == 1, out
    assert "does not match" in out, out


# ---- client certificates ----------------------------------------------------

def test_client_certificates_are_logged(tls_petrel, pki, conns):
    p = tls_petrel(passwords=False,
                   extra={"tls.client_ca_file": str(pki.ca)})
    for name in ("client", "stranger", None):
        ctx = ca_ctx(pki.ca)
        if name is not None:
            ctx.load_cert_chain(getattr(pki, f"{name}_crt"),
                                getattr(pki, f"{name}_key"))
        r, _ = tls_conn(p.port, ctx)		# never refused for it
        conns.append(r)
        expect(r, "NOOP", 250)
    lines = log_lines(p, "smtp tls", "client=[127.0.0.1]")
    assert len(lines) == 3, p.log()
    assert "CN=laptop.test verified" in lines[0], lines
    assert "CN=stranger.test unverified" in lines[1], lines
    assert "peer=" not in lines[2] and "CN=" not in lines[2], lines
