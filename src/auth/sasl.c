/*
 * sasl.c: server side of the SASL mechanisms for SMTP AUTH: PLAIN, LOGIN,
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS. Pure message handling: no I/O,
 * no logging, no user lookups; the caller checks passwords.
 */
#include "auth/sasl.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/util.h"

#define SASL_SHA256_LEN		32
#define SASL_CNONCE_MAX		256	/* client nonce bytes we accept */
#define SASL_SNONCE_RAW		24	/* random bytes in the server nonce */
#define SASL_SNONCE_MAX		64	/* server nonce chars (b64 of 24: 32) */
#define SASL_SALT_FAKE		16	/* salt bytes for unknown users */
#define SASL_SF_MAX		512	/* server-first message */
#define SASL_OUT_MAX		1024	/* a base64 challenge */
#define SASL_CB_NAME		"tls-exporter"	/* RFC 9266 */
#define SASL_SCRAM_PREFIX	"scram-sha-256:"

/* Challenges of the LOGIN mechanism: "Username:" and "Password:". */
#define SASL_LOGIN_USER		"VXNlcm5hbWU6"
#define SASL_LOGIN_PASS		"UGFzc3dvcmQ6"

enum sasl_state {
	SASL_STATE_START,	/* nothing received yet */
	SASL_STATE_FIRST,	/* sent an empty challenge: PLAIN message or
				   SCRAM client-first next */
	SASL_STATE_LOGIN_USER,	/* sent "Username:" */
	SASL_STATE_LOGIN_PASS,	/* sent "Password:" */
	SASL_STATE_CHECK,	/* caller checks the password */
	SASL_STATE_SCRAM_USER,	/* caller looks the SCRAM user up */
	SASL_STATE_SCRAM_FINAL,	/* sent server-first */
	SASL_STATE_SCRAM_ACK,	/* sent server-final, want an empty reply */
	SASL_STATE_DONE,	/* authenticated */
	SASL_STATE_FAILED,
};

struct sasl {
	enum sasl_mech	 mech;
	enum sasl_state	 state;
	unsigned char	 cb[SASL_CB_MAX];	/* tls-exporter data */
	size_t		 cb_len;		/* 0: no channel binding */
	char		 user[SASL_USER_MAX + 1];	/* authcid */
	char		 authzid[SASL_USER_MAX + 1];
	char		 pass[SASL_PASS_MAX + 1];	/* wiped when done */
	char		 out[SASL_OUT_MAX];	/* the challenge handed out */

	/* SCRAM */
	char		 cbflag;		/* 'n', 'y' or 'p' */
	char		*gs2_header;		/* owned: "n,," etc. as sent */
	size_t		 gs2_len;
	char		*first_bare;		/* owned: client-first-bare */
	size_t		 first_bare_len;
	char		 nonce[SASL_CNONCE_MAX + SASL_SNONCE_MAX + 1];
	size_t		 cnonce_len;		/* client part of nonce */
	char		 server_first[SASL_SF_MAX];
	struct sasl_scram_creds creds;		/* wiped when done */
	bool		 fake;			/* unknown user: must fail */
	char		 test_nonce[SASL_SNONCE_MAX + 1]; /* "" unless set */
};

static const struct {
	enum sasl_mech	 mech;
	const char	*name;
} sasl_mechs[] = {
	{ SASL_MECH_PLAIN, "PLAIN" },
	{ SASL_MECH_LOGIN, "LOGIN" },
	{ SASL_MECH_SCRAM_SHA_256, "SCRAM-SHA-256" },
	{ SASL_MECH_SCRAM_SHA_256_PLUS, "SCRAM-SHA-256-PLUS" },
};

/* Per-process key for the fake salts of unknown users (RFC 5802 9): the
   same unknown name always gets the same salt, and nobody can tell it
   from a real one. Set once, read-only afterwards. */
