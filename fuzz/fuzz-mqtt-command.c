/* SPDX-License-Identifier: MIT */
/*
 * MQTT command messages: a topic and a payload, both chosen by whoever may
 * publish on the broker. Input: the topic, a newline, the payload (the rest,
 * not NUL-terminated, as libmosquitto hands it over). The gateway is the
 * default prefix "m2m" with id "gw-01", as in conf/mqtt.toml.
 */
#include <math.h>
#include <stdbool.h>

#include <cJSON.h>

#include "fuzz-input.h"
#include "mqtt-command.h"
#include "point.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	const uint8_t *nl = memchr(data, '\n', size);
	size_t tlen = nl ? (size_t)(nl - data) : size;
	char *topic = malloc(tlen + 1), *payload;
	size_t plen = nl ? size - tlen - 1 : 0;
	char point[256];
	double value = NAN;
	cJSON *id = NULL;
	const char *err;
	int r;

	FUZZ_ASSERT(topic);
	memcpy(topic, data, tlen);
	topic[tlen] = '\0';
	r = mqtt_command_topic(topic, "m2m", "gw-01", point, sizeof(point));
	if (r == 0) {
		FUZZ_ASSERT(strlen(point) < sizeof(point) && strlen(point) + 14 <= tlen);
		(void)point_name_valid(point);
	} else {
		FUZZ_ASSERT(r == -EINVAL || r == -ENAMETOOLONG);
	}
	/* An exact-size copy: a read past the payload's end is a sanitizer report. */
	payload = malloc(plen ? plen : 1);
	FUZZ_ASSERT(payload);
	memcpy(payload, nl ? nl + 1 : data, plen);
	err = mqtt_command_parse(payload, plen, &value, &id);
	/* cJSON reads no "nan": a value that parsed is a number, perhaps infinite. */
	if (!err)
		FUZZ_ASSERT(!isnan(value));
	FUZZ_ASSERT(!id || cJSON_IsString(id) || cJSON_IsNumber(id));
	if (id) {
		/* The reply echoes the id: it must print. */
		char *s = cJSON_PrintUnformatted(id);

		FUZZ_ASSERT(s);
		free(s);
	}
	cJSON_Delete(id);
	free(payload);
	free(topic);
	return 0;
}
