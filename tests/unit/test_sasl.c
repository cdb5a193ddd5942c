/* test_sasl.c: PLAIN, LOGIN, SCRAM-SHA-256(-PLUS) exchanges, base64,
   stored SCRAM credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"
#include "core/util.h"

#define B64_MAX		(SASL_LINE_MAX + 64)
/* snprintf into an array that must not truncate */
#define SNPRINTF(buf, ...) \
	assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) < \
	    (int)sizeof(buf))

/* base64 of len bytes of raw, in a static buffer (one at a time). */
static const char *
b64(const void *raw, size_t len)
{
	static char out[B64_MAX + 1];

	assert_true(sasl_b64_encode(raw, len, out, sizeof(out)) >= 0);
	return out;
}

/* decoded challenge, NUL-terminated, in a static buffer */
static const char *
unb64(const char *in)
{
	static char out[B64_MAX];
	long	 n = sasl_b64_decode(in, strlen(in), (unsigned char *)out,
	    sizeof(out) - 1);

	assert_true(n >= 0);
	out[n] = '\0';
	return out;
}

static enum sasl_status
step_raw(struct sasl *s, const void *raw, size_t len, bool initial,
    const char **out)
{
	const char *in = b64(raw, len);

	return sasl_step(s, in, strlen(in), initial, out);
}

static enum sasl_status
step_str(struct sasl *s, const char *msg, bool initial, const char **out)
{
	return step_raw(s, msg, strlen(msg), initial, out);
}

/* Base64 (RFC 4648 10 test vectors, then strictness) */

static void
test_b64_vectors(void **state)
{
	static const struct {
		const char	*raw;
		const char	*enc;
	} v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	unsigned char dec[16];
	char	 enc[16];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		size_t	 rl = strlen(v[i].raw), el = strlen(v[i].enc);

		assert_int_equal(sasl_b64_encode((const unsigned char *)
		    v[i].raw, rl, enc, sizeof(enc)), (long)el);
		assert_string_equal(enc, v[i].enc);
		assert_int_equal(sasl_b64_decode(v[i].enc, el, dec,
		    sizeof(dec)), (long)rl);
		assert_memory_equal(dec, v[i].raw, rl);
		/* exact capacities: output fits, one less does not */
		assert_int_equal(sasl_b64_encode((const unsigned char *)
		    v[i].raw, rl, enc, el + 1), (long)el);
		assert_int_equal(sasl_b64_encode((const unsigned char *)
		    v[i].raw, rl, enc, el), -1);
		assert_int_equal(sasl_b64_decode(v[i].enc, el, dec, rl),
		    (long)rl);
		if (rl > 0)
			assert_int_equal(sasl_b64_decode(v[i].enc, el, dec,
			    rl - 1), -1);
	}
	/* all 256 byte values survive */
	{
		unsigned char all[256], back[256];
		char	 e[400];

		for (size_t i = 0; i < sizeof(all); i++)
			all[i] = (unsigned char)i;
		for (size_t n = 0; n <= sizeof(all); n++) {
			long	 el = sasl_b64_encode(all, n, e, sizeof(e));

			assert_true(el >= 0);
			assert_int_equal(sasl_b64_decode(e, (size_t)el, back,
			    sizeof(back)), (long)n);
			assert_memory_equal(all, back, n);
		}
	}
}

static void
test_b64_bad(void **state)
{
	static const char *bad[] = {
		"Z", "Zg", "Zg=", "Zm9vY", "Zh==", "Zm9=", "Z===", "====",
		"=Zg=", "Zg==Zg==", "Zm 9v", " Zm9v", "Zm9v\n", "Zm9v\r\n",
		"Zm=v", "Zm9v====", "@@@@", "Zm9-", "Zm9_", "Zm9v=",
		"Z\0" "9v",
	};
	unsigned char out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		size_t	 len = strlen(bad[i]);

		if (i == ARRAY_LEN(bad) - 1)
			len = 4;	/* embedded NUL */
		assert_int_equal(sasl_b64_decode(bad[i], len, out,
		    sizeof(out)), -1);
	}
}