static CRYPTO_ONCE	 sasl_fake_once = CRYPTO_ONCE_STATIC_INIT;
static unsigned char	 sasl_fake_key[32];

static void
sasl_random(unsigned char *buf, size_t len)
{
	/* Without randomness no nonce is safe: stop rather than go on. */
	if (RAND_bytes(buf, (int)len) != 1)
		abort();
}

static void
sasl_fake_init(void)
{
	sasl_random(sasl_fake_key, sizeof(sasl_fake_key));
}

static void
sasl_hmac(const unsigned char *key, size_t keylen, const void *data,
    size_t len, unsigned char out[SASL_SHA256_LEN])
{
	unsigned int olen = SASL_SHA256_LEN;

	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &olen) ==
	    NULL || olen != SASL_SHA256_LEN)
		abort();
}

static void
sasl_sha256(const void *data, size_t len, unsigned char out[SASL_SHA256_LEN])
{
	unsigned int olen = SASL_SHA256_LEN;

	if (EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) != 1 ||
	    olen != SASL_SHA256_LEN)
		abort();
}

/* The only place that sets the state; failing wipes every secret. */
static void
sasl_enter(struct sasl *s, enum sasl_state st)
{
	s->state = st;
	if (st == SASL_STATE_FAILED || st == SASL_STATE_DONE) {
		OPENSSL_cleanse(s->pass, sizeof(s->pass));
		OPENSSL_cleanse(&s->creds, sizeof(s->creds));
	}
}

enum sasl_mech
sasl_mech_parse(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_LEN(sasl_mechs); i++)
		if (strlen(sasl_mechs[i].name) == len &&
		    str_case_prefix(name, len, sasl_mechs[i].name))
			return sasl_mechs[i].mech;
	return SASL_MECH_NONE;
}

const char *
sasl_mech_name(enum sasl_mech m)
{
	for (size_t i = 0; i < ARRAY_LEN(sasl_mechs); i++)
		if (sasl_mechs[i].mech == m)
			return sasl_mechs[i].name;
	return "NONE";
}

struct sasl *
sasl_new(enum sasl_mech m, const unsigned char *cb, size_t cb_len)
{
	struct sasl *s;

	assert(m != SASL_MECH_NONE);
	assert(cb_len <= SASL_CB_MAX);
	s = xcalloc(1, sizeof(*s));
	s->mech = m;
	if (cb != NULL && cb_len > 0) {
		memcpy(s->cb, cb, cb_len);
		s->cb_len = cb_len;
	}
	sasl_enter(s, SASL_STATE_START);
	return s;
}

