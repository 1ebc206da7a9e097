/* The shim's connection to the tcelab server: length-prefixed frames over a UNIX socket. */
#include "tcelab.h"
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Largest answer the server sends (docs/socket-protocol.md). */
#define MAX_FRAME (1u << 20)
/* The socket moves to a descriptor at or above this, away from the numbers a program expects. */
#define SOCK_FD_MIN 900

struct tce_model tce_model;
static int sock = -1;
static pid_t sock_owner;
static int32_t attach_pid = -1;
static int exited;
static int warned;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void grow(struct tce_msg *m, size_t more)
{
	if (m->n + more <= m->cap)
		return;
	m->cap = (m->n + more) * 2 + 64;
	m->p = realloc(m->p, m->cap);
	if (!m->p)
		abort();
}
void msg_u8(struct tce_msg *m, uint8_t v) { grow(m, 1); m->p[m->n++] = v; }
void msg_u32(struct tce_msg *m, uint32_t v) { grow(m, 4); memcpy(m->p + m->n, &v, 4); m->n += 4; }
void msg_u64(struct tce_msg *m, uint64_t v) { grow(m, 8); memcpy(m->p + m->n, &v, 8); m->n += 8; }
void msg_bytes(struct tce_msg *m, const void *p, size_t n) { grow(m, n); if (n) memcpy(m->p + m->n, p, n); m->n += n; }

int tce_active(void) { return getenv("TCELAB_SOCKET") != NULL; }

/* Requests queued by tce_queue(), sent with the next call's request in one write. */
static struct tce_msg out;
static unsigned queued;
/* Bytes received and not yet consumed: answers are read in as few recv() calls as possible. */
static uint8_t *rx;
static size_t rx_len, rx_off, rx_cap;

static void frame_append(struct tce_msg *to, const struct tce_msg *req)
{
	msg_u32(to, (uint32_t)req->n);
	msg_bytes(to, req->p, req->n);
}