static void
test_mech_names(void **state)
{
	(void)state;
	assert_int_equal(sasl_mech_parse("plain", 5), SASL_MECH_PLAIN);
	assert_int_equal(sasl_mech_parse("LOGIN", 5), SASL_MECH_LOGIN);
	assert_int_equal(sasl_mech_parse("scram-sha-256", 13),
	    SASL_MECH_SCRAM_SHA_256);
	assert_int_equal(sasl_mech_parse("SCRAM-SHA-256-PLUS", 18),
	    SASL_MECH_SCRAM_SHA_256_PLUS);
	assert_int_equal(sasl_mech_parse("SCRAM-SHA-256-PLUS", 17),
	    SASL_MECH_NONE);
	assert_int_equal(sasl_mech_parse("PLAINX", 6), SASL_MECH_NONE);
	assert_int_equal(sasl_mech_parse("", 0), SASL_MECH_NONE);
	assert_int_equal(sasl_mech_parse("CRAM-MD5", 8), SASL_MECH_NONE);
	assert_string_equal(sasl_mech_name(SASL_MECH_SCRAM_SHA_256_PLUS),
	    "SCRAM-SHA-256-PLUS");
	assert_string_equal(sasl_mech_name(SASL_MECH_PLAIN), "PLAIN");
}

/* PLAIN (RFC 4616) */

static void
test_plain(void **state)
{
	static char user320[SASL_USER_MAX + 1], pass1024[SASL_PASS_MAX + 1];
	static char msg[4096];
	struct {
		const char	*authzid, *authcid, *pass;
		enum sasl_status want;
	} cases[] = {
		{ "", "user", "pass", SASL_CHECK_PASSWORD },
		{ "admin", "user", "pass", SASL_CHECK_PASSWORD },
		{ "", "", "pass", SASL_ERR_PROTOCOL },
		{ "", "user", "", SASL_ERR_PROTOCOL },
		{ "", user320, "p", SASL_CHECK_PASSWORD },
		{ user320, "u", "p", SASL_CHECK_PASSWORD },
		{ "", "u", pass1024, SASL_CHECK_PASSWORD },
		{ "x", user320, "p", SASL_CHECK_PASSWORD },
	};
	const char *out;

	(void)state;
	memset(user320, 'u', SASL_USER_MAX);
	memset(pass1024, 'p', SASL_PASS_MAX);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		for (int initial = 0; initial < 2; initial++) {
			struct sasl *s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
			size_t	 len;
			enum sasl_status st;

			len = (size_t)snprintf(msg, sizeof(msg), "%s%c%s%c%s",
			    cases[i].authzid, 0, cases[i].authcid, 0,
			    cases[i].pass);
			if (!initial) {
				assert_int_equal(sasl_step(s, "", 0, true,
				    &out), SASL_CONTINUE);
				assert_string_equal(out, "");
			}
			st = step_raw(s, msg, len, initial, &out);
			assert_int_equal(st, cases[i].want);
			if (st == SASL_CHECK_PASSWORD) {
				assert_string_equal(sasl_user(s),
				    cases[i].authcid);
				assert_string_equal(sasl_authzid(s),
				    cases[i].authzid);
				assert_string_equal(sasl_password(s),
				    cases[i].pass);
				assert_int_equal(sasl_password_result(s,
				    initial), initial ? SASL_OK :
				    SASL_ERR_AUTH);
				assert_string_equal(sasl_password(s), "");
			}
			sasl_free(s);
		}
	}
}

static void
test_plain_bad(void **state)
{
	static const struct {
		const char	*raw;
		size_t		 len;
	} bad[] = {
		{ "", 0 },
		{ "userpass", 8 },
		{ "user\0pass", 9 },
		{ "\0user\0pa\0ss", 11 },
		{ "\0\0\0", 3 },
		{ "\0user\0", 6 },
		{ "\0\0pass", 6 },
	};
	char	 big[SASL_PASS_MAX + SASL_USER_MAX + 8];
	const char *out;
	struct sasl *s;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
		if (bad[i].len == 0)
			assert_int_equal(sasl_step(s, "=", 1, true, &out),
			    SASL_ERR_PROTOCOL);
		else
			assert_int_equal(step_raw(s, bad[i].raw, bad[i].len,
			    true, &out), SASL_ERR_PROTOCOL);
		assert_null(out);
		sasl_free(s);
	}
	/* limit + 1: authcid, authzid, password */
	for (int which = 0; which < 3; which++) {
		size_t	 z = which == 0 ? SASL_USER_MAX + 1 : 1;
		size_t	 c = which == 1 ? SASL_USER_MAX + 1 : 1;
		size_t	 p = which == 2 ? SASL_PASS_MAX + 1 : 1;

		memset(big, 'a', sizeof(big));
		big[z] = '\0';
		big[z + 1 + c] = '\0';
		s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
		assert_int_equal(step_raw(s, big, z + 1 + c + 1 + p, true,
		    &out), SASL_ERR_PROTOCOL);
		sasl_free(s);
	}
	/* a continuation before the start, a second message after it */
	s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
	assert_int_equal(sasl_step(s, "", 0, false, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);
	s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
	assert_int_equal(step_raw(s, "\0u\0p", 4, true, &out),
	    SASL_CHECK_PASSWORD);
	assert_int_equal(step_raw(s, "\0u\0p", 4, false, &out),
	    SASL_ERR_PROTOCOL);
	assert_int_equal(sasl_password_result(s, true), SASL_ERR_AUTH);
	sasl_free(s);
	/* password_result before any message never says OK */
	s = sasl_new(SASL_MECH_PLAIN, NULL, 0);
	assert_int_equal(sasl_password_result(s, true), SASL_ERR_AUTH);
	sasl_free(s);
}