void
sasl_free(struct sasl *s)
{
	if (s == NULL)
		return;
	if (s->first_bare != NULL) {
		OPENSSL_cleanse(s->first_bare, s->first_bare_len);
		free(s->first_bare);
	}
	free(s->gs2_header);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

const char *
sasl_user(const struct sasl *s)
{
	return s->user;
}

const char *
sasl_authzid(const struct sasl *s)
{
	return s->authzid;
}

const char *
sasl_password(const struct sasl *s)
{
	return s->pass;
}

void
sasl_test_set_nonce(struct sasl *s, const char *nonce)
{
	size_t	 len = strlen(nonce);

	assert(len > 0 && len <= SASL_SNONCE_MAX && strchr(nonce, ',') == NULL);
	memcpy(s->test_nonce, nonce, len + 1);
}

/* Base64 (RFC 4648 4) */

static int
sasl_b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict: the length is a multiple of 4, no whitespace, '=' only as the
 * padding at the end, and the bits padding drops are zero (RFC 4648 3.5),
 * so every byte string has exactly one accepted encoding.
 */
long
sasl_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t	 pad = 0, need, o = 0;

	if (len % 4 != 0)
		return -1;
	if (len == 0)
		return 0;
	if (in[len - 1] == '=') {
		pad = 1;
		if (in[len - 2] == '=')
			pad = 2;
	}
	need = len / 4 * 3 - pad;
	if (need > cap)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int	 v[4];

		for (size_t j = 0; j < 4; j++) {
			if (i + j >= len - pad)
				v[j] = 0;
			else if ((v[j] = sasl_b64_val((unsigned char)in[i + j]))
			    < 0)
				return -1;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (o < need)
			out[o++] = (unsigned char)((v[1] & 0x0f) << 4 |
			    v[2] >> 2);
		if (o < need)
			out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	if ((pad == 2 && (sasl_b64_val((unsigned char)in[len - 3]) & 0x0f)) ||
	    (pad == 1 && (sasl_b64_val((unsigned char)in[len - 2]) & 0x03)))
		return -1;
	return (long)need;
}

long
sasl_b64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t	 i, o = 0;

	if (len > (SIZE_MAX - 1) / 4 || cap < (len + 2) / 3 * 4 + 1)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		out[o++] = alphabet[in[i] >> 2];
		out[o++] = alphabet[(in[i] & 0x03) << 4 | in[i + 1] >> 4];
		out[o++] = alphabet[(in[i + 1] & 0x0f) << 2 | in[i + 2] >> 6];
		out[o++] = alphabet[in[i + 2] & 0x3f];
	}
	if (i < len) {
		out[o++] = alphabet[in[i] >> 2];
		if (i + 1 < len) {
			out[o++] = alphabet[(in[i] & 0x03) << 4 |
			    in[i + 1] >> 4];
			out[o++] = alphabet[(in[i + 1] & 0x0f) << 2];
		} else {
			out[o++] = alphabet[(in[i] & 0x03) << 4];
			out[o++] = '=';
		}
		out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

/* Set the challenge to the base64 of data. */
static enum sasl_status
sasl_challenge(struct sasl *s, const void *data, size_t len,
    const char **out)
{
	if (sasl_b64_encode(data, len, s->out, sizeof(s->out)) < 0)
		abort();	/* every challenge is bounded well below */
	*out = s->out;
	return SASL_CONTINUE;
}

static enum sasl_status
sasl_fail(struct sasl *s, enum sasl_status st)
{
	sasl_enter(s, SASL_STATE_FAILED);
	return st;
}

/* Copy a credential without NULs into dst (max bytes + NUL). */
static bool
sasl_take(char *dst, size_t max, const unsigned char *src, size_t len)
{
	if (len == 0 || len > max || memchr(src, '\0', len) != NULL)
		return false;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return true;
}

/* PLAIN (RFC 4616 2): [authzid] NUL authcid NUL passwd */

static enum sasl_status
sasl_plain(struct sasl *s, const unsigned char *msg, size_t len)
{
	const unsigned char *n1, *n2;
	size_t	 zlen, clen, plen;

	if ((n1 = memchr(msg, '\0', len)) == NULL ||
	    (n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - msg))) == NULL ||
	    memchr(n2 + 1, '\0', len - (size_t)(n2 + 1 - msg)) != NULL)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	zlen = (size_t)(n1 - msg);
	clen = (size_t)(n2 - (n1 + 1));
	plen = len - (size_t)(n2 + 1 - msg);
	if (zlen > SASL_USER_MAX ||
	    !sasl_take(s->user, SASL_USER_MAX, n1 + 1, clen) ||
	    !sasl_take(s->pass, SASL_PASS_MAX, n2 + 1, plen))
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	memcpy(s->authzid, msg, zlen);
	s->authzid[zlen] = '\0';
	sasl_enter(s, SASL_STATE_CHECK);
	return SASL_CHECK_PASSWORD;
}

/* SCRAM (RFC 5802 7) */

/*
 * saslname: "=2C" is ',' and "=3D" is '='; any other '=' is an error
 * (RFC 5802 5.1). NUL and ',' never get here. Returns false if invalid,
 * empty or longer than SASL_USER_MAX once decoded. SASLprep (RFC 4013)
 * is not applied: ASCII names are their own SASLprep form, non-ASCII
 * names are passed through unnormalised.
 */
