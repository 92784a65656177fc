/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pod sandbox's process for tests/cri: holds the pod's namespaces and
 * sleeps until SIGTERM or SIGINT, reaping any child it inherits. Built
 * static so the image needs nothing else.
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void on_child(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction stop = { .sa_handler = on_stop }, child = { .sa_handler = on_child };

	if (sigaction(SIGTERM, &stop, NULL) || sigaction(SIGINT, &stop, NULL) ||
	    sigaction(SIGCHLD, &child, NULL))
		return 1;
	for (;;)
		pause();
}