/* LOGIN */

static void
test_login(void **state)
{
	const char *out;
	struct sasl *s;

	(void)state;
	/* no initial response */
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(sasl_step(s, "", 0, true, &out), SASL_CONTINUE);
	assert_string_equal(out, "VXNlcm5hbWU6");
	assert_string_equal(unb64(out), "Username:");
	assert_int_equal(step_str(s, "bob@example.org", false, &out),
	    SASL_CONTINUE);
	assert_string_equal(out, "UGFzc3dvcmQ6");
	assert_string_equal(unb64(out), "Password:");
	assert_int_equal(step_str(s, "s3cret", false, &out),
	    SASL_CHECK_PASSWORD);
	assert_string_equal(sasl_user(s), "bob@example.org");
	assert_string_equal(sasl_authzid(s), "");
	assert_string_equal(sasl_password(s), "s3cret");
	assert_int_equal(sasl_password_result(s, true), SASL_OK);
	assert_string_equal(sasl_password(s), "");
	assert_int_equal(step_str(s, "x", false, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);

	/* initial response = user name */
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_str(s, "bob", true, &out), SASL_CONTINUE);
	assert_string_equal(out, "UGFzc3dvcmQ6");
	assert_int_equal(step_str(s, "pw", false, &out), SASL_CHECK_PASSWORD);
	assert_int_equal(sasl_password_result(s, false), SASL_ERR_AUTH);
	sasl_free(s);
}

static void
test_login_bad(void **state)
{
	char	 big[SASL_PASS_MAX + 1];
	const char *out;
	struct sasl *s;

	(void)state;
	/* empty user name as "=" initial response */
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(sasl_step(s, "=", 1, true, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);
	/* empty user name, empty password, NUL inside */
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(sasl_step(s, "", 0, true, &out), SASL_CONTINUE);
	assert_int_equal(sasl_step(s, "", 0, false, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_str(s, "u", true, &out), SASL_CONTINUE);
	assert_int_equal(sasl_step(s, "", 0, false, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_raw(s, "u\0v", 3, true, &out),
	    SASL_ERR_PROTOCOL);
	sasl_free(s);
	/* at the limits, and one past */
	memset(big, 'x', sizeof(big));
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_raw(s, big, SASL_USER_MAX, true, &out),
	    SASL_CONTINUE);
	assert_int_equal(step_raw(s, big, SASL_PASS_MAX, false, &out),
	    SASL_CHECK_PASSWORD);
	sasl_free(s);
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_raw(s, big, SASL_USER_MAX + 1, true, &out),
	    SASL_ERR_PROTOCOL);
	sasl_free(s);
	s = sasl_new(SASL_MECH_LOGIN, NULL, 0);
	assert_int_equal(step_str(s, "u", true, &out), SASL_CONTINUE);
	assert_int_equal(step_raw(s, big, SASL_PASS_MAX + 1, false, &out),
	    SASL_ERR_PROTOCOL);
	sasl_free(s);
}

/* Cancel, base64 errors and the line limit, for every mechanism */

static void
test_cancel_and_base64(void **state)
{
	static const enum sasl_mech mechs[] = {
		SASL_MECH_PLAIN, SASL_MECH_LOGIN, SASL_MECH_SCRAM_SHA_256,
		SASL_MECH_SCRAM_SHA_256_PLUS,
	};
	static const unsigned char cb[32] = { 1, 2, 3 };
	char	*line = xmalloc(SASL_LINE_MAX + 8);
	const char *out;
	struct sasl *s;

	(void)state;
	memset(line, 'A', SASL_LINE_MAX + 8);
	for (size_t i = 0; i < ARRAY_LEN(mechs); i++) {
		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, "", 0, true, &out),
		    SASL_CONTINUE);
		assert_int_equal(sasl_step(s, "*", 1, false, &out),
		    SASL_ERR_CANCEL);
		assert_null(out);
		/* nothing after a failure */
		assert_int_equal(sasl_step(s, "", 0, false, &out),
		    SASL_ERR_PROTOCOL);
		sasl_free(s);

		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, "Zg=", 3, true, &out),
		    SASL_ERR_BASE64);
		sasl_free(s);
		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, "*", 1, true, &out),
		    SASL_ERR_BASE64);
		sasl_free(s);
		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, "", 0, true, &out),
		    SASL_CONTINUE);
		assert_int_equal(sasl_step(s, "!!!!", 4, false, &out),
		    SASL_ERR_BASE64);
		sasl_free(s);

		/* at the line limit the message is decoded (and is then
		   too long for any field); one quantum past it is not */
		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, "", 0, true, &out),
		    SASL_CONTINUE);
		assert_int_equal(sasl_step(s, line, SASL_LINE_MAX, false,
		    &out), SASL_ERR_PROTOCOL);
		sasl_free(s);
		s = sasl_new(mechs[i], cb, sizeof(cb));
		assert_int_equal(sasl_step(s, line, SASL_LINE_MAX + 4, true,
		    &out), SASL_ERR_PROTOCOL);
		sasl_free(s);
	}
	free(line);
}

