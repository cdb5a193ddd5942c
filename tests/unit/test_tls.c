/*
 * test_tls.c: tls_ctx_new() and tls_check() on certificates made with the
 * openssl command in a temp dir; handshakes over in-memory BIO pairs for
 * SNI, client certificates, resumption and the tls-exporter binding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/config.h"
#include "core/util.h"
#include "net/tls.h"

#define ERR_MAX		1024
#define FP_LEN		95	/* 32 bytes as "AA:" less the last ':' */

static char	 dir[64];	/* the temp dir of every file below */

/* dir/name; returns a static buffer of four, rotating. */
static const char *
p(const char *name)
{
	static char	 buf[4][PATH_MAX];
	static int	 n;
	char	*out = buf[n++ % 4];

	snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return out;
}

static void
sh(const char *fmt, ...)
{
	char	 cmd[2048];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	if (system(cmd) != 0)
		fail_msg("failed: %s", cmd);
}

/* name.crt and name.key, self-signed, CN=cn. */
static void
make_cert(const char *name, const char *cn)
{
	sh("cd %s && openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.crt "
	    "-days 2 -subj '/CN=%s' 2>/dev/null", dir, name, name, cn);
}

/* name.crt and name.key, CN=cn, signed by ca.crt; ext: an extfile. */
static void
make_signed(const char *name, const char *cn, const char *ca,
    const char *ext)
{
	sh("cd %s && openssl req -new -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.csr "
	    "-subj '/CN=%s' 2>/dev/null && openssl x509 -req -in %s.csr "
	    "-CA %s.crt -CAkey %s.key -set_serial %d -days 2 %s%s "
	    "-out %s.crt 2>/dev/null", dir, name, name, cn, name, ca, ca,
	    rand() % 100000 + 2, ext != NULL ? "-extfile " : "",
	    ext != NULL ? ext : "", name);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	assert_non_null(mkdtemp(dir));
	make_cert("default", "default.test");
	make_cert("mail", "mail.example.org");
	make_cert("wild", "wild.example.net");
	make_cert("rogue", "x");
	make_cert("ca", "Test CA");
	make_signed("client", "client", "ca", NULL);
	sh("cd %s && printf 'basicConstraints=critical,CA:TRUE\\n' > ca.ext",
	    dir);
	make_signed("inter", "Test Intermediate", "ca", "ca.ext");
	make_signed("leaf", "leaf.test", "inter", NULL);
	sh("cd %s && cat leaf.crt inter.crt > fullchain.crt && "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "-out other.key 2>/dev/null && echo 'not a PEM file' > junk.pem",
	    dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static void
set(char **field, const char *value)
{
	free(*field);
	*field = value == NULL ? NULL : xstrdup(value);
}

/* Defaults, with default.crt as the certificate. */
static struct config *
cfg_new(void)
{
	struct config *c = config_default();

	set(&c->tls_cert_file, p("default.crt"));
	set(&c->tls_key_file, p("default.key"));
	set(&c->hostname, "mx.test");
	return c;
}

static void
add_sni(struct config *c, const char *name, const char *file)
{
	struct config_sni *s = &c->tls_sni[c->tls_sni_len++];
	char	 buf[64];

	s->name = xstrdup(name);
	snprintf(buf, sizeof(buf), "%s.crt", file);
	s->cert_file = xstrdup(p(buf));
	snprintf(buf, sizeof(buf), "%s.key", file);
	s->key_file = xstrdup(p(buf));
}

static struct tls_ctx *
ctx_ok(const struct config *c, char *fp, size_t fplen)
{
	struct tls_ctx *t = NULL;
	char	 err[ERR_MAX];

	if (tls_check(c, err, sizeof(err)) == -1)
		fail_msg("tls_check: %s", err);
	if (tls_ctx_new(c, &t, fp, fplen, err, sizeof(err)) == -1)
		fail_msg("tls_ctx_new: %s", err);
	assert_non_null(t);
	return t;
}

/* Both tls_check() and tls_ctx_new() fail with every want in err. */
static void
ctx_bad(const struct config *c, const char *want1, const char *want2)
{
	struct tls_ctx *t = (struct tls_ctx *)1;
	char	 err[ERR_MAX];

	for (int i = 0; i < 2; i++) {
		memset(err, 0, sizeof(err));
		if (i == 0)
			assert_int_equal(tls_check(c, err, sizeof(err)), -1);
		else {
			assert_int_equal(tls_ctx_new(c, &t, NULL, 0, err,
			    sizeof(err)), -1);
			assert_null(t);
		}
		if (strstr(err, want1) == NULL ||
		    (want2 != NULL && strstr(err, want2) == NULL))
			fail_msg("want '%s' and '%s' in '%s'", want1,
			    want2 != NULL ? want2 : "", err);
	}
	assert_int_equal(ERR_peek_error(), 0);	/* queue left clean */
}

struct client_opts {
	const char	*sni;		/* NULL: none */
	int		 max_version;	/* 0: none */
	int		 min_version;	/* 0: the default */
	const char	*ciphers;	/* TLS 1.2 list; NULL: default */
	const char	*cert;		/* client certificate name; NULL */
	SSL_SESSION	*session;	/* to resume; NULL */
};

struct conn {
	SSL_CTX	*cctx;
	SSL	*c;
	SSL	*s;
};

/* A client and server SSL joined by a BIO pair; server from t. */
static void
conn_new(struct tls_ctx *t, const struct client_opts *o, struct conn *k)
{
	BIO	*bc, *bs;
	char	 buf[64];

	k->cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(k->cctx);
	if (o->max_version != 0)
		assert_int_equal(SSL_CTX_set_max_proto_version(k->cctx,
		    o->max_version), 1);
	if (o->min_version != 0) {
		assert_int_equal(SSL_CTX_set_min_proto_version(k->cctx,
		    o->min_version), 1);
		SSL_CTX_set_security_level(k->cctx, 0);
	}
	if (o->ciphers != NULL)
		assert_int_equal(SSL_CTX_set_cipher_list(k->cctx, o->ciphers),
		    1);
	if (o->cert != NULL) {
		snprintf(buf, sizeof(buf), "%s.crt", o->cert);
		assert_int_equal(SSL_CTX_use_certificate_file(k->cctx, p(buf),
		    SSL_FILETYPE_PEM), 1);
		snprintf(buf, sizeof(buf), "%s.key", o->cert);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(k->cctx, p(buf),
		    SSL_FILETYPE_PEM), 1);
	}
	k->c = SSL_new(k->cctx);
	k->s = tls_ssl_new(t);
	assert_non_null(k->c);
	assert_non_null(k->s);
	if (o->sni != NULL)
		assert_int_equal(SSL_set_tlsext_host_name(k->c, o->sni), 1);
	if (o->session != NULL)
		assert_int_equal(SSL_set_session(k->c, o->session), 1);
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(k->c, bc, bc);
	SSL_set_bio(k->s, bs, bs);
	SSL_set_connect_state(k->c);
	SSL_set_accept_state(k->s);
}

static bool
want_io(SSL *ssl, int rc)
{
	int	 e = SSL_get_error(ssl, rc);

	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Run both sides until done: 0, or -1 if either side failed. */
static int
conn_handshake(struct conn *k)
{
	int	 rc, rs;

	for (int i = 0; i < 100; i++) {
		rc = SSL_do_handshake(k->c);
		if (rc != 1 && !want_io(k->c, rc))
			goto fail;
		rs = SSL_do_handshake(k->s);
		if (rs != 1 && !want_io(k->s, rs))
			goto fail;
		if (rc == 1 && rs == 1)
			return 0;
	}
fail:
	ERR_clear_error();
	return -1;
}

/* close_notify both ways: SSL_free() without it spoils the session. */
static void
conn_free(struct conn *k)
{
	if (SSL_is_init_finished(k->c) && SSL_is_init_finished(k->s)) {
		(void)SSL_shutdown(k->c);
		(void)SSL_shutdown(k->s);
		(void)SSL_shutdown(k->c);
	}
	ERR_clear_error();
	SSL_free(k->c);
	SSL_free(k->s);
	SSL_CTX_free(k->cctx);
}

/* CN of the certificate the server presented. */
static void
server_cn(SSL *c, char *out, size_t cap)
{
	X509	*x = SSL_get0_peer_certificate(c);

	assert_non_null(x);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, out, (int)cap) > 0);
}