static bool
sasl_saslname(const char *in, size_t len, char out[SASL_USER_MAX + 1])
{
	size_t	 o = 0;

	for (size_t i = 0; i < len; i++) {
		char	 c = in[i];

		if (c == '=') {
			if (len - i < 3)
				return false;
			if (in[i + 1] == '2' && in[i + 2] == 'C')
				c = ',';
			else if (in[i + 1] == '3' && in[i + 2] == 'D')
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o == SASL_USER_MAX)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0;
}

/* The length of the attribute value at p (up to ',' or end). */
static size_t
sasl_attr_len(const char *p, const char *end)
{
	const char *c = memchr(p, ',', (size_t)(end - p));

	return (size_t)((c != NULL ? c : end) - p);
}

static bool
sasl_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Optional extensions: *("," ALPHA "=" 1*value-char) up to end. */
static bool
sasl_extensions(const char *p, const char *end)
{
	while (p < end) {
		size_t	 vlen;

		if (end - p < 4 || p[0] != ',' || !sasl_is_alpha(p[1]) ||
		    p[2] != '=')
			return false;
		p += 3;
		if ((vlen = sasl_attr_len(p, end)) == 0)
			return false;
		p += vlen;
	}
	return true;
}

/* r= value: printable ASCII except ',' (RFC 5802 7). */
static bool
sasl_nonce_ok(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return len > 0;
}

static enum sasl_status
sasl_scram_first(struct sasl *s, const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len, *bare, *cbname = NULL;
	size_t	 vlen, cbname_len = 0;
	bool	 plus = s->mech == SASL_MECH_SCRAM_SHA_256_PLUS;

	if (len == 0 || memchr(msg, '\0', len) != NULL)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
	s->cbflag = *p;
	if (*p == 'n' || *p == 'y')
		p++;
	else if (*p == 'p' && end - p >= 2 && p[1] == '=') {
		p += 2;
		cbname = p;
		cbname_len = sasl_attr_len(p, end);
		if (cbname_len == 0)
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		p += cbname_len;
	} else
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	if (p == end || *p++ != ',')
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	if (end - p >= 2 && p[0] == 'a' && p[1] == '=') {
		p += 2;
		vlen = sasl_attr_len(p, end);
		if (!sasl_saslname(p, vlen, s->authzid))
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		p += vlen;
	}
	if (p == end || *p++ != ',')
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	bare = p;

	/* client-first-message-bare = [reserved-mext ","] username ","
	   nonce ["," extensions]; we know no mandatory extension ("m="). */
	if (end - p < 2 || p[0] != 'n' || p[1] != '=')
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	p += 2;
	vlen = sasl_attr_len(p, end);
	if (!sasl_saslname(p, vlen, s->user))
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	p += vlen;
	if (end - p < 3 || memcmp(p, ",r=", 3) != 0)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	p += 3;
	vlen = sasl_attr_len(p, end);
	if (vlen > SASL_CNONCE_MAX || !sasl_nonce_ok(p, vlen))
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	memcpy(s->nonce, p, vlen);
	s->nonce[vlen] = '\0';
	s->cnonce_len = vlen;
	p += vlen;
	if (!sasl_extensions(p, end))
		return sasl_fail(s, SASL_ERR_PROTOCOL);

	/*
	 * Channel binding (RFC 5802 6, RFC 9266). -PLUS needs
	 * "p=tls-exporter" and exporter data. Plain SCRAM takes "n", or "y"
	 * ("I could bind but think you cannot") only while we do not offer
	 * -PLUS: if we do, someone stripped it from our EHLO (downgrade).
	 */
	if (plus) {
		if (s->cbflag != 'p' || s->cb_len == 0 ||
		    cbname_len != strlen(SASL_CB_NAME) ||
		    memcmp(cbname, SASL_CB_NAME, cbname_len) != 0)
			return sasl_fail(s, SASL_ERR_CB);
	} else if (s->cbflag == 'p' || (s->cbflag == 'y' && s->cb_len > 0))
		return sasl_fail(s, SASL_ERR_CB);

	s->gs2_len = (size_t)(bare - msg);
	s->gs2_header = xstrndup(msg, s->gs2_len);
	s->first_bare_len = (size_t)(end - bare);
	s->first_bare = xstrndup(bare, s->first_bare_len);
	sasl_enter(s, SASL_STATE_SCRAM_USER);
	return SASL_NEED_USER;
}

/* Made-up credentials for an unknown user: a salt that is the same each
   time for the name, keys nobody knows. */
static void
sasl_scram_fake(struct sasl *s)
{
	unsigned char mac[SASL_SHA256_LEN];

	if (CRYPTO_THREAD_run_once(&sasl_fake_once, sasl_fake_init) != 1)
		abort();
	sasl_hmac(sasl_fake_key, sizeof(sasl_fake_key), s->user,
	    strlen(s->user), mac);
	memcpy(s->creds.salt, mac, SASL_SALT_FAKE);
	s->creds.salt_len = SASL_SALT_FAKE;
	s->creds.iterations = SASL_SCRAM_ITERATIONS;
	sasl_random(s->creds.stored_key, sizeof(s->creds.stored_key));
	sasl_random(s->creds.server_key, sizeof(s->creds.server_key));
	s->fake = true;
}

enum sasl_status
sasl_scram_user(struct sasl *s, const struct sasl_scram_creds *creds,
    const char **out)
{
	unsigned char raw[SASL_SNONCE_RAW];
	char	 salt[(sizeof(creds->salt) + 2) / 3 * 4 + 1];
	int	 n;

	*out = NULL;
	if (s->state != SASL_STATE_SCRAM_USER)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	if (creds != NULL && creds->salt_len > 0 &&
	    creds->salt_len <= sizeof(creds->salt) && creds->iterations > 0)
		s->creds = *creds;
	else
		sasl_scram_fake(s);

	if (s->test_nonce[0] != '\0')
		snprintf(s->nonce + s->cnonce_len, SASL_SNONCE_MAX + 1, "%s",
		    s->test_nonce);
	else {
		sasl_random(raw, sizeof(raw));
		if (sasl_b64_encode(raw, sizeof(raw), s->nonce + s->cnonce_len,
		    SASL_SNONCE_MAX + 1) < 0)
			abort();
	}
	if (sasl_b64_encode(s->creds.salt, s->creds.salt_len, salt,
	    sizeof(salt)) < 0)
		abort();
	n = snprintf(s->server_first, sizeof(s->server_first),
	    "r=%s,s=%s,i=%u", s->nonce, salt, s->creds.iterations);
	if (n < 0 || (size_t)n >= sizeof(s->server_first))
		abort();	/* bounded by SASL_CNONCE_MAX and the salt */
	sasl_enter(s, SASL_STATE_SCRAM_FINAL);
	return sasl_challenge(s, s->server_first, (size_t)n, out);
}

static enum sasl_status
sasl_scram_final(struct sasl *s, const char *msg, size_t len,
    const char **out)
{
	const char *p = msg, *end = msg + len, *c, *r, *proof = NULL;
	unsigned char *cbind = NULL, *authmsg = NULL;
	unsigned char client_proof[SASL_SHA256_LEN], sig[SASL_SHA256_LEN];
	unsigned char key[SASL_SHA256_LEN], stored[SASL_SHA256_LEN];
	char	*want = NULL, final[2 + (SASL_SHA256_LEN + 2) / 3 * 4 + 1];
	size_t	 clen, rlen, cblen, wantcap, alen = 0, without_proof = 0;
	enum sasl_status st;
	bool	 ok;

	if (len == 0 || memchr(msg, '\0', len) != NULL)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	/* client-final-message = channel-binding "," nonce
	   ["," extensions] "," proof */
	if (end - p < 2 || memcmp(p, "c=", 2) != 0)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	c = p += 2;
	p += clen = sasl_attr_len(p, end);
	if (end - p < 3 || memcmp(p, ",r=", 3) != 0)
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	r = p += 3;
	p += rlen = sasl_attr_len(p, end);
	while (p < end) {
		const char *attr = p;

		if (end - p < 3 || p[0] != ',' || !sasl_is_alpha(p[1]) ||
		    p[2] != '=')
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		p += 3;
		p += sasl_attr_len(p, end);
		if (attr[1] == 'p') {
			if (p != end)		/* the proof comes last */
				return sasl_fail(s, SASL_ERR_PROTOCOL);
			proof = attr + 3;
			without_proof = (size_t)(attr - msg);
		} else if (p == attr + 3)
			return sasl_fail(s, SASL_ERR_PROTOCOL);
	}
	if (proof == NULL || sasl_b64_decode(proof, (size_t)(end - proof),
	    client_proof, sizeof(client_proof)) != SASL_SHA256_LEN)
		return sasl_fail(s, SASL_ERR_PROTOCOL);

	/* c= must be exactly base64(gs2-header [cb-data]) (RFC 5802 7) */
	cblen = s->gs2_len + (s->cbflag == 'p' ? s->cb_len : 0);
	cbind = xmalloc(cblen);
	memcpy(cbind, s->gs2_header, s->gs2_len);
	if (s->cbflag == 'p')
		memcpy(cbind + s->gs2_len, s->cb, s->cb_len);
	wantcap = (cblen + 2) / 3 * 4 + 1;
	want = xmalloc(wantcap);
	if (sasl_b64_encode(cbind, cblen, want, wantcap) < 0)
		abort();
	if (clen != strlen(want) || memcmp(c, want, clen) != 0) {
		st = sasl_fail(s, SASL_ERR_CB);
		goto out;
	}
	/* The nonce must be ours, not one from an older exchange. */
	if (rlen != strlen(s->nonce) || memcmp(r, s->nonce, rlen) != 0) {
		st = sasl_fail(s, SASL_ERR_AUTH);
		goto out;
	}

	/* AuthMessage = client-first-bare "," server-first ","
	   client-final-without-proof */
	alen = s->first_bare_len + 1 + strlen(s->server_first) + 1 +
	    without_proof;
	authmsg = xmalloc(alen);
	memcpy(authmsg, s->first_bare, s->first_bare_len);
	authmsg[s->first_bare_len] = ',';
	memcpy(authmsg + s->first_bare_len + 1, s->server_first,
	    strlen(s->server_first));
	authmsg[alen - without_proof - 1] = ',';
	memcpy(authmsg + alen - without_proof, msg, without_proof);

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage);
	   H(ClientKey) must be StoredKey. */
	sasl_hmac(s->creds.stored_key, sizeof(s->creds.stored_key), authmsg,
	    alen, sig);
	for (size_t i = 0; i < SASL_SHA256_LEN; i++)
		key[i] = client_proof[i] ^ sig[i];
	sasl_sha256(key, sizeof(key), stored);
	ok = CRYPTO_memcmp(stored, s->creds.stored_key, sizeof(stored)) == 0;
	if (!ok || s->fake) {
		st = sasl_fail(s, SASL_ERR_AUTH);
		goto out;
	}
	/* server-final-message = "v=" base64(HMAC(ServerKey, AuthMessage)) */
	sasl_hmac(s->creds.server_key, sizeof(s->creds.server_key), authmsg,
	    alen, sig);
	memcpy(final, "v=", 2);
	if (sasl_b64_encode(sig, sizeof(sig), final + 2, sizeof(final) - 2)
	    < 0)
		abort();
	sasl_enter(s, SASL_STATE_SCRAM_ACK);
	st = sasl_challenge(s, final, strlen(final), out);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(client_proof, sizeof(client_proof));
	free(cbind);
	free(want);
	free(authmsg);
	return st;
}