/* SCRAM: a client of our own, to drive the server */

#define RFC_USER	"user"
#define RFC_PASS	"pencil"
#define RFC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE	"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="

struct client_keys {
	unsigned char	 client_key[32];
	unsigned char	 stored_key[32];
	unsigned char	 server_key[32];
};

static void
hmac(const unsigned char *key, const void *data, size_t len,
    unsigned char out[32])
{
	unsigned int n = 32;

	assert_non_null(HMAC(EVP_sha256(), key, 32, data, len, out, &n));
}

static void
client_keys(const char *password, const unsigned char *salt, size_t slen,
    unsigned iter, struct client_keys *k)
{
	unsigned char salted[32];
	unsigned int n = 32;

	assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password),
	    salt, (int)slen, (int)iter, EVP_sha256(), 32, salted), 1);
	hmac(salted, "Client Key", 10, k->client_key);
	assert_int_equal(EVP_Digest(k->client_key, 32, k->stored_key, &n,
	    EVP_sha256(), NULL), 1);
	hmac(salted, "Server Key", 10, k->server_key);
}

static void
rfc_creds(struct sasl_scram_creds *c)
{
	struct client_keys k;
	long	 n;

	memset(c, 0, sizeof(*c));
	n = sasl_b64_decode(RFC_SALT, strlen(RFC_SALT), c->salt,
	    sizeof(c->salt));
	assert_int_equal(n, 16);
	c->salt_len = (size_t)n;
	c->iterations = 4096;
	client_keys(RFC_PASS, c->salt, c->salt_len, 4096, &k);
	memcpy(c->stored_key, k.stored_key, 32);
	memcpy(c->server_key, k.server_key, 32);
}

/* RFC 7677 3, byte for byte */
static void
test_scram_rfc7677(void **state)
{
	struct sasl_scram_creds c;
	const char *out;
	struct sasl *s;

	(void)state;
	rfc_creds(&c);
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	sasl_test_set_nonce(s, RFC_SNONCE);
	assert_int_equal(sasl_step(s, "", 0, true, &out), SASL_CONTINUE);
	assert_string_equal(out, "");
	assert_int_equal(step_str(s, "n,,n=user,r=" RFC_CNONCE, false, &out),
	    SASL_NEED_USER);
	assert_string_equal(sasl_user(s), "user");
	assert_string_equal(sasl_authzid(s), "");
	assert_int_equal(sasl_scram_user(s, &c, &out), SASL_CONTINUE);
	assert_string_equal(unb64(out), "r=" RFC_CNONCE RFC_SNONCE
	    ",s=" RFC_SALT ",i=4096");
	assert_int_equal(step_str(s, "c=biws,r=" RFC_CNONCE RFC_SNONCE
	    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", false, &out),
	    SASL_CONTINUE);
	assert_string_equal(unb64(out),
	    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
	assert_int_equal(sasl_step(s, "", 0, false, &out), SASL_OK);
	assert_null(out);
	assert_string_equal(sasl_user(s), "user");
	sasl_free(s);
}

static void
test_scram_rfc7677_failures(void **state)
{
	static const struct {
		const char	*final;
		enum sasl_status want;
	} cases[] = {
		/* wrong proof (one character changed) */
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVI=",
		  SASL_ERR_AUTH },
		/* someone else's nonce */
		{ "c=biws,r=" RFC_CNONCE "x"
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_AUTH },
		{ "c=biws,r=" RFC_CNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_AUTH },
		/* channel binding of "y,," while the client said "n,," */
		{ "c=eSws,r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_CB },
		{ "c=,r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_CB },
		/* format errors */
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE, SASL_ERR_PROTOCOL },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
		  SASL_ERR_PROTOCOL },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzb",
		  SASL_ERR_PROTOCOL },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=!!!!",
		  SASL_ERR_PROTOCOL },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=",
		  SASL_ERR_PROTOCOL },
		{ "r=" RFC_CNONCE RFC_SNONCE
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_PROTOCOL },
		{ "c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_PROTOCOL },
		{ "c=biws,r=" RFC_CNONCE RFC_SNONCE ",x="
		  ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		  SASL_ERR_PROTOCOL },
		{ "", SASL_ERR_PROTOCOL },
	};
	struct sasl_scram_creds c;
	const char *out;

	(void)state;
	rfc_creds(&c);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct sasl *s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);

		sasl_test_set_nonce(s, RFC_SNONCE);
		assert_int_equal(step_str(s, "n,,n=user,r=" RFC_CNONCE, true,
		    &out), SASL_NEED_USER);
		assert_int_equal(sasl_scram_user(s, &c, &out), SASL_CONTINUE);
		if (cases[i].final[0] == '\0')
			assert_int_equal(sasl_step(s, "", 0, false, &out),
			    cases[i].want);
		else
			assert_int_equal(step_str(s, cases[i].final, false,
			    &out), cases[i].want);
		assert_null(out);
		sasl_free(s);
	}
}

