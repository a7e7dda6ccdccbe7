/* SPDX-License-Identifier: MIT */
/* MQTT command topics and payloads. See mqtt-command.h. */
#include "mqtt-command.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

int mqtt_command_topic(const char *topic, const char *prefix, const char *gateway, char *point,
                       size_t size) {
	size_t plen = strlen(prefix), glen = strlen(gateway), tl = strlen(topic), n;
	const char *dev;

	/*
	 * {prefix}/{gateway}/{device}/{point}/set, and nothing else: at least
	 * two bytes of name, so that "/set" never overlaps the gateway's part.
	 */
	if (tl < plen + glen + 8 || strncmp(topic, prefix, plen) != 0 || topic[plen] != '/' ||
	    strncmp(topic + plen + 1, gateway, glen) != 0 || topic[plen + 1 + glen] != '/' ||
	    strcmp(topic + tl - 4, "/set") != 0)
		return -EINVAL;
	dev = topic + plen + glen + 2;
	n = (size_t)(topic + tl - 4 - dev);
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(point, dev, n);
	point[n] = '\0';
	return 0;
}

const char *mqtt_command_parse(const char *payload, size_t len, double *ret_value, cJSON **ret_id) {
	cJSON *j = cJSON_ParseWithLength(payload, len), *v;
	const char *err = NULL;

	*ret_id = NULL;
	if (!j)
		return "malformed payload: expected a number, true, false or {\"value\": ..., "
		       "\"id\": ...}";
	if (cJSON_IsObject(j)) {
		cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
		if (id && (cJSON_IsString(id) || cJSON_IsNumber(id)))
			*ret_id = cJSON_Duplicate(id, true);
		else if (id)
			err = "malformed payload: \"id\" must be a string or a number";
		v = cJSON_GetObjectItemCaseSensitive(j, "value");
	} else {
		v = j;
	}
	if (!err) {
		if (v && cJSON_IsNumber(v))
			*ret_value = v->valuedouble;
		else if (v && cJSON_IsBool(v))
			*ret_value = cJSON_IsTrue(v) ? 1 : 0;
		else
			err = "malformed payload: expected \"value\" to be a number or a bool";
	}
	cJSON_Delete(j);
	return err;
}
