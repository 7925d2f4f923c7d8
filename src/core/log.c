/* core/log.c: one JSON object per line on stderr. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum zt_log_level min_level = ZT_LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void zt_log_set_level(enum zt_log_level lvl)
{
	min_level = lvl;
}

int zt_log_level_parse(const char *s, enum zt_log_level *out)
{
	for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum zt_log_level)i;
			return 0;
		}
	}
	return -ZT_EINVAL;
}

void zt_log(enum zt_log_level lvl, const char *msg, ...)
{
	char ts[32];
	json_t *o;
	char *line;
	va_list ap;
	const char *k, *v;

	if (lvl < min_level || lvl > ZT_LOG_ERROR)
		return;
	o = json_object();
	if (!o)
		return;
	zt_time_format(zt_now(), ts, sizeof ts);
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "level", json_string(level_names[lvl]));
	/* jansson refuses invalid UTF-8; keep the line rather than drop it. */
	json_t *jm = json_string(msg);
	json_object_set_new(o, "msg", jm ? jm : json_string("(invalid utf-8)"));
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		json_t *js = v ? json_string(v) : json_null();
		json_object_set_new(o, k, js ? js : json_string("(invalid utf-8)"));
	}
	va_end(ap);
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
	json_decref(o);
}
