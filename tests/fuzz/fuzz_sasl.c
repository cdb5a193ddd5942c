/*
 * fuzz_sasl.c: SASL exchanges, base64 and stored SCRAM credentials on
 * hostile bytes. The first byte picks the mechanism and the mode; the
 * rest is split into lines, one client message each:
 *   bits 0-1  mechanism (PLAIN, LOGIN, SCRAM-SHA-256, -PLUS)
 *   bit 2     the connection has channel binding data
 *   bit 3     the first line is the AUTH initial response
 *   bit 4     SCRAM: the user is unknown
 *   bit 5     PLAIN/LOGIN: the password check says yes
 *   bit 6     lines are raw messages (the harness base64-encodes them)
 *   bit 7     SCRAM: the harness answers server-first with a correct
 *             client-final (the line, if any, adds extensions)
 * Invariants: never OK without a good password or proof; a correct proof
 * always succeeds; challenges are valid base64; base64 and the
 * credential token are canonical (decode then encode gives the input).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/sasl.h"

#define FUZZ_B64_MAX	(SASL_LINE_MAX + 16)

static const unsigned char fuzz_cb[32] = "fuzz-tls-exporter-0123456789abc";
static struct sasl_scram_creds fuzz_creds;
static unsigned char fuzz_client_key[32];
static bool	 fuzz_ready;

static void
fuzz_hmac(const unsigned char *key, const void *data, size_t len,
    unsigned char out[32])
{
	unsigned int n = 32;

	if (HMAC(EVP_sha256(), key, 32, data, len, out, &n) == NULL)
		abort();
}

/* Fixed credentials for "pencil" with one iteration: cheap per run. */
static void
fuzz_init(void)
{
	unsigned char salted[32];
	unsigned int n = 32;

	memcpy(fuzz_creds.salt, "fuzz-salt-16byte", 16);
	fuzz_creds.salt_len = 16;
	fuzz_creds.iterations = 1;
	if (PKCS5_PBKDF2_HMAC("pencil", 6, fuzz_creds.salt, 16, 1,
	    EVP_sha256(), 32, salted) != 1)
		abort();
	fuzz_hmac(salted, "Client Key", 10, fuzz_client_key);
	if (EVP_Digest(fuzz_client_key, 32, fuzz_creds.stored_key, &n,
	    EVP_sha256(), NULL) != 1)
		abort();
	fuzz_hmac(salted, "Server Key", 10, fuzz_creds.server_key);
	fuzz_ready = true;
}

/* decode a challenge; it must be valid base64 */
static size_t
fuzz_unb64(const char *in, char *out, size_t cap)
{
	long	 n;

	if (in == NULL || strlen(in) >= 1024)
		abort();
	n = sasl_b64_decode(in, strlen(in), (unsigned char *)out, cap - 1);
	if (n < 0)
		abort();
	out[n] = '\0';
	return (size_t)n;
}

static void
fuzz_b64(const char *in, size_t len)
{
	static unsigned char dec[FUZZ_B64_MAX];
	static char enc[FUZZ_B64_MAX * 2];
	long	 n, e;

	if (len > FUZZ_B64_MAX)
		return;
	if ((n = sasl_b64_decode(in, len, dec, sizeof(dec))) < 0)
		return;
	e = sasl_b64_encode(dec, (size_t)n, enc, sizeof(enc));
	if (e < 0 || (size_t)e != len || memcmp(enc, in, len) != 0)
		abort();
	/* one byte short of room fails, exactly enough works */
	if (n > 0 && sasl_b64_decode(in, len, dec, (size_t)n - 1) != -1)
		abort();
}

static void
fuzz_scram_token(const char *in, size_t len)
{
	struct sasl_scram_creds c, c2;
	char	 text[512];
	int	 n;

	if (sasl_scram_parse(in, len, &c) != 0)
		return;
	if (c.iterations == 0 || c.salt_len == 0 || c.salt_len > 64)
		abort();
	n = sasl_scram_format(&c, text, sizeof(text));
	if (n < 0 || (size_t)n != len || strncasecmp(text, in, 14) != 0 ||
	    memcmp(text + 14, in + 14, len - 14) != 0)
		abort();
	if (sasl_scram_parse(text, (size_t)n, &c2) != 0 ||
	    memcmp(&c, &c2, sizeof(c)) != 0)
		abort();
}

