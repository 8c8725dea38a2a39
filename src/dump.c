/*
 * dump: the dump_sink and dump_source calls, and their one implementation
 * so far, the snapshot file: a single zstd frame written through a
 * streaming compressor and read back through a streaming decompressor.
 */
#include "dump.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <zstd.h>

int dump_sink_write(struct dump_sink *sink, const void *data, size_t len)
{
	return sink->write(sink, data, len);
}

int dump_sink_close(struct dump_sink *sink)
{
	return sink->close(sink);
}

void dump_sink_abort(struct dump_sink *sink)
{
	sink->abort(sink);
}

ssize_t dump_source_read(struct dump_source *source, const void **data)
{
	return source->read(source, data);
}

void dump_source_close(struct dump_source *source)
{
	source->close(source);
}

/* ------------------------------------------------------------------ */
/* The zstd file sink */

struct zstd_sink {
	struct dump_sink sink; /* first: the sink is the struct */
	int fd;
	ZSTD_CCtx *cctx;
	char *buf;
	size_t cap;
};

/* Feeds len bytes to the compressor and writes what comes out; with
 * ZSTD_e_end, until the frame is complete. */
static int zstd_sink_push(struct zstd_sink *z, const void *data, size_t len,
			  ZSTD_EndDirective end)
{
	ZSTD_inBuffer in = { data, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer out = { z->buf, z->cap, 0 };

		left = ZSTD_compressStream2(z->cctx, &out, &in, end);
		if (ZSTD_isError(left)) {
			errno = EIO;
			return -1;
		}
		if (write_all(z->fd, z->buf, out.pos) < 0)
			return -1;
	} while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int zstd_sink_write(struct dump_sink *sink, const void *data, size_t len)
{
	return zstd_sink_push((struct zstd_sink *)sink, data, len, ZSTD_e_continue);
}

static void zstd_sink_free(struct zstd_sink *z)
{
	ZSTD_freeCCtx(z->cctx);
	free(z->buf);
	free(z);
}

static int zstd_sink_close(struct dump_sink *sink)
{
	struct zstd_sink *z = (struct zstd_sink *)sink;
	int rc = 0, e = 0;

	if (zstd_sink_push(z, "", 0, ZSTD_e_end) < 0 || fsync(z->fd) < 0) {
		rc = -1;
		e = errno;
	}
	if (close(z->fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	zstd_sink_free(z);
	errno = e;
	return rc;
}

static void zstd_sink_abort(struct dump_sink *sink)
{
	struct zstd_sink *z = (struct zstd_sink *)sink;
	int e = errno;

	close(z->fd);
	zstd_sink_free(z);
	errno = e;
}

/*
 * Compression in zstd's worker threads, so that reading COPY and
 * compressing overlap as in `pg_dump | zstd`: one worker, two with more
 * than two CPUs (each holds a few MiB of jobs: the peak RSS stays flat). A libzstd built
 * without threads refuses the setting: then the one thread compresses, as before.
 */
static void zstd_workers(ZSTD_CCtx *cctx)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int n = cpus > 2 ? 2 : 1;
	size_t rc = ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, n);

	if (ZSTD_isError(rc))
		log_debug("zstd compresses in this thread (%s)", ZSTD_getErrorName(rc));
	else
		log_debug("zstd compresses in %d worker thread(s)", n);
}

struct dump_sink *dump_sink_zstd_file(int fd)
{
	struct zstd_sink *z = xcalloc(1, sizeof(*z));

	z->sink.write = zstd_sink_write;
	z->sink.close = zstd_sink_close;
	z->sink.abort = zstd_sink_abort;
	z->fd = fd;
	z->cctx = ZSTD_createCCtx();
	z->cap = ZSTD_CStreamOutSize();
	z->buf = xmalloc(z->cap);
	ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, 3);
	zstd_workers(z->cctx);
	return &z->sink;
}

/* ------------------------------------------------------------------ */
/* The zstd file source */

struct zstd_source {
	struct dump_source source; /* first: the source is the struct */
	int fd;
	ZSTD_DCtx *dctx;
	char *ibuf;
	size_t icap;
	ZSTD_inBuffer in;
	char *obuf;
	size_t ocap;
};

/* Decompresses until some output comes: its length, 0 at the end of the
 * file, -1 on a read error or a damaged frame. */
static ssize_t zstd_source_read(struct dump_source *source, const void **data)
{
	struct zstd_source *z = (struct zstd_source *)source;

	for (;;) {
		ZSTD_outBuffer out = { z->obuf, z->ocap, 0 };
		size_t rc;

		if (z->in.pos == z->in.size) {
			ssize_t n = read(z->fd, z->ibuf, z->icap);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n;
			z->in.src = z->ibuf;
			z->in.size = (size_t)n;
			z->in.pos = 0;
		}
		rc = ZSTD_decompressStream(z->dctx, &out, &z->in);
		if (ZSTD_isError(rc)) {
			errno = EILSEQ;
			return -1;
		}
		if (out.pos > 0) {
			*data = z->obuf;
			return (ssize_t)out.pos;
		}
	}
}

static void zstd_source_close(struct dump_source *source)
{
	struct zstd_source *z = (struct zstd_source *)source;
	int e = errno;

	close(z->fd);
	ZSTD_freeDCtx(z->dctx);
	free(z->ibuf);
	free(z->obuf);
	free(z);
	errno = e;
}

struct dump_source *dump_source_zstd_file(int fd)
{
	struct zstd_source *z = xcalloc(1, sizeof(*z));

	z->source.read = zstd_source_read;
	z->source.close = zstd_source_close;
	z->fd = fd;
	z->dctx = ZSTD_createDCtx();
	z->icap = ZSTD_DStreamInSize();
	z->ibuf = xmalloc(z->icap);
	z->ocap = ZSTD_DStreamOutSize();
	z->obuf = xmalloc(z->ocap);
	return &z->source;
}

/* ------------------------------------------------------------------ */
/* The plain file source (a dump staged uncompressed, as a restore of an
 * archive does) */

#define PLAIN_BUF (256 * 1024)

struct plain_source {
	struct dump_source source; /* first: the source is the struct */
	int fd;
	char *buf;
};

static ssize_t plain_source_read(struct dump_source *source, const void **data)
{
	struct plain_source *p = (struct plain_source *)source;
	ssize_t n;

	do
		n = read(p->fd, p->buf, PLAIN_BUF);
	while (n < 0 && errno == EINTR);
	*data = p->buf;
	return n;
}

static void plain_source_close(struct dump_source *source)
{
	struct plain_source *p = (struct plain_source *)source;
	int e = errno;

	close(p->fd);
	free(p->buf);
	free(p);
	errno = e;
}

struct dump_source *dump_source_plain_file(int fd)
{
	struct plain_source *p = xcalloc(1, sizeof(*p));

	p->source.read = plain_source_read;
	p->source.close = plain_source_close;
	p->fd = fd;
	p->buf = xmalloc(PLAIN_BUF);
	return &p->source;
}
