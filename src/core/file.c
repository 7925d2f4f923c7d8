/* core/file.c: bounded reads and atomic, mode-explicit writes. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int zt_file_read(const char *path, size_t max, zt_buf *b, zt_err *e)
{
	char chunk[8192];
	struct stat st;
	int fd, r = 0;

	zt_buf_init(b, max);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return zt_err_set(e, errno == ENOENT ? ZT_ENOENT : ZT_EIO,
				  "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		r = zt_err_set(e, ZT_EIO, "cannot read %s: it is a directory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = zt_err_set(e, ZT_EIO, "cannot read %s: %s", path,
				       strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (zt_buf_append(b, chunk, (size_t)n, NULL) != 0) {
			r = zt_err_set(e, ZT_ELIMIT,
				       "%s is larger than the %zu-byte limit for this kind of file",
				       path, max);
			goto out;
		}
	}
	r = zt_buf_terminate(b, e);
out:
	zt_wipe(chunk, sizeof chunk); /* the file may hold a private key */
	close(fd);
	if (r != 0)
		zt_buf_free(b, 1);
	return r;
}

static int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes a rename or link in path's folder durable (fsync of the folder). */
static void sync_parent(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int zt_file_write(const char *path, const void *data, size_t len, unsigned mode,
		  int flags, zt_err *e)
{
	char tmp[4096];
	int fd, r;

	if ((r = zt_path_join(tmp, sizeof tmp, e, "%s.tmp.XXXXXX", path)) != 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return zt_err_set(e, ZT_EIO, "cannot create a file beside %s: %s",
				  path, strerror(errno));
	/* mkostemp creates 0600; set the final mode before any byte lands */
	if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		return r;
	}
	if (close(fd) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		return r;
	}
	if (flags & ZT_WRITE_EXCL) {
		/* link(2) fails if the target exists: no window for a race */
		if (link(tmp, path) != 0) {
			int err = errno;

			unlink(tmp);
			if (err == EEXIST)
				return zt_err_set(e, ZT_EEXIST,
						  "%s already exists; zt will not overwrite it (move it away or choose another path)",
						  path);
			return zt_err_set(e, ZT_EIO, "cannot create %s: %s", path,
					  strerror(err));
		}
		unlink(tmp);
		sync_parent(path);
		return 0;
	}
	if (rename(tmp, path) != 0) {
		r = zt_err_set(e, ZT_EIO, "cannot replace %s: %s", path, strerror(errno));
		unlink(tmp);
		return r;
	}
	sync_parent(path);
	return 0;
}

int zt_path_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int zt_mkdir(const char *path, unsigned mode, zt_err *e)
{
	struct stat st;

	if (mkdir(path, (mode_t)mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return zt_err_set(e, ZT_EIO, "cannot create directory %s: %s", path,
			  errno == EEXIST ? "a file of that name exists" : strerror(errno));
}

int zt_path_join(char *out, size_t outsz, zt_err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outsz, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outsz)
		return zt_err_set(e, ZT_ELIMIT, "path is too long (limit %zu bytes)",
				  outsz - 1);
	return 0;
}
