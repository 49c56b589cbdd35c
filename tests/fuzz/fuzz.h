/*
 * What the libFuzzer targets share: a check that traps, and an FNV-1a
 * hash of events to compare two runs.
 */
#ifndef FEDGATE_FUZZ_H
#define FEDGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FUZZ_HASH_INIT	0xcbf29ce484222325ULL

/* A property failed: stop here, for libFuzzer to save the input. */
static inline void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Mix p[0..n) into the FNV-1a hash *h. */
static inline void
mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char	*s = p;
	size_t			 i;

	for (i = 0; i < n; i++) {
		*h ^= s[i];
		*h *= 0x100000001b3ULL;
	}
}

/* Mix a string, its NUL included; NULL differs from every string. */
static inline void
mix_str(uint64_t *h, const char *s)
{
	mix(h, s != NULL ? s : "\x01", s != NULL ? strlen(s) + 1 : 1);
}

#endif