struct scram_run {
	const char	*password;	/* what the client knows */
	const char	*gs2;		/* gs2 header the client sends */
	const unsigned char *cb;	/* what the client binds to */
	size_t		 cb_len;
	const char	*after;		/* client-first extensions, or "" */
	char		 server_first[1024];
	char		 user[SASL_USER_MAX + 1];
};

/*
 * Run a whole exchange as a correct client would, with creds (NULL:
 * unknown user). Returns the first status that is not the expected next
 * step, or SASL_OK.
 */
static enum sasl_status
scram_exchange(struct sasl *s, struct scram_run *r,
    const struct sasl_scram_creds *creds)
{
	struct client_keys k;
	unsigned char salt[64], sig[32], proof[32], cbind[512];
	char	 first[512], bare[256], wp[1024], authmsg[2048], fin[1200];
	char	 want_v[64], nonce[512];
	const char *out, *p;
	enum sasl_status st;
	unsigned iter;
	long	 slen;
	size_t	 cblen;

	SNPRINTF(bare, "n=user,r=fyko+d2lbbFgONRv9qkxdawL%s",
	    r->after);
	SNPRINTF(first, "%s%s", r->gs2, bare);
	if ((st = step_str(s, first, true, &out)) != SASL_NEED_USER)
		return st;
	SNPRINTF(r->user, "%s", sasl_user(s));
	if ((st = sasl_scram_user(s, creds, &out)) != SASL_CONTINUE)
		return st;
	SNPRINTF(r->server_first, "%s", unb64(out));

	/* r=<nonce>,s=<salt>,i=<iter> */
	p = r->server_first;
	assert_true(strncmp(p, "r=fyko+d2lbbFgONRv9qkxdawL", 26) == 0);
	assert_int_equal(sscanf(p, "r=%511[^,],", nonce), 1);
	p = strstr(p, ",s=") + 3;
	slen = sasl_b64_decode(p, (size_t)(strchr(p, ',') - p), salt,
	    sizeof(salt));
	assert_true(slen > 0);
	assert_int_equal(sscanf(strstr(p, ",i=") + 3, "%u", &iter), 1);

	client_keys(r->password, salt, (size_t)slen, iter, &k);
	cblen = strlen(r->gs2);
	memcpy(cbind, r->gs2, cblen);
	if (r->cb_len > 0)	/* r->cb may be NULL: memcpy wants a pointer */
		memcpy(cbind + cblen, r->cb, r->cb_len);
	cblen += r->cb_len;
	SNPRINTF(wp, "c=%s,r=%s", b64(cbind, cblen), nonce);
	SNPRINTF(authmsg, "%s,%s,%s", bare, r->server_first,
	    wp);
	hmac(k.stored_key, authmsg, strlen(authmsg), sig);
	for (size_t i = 0; i < 32; i++)
		proof[i] = k.client_key[i] ^ sig[i];
	SNPRINTF(fin, "%s,p=%s", wp, b64(proof, 32));
	if ((st = step_str(s, fin, false, &out)) != SASL_CONTINUE)
		return st;
	hmac(k.server_key, authmsg, strlen(authmsg), sig);
	SNPRINTF(want_v, "v=%s", b64(sig, 32));
	assert_string_equal(unb64(out), want_v);
	return sasl_step(s, "", 0, false, &out);
}

