#ifndef PETREL_TESTS_FUZZ_PART_H
#define PETREL_TESTS_FUZZ_PART_H
/*
 * fuzz_part.h: splitting a fuzz input into '\0'-separated parts, shared by
 * the targets whose input is several strings. static inline: one copy per
 * target binary.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The next '\0'-separated part of the input, as a new C string (caller
   frees); *p moves past it and its NUL. */
static inline char *
fuzz_part(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, '\0', (size_t)(end - *p));
	size_t	 n = (size_t)((z != NULL ? z : end) - *p);
	char	*s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, *p, n);
	s[n] = '\0';
	*p = z != NULL ? z + 1 : end;
	return s;
}

#endif
