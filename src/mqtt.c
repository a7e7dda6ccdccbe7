/* SPDX-License-Identifier: MIT */
/* MQTT north side: placeholder while the client is written (see mqtt.h). */
#include "mqtt.h"

#include <errno.h>
#include <stdlib.h>

#include "config.h"

struct mqtt_conf {
	int unused;
};

struct mqtt {
	mqtt_conf *conf;
};

int mqtt_conf_parse(config *c, const cJSON *root, const char *gateway_id, mqtt_conf **ret) {
	const cJSON *t;
	int err = 0;

	*ret = NULL;
	t = config_item(c, root, "mqtt", cJSON_Object, &err);
	if (err < 0)
		return err;
	if (!t)
		return 0;
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void mqtt_conf_free(mqtt_conf *mc) {
	free(mc);
}

bool mqtt_conf_same_connection(const mqtt_conf *a, const mqtt_conf *b) {
	return true;
}

int mqtt_new(const struct mqtt_env *env, mqtt_conf *conf, mqtt **ret) {
	mqtt *m = calloc(1, sizeof(*m));

	if (!m) {
		mqtt_conf_free(conf);
		return -ENOMEM;
	}
	m->conf = conf;
	*ret = m;
	return 0;
}

int mqtt_reconfigure(mqtt *m, mqtt_conf *conf) {
	mqtt_conf_free(m->conf);
	m->conf = conf;
	return 0;
}

void mqtt_on_reading(mqtt *m, const struct point *p, const struct m2m_reading *r, const char *text) {
}

int mqtt_publish(mqtt *m, const char *topic, const char *payload, int qos, bool retain) {
	return -ENOTCONN;
}

void mqtt_stop(mqtt *m, void (*on_stopped)(void *arg), void *arg) {
	on_stopped(arg);
}

void mqtt_free(mqtt *m) {
	if (!m)
		return;
	mqtt_conf_free(m->conf);
	free(m);
}

cJSON *mqtt_status_json(const mqtt *m) {
	return cJSON_CreateObject();
}
