"""TLS and SASL helpers for the integration tests: a throwaway PKI made
with the openssl command, client contexts, STARTTLS on a Raw connection,
and a SCRAM-SHA-256(-PLUS) client (RFC 5802, 7677, 9266). No fixtures here
(see conftest.py and the test modules)."""
import base64
import hashlib
import hmac
import os
import select
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

from conftest import Raw
from helpers import assert_reply

CB_LABEL = b"EXPORTER-Channel-Binding"	# RFC 9266 2


# ---- certificates ----------------------------------------------------------

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _ca(d: Path, name, cn):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d: Path, name, cn, ca, serial, client=False):
    ext = d / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE",
             "keyUsage=critical,digitalSignature",
             "subjectKeyIdentifier=hash",
             "authorityKeyIdentifier=keyid"]
    if client:
        lines.append("extendedKeyUsage=clientAuth")
    else:
        lines += ["extendedKeyUsage=serverAuth",
                  f"subjectAltName=DNS:{cn}"]
    ext.write_text("\n".join(lines) + "\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
             "-CAkey", f"{ca}.key", "-set_serial", str(serial), "-days", "2",
             "-extfile", ext.name, "-out", f"{name}.crt", cwd=d)


def make_pki(d: Path):
    """A test CA with server certificates for mx.test (two: the second for
    reload tests), alt.test (SNI) and a client certificate; a wrong CA with
    a client certificate of its own. Returns paths as attributes:
    ca, wrong_ca, mx_crt/mx_key, mx2_*, alt_*, client_*, stranger_*."""
    _ca(d, "ca", "Petrel Test CA")
    _ca(d, "wrong_ca", "Other Test CA")
    _leaf(d, "mx", "mx.test", "ca", 4097)
    _leaf(d, "mx2", "mx.test", "ca", 4098)
    _leaf(d, "alt", "alt.test", "ca", 4099)
    _leaf(d, "client", "laptop.test", "ca", 4100, client=True)
    _leaf(d, "stranger", "stranger.test", "wrong_ca", 4101, client=True)
    ns = SimpleNamespace(dir=d, ca=d / "ca.crt", wrong_ca=d / "wrong_ca.crt")
    for name in ("mx", "mx2", "alt", "client", "stranger"):
        setattr(ns, f"{name}_crt", d / f"{name}.crt")
        setattr(ns, f"{name}_key", d / f"{name}.key")
    return ns


def der(path: Path) -> bytes:
    """The DER form of a PEM certificate file."""
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def peer_cn(sock) -> str:
    """Common name of the verified peer certificate of an SSLSocket."""
    for rdn in sock.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return ""


# ---- client contexts and connections ---------------------------------------

