/* openloop: an open-loop, fixed-rate HTTP/1.1 POST client (the engine behind openloop.py).
 *
 * Request i is due at t0 + i/rate whatever happened to earlier ones (no coordinated
 * omission: a stalled server meets a growing queue). Due times come from a timerfd armed
 * at absolute CLOCK_MONOTONIC times with a 1 ns timer slack, so requests leave within tens
 * of microseconds of their due time; the Python/asyncio client, whose timers fire up to
 * a millisecond late and which costs ~250 us of CPU per request, could not measure a
 * millisecond-scale p99. wrk2 is the standard tool for this but is not packaged for
 * Debian; this is the small part of it the benchmark needs.
 *
 *   openloop HOST PORT PATH RATE COUNT CONNECTIONS BODIES_FILE OUT_FILE [TIMEOUT_S]
 *
 * BODIES_FILE: one request body per line (JSON without raw newlines); request i sends line i.
 * OUT_FILE: one line per request, "status sent_us done_us" in microseconds after its due
 * time (status -1: connection error or timeout, -2: unparseable response).
 * Connections are opened before the first request is due, with TCP_NODELAY; a due request
 * waits for an idle connection if all are busy (and that wait counts from its due time).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long req;          /* request in flight, -1 when idle */
    size_t wdone;      /* bytes of the request written so far */
    char *buf;
    size_t len, cap;
} conn_t;

static char **reqs;
static size_t *reqlen;
static double *due, *sent, *done;
static int *status;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(2); }

static int open_conn(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad IPv4 address %s\n", host); exit(2); }
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void arm(int tfd, double at) {
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)at;
    its.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Write what is left of the connection's request; 0 when complete, 1 when it must wait. */
static int pump(int ep, conn_t *c) {
    size_t n = reqlen[c->req];
    while (c->wdone < n) {
        ssize_t w = write(c->fd, reqs[c->req] + c->wdone, n - c->wdone);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 1;
        }
        if (w <= 0) return -1;
        c->wdone += (size_t)w;
    }
    return 0;
}

/* A complete response in the buffer: its length, 0 if incomplete, -1 if unparseable. */
static long parse(conn_t *c, int *code) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) return -1;
    *code = atoi(c->buf + 9);
    long body = -1;
    for (char *p = c->buf; p && p < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n') p++;
        if (strncasecmp(p, "content-length:", 15) == 0) body = atol(p + 15);
    }
    if (body < 0) return -1;
    return c->len >= head + (size_t)body ? (long)(head + (size_t)body) : 0;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: openloop HOST PORT PATH RATE COUNT CONNECTIONS BODIES_FILE OUT_FILE [TIMEOUT_S]\n");
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]);
    double rate = atof(argv[4]), timeout = argc > 9 ? atof(argv[9]) : 10.0;
    long count = atol(argv[5]);
    int nconn = atoi(argv[6]);
    if (rate <= 0 || count <= 0 || nconn <= 0) { fprintf(stderr, "rate, count and connections must be > 0\n"); return 2; }
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    FILE *bf = fopen(argv[7], "r");
    if (!bf) die(argv[7]);
    reqs = calloc((size_t)count, sizeof *reqs);
    reqlen = calloc((size_t)count, sizeof *reqlen);
    due = calloc((size_t)count, sizeof *due);
    sent = calloc((size_t)count, sizeof *sent);
    done = calloc((size_t)count, sizeof *done);
    status = calloc((size_t)count, sizeof *status);
    char *line = NULL;
    size_t lcap = 0;
    long loaded = 0;
    ssize_t got;
    while (loaded < count && (got = getline(&line, &lcap, bf)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) got--;
        if (got == 0) continue;
        reqlen[loaded] = (size_t)asprintf(&reqs[loaded],
            "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %zd\r\n\r\n%.*s",
            path, host, port, got, (int)got, line);
        loaded++;
    }
    fclose(bf);
    free(line);
    count = loaded;
    if (count == 0) { fprintf(stderr, "no request bodies in %s\n", argv[7]); return 2; }

    int ep = epoll_create1(0), tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    conn_t *conns = calloc((size_t)nconn, sizeof *conns);
    for (int i = 0; i < nconn; i++) {
        conns[i].fd = open_conn(host, port);
        conns[i].req = -1;
        conns[i].cap = 65536;
        conns[i].buf = malloc(conns[i].cap);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }
    long *queue = malloc((size_t)count * sizeof *queue), qhead = 0, qtail = 0;
    double t0 = now_s() + 0.05;
    for (long i = 0; i < count; i++) due[i] = t0 + (double)i / rate;
    long next = 0, finished = 0;
    double give_up = due[count - 1] + timeout;
    arm(tfd, due[0]);
    struct epoll_event events[256];

    while (finished < count) {
        double t = now_s();
        if (t > give_up) break;
        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            conn_t *c = events[e].data.ptr;
            if (c == NULL) {   /* the timer: queue every request now due */
                unsigned long long ticks;
                if (read(tfd, &ticks, sizeof ticks) < 0) { /* spurious wake-up */ }
                double at = now_s();
                while (next < count && due[next] <= at) queue[qtail++] = next++;
                if (next < count) arm(tfd, due[next]);
                continue;
            }
            if (events[e].events & EPOLLOUT && c->req >= 0) {
                int r = pump(ep, c);
                if (r == 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            if (c->cap - c->len < 4096) { c->cap *= 2; c->buf = realloc(c->buf, c->cap); }
            ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            int code = 0;
            long used = r > 0 ? (c->len += (size_t)r, parse(c, &code)) : -1;
            if (used == 0) continue;
            if (c->req >= 0) {   /* complete, or the connection failed under it */
                done[c->req] = now_s();
                status[c->req] = used > 0 ? code : (r > 0 ? -2 : -1);
                finished++;
            }
            c->req = -1;
            if (used > 0) {
                memmove(c->buf, c->buf + used, c->len - (size_t)used);
                c->len -= (size_t)used;
            } else {   /* closed or garbage: reconnect */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = open_conn(host, port);
                c->len = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
        for (int i = 0; i < nconn && qhead < qtail; i++) {   /* due requests onto idle connections */
            conn_t *c = &conns[i];
            if (c->req >= 0) continue;
            c->req = queue[qhead++];
            c->wdone = 0;
            sent[c->req] = now_s();
            if (pump(ep, c) < 0) {
                done[c->req] = now_s();
                status[c->req] = -1;
                finished++;
                c->req = -1;
            }
        }
    }

    FILE *out = fopen(argv[8], "w");
    if (!out) die(argv[8]);
    for (long i = 0; i < count; i++) {
        if (done[i] == 0) status[i] = -1;   /* never answered within the timeout */
        fprintf(out, "%d %.1f %.1f\n", status[i], sent[i] > 0 ? (sent[i] - due[i]) * 1e6 : -1.0,
                done[i] > 0 ? (done[i] - due[i]) * 1e6 : -1.0);
    }
    fclose(out);
    return 0;
}
