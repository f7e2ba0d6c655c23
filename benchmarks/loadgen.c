/* Load generator for the app-server benchmark: C and epoll, so the client side costs far less
 * CPU than the Python server it measures.
 *
 *   loadgen HOST PORT CONCURRENCY TOTAL REQUEST_FILE
 *
 * Keeps CONCURRENCY connections in flight; each connects, sends the request bytes, reads until
 * the server closes (the guide: one request per connection) and is replaced by a new one, until
 * TOTAL responses. A response shorter than 2 bytes or a failed connection counts as an error.
 * Prints one JSON line: requests, errors, seconds, requests_per_s, p50_ms, p99_ms, max_ms.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn { int fd; size_t sent; size_t got; double start; };

static char *request; static size_t request_len;
static struct sockaddr_storage addr; static socklen_t addr_len;
static int ep;

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void start(struct conn *c) {
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) { perror("socket"); exit(1); }
    c->sent = c->got = 0;
    c->start = now();
    if (connect(c->fd, (struct sockaddr *)&addr, addr_len) < 0 && errno != EINPROGRESS) {
        perror("connect"); exit(1);
    }
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: loadgen HOST PORT CONCURRENCY TOTAL REQUEST_FILE\n"); return 2; }
    int concurrency = atoi(argv[3]); long total = atol(argv[4]);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr; struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET; a4->sin_port = htons(atoi(argv[2])); addr_len = sizeof *a4;
    } else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6; a6->sin6_port = htons(atoi(argv[2])); addr_len = sizeof *a6;
    } else { fprintf(stderr, "loadgen: HOST must be an IP literal\n"); return 2; }
    FILE *f = fopen(argv[5], "rb");
    if (!f) { perror(argv[5]); return 2; }
    fseek(f, 0, SEEK_END); request_len = ftell(f); rewind(f);
    request = malloc(request_len);
    if (fread(request, 1, request_len, f) != request_len) { perror("read"); return 2; }
    fclose(f);

    ep = epoll_create1(0);
    struct conn *conns = calloc(concurrency, sizeof *conns);
    double *lat = malloc(sizeof(double) * total);
    long done = 0, started = 0, errors = 0;
    double t0 = now();
    for (int i = 0; i < concurrency && started < total; i++, started++) start(&conns[i]);
    struct epoll_event events[512];
    char buf[65536];
    while (done < total) {
        /* 60 s: a SYN lost to a full listen() backlog is sent again after 1, 3, 7, 15 and 31 s */
        int n = epoll_wait(ep, events, 512, 60000);
        if (n == 0) { fprintf(stderr, "loadgen: no progress for 60 s (%ld of %ld done)\n", done, total); return 1; }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            int finished = 0, failed = 0;
            if (c->sent < request_len && (events[i].events & (EPOLLOUT | EPOLLERR))) {
                ssize_t w = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
                if (w > 0) {
                    c->sent += w;
                    if (c->sent == request_len) {
                        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
                        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    }
                } else if (errno != EAGAIN) failed = 1;
            }
            if (!failed && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                for (;;) {
                    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                    if (r > 0) { c->got += r; continue; }
                    if (r == 0) finished = 1;
                    else if (errno != EAGAIN) failed = 1;
                    break;
                }
            }
            if (finished || failed) {
                if (finished && c->got >= 2 && c->sent == request_len) lat[done++] = now() - c->start;
                else { errors++; done++; lat[done - 1] = now() - c->start; }
                close(c->fd);
                if (started < total) { started++; start(c); }
            }
        }
    }
    double secs = now() - t0;
    qsort(lat, total, sizeof(double), cmp);
    printf("{\"requests\": %ld, \"errors\": %ld, \"seconds\": %.3f, \"requests_per_s\": %.0f, "
           "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f}\n",
           total, errors, secs, total / secs, lat[total / 2] * 1e3,
           lat[(long)(total * 0.99)] * 1e3, lat[total - 1] * 1e3);
    return errors ? 1 : 0;
}