def ca_ctx(cafile, tls12=False):
    """A verifying client context (host name checked)."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def noverify_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(port):
    """A Raw connection past the plaintext 220 greeting."""
    r = Raw(port)
    code, lines = r.reply()
    assert code == 220, lines
    return r


def starttls(r, ctx, hostname="mx.test"):
    """EHLO (plaintext), STARTTLS, handshake. The EHLO state is gone after
    this (RFC 3207 4.2): the caller sends EHLO again."""
    code, lines = r.cmd("EHLO client.example")
    assert code == 250 and "250-STARTTLS" in lines, lines
    got = r.cmd("STARTTLS")
    assert got == (220, ["220 2.0.0 Ready to start TLS"]), got
    assert r.buf == b"", r.buf
    r.sock = ctx.wrap_socket(r.sock, server_hostname=hostname)
    return r


def tls_conn(port, ctx, hostname="mx.test", ehlo=True):
    """Connect, STARTTLS and (by default) EHLO again: (r, ehlo_lines)."""
    r = starttls(connect(port), ctx, hostname)
    lines = None
    if ehlo:
        code, lines = r.cmd("EHLO client.example")
        assert code == 250, lines
    return r, lines


def smtps_conn(port, ctx, hostname="mx.test"):
    """Implicit TLS: handshake first, then the 220 greeting."""
    r = Raw(port)
    r.sock = ctx.wrap_socket(r.sock, server_hostname=hostname)
    code, lines = r.reply()
    assert code == 220, lines
    return r, lines


def b64(data) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def auth_plain(r, user, password):
    return r.cmd("AUTH PLAIN " + b64(f"\0{user}\0{password}"))


def login(r, user="alice@localhost", password="secret"):
    assert_reply(auth_plain(r, user, password), 235, "2.7.0")


# ---- pyOpenSSL connection (for the tls-exporter binding) -------------------

class OpenSSLSock:
    """Enough of a socket for Raw over pyOpenSSL, which (unlike the ssl
    module on Python 3.11) can export keying material (RFC 5705)."""

    def __init__(self, sock, cafile, hostname="mx.test"):
        from OpenSSL import SSL
        self.SSL = SSL
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.load_verify_locations(str(cafile))
        ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, err, depth, ok: ok)
        self.raw = sock
        self.timeout = 10
        sock.setblocking(False)
        self.conn = SSL.Connection(ctx, sock)
        self.conn.set_tlsext_host_name(hostname.encode())
        self.conn.set_connect_state()
        self._retry(self.conn.do_handshake)

    def _retry(self, fn, *args):
        deadline = time.time() + self.timeout
        while True:
            try:
                return fn(*args)
            except self.SSL.WantReadError:
                r, w = [self.raw], []
            except self.SSL.WantWriteError:
                r, w = [], [self.raw]
            left = deadline - time.time()
            if left <= 0 or not any(select.select(r, w, [], left)[:2]):
                raise socket.timeout("timed out")

    def version(self):
        return self.conn.get_protocol_version_name()

    def exporter(self, label=CB_LABEL, n=32):
        return self.conn.export_keying_material(label, n)

    def settimeout(self, t):
        self.timeout = t

    def sendall(self, data):
        while data:
            n = self._retry(self.conn.send, data)
            data = data[n:]

    def recv(self, n):
        try:
            return self._retry(self.conn.recv, n)
        except (self.SSL.ZeroReturnError, self.SSL.SysCallError):
            return b""

    def close(self):
        self.raw.close()


# ---- SCRAM-SHA-256 client ---------------------------------------------------

def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


class Scram:
    """One SCRAM-SHA-256 exchange, client side (RFC 5802 3, RFC 7677).
    gs2 is the GS2 header ("n,,", "y,,", "p=tls-exporter,,"), cb the
    channel binding data sent in c= after it (PLUS only)."""

    def __init__(self, user, password, gs2="n,,", cb=b""):
        self.user, self.password = user, password
        self.gs2, self.cb = gs2.encode(), cb
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.cnonce}"

    def client_first(self):
        return b64(self.gs2 + self.first_bare.encode())

    def client_final(self, server_first_b64):
        sf = base64.b64decode(server_first_b64).decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        assert sf.startswith("r="), sf
        nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), \
            int(attrs["i"])
        assert nonce.startswith(self.cnonce) and len(nonce) > \
            len(self.cnonce), (nonce, self.cnonce)
        assert it >= 4096, it			# RFC 7677 4
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     salt, it)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c={b64(self.gs2 + self.cb)},r={nonce}"
        auth_msg = f"{self.first_bare},{sf},{without_proof}".encode()
        sig = _hmac(stored_key, auth_msg)
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = _hmac(salted, b"Server Key")
        self.want_v = "v=" + b64(_hmac(server_key, auth_msg))
        return b64(f"{without_proof},p={b64(proof)}")


def scram_exchange(r, mech, scram):
    """Run AUTH mech with scram on r. Returns the list of replies after
    the AUTH command, stopping at the first that is not 334. A 334 with
    the server-final message is checked against the expected signature
    before the empty response is sent."""
    replies = []
    got = r.cmd(f"AUTH {mech} {scram.client_first()}")
    replies.append(got)
    if got[0] != 334:
        return replies
    got = r.cmd(scram.client_final(got[1][0][4:]))
    replies.append(got)
    if got[0] != 334:
        return replies
    # server-final-message, base64 (RFC 4954 4)
    assert got[1] == ["334 " + b64(scram.want_v)], (got, scram.want_v)
    replies.append(r.cmd(""))
    return replies