/* Handshake with o against t; the server presented CN want. */
static void
expect_cn(struct tls_ctx *t, const struct client_opts *o, const char *want)
{
	struct conn k;
	char	 cn[256];

	conn_new(t, o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	server_cn(k.c, cn, sizeof(cn));
	if (strcmp(cn, want) != 0)
		fail_msg("SNI '%s': got CN=%s, want CN=%s",
		    o->sni != NULL ? o->sni : "(none)", cn, want);
	conn_free(&k);
}

static void
test_good(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { 0 };
	struct conn k;
	char	 fp[128] = "x", desc[128];
	long	 opts;

	(void)state;
	t = ctx_ok(c, fp, sizeof(fp));
	assert_string_equal(fp, "");	/* only for the self-signed one */
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	tls_describe(k.s, desc, sizeof(desc));
	assert_string_equal(desc, "TLSv1.3 TLS_AES_256_GCM_SHA384");
	tls_peer_subject(k.s, desc, sizeof(desc));
	assert_string_equal(desc, "");
	opts = (long)SSL_get_options(k.s);
	assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
	assert_true(opts & SSL_OP_NO_RENEGOTIATION);
	assert_true(opts & SSL_OP_NO_COMPRESSION);
	assert_false(opts & SSL_OP_NO_TICKET);
	conn_free(&k);

	/* TLS 1.2 with the configured list: ECDHE and AEAD only. */
	o.max_version = TLS1_2_VERSION;
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	tls_describe(k.s, desc, sizeof(desc));
	assert_string_equal(desc, "TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384");
	conn_free(&k);
	o.ciphers = "ECDHE-ECDSA-AES128-SHA";	/* CBC: not in the list */
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), -1);
	conn_free(&k);

	/* Nothing below TLS 1.2, even if the client allows it. */
	o.ciphers = "DEFAULT:@SECLEVEL=0";
	o.min_version = TLS1_VERSION;
	o.max_version = TLS1_1_VERSION;
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), -1);
	conn_free(&k);

	tls_ctx_free(t);
	config_free(c);
}

