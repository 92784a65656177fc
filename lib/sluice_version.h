/* SPDX-License-Identifier: Apache-2.0 */
/* sluice's release version: `sluicectl version`, the agent's "version" op,
 * its Kubernetes user agent and sluice_build_info. */
#ifndef SLUICE_LIB_SLUICE_VERSION_H
#define SLUICE_LIB_SLUICE_VERSION_H

/* A release build passes -DSLUICE_VERSION="x.y.z". */
#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

#endif /* SLUICE_LIB_SLUICE_VERSION_H */
