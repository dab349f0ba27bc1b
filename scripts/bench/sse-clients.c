/*
 * Load client for the SSE benchmark: opens N event streams to one jobwire
 * on loopback, reports when all are connected, then records when each
 * stream receives the change of a marker job. Built and run by
 * scripts/bench/sse; not part of the service.
 *
 * usage: sse-clients PORT COUNT MARKER READY_FILE T0_FILE TIMEOUT_S
 *   READY_FILE is created once every stream got its "connected" event.
 *   T0_FILE, written by the driver, holds the time (µs since the epoch)
 *   of the webhook's 2xx; the client reads it when done and prints each
 *   stream's delay in µs, one per line, sorted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef struct stream {
    int fd;
    int connected;
    long long got_us; /* when the marker arrived, 0 before */
    char tail[256];   /* the end of the previous read, for split markers */
    size_t tail_len;
} stream_t;

static long long now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int open_stream(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    char request[128];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        return -1;
    int n = snprintf(request, sizeof(request), "GET /api/events HTTP/1.1\r\nHost: bench\r\n\r\n");
    if (write(fd, request, (size_t)n) != n)
        return -1;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Looks for needle in the previous tail plus this read. */
static int seen(stream_t *s, const char *buf, size_t len, const char *needle)
{
    char joined[256 + 65536];
    size_t n = s->tail_len;

    memcpy(joined, s->tail, n);
    memcpy(joined + n, buf, len);
    n += len;
    joined[n] = '\0';
    int found = strstr(joined, needle) != NULL;

    size_t keep = n < sizeof(s->tail) ? n : sizeof(s->tail);
    memcpy(s->tail, joined + n - keep, keep);
    s->tail_len = keep;
    return found;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: sse-clients PORT COUNT MARKER READY_FILE T0_FILE TIMEOUT_S\n");
        return 2;
    }
    int port = atoi(argv[1]), count = atoi(argv[2]), timeout_s = atoi(argv[6]);
    char marker[160];
    snprintf(marker, sizeof(marker), "\"job_id\":\"%s\"", argv[3]);

    stream_t *streams = calloc((size_t)count, sizeof(*streams));
    int ep = epoll_create1(0);
    for (int i = 0; i < count; i++) {
        streams[i].fd = open_stream(port);
        if (streams[i].fd < 0) {
            fprintf(stderr, "sse-clients: stream %d failed: %s\n", i, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, streams[i].fd, &ev);
    }

    int connected = 0, got = 0, ready_written = 0;
    long long deadline = now_us() + (long long)timeout_s * 1000000;
    static char buf[65536];
    struct epoll_event events[256];
    while (got < count && now_us() < deadline) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            stream_t *s = &streams[events[k].data.u32];
            ssize_t r;
            while ((r = read(s->fd, buf, sizeof(buf) - 1)) > 0) {
                if (!s->connected && seen(s, buf, (size_t)r, "event: connected")) {
                    s->connected = 1;
                    connected++;
                } else if (s->connected && !s->got_us && seen(s, buf, (size_t)r, marker)) {
                    s->got_us = now_us();
                    got++;
                }
            }
        }
        if (!ready_written && connected == count) {
            FILE *f = fopen(argv[4], "w");
            fclose(f);
            ready_written = 1;
        }
    }

    long long t0 = 0;
    FILE *f = fopen(argv[5], "r");
    if (f == NULL || fscanf(f, "%lld", &t0) != 1) {
        fprintf(stderr, "sse-clients: no T0 in %s (connected %d of %d)\n", argv[5], connected,
                count);
        return 1;
    }
    fclose(f);

    long long *delays = calloc((size_t)count, sizeof(long long));
    int m = 0;
    for (int i = 0; i < count; i++) {
        if (streams[i].got_us)
            delays[m++] = streams[i].got_us - t0;
    }
    qsort(delays, (size_t)m, sizeof(long long), cmp_ll);
    printf("received %d of %d\n", m, count);
    for (int i = 0; i < m; i++)
        printf("%lld\n", delays[i]);
    return m == count ? 0 : 1;
}
