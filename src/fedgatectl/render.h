/*
 * render: fedgatectl's text output for people. Turns a reply of the
 * control protocol (doc/internals/control-protocol.md) into aligned lines;
 * -j bypasses it.
 */
#ifndef FEDGATECTL_RENDER_H
#define FEDGATECTL_RENDER_H

#include <stdio.h>

#include "parser.h"

struct json_object;

/*
 * Print reply, fedgated's answer to a command of action: the result on
 * out, or the error and its details on err. Return the exit status: 0 if
 * the reply says "ok": true, 1 otherwise.
 */
int	render_reply(enum parser_action action, struct json_object *reply,
	    FILE *out, FILE *err);

/*
 * The exit status of a check reply: 0 when federation would work ("works":
 * "yes"), 1 when it would not ("no"), 2 when it cannot tell ("unknown") or
 * the reply is an error.
 */
int	render_check_status(struct json_object *reply);

#endif
