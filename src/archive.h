/*
 * archive: the .ferry file, tar + zstd through libarchive (the only file
 * that calls archive_*). manifest.ini comes first and names every member
 * with its type, size, mode and sha256; the reader checks each member
 * against it as the bytes stream past and refuses anything else.
 */
#ifndef FERRY_ARCHIVE_H
#define FERRY_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ARC_FORMAT    1
#define ARC_MANIFEST  "manifest.ini"
#define ARC_DB_MEMBER "database.sqlite"
#define ARC_PG_MEMBER "database.pgdump" /* pgdump.c's stream, uncompressed */

struct arc_member {
	char *name;
	char type; /* 'f' regular file, 'd' directory */
	unsigned long long size;
	unsigned mode;
	long long mtime;
	char sha256[65];
	unsigned uid, gid; /* the tar header's owners (not in the manifest) */
	bool seen;	   /* reader: met in the stream */
	/* writer: the file as it was hashed, to tell whether it changed */
	struct arc_ident {
		unsigned long long dev, ino, size;
		long long mtime_ns, ctime_ns;
	} id;
};

struct manifest {
	long long format;
	char engine[32], schema_version[128], ferry_version[64], created_at[32];
	char rows[24]; /* PostgreSQL: the rows the dump holds ("" unknown) */
	char **paths;  /* the data paths backed up, member prefix "paths/<i>/" */
	size_t npaths;
	struct arc_member *m;
	size_t n, cap;
};

struct arc_member *manifest_add(struct manifest *mf, const char *name, char type);
void manifest_add_path(struct manifest *mf, const char *path);
char *manifest_format(const struct manifest *mf, size_t *len);
/* 0, or -1 with why set */
int manifest_parse(struct manifest *mf, const char *text, size_t len, char *why,
		   size_t size);
void manifest_free(struct manifest *mf);

struct dump_sink;
/*
 * A dump_sink that stages member m: the bytes go to fd (owned by the sink)
 * through one buffer, hashed as they pass; the close fills m->size and
 * m->sha256 and closes fd (no fsync: the staging is read back at once and
 * removed, the archive is what is made durable).
 */
struct dump_sink *arc_member_sink(int fd, struct arc_member *m);

struct arc_writer;
/* threads: zstd worker threads (0: none); refuses (NULL, logged) when
 * libarchive does not take the level or the thread count */
struct arc_writer *arc_writer_open(int fd, int level, int threads);
int arc_write_mem(struct arc_writer *w, const char *name, const void *data, size_t len);
/* Streams the file at path as member m, checking that it is still the
 * file arc_hash_member saw, unchanged (its identity before and after, and
 * its length): each file is hashed once, in the first pass; -1 logged */
int arc_write_file(struct arc_writer *w, const struct arc_member *m, const char *path);
int arc_write_dir(struct arc_writer *w, const struct arc_member *m);
int arc_writer_close(struct arc_writer *w); /* frees; -1 logged */

struct arc_limits {
	unsigned long long max_bytes, max_members;
};

/*
 * What the reader hands each member to: open returns a file descriptor to
 * write the member's bytes to, -2 for "check only", -1 to stop (logged).
 * done is called once its bytes are in and verified.
 */
struct arc_sink {
	int (*open)(void *arg, const struct manifest *mf, const struct arc_member *m);
	int (*done)(void *arg, const struct arc_member *m, int fd);
	void *arg;
};

/*
 * Reads the archive from fd, verifying every member; the manifest is
 * parsed into *mf. 0, or EXIT_DATA with one line naming the member.
 */
int arc_read(int fd, const struct arc_limits *lim, struct manifest *mf,
	     const struct arc_sink *sink);
/* m->sha256, m->size and m->id of the file at path (no symlinks); -1
 * with errno */
int arc_hash_member(struct arc_member *m, const char *path);
struct progress;
void arc_set_progress(struct progress *p); /* fed by reader and writer */
/* Fuzzing: the same over bytes in memory, nothing written. */
int arc_read_mem(const void *data, size_t len, const struct arc_limits *lim);

#endif