/* A full chain file: the server sends the intermediate too. */
static void
test_chain(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { 0 };
	struct conn k;
	char	 cn[256];

	(void)state;
	set(&c->tls_cert_file, p("fullchain.crt"));
	set(&c->tls_key_file, p("leaf.key"));
	t = ctx_ok(c, NULL, 0);
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	server_cn(k.c, cn, sizeof(cn));
	assert_string_equal(cn, "leaf.test");
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(k.c)), 2);
	conn_free(&k);
	tls_ctx_free(t);

	/* The intermediate's key is not the leaf's. */
	set(&c->tls_key_file, p("inter.key"));
	ctx_bad(c, "does not match certificate", p("fullchain.crt"));
	config_free(c);
}

static void
test_errors(void **state)
{
	struct config *c = cfg_new();
	char	 want[PATH_MAX + 64];

	(void)state;
	/* KEYFILE: key does not match certificate CERTFILE */
	set(&c->tls_key_file, p("other.key"));
	snprintf(want, sizeof(want), "%s: key does not match certificate %s",
	    p("other.key"), p("default.crt"));
	ctx_bad(c, want, NULL);
	set(&c->tls_key_file, p("mail.key"));
	ctx_bad(c, "does not match", p("mail.key"));

	set(&c->tls_key_file, p("default.key"));
	set(&c->tls_cert_file, p("nope.crt"));
	snprintf(want, sizeof(want), "%s: No such file", p("nope.crt"));
	ctx_bad(c, want, NULL);
	set(&c->tls_cert_file, p("junk.pem"));
	ctx_bad(c, p("junk.pem"), "certificate");
	set(&c->tls_cert_file, p("default.key"));	/* a key, no cert */
	ctx_bad(c, p("default.key"), "certificate");

	set(&c->tls_cert_file, p("default.crt"));
	set(&c->tls_key_file, p("nope.key"));
	snprintf(want, sizeof(want), "%s: No such file", p("nope.key"));
	ctx_bad(c, want, NULL);
	set(&c->tls_key_file, p("junk.pem"));
	ctx_bad(c, p("junk.pem"), "private key");
	set(&c->tls_key_file, p("default.crt"));	/* a cert, no key */
	ctx_bad(c, p("default.crt"), "private key");
	set(&c->tls_key_file, NULL);
	ctx_bad(c, p("default.crt"), "no key_file");

	set(&c->tls_key_file, p("default.key"));
	set(&c->tls_ciphers, "NOPE");
	ctx_bad(c, "[tls] ciphers: 'NOPE'", NULL);
	set(&c->tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");

	set(&c->tls_client_ca_file, p("nope-ca.crt"));
	ctx_bad(c, p("nope-ca.crt"), "No such file");
	set(&c->tls_client_ca_file, p("junk.pem"));
	ctx_bad(c, p("junk.pem"), NULL);
	set(&c->tls_client_ca_file, NULL);

	/* An SNI entry is checked like the default certificate. */
	add_sni(c, "mail.example.org", "mail");
	add_sni(c, "b.example.org", "nope");
	ctx_bad(c, p("nope.crt"), "No such file");
	free(c->tls_sni[1].key_file);
	c->tls_sni[1].key_file = xstrdup(p("other.key"));
	free(c->tls_sni[1].cert_file);
	c->tls_sni[1].cert_file = xstrdup(p("wild.crt"));
	ctx_bad(c, "does not match certificate", p("other.key"));
	config_free(c);
}

static void
test_sni(void **state)
{
	static const struct {
		const char	*sni;
		const char	*cn;
	} cases[] = {
		{ NULL, "default.test" },
		{ "mail.example.org", "mail.example.org" },
		{ "MAIL.Example.ORG", "mail.example.org" },
		{ "x.example.org", "default.test" },
		{ "example.org", "default.test" },
		{ "a.example.net", "wild.example.net" },
		{ "Mail-2.EXAMPLE.net", "wild.example.net" },
		{ "a.b.example.net", "default.test" },	/* one label only */
		{ "example.net", "default.test" },
		{ "xexample.net", "default.test" },
		{ "exact.example.net", "mail.example.org" },	/* exact wins */
		{ "unknown.test", "default.test" },
	};
	struct config *c = cfg_new();
	struct tls_ctx *t;

	(void)state;
	add_sni(c, "*.example.net", "wild");
	add_sni(c, "mail.example.org", "mail");
	add_sni(c, "exact.example.net", "mail");
	t = ctx_ok(c, NULL, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct client_opts o = { .sni = cases[i].sni };

		expect_cn(t, &o, cases[i].cn);
		o.max_version = TLS1_2_VERSION;
		expect_cn(t, &o, cases[i].cn);
	}
	tls_ctx_free(t);
	config_free(c);
}

/* Sessions made before a reload outlive the tls_ctx they came from. */
static void
test_refcount(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { .sni = "mail.example.org" };
	struct conn k;
	char	 cn[256];

	(void)state;
	add_sni(c, "mail.example.org", "mail");
	t = ctx_ok(c, NULL, 0);
	conn_new(t, &o, &k);
	tls_ctx_free(t);	/* SIGHUP: the owner lets go first */
	assert_int_equal(conn_handshake(&k), 0);	/* SNI still works */
	server_cn(k.c, cn, sizeof(cn));
	assert_string_equal(cn, "mail.example.org");
	conn_free(&k);
	config_free(c);
}

static void
test_client_cert(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { 0 };
	struct conn k;
	SSL_SESSION *sess;
	char	 subj[256];
	unsigned char b;

	(void)state;
	set(&c->tls_client_ca_file, p("ca.crt"));
	t = ctx_ok(c, NULL, 0);

	/* No certificate: still welcome. */
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	tls_peer_subject(k.s, subj, sizeof(subj));
	assert_string_equal(subj, "");
	conn_free(&k);

	o.cert = "rogue";
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	tls_peer_subject(k.s, subj, sizeof(subj));
	assert_string_equal(subj, "CN=x unverified");
	conn_free(&k);

	o.cert = "client";
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	tls_peer_subject(k.s, subj, sizeof(subj));
	assert_string_equal(subj, "CN=client verified");
	tls_peer_subject(k.s, subj, 5);		/* cut, terminated */
	assert_string_equal(subj, "CN=c");
	/* Read the TLS 1.3 tickets the server sent after the handshake. */
	assert_int_equal(SSL_read(k.c, &b, 1), -1);
	sess = SSL_get1_session(k.c);
	assert_non_null(sess);
	assert_true(SSL_SESSION_is_resumable(sess));
	conn_free(&k);

	/* Resumed: no certificate sent again, the result is remembered. */
	o.session = sess;
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	assert_true(SSL_session_reused(k.s));
	tls_peer_subject(k.s, subj, sizeof(subj));
	assert_string_equal(subj, "CN=client verified");
	conn_free(&k);
	SSL_SESSION_free(sess);
	tls_ctx_free(t);
	config_free(c);
}

/* TLS 1.2 resumption with the default ticket keys. */
static void
test_resume12(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { .max_version = TLS1_2_VERSION };
	struct conn k;
	SSL_SESSION *sess;

	(void)state;
	t = ctx_ok(c, NULL, 0);
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	assert_false(SSL_session_reused(k.s));
	sess = SSL_get1_session(k.c);
	assert_true(SSL_SESSION_has_ticket(sess));
	conn_free(&k);
	o.session = sess;
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	assert_true(SSL_session_reused(k.s));
	conn_free(&k);
	SSL_SESSION_free(sess);
	tls_ctx_free(t);
	config_free(c);
}

static void
test_exporter(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { 0 };
	struct conn k;
	unsigned char bc[32], bs[32], zero[32] = { 0 }, first[32];

	(void)state;
	t = ctx_ok(c, NULL, 0);

	conn_new(t, &o, &k);
	assert_int_equal(tls_exporter_binding(k.s, bs), -1);	/* not yet */
	assert_int_equal(conn_handshake(&k), 0);
	assert_int_equal(tls_exporter_binding(k.c, bc), 0);
	assert_int_equal(tls_exporter_binding(k.s, bs), 0);
	assert_memory_equal(bc, bs, 32);
	assert_memory_not_equal(bs, zero, 32);
	memcpy(first, bs, 32);
	conn_free(&k);

	/* Another connection, another binding. */
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	assert_int_equal(tls_exporter_binding(k.s, bs), 0);
	assert_memory_not_equal(bs, first, 32);
	conn_free(&k);

	o.max_version = TLS1_2_VERSION;
	conn_new(t, &o, &k);
	assert_int_equal(conn_handshake(&k), 0);
	assert_int_equal(tls_exporter_binding(k.c, bc), -1);
	assert_int_equal(tls_exporter_binding(k.s, bs), -1);
	conn_free(&k);
	tls_ctx_free(t);
	config_free(c);
}

static void
test_selfsigned(void **state)
{
	struct config *c = cfg_new();
	struct tls_ctx *t;
	struct client_opts o = { .sni = "anything.test" };
	struct stat st;
	char	 fp[128], fp2[128], crt[PATH_MAX], key[PATH_MAX];

	(void)state;
	set(&c->tls_cert_file, NULL);
	set(&c->tls_key_file, NULL);
	set(&c->tls_dir, p("self/tls"));
	snprintf(crt, sizeof(crt), "%s/selfsigned.crt", p("self/tls"));
	snprintf(key, sizeof(key), "%s/selfsigned.key", p("self/tls"));

	/* tls_check() creates nothing. */
	{
		char	 err[ERR_MAX];

		assert_int_equal(tls_check(c, err, sizeof(err)), 0);
		assert_int_equal(stat(p("self"), &st), -1);
	}

	t = ctx_ok(c, fp, sizeof(fp));
	assert_int_equal(strlen(fp), FP_LEN);
	for (size_t i = 0; i < FP_LEN; i++)
		assert_true(i % 3 == 2 ? fp[i] == ':' :
		    strchr("0123456789ABCDEF", fp[i]) != NULL);
	assert_int_equal(stat(p("self/tls"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(crt, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	expect_cn(t, &o, "mx.test");
	tls_ctx_free(t);
	/* the openssl command agrees on the fingerprint and the names */
	sh("openssl x509 -in %s -noout -fingerprint -sha256 | grep -q '=%s$'",
	    crt, fp);
	sh("openssl x509 -in %s -noout -text | grep -q 'DNS:mx.test'", crt);
	sh("openssl x509 -in %s -noout -text | grep -q 'Version: 3'", crt);
	sh("openssl x509 -in %s -noout -text | grep -q 'ecdsa-with-SHA256'",
	    crt);
	sh("openssl x509 -in %s -noout -checkend 315000000 >/dev/null", crt);
	sh("openssl pkey -in %s -noout -text | grep -q 'prime256v1'", key);
	sh("! ls -A %s | grep -q '^\\.'", p("self/tls"));	/* no temp */

	/* Reused after. */
	t = ctx_ok(c, fp2, sizeof(fp2));
	assert_string_equal(fp2, fp);
	tls_ctx_free(t);

	/* A torn pair (the key of another) is made again. */
	sh("cp %s %s", p("other.key"), key);
	t = ctx_ok(c, fp2, sizeof(fp2));
	assert_string_not_equal(fp2, fp);
	tls_ctx_free(t);
	memcpy(fp, fp2, sizeof(fp));

	/* So is one for an old host name. */
	set(&c->hostname, "mx2.test");
	t = ctx_ok(c, fp2, sizeof(fp2));
	assert_string_not_equal(fp2, fp);
	expect_cn(t, &o, "mx2.test");
	tls_ctx_free(t);

	/* A fingerprint buffer too small gets "". */
	t = ctx_ok(c, fp2, FP_LEN);
	assert_string_equal(fp2, "");
	tls_ctx_free(t);
	config_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_chain),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_client_cert),
		cmocka_unit_test(test_resume12),
		cmocka_unit_test(test_exporter),
		cmocka_unit_test(test_selfsigned),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
