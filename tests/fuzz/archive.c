/*
 * fuzz archive: the .ferry reader over arbitrary bytes (a zstd-compressed
 * tar, or not). Properties: it never crashes or leaks, and it accepts
 * (0) only an archive whose every member matched its manifest; anything
 * else is a refusal (EXIT_DATA), never another status.
 */
#include "archive.h"
#include "exits.h"
#include "fuzz.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arc_limits lim = { 1ULL << 24, 1000 };
	int rc = arc_read_mem(data, size, &lim);

	if (rc != 0 && rc != EXIT_DATA)
		abort();
	return 0;
}
