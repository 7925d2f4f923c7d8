/* core/err.c: error records with a readable reason and a rule tag. */
#include "core.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

void zt_err_clear(zt_err *e)
{
	if (!e)
		return;
	e->code = ZT_OK;
	e->rule[0] = '\0';
	e->msg[0] = '\0';
}

int zt_err_setv(zt_err *e, int code, const char *fmt, va_list ap)
{
	if (e) {
		e->code = code;
		e->rule[0] = '\0';
		vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	}
	return -code;
}

int zt_err_set(zt_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zt_err_setv(e, code, fmt, ap);
	va_end(ap);
	return -code;
}

int zt_err_rule(zt_err *e, int code, const char *rule, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zt_err_setv(e, code, fmt, ap);
	va_end(ap);
	if (e)
		snprintf(e->rule, sizeof e->rule, "%s", rule);
	return -code;
}

int zt_err_wrap(zt_err *e, const char *fmt, ...)
{
	char prefix[512], old[ZT_ERR_MSG_MAX];
	va_list ap;

	if (!e)
		return -ZT_EINVAL;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	/* truncation is fine here: the reason is for people */
	size_t n = strlen(prefix);
	if (n > sizeof e->msg - 3)
		n = sizeof e->msg - 3;
	memcpy(e->msg, prefix, n);
	e->msg[n++] = ':';
	e->msg[n++] = ' ';
	size_t m = strnlen(old, sizeof old);
	if (m > sizeof e->msg - 1 - n)
		m = sizeof e->msg - 1 - n;
	memcpy(e->msg + n, old, m);
	e->msg[n + m] = '\0';
	return -(e->code ? e->code : ZT_EINVAL);
}

const char *zt_strerror(int code)
{
	if (code < 0 && code != INT_MIN)
		code = -code;
	switch (code) {
#define ZT_ERR_CASE(name, val, text) \
	case val:                    \
		return text;
		ZT_ERR_MAP(ZT_ERR_CASE)
#undef ZT_ERR_CASE
	}
	return "unknown error";
}
