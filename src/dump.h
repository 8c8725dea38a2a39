/*
 * dump: where a database dump is written and where a restore reads it
 * back, without saying what is behind: a zstd-compressed snapshot file,
 * or a member of a backup archive (archive.h's arc_member_sink). The dump code of a
 * backend writes only to a dump_sink and reads only from a dump_source;
 * nothing here knows SQL, libpq or zstd.
 */
#ifndef FERRY_DUMP_H
#define FERRY_DUMP_H

#include <stddef.h>
#include <sys/types.h>

/* A place a dump goes. Every function returns 0 or -1 with errno set. */
struct dump_sink {
	/* Appends len bytes. */
	int (*write)(struct dump_sink *sink, const void *data, size_t len);
	/* The dump is complete: flushes it (durably, for a file) and frees
	 * the sink, even when that fails. */
	int (*close)(struct dump_sink *sink);
	/* The dump failed: frees the sink; what it holds is for the caller
	 * to throw away. */
	void (*abort)(struct dump_sink *sink);
};

/* Where a dump is read back from, front to back. */
struct dump_source {
	/* The next bytes in *data, valid until the next call: their count,
	 * 0 at the end, -1 with errno set. */
	ssize_t (*read)(struct dump_source *source, const void **data);
	void (*close)(struct dump_source *source);
};

int dump_sink_write(struct dump_sink *sink, const void *data, size_t len);
int dump_sink_close(struct dump_sink *sink);
void dump_sink_abort(struct dump_sink *sink);
ssize_t dump_source_read(struct dump_source *source, const void **data);
void dump_source_close(struct dump_source *source);

/*
 * The snapshot file: one zstd frame (level 3) on fd, which the sink or
 * source owns from then on. The sink's close ends the frame, fsyncs and
 * closes fd; the source ends where the file does.
 */
struct dump_sink *dump_sink_zstd_file(int fd);
struct dump_source *dump_source_zstd_file(int fd);
/* The dump as plain bytes in the file on fd (owned by the source). */
struct dump_source *dump_source_plain_file(int fd);

#endif
