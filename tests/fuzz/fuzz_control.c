/*
 * fuzz_control: libFuzzer target for the control socket's command lines,
 * sans I/O: control_parse_line() (split, command lookup, argument count),
 * then the parsers of the arguments that handlers take from an operator
 * (a domain for policy check and kill --domain, a log level, a session
 * id) and the escaping of every word for a reply. Lines are what the
 * daemon accepts: at most CONTROL_LINE_MAX bytes, no NUL.
 *
 * Checked: the word count stays within CONTROL_ARGS_MAX; a command found
 * is one of the table's, its name is exactly the line's first words, and
 * with OK its argument count is within the row's range; the arguments
 * are the words after the name, each non-empty and blank-free.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "control_private.h"
#include "jid.h"
#include "log.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* Whether the first words of the line, split again from copy, spell
 * name and are followed by argv[0..argc). */
static int
same_words(char *copy, const char *name, char **argv, int argc)
{
	char expect[CONTROL_LINE_MAX * 2 + 2] = "", got[sizeof(expect)] = "";
	char *w;

	strcat(expect, name);
	for (int i = 0; i < argc; i++) {
		strcat(expect, " ");
		strcat(expect, argv[i]);
	}
	while ((w = strsep(&copy, " \t")) != NULL) {
		if (*w == '\0')
			continue;
		if (got[0] != '\0')
			strcat(got, " ");
		strcat(got, w);
	}
	return strcmp(expect, got) == 0;
}

static void
arguments(char **argv, int argc)
{
	char d[JID_DOMAIN_MAX], esc[UTIL_ESC_MAX];
	enum log_level level;

	for (int i = 0; i < argc; i++) {
		check(argv[i][0] != '\0' && strpbrk(argv[i], " \t") == NULL);
		util_esc(argv[i], esc, sizeof(esc));
		check(strlen(esc) < sizeof(esc));
	}
	if (argc > 0) {
		(void)jid_domain_normalize(argv[0], d, sizeof(d));
		(void)log_level_parse(argv[0], &level);
		(void)strtoull(argv[0], NULL, 10);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct control_command *cmd;
	char *line, *copy, *argv[CONTROL_ARGS_MAX];
	enum control_parse r;
	int argc = -1;
	size_t i;

	if (size > CONTROL_LINE_MAX || memchr(data, '\0', size) != NULL)
		return 0;
	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if ((copy = strdup(line)) == NULL) {
		free(line);
		return 0;
	}
	r = control_parse_line(line, argv, &argc, &cmd);
	check(r <= CONTROL_PARSE_USAGE);
	check((cmd != NULL) == (r == CONTROL_PARSE_OK ||
	    r == CONTROL_PARSE_USAGE));
	if (cmd != NULL) {
		for (i = 0; i < control_ncommands; i++)
			if (cmd == &control_commands[i])
				break;
		check(i < control_ncommands);
		check(argc >= 0 && argc < CONTROL_ARGS_MAX);
		check(same_words(copy, cmd->name, argv, argc));
		if (r == CONTROL_PARSE_OK)
			check(argc >= cmd->min_args && argc <= cmd->max_args);
		arguments(argv, argc);
	}
	free(copy);
	free(line);
	return 0;
}
