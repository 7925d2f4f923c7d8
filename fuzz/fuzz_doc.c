/* Fuzz target: the YAML and JSON document loaders, and durations. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *v;
	char dur[32];
	int64_t secs;
	zt_err e;

	v = zt_yaml_parse((const char *)data, size, 16, &e);
	if (v) {
		/* whatever YAML yields must be representable as JSON and back */
		char *text = json_dumps(v, JSON_COMPACT);
		json_t *back = text ? zt_json_parse(text, strlen(text), &e) : NULL;

		if (!text || !back || !json_equal(v, back))
			abort();
		free(text);
		json_decref(back);
		json_decref(v);
	}
	json_decref(zt_json_parse((const char *)data, size, &e));
	if (size < sizeof dur) {
		memcpy(dur, data, size);
		dur[size] = '\0';
		if (zt_duration_parse(dur, INT64_MAX, &secs, &e) == 0 && secs <= 0)
			abort();
	}
	return 0;
}
