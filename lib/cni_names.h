/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SLUICE_CNI_NAMES_H
#define SLUICE_CNI_NAMES_H

#include <stdbool.h>

#define CNI_IFNAME_MAX 15 /* IFNAMSIZ (16) includes the terminating NUL */

/* A letter or digit, then letters, digits, '_', '.' or '-' (container IDs,
 * network names). */
bool cni_valid_ident(const char *s);
bool cni_valid_container_id(const char *id);
/* NULL when name is a valid interface name, else why not. */
const char *cni_ifname_problem(const char *name);

#endif /* SLUICE_CNI_NAMES_H */
