/*
 * The floor under B6 through the shim: round trips of one frame the size of a MAP_DMA request
 * (u32 length + 48 bytes) against an echo server on a UNIX socket, one send each and the answer
 * polled for up to 50 us (recv with MSG_DONTWAIT, the CPU yielded between tries) before a
 * sleeping recv, as the shim waits for each answer (shim/conn.c). Speaks the bench line protocol;
 * work = round trips.
 *
 *   socket_echo_client SOCKET_PATH ROUND_TRIPS
 */
#include "common.h"
#include <sys/socket.h>
#include <errno.h>
#include <sched.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define FRAME 52

#define POLL_NS 50000

static int sock;
static uint64_t trips;

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* The shim's wait for an answer: poll, yielding the CPU between tries (to the server, when it
 * waits for this CPU), then sleep. */
static ssize_t recv_answer(uint8_t *p, size_t n)
{
	long end = now_ns() + POLL_NS;
	do {
		ssize_t r = recv(sock, p, n, MSG_DONTWAIT);
		if (r >= 0 || (errno != EAGAIN && errno != EINTR))
			return r;
		sched_yield();
	} while (now_ns() < end);
	return recv(sock, p, n, 0);
}

static struct run_result run(void *p)
{
	(void)p;
	uint8_t buf[FRAME] = { 48 };
	for (uint64_t i = 0; i < trips; i++) {
		if (send(sock, buf, FRAME, 0) != FRAME) {
			perror("send");
			exit(1);
		}
		for (size_t got = 0; got < FRAME;) {
			ssize_t r = recv_answer(buf + got, FRAME - got);
			if (r <= 0) {
				perror("recv");
				exit(1);
			}
			got += (size_t)r;
		}
	}
	return (struct run_result){ (double)trips, (double)trips, 0 };
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s SOCKET_PATH ROUND_TRIPS\n", argv[0]);
		return 2;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	trips = strtoull(argv[2], NULL, 0);
	sock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		return 1;
	}
	return serve(run, NULL);
}
