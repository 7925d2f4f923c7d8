/*
 * agent/attest.c: workload attestation. Who the caller of the Workload API
 * is comes from the kernel, never from the caller: its uid and gid as the
 * socket saw them at connect (SO_PEERCRED), then, through /proc/PID, its
 * executable (path and SHA-256 of its content) and its cgroup.
 *
 * A PID can be reused: the process that connected may have exited and
 * another taken its number by the time /proc is read. The start time of
 * PID is read before and after everything else and must not change, and
 * the uid /proc reports must be the one the socket saw; otherwise the
 * caller is refused. (A process that connects and then exec()s keeps its
 * PID and start time: it is judged by what it runs when it asks, and each
 * request is judged again.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "crypto/crypto.h"

#define EXE_MAX ((uint64_t)4 << 30) /* an executable larger than 4 GiB is not hashed */
#define CGROUP_FILE_MAX (64u << 10)

/* A small file of /proc as text. */
static int read_proc(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got < cap - 1) {
		ssize_t n = read(fd, buf + got, cap - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return 0;
}

/* Field 22 of /proc/PID/stat: when the process started (clock ticks since boot). */
static int start_time(const char *proc, pid_t pid, uint64_t *out)
{
	char path[PATH_MAX], buf[4096];
	const char *p;

	snprintf(path, sizeof path, "%s/%d/stat", proc, (int)pid);
	if (read_proc(path, buf, sizeof buf) != 0 || !(p = strrchr(buf, ')')))
		return -1;
	/* after ") " come fields 3..: state is 3, starttime is 22 */
	if (p[1] != ' ')
		return -1;
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	char *end;
	unsigned long long v = strtoull(p, &end, 10);

	if (end == p)
		return -1;
	*out = v;
	return 0;
}

/* The real uid on the Uid: line of /proc/PID/status. */
static int proc_uid(const char *proc, pid_t pid, unsigned *uid)
{
	char path[PATH_MAX], buf[8192];
	const char *p;

	snprintf(path, sizeof path, "%s/%d/status", proc, (int)pid);
	if (read_proc(path, buf, sizeof buf) != 0 || !(p = strstr(buf, "\nUid:")))
		return -1;
	*uid = (unsigned)strtoul(p + 5, NULL, 10);
	return 0;
}

/* The executable's digest, cached by file identity: executables rarely change. */
static pthread_mutex_t hash_mu = PTHREAD_MUTEX_INITIALIZER;
static struct hash_slot {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char hex[65];
} hash_cache[64];

static int exe_digest(const char *proc, pid_t pid, char out[65], zt_err *e)
{
	char path[PATH_MAX];
	struct stat st;
	uint8_t h[32];
	int fd, r;

	snprintf(path, sizeof path, "%s/%d/exe", proc, (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return zt_err_set(e, ZT_EIO, "cannot open the caller's executable: %s", strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return zt_err_set(e, ZT_EIO, "the caller's executable is not a regular file");
	}
	struct hash_slot *slot = &hash_cache[((uint64_t)st.st_ino ^ (uint64_t)st.st_dev) % 64];

	pthread_mutex_lock(&hash_mu);
	if (slot->hex[0] && slot->dev == st.st_dev && slot->ino == st.st_ino &&
	    slot->size == st.st_size && slot->mtime.tv_sec == st.st_mtim.tv_sec &&
	    slot->mtime.tv_nsec == st.st_mtim.tv_nsec && slot->ctime.tv_sec == st.st_ctim.tv_sec &&
	    slot->ctime.tv_nsec == st.st_ctim.tv_nsec) {
		memcpy(out, slot->hex, 65);
		pthread_mutex_unlock(&hash_mu);
		close(fd);
		return 0;
	}
	pthread_mutex_unlock(&hash_mu);
	r = zt_sha256_fd(fd, EXE_MAX, h, e);
	close(fd);
	if (r != 0)
		return zt_err_wrap(e, "hashing the caller's executable");
	zt_hex(h, sizeof h, out);
	pthread_mutex_lock(&hash_mu);
	*slot = (struct hash_slot){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim, ""};
	memcpy(slot->hex, out, 65);
	pthread_mutex_unlock(&hash_mu);
	return 0;
}

int ag_facts_of(const char *proc, pid_t pid, unsigned uid, unsigned gid, struct ag_facts *f,
		zt_err *e)
{
	char path[PATH_MAX];
	uint64_t again;
	unsigned puid;
	ssize_t n;

	memset(f, 0, sizeof *f);
	f->pid = pid;
	f->uid = uid;
	f->gid = gid;
	if (pid <= 0 || start_time(proc, pid, &f->start) != 0)
		return zt_err_rule(e, ZT_ENOENT, "caller-gone", "the calling process %d is gone", (int)pid);
	snprintf(path, sizeof path, "%s/%d/exe", proc, (int)pid);
	if ((n = readlink(path, f->exe, sizeof f->exe - 1)) > 0)
		f->exe[n] = '\0';
	else
		f->exe[0] = '\0';
	if (exe_digest(proc, pid, f->sha256, e) != 0)
		f->sha256[0] = '\0'; /* unix:sha256 selectors then fail; the others may still match */
	snprintf(path, sizeof path, "%s/%d/cgroup", proc, (int)pid);
	char *cg = malloc(CGROUP_FILE_MAX);

	/* cgroup v2: the line that starts "0::"; a file that fills the buffer may have been cut
	 * inside that line, and a cut path could match a shorter prefix: then none is known */
	if (cg && read_proc(path, cg, CGROUP_FILE_MAX) == 0 && strlen(cg) < CGROUP_FILE_MAX - 1) {
		for (const char *l = cg; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] ? 1 : 0)) {
			size_t len = strcspn(l, "\n");

			if (len >= 3 && !strncmp(l, "0::", 3) && len - 3 < sizeof f->cgroup) {
				memcpy(f->cgroup, l + 3, len - 3);
				f->cgroup[len - 3] = '\0';
				break;
			}
		}
	}
	free(cg);
	/* the same process all along: same start time, and the uid the socket saw */
	if (start_time(proc, pid, &again) != 0 || again != f->start || proc_uid(proc, pid, &puid) != 0 ||
	    puid != uid)
		return zt_err_rule(e, ZT_EVERIFY, "caller-changed",
				   "the calling process %d changed while it was being looked at "
				   "(exited, or its PID was reused): refused", (int)pid);
	return 0;
}

/* path equals prefix, or lies below it */
static int under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (n > 1 && prefix[n - 1] == '/')
		n--;
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/' || n == 1);
}

