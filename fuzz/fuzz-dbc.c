/* SPDX-License-Identifier: MIT */
/*
 * The DBC parser on any text, and the signal codec on what it accepts.
 *
 * Input: DBC text. Besides what the sanitizers see, it checks the parser's
 * promises (an error is one message naming the file and a line, a result
 * holds only signals that fit in 64 bytes and multiplexers without cycles,
 * warnings stay within their bound) and then decodes every signal of every
 * message from a payload made of the input's own bytes, checking that
 * putting back the raw bits it read leaves the payload as it was, that an
 * integer's raw bits survive the trip through their number, and that
 * encoding a decoded value gives a frame that decodes to it again.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "can-dbc.h"
#include "can-signal.h"
#include "fuzz-input.h"

static void check_signal(const struct can_message *m, size_t i, const uint8_t *frame, size_t len,
                         bool clean) {
	const struct can_signal *s = &m->signals[i];
	uint8_t copy[CAN_MAX_PAYLOAD], mask[CAN_MAX_PAYLOAD];
	unsigned need;
	uint64_t raw, raw2;
	double v, v2;
	int r;

	FUZZ_ASSERT(can_signal_layout(s->start_bit, s->length, s->big_endian, &need));
	FUZZ_ASSERT(need >= 1 && need <= CAN_MAX_PAYLOAD);
	FUZZ_ASSERT(!s->is_multiplexed || s->mux_parent < 0 ||
	            (size_t)s->mux_parent < m->n_signals);
	FUZZ_ASSERT(!s->is_multiplexed || s->n_mux_ranges >= 1);
	for (size_t k = 0; k < s->n_values; k++)
		FUZZ_ASSERT(can_signal_value_text(s, s->values[k].value) != NULL);

	r = can_signal_get_raw(s, frame, len, &raw);
	FUZZ_ASSERT(r == (need > len ? -ENODATA : 0));
	r = can_signal_present(m, i, frame, len);
	FUZZ_ASSERT(r == 0 || r == 1 || r == -ENODATA);
	if (need > len)
		return;
	FUZZ_ASSERT(s->length == 64 || raw >> s->length == 0);
	memcpy(copy, frame, len);
	FUZZ_ASSERT(can_signal_put_raw(s, raw, copy, len) == 0);
	FUZZ_ASSERT(memcmp(copy, frame, len) == 0);
	can_signal_mask(s, mask);
	for (unsigned b = need; b < CAN_MAX_PAYLOAD; b++)
		FUZZ_ASSERT(mask[b] == 0);
	FUZZ_ASSERT(mask[need - 1] != 0);

	if (s->type == CAN_VALUE_INTEGER) {
		struct can_signal unit = *s;

		/* With factor 1 and offset 0 the number is the raw value, exactly while below 2^53.
		 */
		unit.factor = 1;
		unit.offset = 0;
		v = can_signal_physical(&unit, raw);
		if (fabs(v) < 9007199254740992.0) {
			FUZZ_ASSERT(can_signal_to_raw(&unit, v, &raw2) == 0);
			FUZZ_ASSERT(raw2 == raw);
		}
	}
	r = can_signal_decode(m, i, frame, len, &v, &raw2);
	if (r < 0) {
		FUZZ_ASSERT(r == -ENOENT || r == -ENODATA);
		return;
	}
	FUZZ_ASSERT(raw2 == raw);
	/*
	 * What was decoded encodes into a frame that decodes to it, where the
	 * numbers are exact (factor 1, offset 0, below 2^53) and setting the
	 * multiplexers cannot overwrite the signal (a file without overlaps).
	 */
	if (s->factor != 1 || s->offset != 0 ||
	    !(fabs(v) < 9007199254740992.0 || s->type != CAN_VALUE_INTEGER))
		return;
	if (s->is_multiplexed && !clean)
		return;
	memcpy(copy, frame, len);
	FUZZ_ASSERT(can_signal_encode(m, i, v, copy, len) == 0);
	FUZZ_ASSERT(can_signal_decode(m, i, copy, len, &v2, NULL) == 0);
	FUZZ_ASSERT(v2 == v || (isnan(v) && isnan(v2)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	struct can_dbc *d = NULL;
	char *err = NULL;
	uint8_t frame[CAN_MAX_PAYLOAD] = {0};
	bool clean;
	int r;

	/* A copy of exactly SIZE bytes, so that a read past the end is a sanitizer report. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	r = can_dbc_parse(text, size, "fuzz.dbc", &d, &err);
	free(text);
	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ENOMEM);
		FUZZ_ASSERT(d == NULL);
		FUZZ_ASSERT(r == -ENOMEM || (err && strncmp(err, "fuzz.dbc:", 9) == 0));
		free(err);
		return 0;
	}
	FUZZ_ASSERT(err == NULL && d != NULL);
	FUZZ_ASSERT(d->n_warnings <= CAN_DBC_MAX_WARNINGS);
	for (size_t w = 0; w < d->n_warnings; w++)
		FUZZ_ASSERT(strncmp(d->warnings[w], "fuzz.dbc:", 9) == 0);
	/* The payload: the input's last bytes, so that mutations move both. */
	memcpy(frame, data + (size > sizeof(frame) ? size - sizeof(frame) : 0),
	       size < sizeof(frame) ? size : sizeof(frame));
	clean = d->n_warnings == 0 && d->n_warnings_dropped == 0;
	for (size_t i = 0; i < d->n_messages; i++) {
		const struct can_message *m = &d->messages[i];
		const struct can_message *found = can_dbc_message(d, m->id, m->extended);

		FUZZ_ASSERT(found && found->id == m->id && found->extended == m->extended);
		FUZZ_ASSERT(m->id <= (m->extended ? 0x1fffffffu : 0x7ffu));
		FUZZ_ASSERT(m->size <= CAN_MAX_PAYLOAD);
		for (size_t j = 0; j < m->n_signals; j++) {
			FUZZ_ASSERT(can_message_signal(m, m->signals[j].name) == &m->signals[j]);
			/* Both the message's own length and a full FD frame. */
			check_signal(m, j, frame, m->size, clean);
			check_signal(m, j, frame, sizeof(frame), clean);
		}
	}
	can_dbc_free(d);
	return 0;
}