/* One decoded client message, by state. */
static enum sasl_status
sasl_dispatch(struct sasl *s, const unsigned char *msg, size_t len,
    const char **out)
{
	switch (s->state) {
	case SASL_STATE_FIRST:
		if (s->mech == SASL_MECH_PLAIN)
			return sasl_plain(s, msg, len);
		return sasl_scram_first(s, (const char *)msg, len);
	case SASL_STATE_LOGIN_USER:
		if (!sasl_take(s->user, SASL_USER_MAX, msg, len))
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		sasl_enter(s, SASL_STATE_LOGIN_PASS);
		*out = SASL_LOGIN_PASS;
		return SASL_CONTINUE;
	case SASL_STATE_LOGIN_PASS:
		if (!sasl_take(s->pass, SASL_PASS_MAX, msg, len))
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		sasl_enter(s, SASL_STATE_CHECK);
		return SASL_CHECK_PASSWORD;
	case SASL_STATE_SCRAM_FINAL:
		return sasl_scram_final(s, (const char *)msg, len, out);
	case SASL_STATE_SCRAM_ACK:
		/* RFC 4954 4: the client answers the server-final
		   challenge with an empty line. */
		if (len != 0)
			return sasl_fail(s, SASL_ERR_PROTOCOL);
		sasl_enter(s, SASL_STATE_DONE);
		return SASL_OK;
	default:
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	}
}