static void
test_scram_channel_binding(void **state)
{
	static const unsigned char cb[32] = "exporter-data-0123456789abcde!";
	static const unsigned char other[32] = "exporter-data-0123456789abcde?";
	static const struct {
		const char	*name;
		enum sasl_mech	 mech;
		bool		 server_cb;	/* cb given to sasl_new */
		const char	*gs2;
		const unsigned char *client_cb;
		enum sasl_status want;
	} cases[] = {
		{ "plain n", SASL_MECH_SCRAM_SHA_256, false, "n,,", NULL,
		  SASL_OK },
		{ "plain y, no -PLUS offered", SASL_MECH_SCRAM_SHA_256, false,
		  "y,,", NULL, SASL_OK },
		{ "plain n, -PLUS offered", SASL_MECH_SCRAM_SHA_256, true,
		  "n,,", NULL, SASL_OK },
		{ "plain y, -PLUS offered: downgrade",
		  SASL_MECH_SCRAM_SHA_256, true, "y,,", NULL, SASL_ERR_CB },
		{ "plain p", SASL_MECH_SCRAM_SHA_256, true,
		  "p=tls-exporter,,", cb, SASL_ERR_CB },
		{ "plain p, no cb", SASL_MECH_SCRAM_SHA_256, false,
		  "p=tls-exporter,,", NULL, SASL_ERR_CB },
		{ "plus ok", SASL_MECH_SCRAM_SHA_256_PLUS, true,
		  "p=tls-exporter,,", cb, SASL_OK },
		{ "plus authzid", SASL_MECH_SCRAM_SHA_256_PLUS, true,
		  "p=tls-exporter,a=ad=2Cmin,", cb, SASL_OK },
		{ "plus wrong cb", SASL_MECH_SCRAM_SHA_256_PLUS, true,
		  "p=tls-exporter,,", other, SASL_ERR_CB },
		{ "plus cb missing from c=", SASL_MECH_SCRAM_SHA_256_PLUS,
		  true, "p=tls-exporter,,", NULL, SASL_ERR_CB },
		{ "plus no cb available", SASL_MECH_SCRAM_SHA_256_PLUS, false,
		  "p=tls-exporter,,", cb, SASL_ERR_CB },
		{ "plus tls-unique", SASL_MECH_SCRAM_SHA_256_PLUS, true,
		  "p=tls-unique,,", cb, SASL_ERR_CB },
		{ "plus tls-server-end-point", SASL_MECH_SCRAM_SHA_256_PLUS,
		  true, "p=tls-server-end-point,,", cb, SASL_ERR_CB },
		{ "plus n", SASL_MECH_SCRAM_SHA_256_PLUS, true, "n,,", NULL,
		  SASL_ERR_CB },
		{ "plus y", SASL_MECH_SCRAM_SHA_256_PLUS, true, "y,,", NULL,
		  SASL_ERR_CB },
	};
	struct sasl_scram_creds c;

	(void)state;
	assert_int_equal(sasl_scram_derive("pencil", 4096, &c), 0);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct scram_run r = {
			.password = "pencil", .gs2 = cases[i].gs2,
			.cb = cases[i].client_cb,
			.cb_len = cases[i].client_cb != NULL ? 32 : 0,
			.after = "",
		};
		struct sasl *s = sasl_new(cases[i].mech,
		    cases[i].server_cb ? cb : NULL,
		    cases[i].server_cb ? sizeof(cb) : 0);

		print_message("%s\n", cases[i].name);
		assert_int_equal(scram_exchange(s, &r, &c), cases[i].want);
		if (cases[i].want == SASL_OK)
			assert_string_equal(sasl_user(s), "user");
		if (strstr(cases[i].gs2, "a=") != NULL &&
		    cases[i].want == SASL_OK)
			assert_string_equal(sasl_authzid(s), "ad,min");
		sasl_free(s);
	}
}

