/*
 * ferry doctor: the consistency checks of doctor.c, read-only, without the
 * lock; exit 1 when one fails (warnings are fine).
 */
#include "commands.h"
#include "doctor.h"

int cmd_doctor(struct session *s, const struct cmd_args *a)
{
	return doctor_run(s, a->deep, a->json);
}