static int send_all(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(sock, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* How long to poll for an answer before sleeping in recv(), in microseconds: TCELAB_POLL_US,
 * default 50, 0 to sleep at once. A sleeping process takes tens of microseconds to wake on a
 * virtual machine's idle CPU, longer than the model takes to answer most calls. */
static long poll_ns = -1;

static long poll_budget_ns(void)
{
	if (poll_ns < 0) {
		const char *v = getenv("TCELAB_POLL_US");
		char *end;
		long us = v && *v ? strtol(v, &end, 10) : 50;
		if (v && *v && (*end || us < 0 || us > 1000000)) {
			fprintf(stderr, "tcelab shim: TCELAB_POLL_US=%s is not a number of microseconds from 0 to 1000000; using 50\n", v);
			us = 50;
		}
		poll_ns = us * 1000;
	}
	return poll_ns;
}

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Receive what has arrived without sleeping, for up to the poll budget: >0 bytes, 0 nothing yet
 * (then sleep in recv()), -1 the connection failed. */
static ssize_t rx_poll(void)
{
	long budget = poll_budget_ns();
	if (!budget)
		return 0;
	long end = now_ns() + budget;
	do {
		ssize_t r = recv(sock, rx + rx_len, rx_cap - rx_len, MSG_DONTWAIT);
		if (r > 0)
			return r;
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return -1;
		sched_yield(); /* to the server, when it waits for this CPU */
	} while (now_ns() < end);
	return 0;
}

/* Make at least `n` unconsumed bytes available in rx. */
static int rx_need(size_t n)
{
	if (rx_len - rx_off >= n)
		return 0;
	if (rx_off) {
		memmove(rx, rx + rx_off, rx_len - rx_off);
		rx_len -= rx_off;
		rx_off = 0;
	}
	if (n > rx_cap) {
		size_t cap = n < 4096 ? 4096 : n;
		uint8_t *nb = realloc(rx, cap);
		if (!nb)
			return -1;
		rx = nb;
		rx_cap = cap;
	}
	while (rx_len < n) {
		ssize_t r = rx_poll();
		if (!r)
			r = recv(sock, rx + rx_len, rx_cap - rx_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		rx_len += (size_t)r;
	}
	return 0;
}

static void warn_once(const char *what)
{
	if (warned++)
		return;
	const char *path = getenv("TCELAB_SOCKET");
	fprintf(stderr, "tcelab shim: %s (server %s): %s\n", what, path ? path : "(TCELAB_SOCKET unset)", strerror(errno));
}

/* Read one answer frame. */
static int read_answer(struct tce_reply *rep)
{
	uint32_t rlen;
	if (rx_need(4)) {
		errno = EIO;
		return -1;
	}
	memcpy(&rlen, rx + rx_off, 4);
	if (rlen < 8 || rlen > MAX_FRAME) {
		errno = EPROTO;
		return -1;
	}
	if (rx_need(4 + (size_t)rlen)) {
		errno = EIO;
		return -1;
	}
	const uint8_t *f = rx + rx_off + 4;
	rx_off += 4 + (size_t)rlen;
	memcpy(&rep->ret, f, 4);
	memcpy(&rep->err, f + 4, 4);
	rep->body_len = rlen - 8;
	rep->body = malloc(rep->body_len ? rep->body_len : 1);
	if (!rep->body) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(rep->body, f + 8, rep->body_len);
	if (rep->ret < 0 && rep->err == EPROTO)
		fprintf(stderr, "tcelab shim: the server refused a request: %.*s\n", (int)rep->body_len, (char *)rep->body);
	return 0;
}

/* Send the queued requests and this one in one write, then read their answers in order: the
 * queued ones' are dropped (a refusal is still reported on stderr), this one's is returned. */
static int roundtrip(struct tce_msg *req, struct tce_reply *rep)
{
	unsigned before = queued;
	frame_append(&out, req);
	queued = 0;
	int rc = send_all(out.p, out.n);
	out.n = 0;
	if (rc) {
		errno = EIO;
		return -1;
	}
	for (unsigned i = 0; i < before; i++) {
		struct tce_reply q = { 0 };
		if (read_answer(&q))
			return -1;
		free(q.body);
	}
	return read_answer(rep);
}

/* Close the connection; what was queued for it or received on it goes with it. */
static void drop_connection(void)
{
	if (sock >= 0)
		REAL(close)(sock);
	sock = -1;
	out.n = 0;
	queued = 0;
	rx_len = rx_off = 0;
}

static int connect_locked(void)
{
	if (sock >= 0 && sock_owner == getpid())
		return 0;
	if (sock >= 0) /* a child made without our fork(): start as a process of its own */
		drop_connection();
	const char *path = getenv("TCELAB_SOCKET");
	if (!path) {
		errno = ENOSYS;
		return -1;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		warn_once("socket path too long");
		return -1;
	}
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (s >= 0)
			REAL(close)(s);
		errno = e;
		warn_once("cannot reach the model");
		errno = EIO;
		return -1;
	}
	int high = fcntl(s, F_DUPFD_CLOEXEC, SOCK_FD_MIN);
	if (high >= 0) {
		REAL(close)(s);
		s = high;
	}
	sock = s;
	sock_owner = getpid();
	tce_memory_changed(); /* a new model process: nothing reported to it yet */
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_HELLO);
	msg_u32(&m, (uint32_t)getpid());
	msg_u32(&m, (uint32_t)attach_pid);
	extern char *program_invocation_short_name;
	msg_bytes(&m, program_invocation_short_name, strlen(program_invocation_short_name));
	struct tce_reply r = { 0 };
	int rc = roundtrip(&m, &r);
	free(m.p);
	if (rc || r.ret <= 0 || r.body_len < 8) {
		errno = rc ? errno : (r.err ? r.err : EPROTO);
		free(r.body);
		warn_once("the model refused this process");
		drop_connection();
		errno = EIO;
		return -1;
	}
	tce_model.pid = r.ret;
	memcpy(&tce_model.page_size, r.body, 4);
	memcpy(&tce_model.huge_shift, r.body + 4, 4);
	free(r.body);
	attach_pid = -1;
	return 0;
}

int tce_connect(void)
{
	pthread_mutex_lock(&lock);
	int rc = connect_locked();
	pthread_mutex_unlock(&lock);
	return rc;
}

void tce_queue(struct tce_msg *req)
{
	pthread_mutex_lock(&lock);
	if (!connect_locked()) {
		frame_append(&out, req);
		queued++;
	}
	pthread_mutex_unlock(&lock);
	free(req->p);
	req->p = NULL;
}

int tce_call(struct tce_msg *req, struct tce_reply *rep)
{
	pthread_mutex_lock(&lock);
	int rc = connect_locked();
	if (!rc)
		rc = roundtrip(req, rep);
	pthread_mutex_unlock(&lock);
	free(req->p);
	req->p = NULL;
	return rc;
}

void tce_check_killed(const struct tce_reply *r)
{
	if (r->ret < 0 && r->err < 0) { /* the modelled kernel killed this task in the call */
		signal(-r->err, SIG_DFL);
		raise(-r->err);
	}
}

long tce_simple(struct tce_msg *req)
{
	struct tce_reply r = { 0 };
	if (tce_call(req, &r))
		return -1;
	free(r.body);
	tce_check_killed(&r);
	if (r.ret < 0) {
		errno = r.err;
		return -1;
	}
	return r.ret;
}

void tce_after_fork_child(int32_t model_pid)
{
	pthread_mutex_init(&lock, NULL);
	drop_connection(); /* the parent's, with its queued requests and unread bytes */
	attach_pid = model_pid;
	tce_model.pid = 0;
	tce_connect();
}

void tce_exit(void)
{
	pthread_mutex_lock(&lock);
	if (sock >= 0 && sock_owner == getpid() && !exited) {
		struct tce_msg m = { 0 };
		struct tce_reply r = { 0 };
		msg_u8(&m, OP_EXIT);
		if (!roundtrip(&m, &r))
			free(r.body);
		free(m.p);
		exited = 1;
	}
	pthread_mutex_unlock(&lock);
}