enum sasl_status
sasl_step(struct sasl *s, const char *in, size_t len, bool initial,
    const char **out)
{
	unsigned char *msg = NULL;
	size_t	 cap;
	long	 n;
	enum sasl_status st;

	*out = NULL;
	if (initial != (s->state == SASL_STATE_START))
		return sasl_fail(s, SASL_ERR_PROTOCOL);
	if (initial) {
		if (len == 0) {
			/* no initial response: ask for the first message */
			if (s->mech == SASL_MECH_LOGIN) {
				sasl_enter(s, SASL_STATE_LOGIN_USER);
				*out = SASL_LOGIN_USER;
				return SASL_CONTINUE;
			}
			sasl_enter(s, SASL_STATE_FIRST);
			return sasl_challenge(s, "", 0, out);
		}
		/* LOGIN's initial response is the user name */
		sasl_enter(s, s->mech == SASL_MECH_LOGIN ?
		    SASL_STATE_LOGIN_USER : SASL_STATE_FIRST);
		if (len == 1 && in[0] == '=')	/* RFC 4954 4: empty */
			len = 0;
	} else if (len == 1 && in[0] == '*')
		return sasl_fail(s, SASL_ERR_CANCEL);
	if (len > SASL_LINE_MAX)
		return sasl_fail(s, SASL_ERR_PROTOCOL);

	cap = len / 4 * 3;
	msg = xmalloc(cap + 1);
	if ((n = sasl_b64_decode(in, len, msg, cap)) < 0)
		st = sasl_fail(s, SASL_ERR_BASE64);
	else
		st = sasl_dispatch(s, msg, (size_t)n, out);
	OPENSSL_cleanse(msg, cap + 1);
	free(msg);
	return st;
}

