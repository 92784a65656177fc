/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A unified diff of two texts, line by line, as `diff -u` prints it: the
 * edit script from a longest common subsequence, hunks with `ctx` lines of
 * context. Own code, so that `sluicectl diff` needs no diffutils.
 */
#ifndef SLUICE_CLI_UDIFF_H
#define SLUICE_CLI_UDIFF_H

#include <stdio.h>

/* Lines of a and b compared by the LCS table at most: past it the changed
 * middle (after the common head and tail) is shown as removed then added,
 * a correct diff if not the shortest. */
#define UDIFF_MAX_CELLS (4u << 20)

/*
 * Print to f the diff from a (labelled la: "--- la") to b ("+++ lb"), both
 * texts of '\n'-terminated lines (a last line without one counts as one).
 * Returns 0 when they are equal (nothing printed), 1 when a diff was
 * printed, -ENOMEM.
 */
int udiff_print(FILE *f, const char *a, const char *b, const char *la, const char *lb,
		unsigned ctx);

#endif /* SLUICE_CLI_UDIFF_H */
