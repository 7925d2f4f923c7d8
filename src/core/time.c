/* core/time.c: durations, a settable clock and RFC 3339 times. */
#include "core.h"

#include <stdio.h>
#include <string.h>

static int64_t pinned_now;

int64_t zt_now(void)
{
	return pinned_now ? pinned_now : (int64_t)time(NULL);
}

int64_t zt_now_ms(void)
{
	struct timespec ts;

	if (pinned_now)
		return pinned_now * 1000;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zt_clock_set(int64_t t)
{
	pinned_now = t;
}

void zt_time_format(int64_t t, char *out, size_t outsz)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm) || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "@%lld", (long long)t);
}

int zt_duration_parse(const char *s, int64_t max_seconds, int64_t *out, zt_err *e)
{
	int64_t total = 0;
	const char *p = s;

	*out = 0;
	if (!s || !*s)
		return zt_err_set(e, ZT_EINVAL,
				  "empty duration; write e.g. 90s, 30m, 1h or 7d");
	while (*p) {
		int64_t v = 0, unit;
		const char *digits = p;

		while (*p >= '0' && *p <= '9') {
			if (v > (INT64_MAX - 9) / 10)
				return zt_err_set(e, ZT_EINVAL, "duration \"%.64s\" is too large", s);
			v = v * 10 + (*p - '0');
			p++;
		}
		if (p == digits)
			return zt_err_set(e, ZT_EINVAL,
					  "bad duration \"%.64s\": expected a number; write e.g. 90s, 30m, 1h or 7d", s);
		switch (*p) {
		case 's': unit = 1; break;
		case 'm': unit = 60; break;
		case 'h': unit = 3600; break;
		case 'd': unit = 86400; break;
		default:
			return zt_err_set(e, ZT_EINVAL,
					  "bad duration \"%.64s\": each number needs a unit s, m, h or d", s);
		}
		p++;
		if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
			return zt_err_set(e, ZT_EINVAL, "duration \"%.64s\" is too large", s);
		total += v * unit;
	}
	if (total == 0)
		return zt_err_set(e, ZT_EINVAL, "duration \"%.64s\" is zero", s);
	if (total > max_seconds)
		return zt_err_set(e, ZT_ELIMIT,
				  "duration \"%.64s\" is longer than the maximum of %lld seconds",
				  s, (long long)max_seconds);
	*out = total;
	return 0;
}

void zt_duration_format(int64_t secs, char *out, size_t outsz)
{
	if (secs >= 86400 && secs % 86400 == 0)
		snprintf(out, outsz, "%lldd", (long long)(secs / 86400));
	else if (secs >= 3600 && secs % 3600 == 0)
		snprintf(out, outsz, "%lldh", (long long)(secs / 3600));
	else if (secs >= 60 && secs % 60 == 0)
		snprintf(out, outsz, "%lldm", (long long)(secs / 60));
	else
		snprintf(out, outsz, "%llds", (long long)secs);
}
