/* SPDX-License-Identifier: MIT */
/* MQTT command topics and payloads, without a broker (mqtt-command.h). */
#include <errno.h>

#include "mqtt-command.h"
#include "test.h"

static void test_topic(void) {
	char point[16];

	ASSERT_OK(
	    mqtt_command_topic("m2m/gw-01/boiler1/sp/set", "m2m", "gw-01", point, sizeof(point)));
	ASSERT_STR_EQ(point, "boiler1/sp");
	/* The shortest name the match lets through; point_name_valid() judges it. */
	ASSERT_OK(mqtt_command_topic("m2m/gw-01/ab/set", "m2m", "gw-01", point, sizeof(point)));
	ASSERT_STR_EQ(point, "ab");
	ASSERT_EQ(mqtt_command_topic("m2m/gw-01/a/set", "m2m", "gw-01", point, sizeof(point)),
	          -EINVAL);
	ASSERT_EQ(mqtt_command_topic("m2m/gw-01/set", "m2m", "gw-01", point, sizeof(point)),
	          -EINVAL);
	ASSERT_EQ(
	    mqtt_command_topic("m2m/gw-02/boiler1/sp/set", "m2m", "gw-01", point, sizeof(point)),
	    -EINVAL);
	ASSERT_EQ(
	    mqtt_command_topic("m2mx/gw-01/boiler1/sp/set", "m2m", "gw-01", point, sizeof(point)),
	    -EINVAL);
	ASSERT_EQ(
	    mqtt_command_topic("m2m/gw-01x/boiler1/sp/set", "m2m", "gw-01", point, sizeof(point)),
	    -EINVAL);
	ASSERT_EQ(mqtt_command_topic("m2m/gw-01/boiler1/sp/set/result", "m2m", "gw-01", point,
	                             sizeof(point)),
	          -EINVAL);
	ASSERT_EQ(mqtt_command_topic("", "m2m", "gw-01", point, sizeof(point)), -EINVAL);
	/* 15 bytes and the NUL fit; 16 do not, and nothing is written. */
	ASSERT_OK(mqtt_command_topic("m2m/gw-01/boiler1/abcdefg/set", "m2m", "gw-01", point,
	                             sizeof(point)));
	ASSERT_STR_EQ(point, "boiler1/abcdefg");
	point[0] = 'x';
	ASSERT_EQ(mqtt_command_topic("m2m/gw-01/boiler1/abcdefgh/set", "m2m", "gw-01", point,
	                             sizeof(point)),
	          -ENAMETOOLONG);
	ASSERT_EQ(point[0], 'x');
}

static void test_payload(void) {
	double v = 0;
	cJSON *id = NULL;

	ASSERT(!mqtt_command_parse("21.5", 4, &v, &id));
	ASSERT_DOUBLE_EQ(v, 21.5, 0);
	ASSERT(!id);
	/* Not NUL-terminated: only LEN bytes count. */
	ASSERT(!mqtt_command_parse("true!", 4, &v, &id));
	ASSERT_DOUBLE_EQ(v, 1, 0);
	ASSERT(!mqtt_command_parse("{\"value\":false,\"id\":\"abc\"}", 26, &v, &id));
	ASSERT_DOUBLE_EQ(v, 0, 0);
	ASSERT(cJSON_IsString(id));
	ASSERT_STR_EQ(id->valuestring, "abc");
	cJSON_Delete(id);
	/* An error reply still echoes the id. */
	ASSERT_STR_CONTAINS(mqtt_command_parse("{\"value\":\"1\",\"id\":7}", 20, &v, &id),
	                    "expected \"value\" to be a number or a bool");
	ASSERT(cJSON_IsNumber(id));
	ASSERT_DOUBLE_EQ(id->valuedouble, 7, 0);
	cJSON_Delete(id);
	ASSERT_STR_CONTAINS(mqtt_command_parse("{\"value\":1,\"id\":[1]}", 20, &v, &id),
	                    "\"id\" must be a string or a number");
	ASSERT(!id);
	ASSERT_STR_CONTAINS(mqtt_command_parse("\"21\"", 4, &v, &id), "malformed payload");
	ASSERT_STR_CONTAINS(mqtt_command_parse("{\"value\":1", 10, &v, &id), "malformed payload");
	ASSERT_STR_CONTAINS(mqtt_command_parse("", 0, &v, &id), "malformed payload");
	ASSERT(!id);
}

int main(void) {
	test_topic();
	test_payload();
	return 0;
}
