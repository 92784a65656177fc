/* SPDX-License-Identifier: Apache-2.0 */
/* -o yaml: a JSON value as one YAML document (libyaml's emitter). */
#ifndef SLUICE_CLI_YAMLOUT_H
#define SLUICE_CLI_YAMLOUT_H

#include <stdio.h>

#include <jansson.h>

/* Print v to f as a YAML document; strings a YAML reader would take for
 * another type ("80", "true", "null", "") are quoted, as kubectl does.
 * Returns 0 or -EIO (with the emitter's problem on stderr). */
int yaml_print_json(FILE *f, const json_t *v);

#endif