/*
 * Build a correct client-final for the exchange: gs2 and bare from the
 * client-first we sent, nonce from server-first, extra from the fuzzer.
 */
static size_t
fuzz_client_final(const char *first, size_t first_len, const char *sf,
    const char *extra, size_t extra_len, char *out, size_t cap)
{
	static char authmsg[3 * FUZZ_B64_MAX];
	unsigned char cbind[2048], sig[32], proof[32];
	char	 cb64[1024], p64[64], nonce[512];
	const char *c1, *c2, *r_end;
	size_t	 gs2_len, cblen, wp, alen;

	c1 = memchr(first, ',', first_len);
	c2 = memchr(c1 + 1, ',', first_len - (size_t)(c1 + 1 - first));
	gs2_len = (size_t)(c2 + 1 - first);
	if (gs2_len + 32 > sizeof(cbind))
		abort();
	memcpy(cbind, first, gs2_len);
	cblen = gs2_len;
	if (first[0] == 'p') {
		memcpy(cbind + cblen, fuzz_cb, sizeof(fuzz_cb));
		cblen += sizeof(fuzz_cb);
	}
	if (sasl_b64_encode(cbind, cblen, cb64, sizeof(cb64)) < 0)
		abort();
	r_end = strchr(sf, ',');
	if (strncmp(sf, "r=", 2) != 0 || r_end == NULL ||
	    (size_t)(r_end - sf - 2) >= sizeof(nonce))
		abort();
	memcpy(nonce, sf + 2, (size_t)(r_end - sf - 2));
	nonce[r_end - sf - 2] = '\0';
	wp = (size_t)snprintf(out, cap, "c=%s,r=%s%.*s", cb64, nonce,
	    (int)extra_len, extra);
	if (wp >= cap)
		abort();
	alen = (size_t)snprintf(authmsg, sizeof(authmsg), "%.*s,%s,%s",
	    (int)(first_len - gs2_len), first + gs2_len, sf, out);
	if (alen >= sizeof(authmsg))
		abort();
	fuzz_hmac(fuzz_creds.stored_key, authmsg, alen, sig);
	for (size_t i = 0; i < 32; i++)
		proof[i] = fuzz_client_key[i] ^ sig[i];
	if (sasl_b64_encode(proof, 32, p64, sizeof(p64)) < 0)
		abort();
	if (wp + 3 + strlen(p64) >= cap)
		abort();
	return wp + (size_t)snprintf(out + wp, cap - wp, ",p=%s", p64);
}

/* The next line of buf (pos advances past its '\n'); false at the end. */
static bool
fuzz_line(const char *buf, size_t len, size_t *pos, const char **line,
    size_t *llen)
{
	const char *nl;

	if (*pos >= len)
		return false;
	*line = buf + *pos;
	nl = memchr(*line, '\n', len - *pos);
	*llen = nl != NULL ? (size_t)(nl - *line) : len - *pos;
	*pos += *llen + (nl != NULL);
	return true;
}