enum sasl_status
sasl_password_result(struct sasl *s, bool ok)
{
	if (s->state != SASL_STATE_CHECK || !ok)
		return sasl_fail(s, SASL_ERR_AUTH);
	sasl_enter(s, SASL_STATE_DONE);
	return SASL_OK;
}

/* Stored credentials */

int
sasl_scram_derive(const char *password, unsigned iterations,
    struct sasl_scram_creds *out)
{
	unsigned char salted[SASL_SHA256_LEN], client_key[SASL_SHA256_LEN];
	int	 rc = -1;

	memset(out, 0, sizeof(*out));
	if (iterations == 0 || iterations > INT32_MAX)
		return -1;
	out->salt_len = SASL_SALT_FAKE;
	out->iterations = iterations;
	if (RAND_bytes(out->salt, (int)out->salt_len) != 1)
		goto out;
	/* SaltedPassword = Hi(password, salt, i) (RFC 5802 3) */
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), out->salt,
	    (int)out->salt_len, (int)iterations, EVP_sha256(),
	    sizeof(salted), salted) != 1)
		goto out;
	sasl_hmac(salted, sizeof(salted), "Client Key", 10, client_key);
	sasl_sha256(client_key, sizeof(client_key), out->stored_key);
	sasl_hmac(salted, sizeof(salted), "Server Key", 10, out->server_key);
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (rc == -1)
		memset(out, 0, sizeof(*out));
	return rc;
}

