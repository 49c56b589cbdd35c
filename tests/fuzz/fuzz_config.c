/*
 * fuzz_config: libFuzzer target for the configuration language, through
 * config_load_buffer() (include refused). Checks what the contracts
 * promise: a refused text comes with errors, each one line that starts
 * with the buffer's name; a loaded one gives a config that answers
 * config_check_supported() and frees cleanly (leaks show under ASan).
 */
#include "fgconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define NAME	"fuzz.conf"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Each line of errors is "fuzz.conf:LINE: message". */
static void
check_errors(const char *errors)
{
	const char *p = errors, *nl;

	if (errors == NULL || *errors == '\0')
		abort();
	for (; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			abort();
		if (strncmp(p, NAME ":", strlen(NAME ":")) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c;
	char *errors = NULL;

	c = config_load_buffer(NAME, (const char *)data, size, false, &errors);
	if (c == NULL) {
		check_errors(errors);
		free(errors);
		return 0;
	}
	if (errors != NULL)
		abort();
	if (config_check_supported(c, &errors) > 0)
		check_errors(errors);
	free(errors);
	config_unref(c);
	return 0;
}
