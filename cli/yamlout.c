// SPDX-License-Identifier: Apache-2.0
/* -o yaml through libyaml's emitter (yamlout.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "yamlout.h"

/* Whether a plain scalar text would be read back as something else than a
 * string (YAML 1.1 as kubectl's reader types it): then it is quoted. */
static bool needs_quotes(const char *s)
{
	static const char *const words[] = { "true", "false", "yes", "no", "on", "off", "y", "n",
					     "null", "~", "True", "False", "Yes", "No", "On",
					     "Off", "TRUE", "FALSE", "YES", "NO", "ON", "OFF",
					     "Null", "NULL", NULL };
	char *end;

	if (!*s)
		return true;
	for (size_t i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return true;
	strtod(s, &end);
	return !*end;
}

static int scalar(yaml_emitter_t *em, const char *text, bool quote)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text),
					  !quote, quote,
					  quote ? YAML_SINGLE_QUOTED_SCALAR_STYLE
						: YAML_ANY_SCALAR_STYLE))
		return -ENOMEM;
	return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
}

static int emit(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	const char *key;
	const json_t *x;
	char num[64];
	size_t i;
	int ret;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		if (!yaml_emitter_emit(em, &ev))
			return -EIO;
		json_object_foreach((json_t *)v, key, x) {
			ret = scalar(em, key, needs_quotes(key));
			if (!ret)
				ret = emit(em, x);
			if (ret)
				return ret;
		}
		yaml_mapping_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
	case JSON_ARRAY:
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
		if (!yaml_emitter_emit(em, &ev))
			return -EIO;
		json_array_foreach(v, i, x)
			if ((ret = emit(em, x)))
				return ret;
		yaml_sequence_end_event_initialize(&ev);
		return yaml_emitter_emit(em, &ev) ? 0 : -EIO;
	case JSON_STRING:
		return scalar(em, json_string_value(v), needs_quotes(json_string_value(v)));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		return scalar(em, num, false);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return scalar(em, num, false);
	case JSON_TRUE:
		return scalar(em, "true", false);
	case JSON_FALSE:
		return scalar(em, "false", false);
	default:
		return scalar(em, "null", false);
	}
}

int yaml_print_json(FILE *f, const json_t *v)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int ret = -EIO;

	if (!yaml_emitter_initialize(&em))
		return -ENOMEM;
	yaml_emitter_set_output_file(&em, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	if (!yaml_emitter_emit(&em, &ev))
		goto cleanup;
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	if (!yaml_emitter_emit(&em, &ev))
		goto cleanup;
	ret = emit(&em, v);
	if (ret)
		goto cleanup;
	ret = -EIO;
	yaml_document_end_event_initialize(&ev, 1);
	if (!yaml_emitter_emit(&em, &ev))
		goto cleanup;
	yaml_stream_end_event_initialize(&ev);
	if (!yaml_emitter_emit(&em, &ev) || !yaml_emitter_flush(&em))
		goto cleanup;
	ret = 0;
cleanup:
	if (ret)
		fprintf(stderr, "sluicectl: -o yaml: %s\n",
			em.problem ? em.problem : "out of memory");
	yaml_emitter_delete(&em);
	return ret;
}
