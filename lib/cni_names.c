// SPDX-License-Identifier: Apache-2.0
/* The CNI spec's rules for identifiers and interface names, checked by the
 * plugin (to give the runtime code 4) and again by the agent (its API may
 * have other clients). */
#include <string.h>

#include "cni_names.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Container IDs and network names share the spec's identifier grammar. */
bool cni_valid_ident(const char *s)
{
	if (!s || !is_alnum(*s))
		return false;
	for (s++; *s; s++)
		if (!is_alnum(*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

bool cni_valid_container_id(const char *id)
{
	return cni_valid_ident(id);
}

const char *cni_ifname_problem(const char *name)
{
	const char *p;

	if (!name || !*name)
		return "interface name is empty";
	if (strlen(name) > CNI_IFNAME_MAX)
		return "interface name is longer than 15 characters";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "interface name must not be . or ..";
	for (p = name; *p; p++) {
		if (*p == '/' || *p == ':')
			return "interface name must not contain / or :";
		if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
			return "interface name must not contain whitespace";
	}
	return NULL;
}

