/*
 * tls.c: server TLS contexts: certificate loading, SNI, client
 * certificates, the self-signed fallback. Blocking file I/O: startup and
 * SIGHUP only. Knows nothing of SMTP or sockets: sessions get an SSL *.
 */
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/util.h"

#define TLS_SID_CTX	"petrel"	/* sessions resume only here */
#define TLS_SELF_CRT	"selfsigned.crt"
#define TLS_SELF_KEY	"selfsigned.key"
#define TLS_SELF_DAYS	3650		/* self-signed: 10 years */
#define TLS_SERIAL_BITS	159		/* RFC 5280 4.1.2.2: positive,
					   at most 20 octets */
#define TLS_CN_MAX	64		/* RFC 5280 A.1: ub-common-name */
#define TLS_NAME_MAX	255		/* RFC 6066 3: a DNS host name */
#define TLS_BINDING_LEN	32		/* RFC 9266 2 */
#define TLS_SUBJECT_MAX	512		/* subject text kept for logs */

struct tls_sni_ctx {
	char		*name;		/* owned, lowercase; "*.x" allowed */
	SSL_CTX		*ctx;		/* owned reference */
};

struct tls_ctx {
	atomic_int	 refs;		/* the owner's + one per live SSL */
	SSL_CTX		*def;		/* owned: no SNI or no name matches */
	struct tls_sni_ctx sni[CONFIG_SNI_MAX];
	size_t		 sni_len;
};

/*
 * The ex_data slot on each SSL that holds its reference to the tls_ctx;
 * SSL_free() drops it through tls_ex_free(), so the SNI callback never
 * sees a freed tls_ctx after a reload. OpenSSL's registration, set once
 * and read only after: not program state.
 */
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static int	 tls_ex_idx = -1;

/* Called by SSL_free() for every SSL, with ptr NULL if never set. */
static void
tls_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	tls_ctx_free(ptr);
}

static void
tls_init_once(void)
{
	tls_ex_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, tls_ex_free);
}

/* Never prompt on the terminal for a passphrase: encrypted keys fail. */
static int
tls_no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * Client certificates are asked for, never required: accept every
 * chain. OpenSSL still records the result (SSL_get_verify_result(), kept
 * in the session so resumed ones report it too); tls_peer_subject()
 * reports it for the log.
 */
static int
tls_verify_accept(int preverify_ok, X509_STORE_CTX *store)
{
	(void)preverify_ok;
	(void)store;
	return 1;
}

/*
 * "FILE: what (openssl reason)" into err (without "FILE: " if file is
 * NULL), then clear OpenSSL's error queue so the next failure reports
 * its own reason.
 */
static void
tls_error(char *err, size_t errlen, const char *file, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

	(void)snprintf(err, errlen, "%s%s%s%s%s%s", file != NULL ? file : "",
	    file != NULL ? ": " : "", what, why != NULL ? " (" : "",
	    why != NULL ? why : "", why != NULL ? ")" : "");
	ERR_clear_error();
}

/* 0 if file can be opened for reading, else -1 with err saying why. */
static int
tls_readable(const char *file, char *err, size_t errlen)
{
	FILE	*f;

	if ((f = fopen(file, "r")) == NULL) {
		(void)snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	(void)fclose(f);	/* opened read only: nothing to lose */
	return 0;
}

/* A new SSL_CTX with every setting except the certificate, or NULL. */
static SSL_CTX *
tls_ssl_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *cas;
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_error(err, errlen, NULL, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password);
	/* RFC 8996: nothing older than TLS 1.2; no maximum. */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_error(err, errlen, NULL, "cannot require TLS 1.2");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	/* The TLS 1.2 list only: TLS 1.3 keeps OpenSSL's default suites. */
	if (SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
		(void)snprintf(err, errlen,
		    "[tls] ciphers: '%s' selects no cipher", cfg->tls_ciphers);
		ERR_clear_error();
		goto fail;
	}
	/* Session tickets stay on, with OpenSSL's own keys (new ones on
	   each reload); a session id context is what lets sessions with
	   client certificates resume. */
	if (SSL_CTX_set_session_id_context(ctx,
	    (const unsigned char *)TLS_SID_CTX, sizeof(TLS_SID_CTX) - 1)
	    != 1) {
		tls_error(err, errlen, NULL, "cannot set the session context");
		goto fail;
	}
	if (cfg->tls_client_ca_file == NULL)
		return ctx;
	if (tls_readable(cfg->tls_client_ca_file, err, errlen) == -1)
		goto fail;
	if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca_file,
	    NULL) != 1) {
		tls_error(err, errlen, cfg->tls_client_ca_file,
		    "cannot load CA certificates");
		goto fail;
	}
	if ((cas = SSL_load_client_CA_file(cfg->tls_client_ca_file)) ==
	    NULL) {
		tls_error(err, errlen, cfg->tls_client_ca_file,
		    "no CA certificate in file");
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, cas);	/* takes cas */
	/* PEER without FAIL_IF_NO_PEER_CERT: clients without one connect */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_accept);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Certificate chain and matching private key, both PEM, into ctx. */
