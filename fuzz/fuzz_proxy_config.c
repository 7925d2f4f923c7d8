/* Fuzz target: the proxy's configuration loader (YAML to px_config). */
#include <stdint.h>
#include <stdlib.h>

#include "proxy/proxy_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct px_config c;
	json_t *docs;
	zt_err e;

	docs = zt_yaml_parse((const char *)data, size, 4, &e);
	if (!docs)
		return 0;
	if (px_config_from_docs(&c, docs, &e) == 0) {
		/* what loads is consistent */
		if (c.nlisteners == 0 || c.nlisteners > PX_MAX_LISTENERS || !c.td[0] ||
		    c.max_conns == 0 || c.buffer_bytes < 4096)
			abort();
		for (size_t i = 0; i < c.nlisteners; i++)
			if (!c.listeners[i].inbound && c.listeners[i].nexpect == 0)
				abort(); /* an outbound listener always names who may answer */
		px_config_free(&c);
	} else if (!e.msg[0]) {
		abort();
	}
	json_decref(docs);
	return 0;
}
