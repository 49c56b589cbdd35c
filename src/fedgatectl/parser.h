/*
 * parser: fedgatectl's command line. A token table describes every command
 * (keywords, arguments, where a command may end); parser_parse() walks it
 * over argv, and parser_help() prints the command list from the same table.
 */
#ifndef FEDGATECTL_PARSER_H
#define FEDGATECTL_PARSER_H

#include <stddef.h>
#include <stdio.h>

#include "control.h"

enum parser_action {
	PARSER_NONE,
	PARSER_HELP,		/* local: print the command list */
	PARSER_STATUS,
	PARSER_POLICY_CHECK,
	PARSER_POLICY_LIST,
	PARSER_POLICY_ALLOW,
	PARSER_POLICY_DENY,
	PARSER_POLICY_REMOVE,
	PARSER_RELOAD,
	PARSER_LOG_LEVEL,	/* show */
	PARSER_LOG_LEVEL_SET,
	PARSER_SESSIONS,
	PARSER_ROUTES,
	PARSER_KILL,		/* one leg, by id */
	PARSER_KILL_DOMAIN,	/* every leg of a remote domain */
	PARSER_DRAIN,
	PARSER_RETRY,		/* clear the failure cache of a domain */
	PARSER_FLOWS,
	PARSER_CHECK,		/* federation checks of a domain */
	PARSER_METRICS
};

struct parse_result {
	enum parser_action	 action;
	const char		*domain;	/* policy, kill --domain, retry, check */
	const char		*session;	/* kill; both point into argv */
	const char		*level;		/* PARSER_LOG_LEVEL_SET; a static name */
	char			 line[CONTROL_LINE_MAX + 1]; /* wire command, no LF */
};

/*
 * Parse the command words argv[0..argc-1] (without the program name and
 * options) into res, building res->line with every keyword spelled out in
 * full (a unique prefix is accepted: "pol ch"). Return 0, or -1 with a
 * one-line message in err (errlen bytes).
 */
int	parser_parse(int argc, char *argv[], struct parse_result *res,
	    char *err, size_t errlen);
/* Print the command list, one aligned "  command args  help" line each. */
void	parser_help(FILE *out);

#endif