static void
test_scram_users(void **state)
{
	struct sasl_scram_creds c;
	struct scram_run r = { .password = "pencil", .gs2 = "n,,",
	    .after = "" };
	char	 sf1[1024];
	const char *out;
	struct sasl *s;

	(void)state;
	assert_int_equal(sasl_scram_derive("pencil", 4096, &c), 0);
	/* wrong password */
	r.password = "pencil2";
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(scram_exchange(s, &r, &c), SASL_ERR_AUTH);
	sasl_free(s);
	/* extensions after the nonce are ignored */
	r.password = "pencil";
	r.after = ",x=1,y=a=b";
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(scram_exchange(s, &r, &c), SASL_OK);
	sasl_free(s);

	/* unknown user: fails only at the proof; same salt every time */
	r.after = "";
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(scram_exchange(s, &r, NULL), SASL_ERR_AUTH);
	sasl_free(s);
	SNPRINTF(sf1, "%s", strstr(r.server_first, ",s="));
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(scram_exchange(s, &r, NULL), SASL_ERR_AUTH);
	sasl_free(s);
	assert_string_equal(strstr(r.server_first, ",s="), sf1);
	assert_non_null(strstr(sf1, ",i=4096"));
	/* a fresh server nonce each time: 24 random bytes, base64 */
	{
		char	 a[256], b[256];
		struct sasl *s1 = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
		struct sasl *s2 = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);

		assert_int_equal(step_str(s1, "n,,n=u,r=abc", true, &out),
		    SASL_NEED_USER);
		assert_int_equal(sasl_scram_user(s1, &c, &out),
		    SASL_CONTINUE);
		SNPRINTF(a, "%s", unb64(out));
		assert_int_equal(step_str(s2, "n,,n=u,r=abc", true, &out),
		    SASL_NEED_USER);
		assert_int_equal(sasl_scram_user(s2, &c, &out),
		    SASL_CONTINUE);
		SNPRINTF(b, "%s", unb64(out));
		assert_true(strchr(a, ',') - a == 2 + 3 + 32);
		assert_string_not_equal(a, b);
		sasl_free(s1);
		sasl_free(s2);
	}
	/* scram_user out of order */
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(sasl_scram_user(s, &c, &out), SASL_ERR_PROTOCOL);
	sasl_free(s);
}

static void
test_scram_first_parse(void **state)
{
	static char longname[SASL_USER_MAX + 32], longnonce[300];
	static const struct {
		const char	*msg;
		enum sasl_status want;
		const char	*user;		/* decoded, on success */
		const char	*authzid;
	} cases[] = {
		{ "n,,n=user,r=abc", SASL_NEED_USER, "user", "" },
		{ "n,,n=a=2Cb=3Dc,r=abc", SASL_NEED_USER, "a,b=c", "" },
		{ "n,a=x=3D,n=u,r=abc", SASL_NEED_USER, "u", "x=" },
		{ "n,,n=user,r=abc,x=1", SASL_NEED_USER, "user", "" },
		{ "n,,n=us\xc3\xa9r,r=abc", SASL_NEED_USER, "us\xc3\xa9r", "" },
		{ "", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "x,,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=ab\x7f", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=a b", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,m=ext,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=us=2Xer,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=us=2cer,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user=,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user=2,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=abc,", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=abc,x", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=abc,x=", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=abc,1=x", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,a=,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "p=,,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "p,,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "nn,,n=user,r=abc", SASL_ERR_PROTOCOL, NULL, NULL },
		{ "n,,n=user,r=abc,n=other", SASL_NEED_USER, "user", "" },
	};
	const char *out;
	struct sasl *s;
	char	 msg[1024];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
		print_message("%s\n", cases[i].msg);
		if (cases[i].msg[0] == '\0')
			assert_int_equal(sasl_step(s, "=", 1, true, &out),
			    cases[i].want);
		else
			assert_int_equal(step_str(s, cases[i].msg, true, &out),
			    cases[i].want);
		if (cases[i].user != NULL) {
			assert_string_equal(sasl_user(s), cases[i].user);
			assert_string_equal(sasl_authzid(s), cases[i].authzid);
		}
		sasl_free(s);
	}
	/* NUL inside */
	s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
	assert_int_equal(step_raw(s, "n,,n=u\0x,r=abc", 14, true, &out),
	    SASL_ERR_PROTOCOL);
	sasl_free(s);
	/* user name and client nonce at their limits and past them */
	for (size_t extra = 0; extra < 2; extra++) {
		memset(longname, 'u', sizeof(longname));
		longname[SASL_USER_MAX + extra] = '\0';
		SNPRINTF(msg, "n,,n=%s,r=abc", longname);
		s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
		assert_int_equal(step_str(s, msg, true, &out), extra ?
		    SASL_ERR_PROTOCOL : SASL_NEED_USER);
		sasl_free(s);
		/* "=2C" counts as one byte */
		memset(longname, 'u', sizeof(longname));
		memcpy(longname, "=2C", 3);
		longname[SASL_USER_MAX + 2 + extra] = '\0';
		SNPRINTF(msg, "n,,n=%s,r=abc", longname);
		s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
		assert_int_equal(step_str(s, msg, true, &out), extra ?
		    SASL_ERR_PROTOCOL : SASL_NEED_USER);
		sasl_free(s);

		memset(longnonce, 'n', sizeof(longnonce));
		longnonce[256 + extra] = '\0';
		SNPRINTF(msg, "n,,n=u,r=%s", longnonce);
		s = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);
		assert_int_equal(step_str(s, msg, true, &out), extra ?
		    SASL_ERR_PROTOCOL : SASL_NEED_USER);
		if (!extra) {
			struct sasl_scram_creds c;

			assert_int_equal(sasl_scram_derive("x", 1, &c), 0);
			assert_int_equal(sasl_scram_user(s, &c, &out),
			    SASL_CONTINUE);
		}
		sasl_free(s);
	}
	/* the empty reply after server-final is required */
	{
		struct sasl_scram_creds c;
		struct sasl *s2 = sasl_new(SASL_MECH_SCRAM_SHA_256, NULL, 0);

		rfc_creds(&c);
		sasl_test_set_nonce(s2, RFC_SNONCE);
		assert_int_equal(step_str(s2, "n,,n=user,r=" RFC_CNONCE, true,
		    &out), SASL_NEED_USER);
		assert_int_equal(sasl_scram_user(s2, &c, &out), SASL_CONTINUE);
		assert_int_equal(step_str(s2, "c=biws,r=" RFC_CNONCE RFC_SNONCE
		    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", false,
		    &out), SASL_CONTINUE);
		assert_int_equal(step_str(s2, "x", false, &out),
		    SASL_ERR_PROTOCOL);
		sasl_free(s2);
	}
}

