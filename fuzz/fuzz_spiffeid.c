/* Fuzz target: the SPIFFE ID parser and trust domain check. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	zt_spiffe_id id, again;
	zt_err e;

	if (zt_id_parse((const char *)data, size, &id, &e) == 0) {
		size_t tl, pl;
		const char *td = zt_id_td(&id, &tl);
		const char *path = zt_id_path(&id, &pl);

		/* invariants: canonical, re-parses to itself, parts add up */
		if (id.len != size || memcmp(id.str, data, size) != 0 || id.str[size] != '\0')
			abort();
		if (9 + tl + pl != size || td != id.str + 9 || path != td + tl)
			abort();
		if (zt_id_parse(id.str, id.len, &again, NULL) != 0 || strcmp(again.str, id.str) != 0)
			abort();
		if (zt_td_check(td, tl, NULL) != 0 || !zt_id_in_td(&id, td, tl))
			abort();
	} else if (e.rule[0] == '\0' || e.msg[0] == '\0') {
		abort(); /* every rejection names its rule */
	}
	(void)zt_td_check((const char *)data, size, &e);
	return 0;
}