static int
tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err,
    size_t errlen)
{
	BIO	*bio = NULL;
	EVP_PKEY *pkey = NULL;
	X509	*leaf;
	int	 rc = -1;

	if (tls_readable(cert, err, errlen) == -1)
		goto out;
	/* The leaf first, then its intermediates (RFC 8446 4.4.2). */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_error(err, errlen, cert,
		    "cannot load PEM certificate chain");
		goto out;
	}
	if (tls_readable(key, err, errlen) == -1)
		goto out;
	if ((bio = BIO_new_file(key, "r")) == NULL ||
	    (pkey = PEM_read_bio_PrivateKey(bio, NULL, tls_no_password,
	    NULL)) == NULL) {
		tls_error(err, errlen, key,
		    "cannot load PEM private key (encrypted keys are not "
		    "supported)");
		goto out;
	}
	/* Checked here: SSL_CTX_use_PrivateKey() fails on a mismatch with
	   a reason that names neither file. */
	if ((leaf = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    X509_check_private_key(leaf, pkey) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		(void)snprintf(err, errlen,
		    "%s: key does not match certificate %s", key, cert);
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

/* SHA-256 of cert's DER as "AA:BB:..."; "" if it does not fit. */
static void
tls_fingerprint(X509 *cert, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t	 off = 0;

	if (cap == 0)
		return;
	out[0] = '\0';
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &n) != 1)
		return;
	if (cap < (size_t)n * 3) {	/* "XX:" per byte, less one, + NUL */
		ERR_clear_error();
		return;
	}
	for (unsigned int i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, cap - off, "%s%02X",
		    i == 0 ? "" : ":", md[i]);
}

/* Add extension nid with value (OpenSSL config syntax) to x. */
static int
tls_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext;
	int	 rc;

	if ((ext = X509V3_EXT_conf_nid(NULL, v3, nid, value)) == NULL)
		return -1;
	rc = X509_add_ext(x, ext, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ext);
	return rc;
}

/*
 * A new EC P-256 key and a self-signed X.509 v3 certificate for host,
 * valid TLS_SELF_DAYS, signed with SHA-256. Caller frees both.
 */
static int
tls_self_make(const char *host, EVP_PKEY **pkeyp, X509 **certp)
{
	EVP_PKEY *pkey = NULL;
	X509	*x = NULL;
	BIGNUM	*serial = NULL;
	X509_NAME *name;
	X509V3_CTX v3;
	char	 san[TLS_NAME_MAX + 32];
	bool	 cn = strlen(host) <= TLS_CN_MAX;
	int	 rc = -1;

	if ((pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
	    (x = X509_new()) == NULL || (serial = BN_new()) == NULL)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    BN_rand(serial, TLS_SERIAL_BITS, BN_RAND_TOP_ANY,
	    BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TLS_SELF_DAYS, 0,
	    NULL) == NULL ||
	    X509_set_pubkey(x, pkey) != 1)
		goto out;
	name = X509_get_subject_name(x);
	if (cn && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0) != 1)
		goto out;
	if (X509_set_issuer_name(x, name) != 1)
		goto out;
	/* RFC 5280 4.2.1.6: critical when the subject is empty */
	(void)snprintf(san, sizeof(san), "%sDNS:%s", cn ? "" : "critical,",
	    host);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (tls_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE")
	    == -1 ||
	    tls_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature")
	    == -1 ||
	    tls_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") == -1 ||
	    tls_add_ext(x, &v3, NID_subject_key_identifier, "hash") == -1 ||
	    tls_add_ext(x, &v3, NID_subject_alt_name, san) == -1)
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	*pkeyp = pkey;
	*certp = x;
	pkey = NULL;
	x = NULL;
	rc = 0;
