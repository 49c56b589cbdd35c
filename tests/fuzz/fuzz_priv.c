/*
 * fuzz_priv: libFuzzer target for the privsep channel's decoders,
 * priv_msg_decode() and priv_bundle_decode(): the input is a stream of
 * messages as the relay would read it from the socketpair. Checks what the
 * contracts promise: a decoded message lies inside the input, and the
 * decoders are strict enough that encoding a decoded bundle gives back the
 * very bytes it came from.
 */
#include "fgconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "priv.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_bundle(const struct priv_msg *msg)
{
	struct bundle	*b;
	uint8_t		*enc;
	size_t		 len;
	char		 err[128];

	if ((b = priv_bundle_decode(msg->payload, msg->len, err,
	    sizeof(err))) == NULL) {
		if (err[0] == '\0')
			abort();
		return;
	}
	if (bundle_count(b) == 0 || bundle_count(b) > BUNDLE_FILES_MAX)
		abort();
	if (priv_bundle_encode(b, &enc, &len) == -1)
		abort();
	if (len != msg->len || memcmp(enc, msg->payload, len) != 0)
		abort();
	free(enc);
	bundle_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct priv_msg	 msg;
	size_t		 off = 0, need;
	char		 err[128];

	while (off < size) {
		err[0] = '\0';
		switch (priv_msg_decode(data + off, size - off, &msg, &need,
		    err, sizeof(err))) {
		case PRIV_DECODE_ERROR:
			if (err[0] == '\0')
				abort();
			return 0;
		case PRIV_DECODE_MORE:
			if (need <= size - off ||
			    need > PRIV_HEADER_LEN + PRIV_MSG_MAX)
				abort();
			return 0;
		case PRIV_DECODE_OK:
			break;
		}
		if (need < PRIV_HEADER_LEN || need > size - off ||
		    msg.payload != data + off + PRIV_HEADER_LEN ||
		    msg.len != need - PRIV_HEADER_LEN ||
		    msg.type == 0 || msg.type >= PRIV_TYPE_MAX)
			abort();
		if (msg.type == PRIV_BUNDLE)
			check_bundle(&msg);
		off += need;
	}
	return 0;
}
