/* SPDX-License-Identifier: MIT */
/*
 * Request and reply lines of the control protocol. Both ends use these
 * functions, so the daemon and m2mctl cannot drift apart on field names.
 */
#include "ctl-proto.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fmt.h"
#include "util.h"

/* Errno values a reply may carry by name; anything else travels as "EIO". */
static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ -ENOENT, "ENOENT" },         { -EACCES, "EACCES" },     { -EPERM, "EPERM" },
	{ -EINVAL, "EINVAL" },         { -ETIMEDOUT, "ETIMEDOUT" }, { -EMSGSIZE, "EMSGSIZE" },
	{ -EBUSY, "EBUSY" },           { -EOPNOTSUPP, "EOPNOTSUPP" }, { -ENOMEM, "ENOMEM" },
	{ -ENOSYS, "ENOSYS" },         { -ESHUTDOWN, "ESHUTDOWN" }, { -EAGAIN, "EAGAIN" },
	{ -ERANGE, "ERANGE" },         { -EIO, "EIO" },
#define XX(name, code, text) { code, #name },
	M2M_ERRNO_MAP(XX)
#undef XX
};

const char *ctl_errno_name(int err) {
	for (size_t i = 0; i < ELEMENTSOF(errno_names); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	return "EIO";
}

int ctl_errno_from_name(const char *name) {
	for (size_t i = 0; name && i < ELEMENTSOF(errno_names); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].err;
	return -EIO;
}

/* An optional string member: absent and null are both "not given". */
static int opt_string(const cJSON *o, const char *key, const char **ret) {
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*ret = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return -EINVAL;
	*ret = v->valuestring;
	return 0;
}

int ctl_request_parse(const char *line, size_t len, struct ctl_request *ret,
                      const char **ret_error) {
	const cJSON *id, *cmd, *value;

	memset(ret, 0, sizeof(*ret));
	*ret_error = NULL;
	/* Length-bounded: the line is not NUL-terminated inside the read buffer. */
	ret->req = cJSON_ParseWithLength(line, len);
	if (!ret->req) {
		*ret_error = "request is not valid JSON";
		return -EINVAL;
	}
	if (!cJSON_IsObject(ret->req)) {
		*ret_error = "request must be a JSON object";
		return -EINVAL;
	}
	id = cJSON_GetObjectItemCaseSensitive(ret->req, "id");
	if (cJSON_IsNumber(id) && isfinite(id->valuedouble)) {
		ret->id = id->valuedouble;
		ret->has_id = true;
	} else if (id && !cJSON_IsNull(id)) {
		*ret_error = "\"id\" must be a number";
		return -EINVAL;
	}
	cmd = cJSON_GetObjectItemCaseSensitive(ret->req, "cmd");
	if (!cJSON_IsString(cmd) || !cmd->valuestring || !cmd->valuestring[0]) {
		*ret_error = "request needs a \"cmd\" string";
		return -EINVAL;
	}
	ret->cmd = cmd->valuestring;
	if (opt_string(ret->req, "point", &ret->point) < 0) {
		*ret_error = "\"point\" must be a string";
		return -EINVAL;
	}
	if (opt_string(ret->req, "device", &ret->device) < 0) {
		*ret_error = "\"device\" must be a string";
		return -EINVAL;
	}
	if (opt_string(ret->req, "rule", &ret->rule) < 0) {
		*ret_error = "\"rule\" must be a string";
		return -EINVAL;
	}
	value = cJSON_GetObjectItemCaseSensitive(ret->req, "all");
	if (value && !cJSON_IsBool(value)) {
		*ret_error = "\"all\" must be a boolean";
		return -EINVAL;
	}
	ret->all = cJSON_IsTrue(value);
	value = cJSON_GetObjectItemCaseSensitive(ret->req, "value");
	if (cJSON_IsBool(value)) {
		ret->value = cJSON_IsTrue(value) ? 1.0 : 0.0;
		ret->has_value = true;
	} else if (cJSON_IsNumber(value)) {
		ret->value = value->valuedouble;
		ret->has_value = true;
	} else if (value && !cJSON_IsNull(value)) {
		*ret_error = "\"value\" must be a number or a boolean";
		return -EINVAL;
	}
	return 0;
}

void ctl_request_done(struct ctl_request *r) {
	if (!r)
		return;
	cJSON_Delete(r->req);
	memset(r, 0, sizeof(*r));
}

char *ctl_line(const cJSON *item, size_t *ret_len) {
	char *s = json_print(item, false), *line;
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s);
	/* cJSON allocates exactly; one more byte for the newline the protocol needs. */
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	if (ret_len)
		*ret_len = n + 1;
	return line;
}

char *ctl_request_format(double id, const char *cmd, const cJSON *args) {
	cJSON *o = cJSON_CreateObject();
	char *line = NULL;

	if (!o)
		return NULL;
	if (!cJSON_AddNumberToObject(o, "id", id) || !cJSON_AddStringToObject(o, "cmd", cmd))
		goto out;
	for (const cJSON *a = args ? args->child : NULL; a; a = a->next) {
		cJSON *dup = cJSON_Duplicate(a, true);
		if (!dup)
			goto out;
		cJSON_AddItemToObject(o, a->string, dup);
	}
	line = ctl_line(o, NULL);
out:
	cJSON_Delete(o);
	return line;
}

static cJSON *reply_new(const struct ctl_request *r, bool ok) {
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	if (r && r->has_id)
		cJSON_AddNumberToObject(o, "id", r->id);
	else
		cJSON_AddNullToObject(o, "id");
	cJSON_AddBoolToObject(o, "ok", ok);
	return o;
}

char *ctl_reply_ok(const struct ctl_request *r, cJSON *result, size_t *ret_len) {
	cJSON *o = reply_new(r, true);
	char *line;

	if (!o) {
		cJSON_Delete(result);
		return NULL;
	}
	if (result)
		cJSON_AddItemToObject(o, "result", result);
	line = ctl_line(o, ret_len);
	cJSON_Delete(o);
	return line;
}

char *ctl_reply_error(const struct ctl_request *r, int err, const char *text, size_t *ret_len) {
	cJSON *o = reply_new(r, false);
	char *line;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "code", ctl_errno_name(err));
	cJSON_AddStringToObject(o, "error", text ? text : m2m_strerror(err));
	line = ctl_line(o, ret_len);
	cJSON_Delete(o);
	return line;
}