/* A decimal ID as the server writes it (digits only, no sign, no leading zero), into *out. */
static int number(const char *p, unsigned *out)
{
	size_t n = strlen(p);

	if (n == 0 || n > 10 || strspn(p, "0123456789") != n || (n > 1 && p[0] == '0'))
		return 0;
	unsigned long long v = strtoull(p, NULL, 10);

	if (v > 0xffffffffull)
		return 0;
	*out = (unsigned)v;
	return 1;
}

static int one_matches(const struct ag_facts *f, const char *s)
{
	unsigned v;

	/* as strict as the server's selector syntax: a selector it would refuse matches nothing */
	if (!strncmp(s, "unix:uid:", 9))
		return number(s + 9, &v) && v == f->uid;
	if (!strncmp(s, "unix:gid:", 9))
		return number(s + 9, &v) && v == f->gid;
	if (!strncmp(s, "unix:path:", 10))
		return f->exe[0] && !strcmp(f->exe, s + 10);
	if (!strncmp(s, "unix:sha256:", 12))
		return f->sha256[0] && !strcmp(f->sha256, s + 12);
	if (!strncmp(s, "cgroup:/", 8))
		return f->cgroup[0] && under(f->cgroup, s + 7);
	return 0; /* a selector this agent does not know matches nothing */
}

int ag_selectors_match(const struct ag_facts *f, json_t *selectors)
{
	size_t i;
	json_t *v;

	if (!json_is_array(selectors) || json_array_size(selectors) == 0)
		return 0;
	json_array_foreach(selectors, i, v) {
		const char *s = json_string_value(v);

		if (!s || !one_matches(f, s))
			return 0;
	}
	return 1;
}
