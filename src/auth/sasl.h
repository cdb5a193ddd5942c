#ifndef PETREL_AUTH_SASL_H
#define PETREL_AUTH_SASL_H
/*
 * sasl.h: server side of SASL for SMTP AUTH (RFC 4954): PLAIN (RFC 4616),
 * LOGIN, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with tls-exporter channel
 * binding (RFC 5802, 7677, 9266). Pure message handling: no I/O, no
 * logging; the caller looks users up and runs password checks (crypt) on
 * its worker pool. Base64 in and out is done here.
 */
#include <stdbool.h>
#include <stddef.h>

#define SASL_USER_MAX		320	/* authcid / authzid bytes */
#define SASL_PASS_MAX		1024
#define SASL_LINE_MAX		12288	/* base64 line from the client */
#define SASL_CB_MAX		64	/* channel binding data bytes */

enum sasl_mech {
	SASL_MECH_NONE = 0,
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_256_PLUS,
};

enum sasl_status {
	SASL_CONTINUE,		/* send "334 " + out (base64) and read a line */
	SASL_CHECK_PASSWORD,	/* PLAIN/LOGIN: verify user/pass, then call
				   sasl_password_result() */
	SASL_NEED_USER,		/* SCRAM: look user up, call sasl_scram_user() */
	SASL_OK,		/* authenticated as sasl_user(); for SCRAM the
				   caller sends 235 (the server-final message
				   was sent as a 334 challenge before) */
	SASL_ERR_BASE64,	/* 501 5.5.2: cannot decode */
	SASL_ERR_CANCEL,	/* 501 5.7.0: client sent "*" */
	SASL_ERR_PROTOCOL,	/* 501 5.5.2: malformed SASL message */
	SASL_ERR_AUTH,		/* 535 5.7.8: bad credentials */
	SASL_ERR_CB,		/* 535 5.7.8: channel binding mismatch */
};

/* What the user table stores for SCRAM-SHA-256 (RFC 5802 3). */
struct sasl_scram_creds {
	unsigned char	 salt[64];
	size_t		 salt_len;
	unsigned	 iterations;
	unsigned char	 stored_key[32];
	unsigned char	 server_key[32];
};

struct sasl;

/* Name -> mech ("PLAIN", case-insensitive); SASL_MECH_NONE if unknown. */
enum sasl_mech	 sasl_mech_parse(const char *name, size_t len);
const char	*sasl_mech_name(enum sasl_mech m);

/*
 * Start an exchange. cb/cb_len: the TLS channel binding for -PLUS
 * (tls-exporter, 32 bytes), or NULL when the connection offers none. The
 * caller frees with sasl_free().
 */
struct sasl	*sasl_new(enum sasl_mech m, const unsigned char *cb,
		    size_t cb_len);
void		 sasl_free(struct sasl *s);
/*
 * Feed one client message: the AUTH initial response or a continuation
 * line, base64 as sent (without CRLF); initial=true with len 0 means no
 * initial response was given; "=" is an empty initial response. On
 * SASL_CONTINUE, *out is a NUL-terminated base64 challenge (borrowed:
 * valid until the next call). Never allocates past SASL_LINE_MAX.
 */
enum sasl_status sasl_step(struct sasl *s, const char *in, size_t len,
		    bool initial, const char **out);
/* PLAIN/LOGIN: the credentials to check (borrowed, NUL-terminated). */
const char	*sasl_user(const struct sasl *s);	/* authcid */
const char	*sasl_authzid(const struct sasl *s);	/* "" if none */
const char	*sasl_password(const struct sasl *s);
/* After SASL_CHECK_PASSWORD: ok says whether the password matched.
   Returns SASL_OK or SASL_ERR_AUTH; wipes the password either way. */
enum sasl_status sasl_password_result(struct sasl *s, bool ok);
/*
 * After SASL_NEED_USER: creds for sasl_user(), or NULL if there is no
 * such user (the exchange then continues with fake credentials so the
 * failure looks the same, RFC 5802 9). Returns SASL_CONTINUE with *out
 * (server-first message) set.
 */
enum sasl_status sasl_scram_user(struct sasl *s,
		    const struct sasl_scram_creds *creds, const char **out);

/*
 * Derive SCRAM-SHA-256 credentials from a password (PBKDF2-HMAC-SHA-256,
 * RFC 7677) with a random salt; for "petrel passwd". 0 or -1.
 */
int		 sasl_scram_derive(const char *password, unsigned iterations,
		    struct sasl_scram_creds *out);
#define SASL_SCRAM_ITERATIONS	4096	/* RFC 7677 4: at least 4096 */
/*
 * Credentials as one token for the user table:
 * "scram-sha-256:<iterations>:<salt b64>:<StoredKey b64>:<ServerKey b64>",
 * and back. format returns the length or -1; parse returns 0 or -1.
 */
int		 sasl_scram_format(const struct sasl_scram_creds *c, char *out,
		    size_t cap);
int		 sasl_scram_parse(const char *s, size_t len,
		    struct sasl_scram_creds *out);

/* Base64 (RFC 4648) helpers. decode returns the length or -1. */
long		 sasl_b64_decode(const char *in, size_t len, unsigned char *out,
		    size_t cap);
long		 sasl_b64_encode(const unsigned char *in, size_t len, char *out,
		    size_t cap);

/* Tests only: use nonce (printable ASCII, no ',', at most 64 bytes) as the
   server part of the SCRAM nonce instead of random bytes. */
void		 sasl_test_set_nonce(struct sasl *s, const char *nonce);

#endif