out:
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/*
 * Replace dir/name with the len bytes at data, mode mode: a temp file,
 * fsync, rename, so a reader sees the old file or the new one. The
 * caller syncs dir.
 */
static int
tls_write_file(const char *dir, const char *name, const void *data,
    size_t len, mode_t mode, char *err, size_t errlen)
{
	char	 path[PATH_MAX], tmp[PATH_MAX];
	int	 fd = -1, rc = -1, n;
	bool	 made = false;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >=
	    sizeof(tmp)) {
		(void)snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	/* mkstemp() creates it 0600: the key is never readable by others */
	if ((fd = mkstemp(tmp)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	made = true;
	if (fchmod(fd, mode) == -1 || io_write_all(fd, data, len) == -1 ||
	    fsync(fd) == -1) {
		(void)snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	n = close(fd);
	fd = -1;
	if (n == -1 || rename(tmp, path) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	made = false;
	rc = 0;
out:
	if (fd != -1)
		(void)close(fd);	/* failing anyway */
	if (made)
		(void)unlink(tmp);	/* no half-written file left behind */
	return rc;
}

/* PEM of pkey (private) or cert into dir/name. */
static int
tls_write_pem(const char *dir, const char *name, EVP_PKEY *pkey,
    X509 *cert, char *err, size_t errlen)
{
	BIO	*bio;
	char	*data;
	long	 len;
	int	 rc = -1;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		goto fail;
	if (pkey != NULL ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL) != 1 : PEM_write_bio_X509(bio, cert) != 1)
		goto fail;
	if ((len = BIO_get_mem_data(bio, &data)) <= 0)
		goto fail;
	rc = tls_write_file(dir, name, data, (size_t)len,
	    pkey != NULL ? 0600 : 0644, err, errlen);
	BIO_free(bio);
	return rc;
fail:
	tls_error(err, errlen, dir, "cannot encode the self-signed files");
	BIO_free(bio);
	return -1;
}

/* Create the self-signed key and certificate in cfg->tls_dir. */
static int
tls_self_create(const struct config *cfg, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	X509	*cert = NULL;
	int	 rc = -1;

	if (mkdir_p(cfg->tls_dir, 0700) == -1) {
		(void)snprintf(err, errlen, "%s: %s", cfg->tls_dir,
		    strerror(errno));
		goto out;
	}
	if (tls_self_make(cfg->hostname, &pkey, &cert) == -1) {
		tls_error(err, errlen, cfg->tls_dir,
		    "cannot make a self-signed certificate");
		goto out;
	}
	/* Key first: a crash between the renames leaves a pair that does
	   not match, which tls_self_load() replaces. */
	if (tls_write_pem(cfg->tls_dir, TLS_SELF_KEY, pkey, NULL, err,
	    errlen) == -1 ||
	    tls_write_pem(cfg->tls_dir, TLS_SELF_CRT, NULL, cert, err,
	    errlen) == -1)
		goto out;
	if (fsync_dir(cfg->tls_dir) == -1) {
		(void)snprintf(err, errlen, "%s: %s", cfg->tls_dir,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return rc;
}

/* The existing self-signed pair loads, matches and names the host. */
static bool
tls_self_usable(const char *cert, const char *key, const char *host)
{
	SSL_CTX	*ctx;
	X509	*leaf;
	char	 err[256];
	bool	 ok = false;

	if (access(cert, F_OK) == -1 || access(key, F_OK) == -1)
		return false;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto out;
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_password);
	if (tls_load_pair(ctx, cert, key, err, sizeof(err)) == -1)
		goto out;
	leaf = SSL_CTX_get0_certificate(ctx);
	ok = X509_check_host(leaf, host, 0, 0, NULL) == 1;
out:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return ok;
}

/*
 * The self-signed certificate for cfg->hostname into ctx, made on first
 * use, and made again if it is unusable or names another host.
 */
static int
tls_self_load(const struct config *cfg, SSL_CTX *ctx, char *err,
    size_t errlen)
{
	char	 cert[PATH_MAX], key[PATH_MAX];

	if ((size_t)snprintf(cert, sizeof(cert), "%s/%s", cfg->tls_dir,
	    TLS_SELF_CRT) >= sizeof(cert) ||
	    (size_t)snprintf(key, sizeof(key), "%s/%s", cfg->tls_dir,
	    TLS_SELF_KEY) >= sizeof(key)) {
		(void)snprintf(err, errlen, "%s: path too long", cfg->tls_dir);
		return -1;
	}
	if (!tls_self_usable(cert, key, cfg->hostname) &&
	    tls_self_create(cfg, err, errlen) == -1)
		return -1;
	return tls_load_pair(ctx, cert, key, err, errlen);
}

/* pattern ("name" or "*.domain") matches name (RFC 6125 6.4.3). */
static bool
tls_name_match(const char *pattern, const char *name)
{
	const char *dot;

	if (strncmp(pattern, "*.", 2) != 0)
		return strcasecmp(pattern, name) == 0;
	/* the '*' stands for exactly one whole, non-empty label */
	if ((dot = strchr(name, '.')) == NULL || dot == name)
		return false;
	return strcasecmp(pattern + 2, dot + 1) == 0;
}

/* The context for SNI name: an exact name first, then a wildcard. */
static SSL_CTX *
tls_sni_find(const struct tls_ctx *t, const char *name)
{
	if (strlen(name) > TLS_NAME_MAX)
		return NULL;
	for (size_t i = 0; i < t->sni_len; i++)
		if (t->sni[i].name[0] != '*' &&
		    tls_name_match(t->sni[i].name, name))
			return t->sni[i].ctx;
	for (size_t i = 0; i < t->sni_len; i++)
		if (t->sni[i].name[0] == '*' &&
		    tls_name_match(t->sni[i].name, name))
			return t->sni[i].ctx;
	return NULL;
}

/* ClientHello server_name (RFC 6066 3): switch to that certificate. */
static int
tls_servername(SSL *ssl, int *alert, void *arg)
{
	struct tls_ctx *t = SSL_get_ex_data(ssl, tls_ex_idx);
	const char *name;
	SSL_CTX	*ctx;

	(void)arg;
	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (t == NULL || name == NULL ||
	    (ctx = tls_sni_find(t, name)) == NULL)
		return SSL_TLSEXT_ERR_NOACK;	/* the default certificate */
	if (SSL_set_SSL_CTX(ssl, ctx) == NULL) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Build every context; self-signed files are made only if create. */
static int
tls_build(const struct config *cfg, bool create, struct tls_ctx **out,
    char *fingerprint, size_t fplen, char *err, size_t errlen)
{
	struct tls_ctx *t;
	SSL_CTX	*ctx;
	int	 rc = -1;

	*out = NULL;
	if (fingerprint != NULL && fplen > 0)
		fingerprint[0] = '\0';
	if (errlen > 0)
		err[0] = '\0';
	(void)pthread_once(&tls_once, tls_init_once);
	if (tls_ex_idx == -1) {
		tls_error(err, errlen, NULL, "cannot register TLS data");
		return -1;
	}
	t = xcalloc(1, sizeof(*t));
	atomic_init(&t->refs, 1);
	if ((t->def = tls_ssl_ctx_new(cfg, err, errlen)) == NULL)
		goto out;
	if (cfg->tls_cert_file != NULL) {
		if (cfg->tls_key_file == NULL) {
			(void)snprintf(err, errlen, "%s: no key_file set",
			    cfg->tls_cert_file);
			goto out;
		}
		if (tls_load_pair(t->def, cfg->tls_cert_file,
		    cfg->tls_key_file, err, errlen) == -1)
			goto out;
	} else if (create) {
		if (tls_self_load(cfg, t->def, err, errlen) == -1)
			goto out;
		if (fingerprint != NULL)
			tls_fingerprint(SSL_CTX_get0_certificate(t->def),
			    fingerprint, fplen);
	}
	for (size_t i = 0; i < cfg->tls_sni_len; i++) {
		const struct config_sni *s = &cfg->tls_sni[i];

		if ((ctx = tls_ssl_ctx_new(cfg, err, errlen)) == NULL)
			goto out;
		t->sni[t->sni_len].ctx = ctx;
		t->sni[t->sni_len].name = str_lower(xstrdup(s->name));
		t->sni_len++;
		if (tls_load_pair(ctx, s->cert_file, s->key_file, err, errlen)
		    == -1)
			goto out;
	}
	SSL_CTX_set_tlsext_servername_callback(t->def, tls_servername);
	*out = t;
	t = NULL;
	rc = 0;
out:
	tls_ctx_free(t);
	return rc;
}

int
tls_ctx_new(const struct config *cfg, struct tls_ctx **out,
    char *fingerprint, size_t fplen, char *err, size_t errlen)
{
	return tls_build(cfg, true, out, fingerprint, fplen, err, errlen);
}

int
tls_check(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *t;

	if (tls_build(cfg, false, &t, NULL, 0, err, errlen) == -1)
		return -1;
	tls_ctx_free(t);
	return 0;
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL || atomic_fetch_sub(&t->refs, 1) > 1)
		return;
	/* Live SSL objects hold their own SSL_CTX references. */
	SSL_CTX_free(t->def);
	for (size_t i = 0; i < t->sni_len; i++) {
		free(t->sni[i].name);
		SSL_CTX_free(t->sni[i].ctx);
	}
	free(t);
}

SSL *
tls_ssl_new(struct tls_ctx *t)
{
	SSL	*ssl;

	if ((ssl = SSL_new(t->def)) == NULL)
		return NULL;
	atomic_fetch_add(&t->refs, 1);
	if (SSL_set_ex_data(ssl, tls_ex_idx, t) != 1) {
		SSL_free(ssl);		/* slot empty: no reference dropped */
		tls_ctx_free(t);
		return NULL;
	}
	return ssl;
}

void
tls_describe(SSL *ssl, char *out, size_t cap)
{
	(void)snprintf(out, cap, "%s %s", SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl));
}

void
tls_peer_subject(SSL *ssl, char *out, size_t cap)
{
	X509	*peer;
	BIO	*bio;
	char	*text;
	char	 subject[TLS_SUBJECT_MAX];
	long	 len;

	if (cap == 0)
		return;
	out[0] = '\0';
	if ((peer = SSL_get0_peer_certificate(ssl)) == NULL)
		return;
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		ERR_clear_error();
		return;
	}
	/* RFC 2253 form, "CN=client,O=Example"; then escaped for logs,
	   as it is the client's text */
	if (X509_NAME_print_ex(bio, X509_get_subject_name(peer), 0,
	    XN_FLAG_RFC2253) >= 0 &&
	    (len = BIO_get_mem_data(bio, &text)) >= 0) {
		str_escape(text, (size_t)len, subject, sizeof(subject));
		(void)snprintf(out, cap, "%s %s", subject,
		    SSL_get_verify_result(ssl) == X509_V_OK ? "verified" :
		    "unverified");
	}
	ERR_clear_error();
	BIO_free(bio);
}

int
tls_exporter_binding(SSL *ssl, unsigned char out[32])
{
	static const char label[] = "EXPORTER-Channel-Binding";

	/* RFC 9266 3: TLS 1.2 would need extended master secret (RFC
	   7627); petrel offers the binding on TLS 1.3 only. */
	if (!SSL_is_init_finished(ssl) || SSL_version(ssl) != TLS1_3_VERSION)
		return -1;
	if (SSL_export_keying_material(ssl, out, TLS_BINDING_LEN, label,
	    sizeof(label) - 1, NULL, 0, 0) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}