int
sasl_scram_format(const struct sasl_scram_creds *c, char *out, size_t cap)
{
	char	 salt[(sizeof(c->salt) + 2) / 3 * 4 + 1];
	char	 stored[(sizeof(c->stored_key) + 2) / 3 * 4 + 1];
	char	 server[(sizeof(c->server_key) + 2) / 3 * 4 + 1];
	int	 n;

	if (c->salt_len == 0 || c->salt_len > sizeof(c->salt) ||
	    c->iterations == 0 ||
	    sasl_b64_encode(c->salt, c->salt_len, salt, sizeof(salt)) < 0 ||
	    sasl_b64_encode(c->stored_key, sizeof(c->stored_key), stored,
	    sizeof(stored)) < 0 ||
	    sasl_b64_encode(c->server_key, sizeof(c->server_key), server,
	    sizeof(server)) < 0)
		return -1;
	n = snprintf(out, cap, SASL_SCRAM_PREFIX "%u:%s:%s:%s", c->iterations,
	    salt, stored, server);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return n;
}

/* The next ':'-separated field of [*p, end); false if there is none. */
static bool
sasl_field(const char **p, const char *end, const char **f, size_t *flen,
    bool last)
{
	const char *colon = memchr(*p, ':', (size_t)(end - *p));

	if (last ? colon != NULL : colon == NULL)
		return false;
	*f = *p;
	*flen = (size_t)((last ? end : colon) - *p);
	*p = last ? end : colon + 1;
	return true;
}

int
sasl_scram_parse(const char *s, size_t len, struct sasl_scram_creds *out)
{
	const char *p, *end = s + len, *f;
	size_t	 flen, plen = strlen(SASL_SCRAM_PREFIX);
	unsigned long iter = 0;
	long	 n;

	memset(out, 0, sizeof(*out));
	if (len < plen || !str_case_prefix(s, len, SASL_SCRAM_PREFIX))
		goto bad;
	p = s + plen;
	/* iterations: 1..INT32_MAX in decimal, no sign, no leading zero */
	if (!sasl_field(&p, end, &f, &flen, false) || flen == 0 ||
	    flen > 10 || f[0] == '0')
		goto bad;
	for (size_t i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			goto bad;
		iter = iter * 10 + (unsigned long)(f[i] - '0');
	}
	if (iter > INT32_MAX)
		goto bad;
	out->iterations = (unsigned)iter;
	if (!sasl_field(&p, end, &f, &flen, false) ||
	    (n = sasl_b64_decode(f, flen, out->salt, sizeof(out->salt))) <= 0)
		goto bad;
	out->salt_len = (size_t)n;
	if (!sasl_field(&p, end, &f, &flen, false) ||
	    sasl_b64_decode(f, flen, out->stored_key,
	    sizeof(out->stored_key)) != (long)sizeof(out->stored_key))
		goto bad;
	if (!sasl_field(&p, end, &f, &flen, true) ||
	    sasl_b64_decode(f, flen, out->server_key,
	    sizeof(out->server_key)) != (long)sizeof(out->server_key))
		goto bad;
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return -1;
}