static void
fuzz_exchange(unsigned flags, const char *buf, size_t len)
{
	static char enc[2 * FUZZ_B64_MAX], raw[FUZZ_B64_MAX];
	static char last[FUZZ_B64_MAX], fin[2 * FUZZ_B64_MAX];
	enum sasl_mech mech = (enum sasl_mech)(SASL_MECH_PLAIN + (flags & 3));
	bool	 have_cb = flags & 4, initial = flags & 8;
	bool	 unknown = flags & 16, pass_ok = flags & 32;
	bool	 raw_lines = flags & 64, auto_final = flags & 128;
	bool	 scram = mech == SASL_MECH_SCRAM_SHA_256 ||
	    mech == SASL_MECH_SCRAM_SHA_256_PLUS;
	bool	 proved = false;
	size_t	 pos = 0, last_len = 0, llen, fl;
	const char *out = NULL, *line;
	enum sasl_status st = SASL_CONTINUE;
	struct sasl *s;

	s = sasl_new(mech, have_cb ? fuzz_cb : NULL,
	    have_cb ? sizeof(fuzz_cb) : 0);
	if (!initial && sasl_step(s, "", 0, true, &out) != SASL_CONTINUE)
		abort();
	for (;;) {
		switch (st) {
		case SASL_CONTINUE:
			if (!fuzz_line(buf, len, &pos, &line, &llen)) {
				/* a proved exchange ends with an empty line */
				if (proved && sasl_step(s, "", 0, false, &out)
				    != SASL_OK)
					abort();
				goto out;
			}
			if (raw_lines) {
				if (llen > FUZZ_B64_MAX / 4 * 3 - 3)
					llen = FUZZ_B64_MAX / 4 * 3 - 3;
				memcpy(last, line, llen);
				last_len = llen;
				if (sasl_b64_encode((const unsigned char *)line,
				    llen, enc, sizeof(enc)) < 0)
					abort();
				line = enc;
				llen = strlen(enc);
			}
			st = sasl_step(s, line, llen, initial, &out);
			initial = false;
			if (proved && llen == 0 && st != SASL_OK)
				abort();
			if (st == SASL_OK) {
				/* only the empty answer to server-final */
				if (!proved || llen != 0)
					abort();
				goto out;
			}
			proved = false;
			if (st == SASL_CONTINUE)
				fuzz_unb64(out, raw, sizeof(raw));
			break;
		case SASL_CHECK_PASSWORD:
			if (scram || sasl_user(s)[0] == '\0' ||
			    strlen(sasl_user(s)) > SASL_USER_MAX ||
			    strlen(sasl_authzid(s)) > SASL_USER_MAX ||
			    sasl_password(s)[0] == '\0' ||
			    strlen(sasl_password(s)) > SASL_PASS_MAX)
				abort();
			st = sasl_password_result(s, pass_ok);
			if (st != (pass_ok ? SASL_OK : SASL_ERR_AUTH) ||
			    sasl_password(s)[0] != '\0')
				abort();
			goto out;
		case SASL_NEED_USER:
			if (!scram || sasl_user(s)[0] == '\0' ||
			    strlen(sasl_user(s)) > SASL_USER_MAX)
				abort();
			st = sasl_scram_user(s, unknown ? NULL : &fuzz_creds,
			    &out);
			if (st != SASL_CONTINUE)
				abort();
			fuzz_unb64(out, raw, sizeof(raw));
			if (!auto_final || !raw_lines || unknown)
				break;
			/* answer correctly; the next line adds extensions */
			if (!fuzz_line(buf, len, &pos, &line, &llen))
				llen = 0;
			if (llen > 256)
				llen = 256;
			fl = fuzz_client_final(last, last_len, raw, line, llen,
			    fin, sizeof(fin));
			if (sasl_b64_encode((const unsigned char *)fin, fl, enc,
			    sizeof(enc)) < 0)
				abort();
			st = sasl_step(s, enc, strlen(enc), false, &out);
			if (st == SASL_CONTINUE) {
				fuzz_unb64(out, raw, sizeof(raw));
				if (strncmp(raw, "v=", 2) != 0)
					abort();
				proved = true;
			} else if (llen == 0 || (line[0] == ',' ?
			    st != SASL_ERR_PROTOCOL :
			    st != SASL_ERR_PROTOCOL && st != SASL_ERR_AUTH))
				abort();
			break;
		default:
			/* a failed exchange stays failed */
			if (st == SASL_OK || sasl_step(s, "", 0, false, &out) !=
			    SASL_ERR_PROTOCOL || out != NULL)
				abort();
			goto out;
		}
	}
out:
	sasl_free(s);
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fuzz_ready)
		fuzz_init();
	if (size == 0)
		return 0;
	fuzz_b64((const char *)data + 1, size - 1);
	fuzz_scram_token((const char *)data + 1, size - 1);
	fuzz_exchange(data[0], (const char *)data + 1, size - 1);
	return 0;
}