/* Stored credentials */

static void
test_scram_format_parse(void **state)
{
	static const char *bad[] = {
		"",
		"scram-sha-256:",
		"scram-sha-1:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:0:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:04096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4294967296:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:-1:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4096::"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:",
		"scram-sha-256:4096:W22ZaJ0SNY7soEsUEjb6gQ=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"scram-sha-256:4096:W22ZaJ0SNY7soEsUEjb6gQ==:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= ",
	};
	struct sasl_scram_creds c, back;
	char	 text[256];
	int	 n;

	(void)state;
	assert_int_equal(sasl_scram_derive("pencil", 4096, &c), 0);
	assert_int_equal(c.iterations, 4096);
	assert_int_equal(c.salt_len, 16);
	n = sasl_scram_format(&c, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(text));
	assert_true(strncmp(text, "scram-sha-256:4096:", 19) == 0);
	assert_int_equal(sasl_scram_parse(text, (size_t)n, &back), 0);
	assert_int_equal(back.iterations, c.iterations);
	assert_int_equal(back.salt_len, c.salt_len);
	assert_memory_equal(back.salt, c.salt, c.salt_len);
	assert_memory_equal(back.stored_key, c.stored_key, 32);
	assert_memory_equal(back.server_key, c.server_key, 32);
	/* exact capacity */
	assert_int_equal(sasl_scram_format(&c, text, (size_t)n + 1), n);
	assert_int_equal(sasl_scram_format(&c, text, (size_t)n), -1);
	/* a shorter len cuts the token */
	assert_int_equal(sasl_scram_parse(text, (size_t)n - 1, &back), -1);
	/* another derivation: another salt */
	assert_int_equal(sasl_scram_derive("pencil", 4096, &back), 0);
	assert_memory_not_equal(back.salt, c.salt, 16);
	assert_int_equal(sasl_scram_derive("pencil", 0, &back), -1);
	/* the largest iteration count and a 64-byte salt */
	c.iterations = 2147483647;
	c.salt_len = 64;
	n = sasl_scram_format(&c, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(sasl_scram_parse(text, (size_t)n, &back), 0);
	assert_int_equal(back.iterations, 2147483647u);
	assert_int_equal(back.salt_len, 64);

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(sasl_scram_parse(bad[i], strlen(bad[i]),
		    &back), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_bad),
		cmocka_unit_test(test_mech_names),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_plain_bad),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_login_bad),
		cmocka_unit_test(test_cancel_and_base64),
		cmocka_unit_test(test_scram_rfc7677),
		cmocka_unit_test(test_scram_rfc7677_failures),
		cmocka_unit_test(test_scram_channel_binding),
		cmocka_unit_test(test_scram_users),
		cmocka_unit_test(test_scram_first_parse),
		cmocka_unit_test(test_scram_format_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
