/* Feed viewers in C: many websockets on one epoll loop, each frame stamped on receipt and kept
 * as it came, for bench/native.py to check after the posting window.
 *
 * Why C: the viewers share the machine's two cores with the servers they measure. The Python
 * reader (bench/wire.py) costs ~14 µs a frame; the scale-out benchmark delivers 20,000+
 * frames a second, so its viewers took a third of the machine that the second server needed.
 * Here a frame costs its share of one recv() and a copy.
 *
 * It speaks only what the feed sends this client (RFC 6455): unfragmented text frames,
 * unmasked, no extension; ping is answered with a pong; close or anything else ends that
 * socket with an error rather than being misread. The handshake's Sec-WebSocket-Key and the
 * Sec-WebSocket-Accept to expect come from the parent (websockets computes them).
 *
 * stdin, line 1:  host port path count concurrency outfile
 *        then:    count lines "key accept"
 *        later:   "start" (the window begins: CPU is counted from here)
 *                 "done drain_ms n seq1 ... seqn" (the seqs each socket must get)
 * stdout:         "ready <open> <failed>" then "error <i> <text>" per failed socket,
 *                 later "result <cpu_s> <wall_s> <failed>" and "error ..." lines again.
 * outfile:        per text frame: u32 socket, u32 length, u64 CLOCK_REALTIME ns, payload.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { IDLE, CONNECTING, HANDSHAKE, PONG, OPEN, FAILED };
#define ATTEMPTS 3
#define OPEN_TIMEOUT 30.0
#define READ_ROOM 65536
#define MAX_HEAD 65536

typedef struct {
    int fd, state, attempts;
    char key[64], accept[64], error[200];
    unsigned char *buf;
    size_t len, cap;
    unsigned char *seen; /* seen[seq] = 1 */
    size_t seen_cap, cursor; /* cursor: first expected seq not yet seen */
    double since, retry_at;
    int complete;
} Conn;

static Conn *conns;
static int count, concurrency, inflight;
static char host[256], port[16], path[4096], outfile[4096];
static struct sockaddr_storage addr;
static socklen_t addrlen;
static int ep;
static unsigned char *arena;
static size_t arena_len, arena_cap;
static long *expected;
static size_t n_expected;

static double mono(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t wall_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static double cpu_s(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6 + r.ru_stime.tv_sec +
           r.ru_stime.tv_usec / 1e6;
}

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(p, c);
    if (!q) {
        fprintf(stderr, "viewer: out of memory\n");
        exit(2);
    }
    memset((char *)q + *cap, 0, c - *cap);
    *cap = c;
    return q;
}

static void fail(Conn *c, const char *fmt, const char *detail) {
    if (c->state == FAILED || c->state == IDLE) return;
    int was_opening = c->state != OPEN;
    snprintf(c->error, sizeof c->error, fmt, detail ? detail : "");
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->len = 0;
    if (was_opening) {
        inflight--;
        /* a socket that never opened is tried again, as bench/feed.py's viewers do */
        c->state = c->attempts < ATTEMPTS ? IDLE : FAILED;
        c->retry_at = mono() + 0.2 * c->attempts;
    } else {
        c->state = FAILED;
    }
}

static int send_all(Conn *c, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fail(c, "send: %s", w < 0 ? strerror(errno) : "nothing written");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A masked frame from this client (RFC 6455 §5.3); payloads here are under 126 bytes. */
static int send_frame(Conn *c, int opcode, const unsigned char *payload, size_t n) {
    unsigned char f[2 + 4 + 125];
    if (n > 125) n = 125;
    f[0] = 0x80 | (unsigned char)opcode;
    f[1] = 0x80 | (unsigned char)n;
    uint32_t r = (uint32_t)rand();
    memcpy(f + 2, &r, 4);
    for (size_t i = 0; i < n; i++) f[6 + i] = payload[i] ^ f[2 + (i & 3)];
    return send_all(c, f, 6 + n);
}

static void start_connect(Conn *c) {
    c->attempts++;
    c->since = mono();
    c->fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        c->state = CONNECTING;
        inflight++;
        fail(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONNECTING;
    inflight++;
    if (connect(c->fd, (struct sockaddr *)&addr, addrlen) < 0 && errno != EINPROGRESS) {
        fail(c, "connect: %s", strerror(errno));
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void mark_seen(Conn *c, const unsigned char *p, size_t n) {
    static const char prefix[] = "{\"type\": \"message.created\"";
    if (n < sizeof prefix || memcmp(p, prefix, sizeof prefix - 1)) return;
    size_t head = n < 256 ? n : 256;
    const unsigned char *s = memmem(p, head, "\"seq\": ", 7);
    if (!s) return;
    s += 7;
    long seq = 0;
    while (s < p + head && *s >= '0' && *s <= '9') seq = seq * 10 + (*s++ - '0');
    if (seq <= 0 || seq > 100000000) return;
    c->seen = grow(c->seen, &c->seen_cap, (size_t)seq + 1);
    c->seen[seq] = 1;
}

static void record(Conn *c, const unsigned char *p, size_t n, uint64_t now) {
    arena = grow(arena, &arena_cap, arena_len + 16 + n);
    uint32_t i = (uint32_t)(c - conns), len = (uint32_t)n;
    memcpy(arena + arena_len, &i, 4);
    memcpy(arena + arena_len + 4, &len, 4);
    memcpy(arena + arena_len + 8, &now, 8);
    memcpy(arena + arena_len + 16, p, n);
    arena_len += 16 + n;
    mark_seen(c, p, n);
}

/* The frames in c->buf; keeps an incomplete last one for the next read. */
static void frames(Conn *c, uint64_t now) {
    size_t pos = 0;
    while (c->len - pos >= 2 && c->state >= PONG && c->state != FAILED) {
        unsigned char b0 = c->buf[pos], b1 = c->buf[pos + 1];
        uint64_t n = b1 & 0x7f;
        size_t hdr = 2;
        if (n == 126) {
            if (c->len - pos < 4) break;
            n = ((uint64_t)c->buf[pos + 2] << 8) | c->buf[pos + 3];
            hdr = 4;
        } else if (n == 127) {
            if (c->len - pos < 10) break;
            n = 0;
            for (int k = 0; k < 8; k++) n = (n << 8) | c->buf[pos + 2 + k];
            hdr = 10;
        }
        if (b1 & 0x80) {
            fail(c, "masked frame from the server%s", NULL);
            return;
        }
        if (n > (1u << 30)) {
            fail(c, "frame too long%s", NULL);
            return;
        }
        if (c->len - pos - hdr < n) break;
        unsigned char *payload = c->buf + pos + hdr;
        int opcode = b0 & 0x0f;
        if (b0 == 0x81) {
            if (c->state == PONG) {
                /* the consumer answers the ping once it has joined the thread's group */
                if (!memmem(payload, n, "\"pong\"", 6)) {
                    fail(c, "expected pong first%s", NULL);
                    return;
                }
                c->state = OPEN;
                inflight--;
            } else {
                record(c, payload, n, now);
            }
        } else if (b0 == 0x89) {
            if (send_frame(c, 0xA, payload, n) < 0) return;
        } else if (b0 == 0x8A) {
            /* an unasked pong: nothing to do */
        } else if (opcode == 8) {
            char why[160];
            int code = n >= 2 ? (payload[0] << 8 | payload[1]) : 1005;
            snprintf(why, sizeof why, "%d %.*s", code, n > 2 ? (int)(n - 2 > 100 ? 100 : n - 2) : 0,
                     (const char *)payload + 2);
            fail(c, "closed: %s", why);
            return;
        } else {
            char why[40];
            snprintf(why, sizeof why, "0x%02x 0x%02x", b0, b1);
            fail(c, "unexpected frame %s (fragmented, masked or binary)", why);
            return;
        }
        pos += hdr + n;
    }
    if (c->state != PONG && c->state != OPEN) return;
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
}

static void handshake(Conn *c, uint64_t now) {
    unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
        if (c->len > MAX_HEAD) fail(c, "handshake response too long%s", NULL);
        return;
    }
    size_t head_len = (size_t)(end - c->buf);
    char *head = strndup((char *)c->buf, head_len);
    char want[100];
    snprintf(want, sizeof want, "sec-websocket-accept: %s", c->accept);
    if (strncmp(head, "HTTP/1.1 101", 12)) {
        char *eol = strstr(head, "\r\n");
        if (eol) *eol = 0;
        fail(c, "handshake refused: %s", head);
    } else if (!strcasestr(head, want)) {
        fail(c, "handshake: wrong Sec-WebSocket-Accept%s", NULL);
    } else if (strcasestr(head, "sec-websocket-extensions")) {
        fail(c, "handshake: an extension was not asked for%s", NULL);
    } else {
        memmove(c->buf, end + 4, c->len - head_len - 4);
        c->len -= head_len + 4;
        c->state = PONG;
        static const unsigned char ping[] = "{\"type\":\"ping\"}";
        if (send_frame(c, 1, ping, sizeof ping - 1) == 0) frames(c, now);
    }
    free(head);
}

static void on_event(Conn *c, uint32_t events) {
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            fail(c, "connect: %s", strerror(err));
            return;
        }
        char req[8192];
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         path, host, port, c->key);
        if (send_all(c, req, (size_t)n) < 0) return;
        c->state = HANDSHAKE;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(c - conns)};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    (void)events;
    if (c->fd < 0) return; /* closed earlier in this batch of events */
    for (;;) {
        c->buf = grow(c->buf, &c->cap, c->len + READ_ROOM);
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) {
            fail(c, "closed: %s", r < 0 ? strerror(errno) : "connection lost");
            return;
        }
        uint64_t now = wall_ns();
        size_t room = c->cap - c->len;
        c->len += (size_t)r;
        if (c->state == HANDSHAKE)
            handshake(c, now);
        else
            frames(c, now);
        if (c->state == FAILED || c->state == IDLE || (size_t)r < room) return;
    }
}

static void report(const char *kind, double a, double b, int with_numbers) {
    int failed = 0;
    for (int i = 0; i < count; i++) failed += conns[i].state != OPEN;
    if (with_numbers)
        printf("%s %.6f %.6f %d\n", kind, a, b, failed);
    else
        printf("%s %d %d\n", kind, count - failed, failed);
    for (int i = 0; i < count; i++)
        if (conns[i].state != OPEN) printf("error %d %s\n", i, conns[i].error);
    fflush(stdout);
}

/* Commands from the parent, a line each; read() into our own buffer, so that epoll on fd 0
 * never misses a line that stdio had already taken in. */
static char *in_buf;
static size_t in_len, in_cap, in_taken;

static char *buffered_line(void) {
    if (in_taken) {
        memmove(in_buf, in_buf + in_taken, in_len - in_taken);
        in_len -= in_taken;
        in_taken = 0;
    }
    char *nl = in_len ? memchr(in_buf, '\n', in_len) : NULL;
    if (!nl) return NULL;
    *nl = 0;
    in_taken = (size_t)(nl - in_buf) + 1;
    return in_buf;
}

static int fill_in(void) {
    in_buf = grow(in_buf, &in_cap, in_len + 65536);
    ssize_t r = read(0, in_buf + in_len, in_cap - in_len);
    if (r < 0 && errno == EINTR) return 1;
    if (r <= 0) return 0;
    in_len += (size_t)r;
    return 1;
}

static char *read_line(void) {
    char *line;
    while (!(line = buffered_line()))
        if (!fill_in()) return NULL;
    return line;
}

static int all_complete(void) {
    int all = 1;
    for (int i = 0; i < count; i++) {
        Conn *c = &conns[i];
        if (c->state != OPEN || c->complete) continue;
        while (c->cursor < n_expected) {
            long s = expected[c->cursor];
            if ((size_t)s >= c->seen_cap || !c->seen[s]) break;
            c->cursor++;
        }
        c->complete = c->cursor == n_expected;
        all &= c->complete;
    }
    return all;
}

static int loop_until(double deadline, int (*enough)(void)) {
    struct epoll_event evs[256];
    while (mono() < deadline) {
        if (enough && enough()) return 1;
        for (int i = 0; i < count && inflight < concurrency; i++)
            if (conns[i].state == IDLE && conns[i].attempts < ATTEMPTS && mono() >= conns[i].retry_at)
                start_connect(&conns[i]);
        int n = epoll_wait(ep, evs, 256, 20);
        for (int k = 0; k < n; k++) on_event(&conns[evs[k].data.u32], evs[k].events);
        double t = mono();
        for (int i = 0; i < count; i++) {
            Conn *c = &conns[i];
            if (c->state >= CONNECTING && c->state < OPEN && t - c->since > OPEN_TIMEOUT)
                fail(c, "no websocket within %s s", "30");
        }
    }
    return 0;
}

static int none_opening(void) {
    for (int i = 0; i < count; i++)
        if (conns[i].state != OPEN && conns[i].state != FAILED) return 0;
    return 1;
}

/* Until stdin has a line; the sockets are served meanwhile. */
static char *serve_until_command(void) {
    char *ready = buffered_line();
    if (ready) return ready;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        int command = 0;
        for (int k = 0; k < n; k++) {
            if (evs[k].data.u32 == UINT32_MAX)
                command = 1;
            else
                on_event(&conns[evs[k].data.u32], evs[k].events);
        }
        if (command) {
            if (!fill_in()) return NULL;
            char *line = buffered_line();
            if (line) {
                epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                return line;
            }
        }
    }
}

int main(void) {
    char *line = read_line();
    if (!line || sscanf(line, "%255s %15s %4095s %d %d %4095s", host, port, path, &count,
                        &concurrency, outfile) != 6 || count < 1 || concurrency < 1) {
        fprintf(stderr, "viewer: bad first line\n");
        return 2;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, port, &hints, &res)) {
        fprintf(stderr, "viewer: cannot resolve %s\n", host);
        return 2;
    }
    memcpy(&addr, res->ai_addr, res->ai_addrlen);
    addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    conns = calloc((size_t)count, sizeof *conns);
    for (int i = 0; i < count; i++) {
        line = read_line();
        if (!line || sscanf(line, "%63s %63s", conns[i].key, conns[i].accept) != 2) {
            fprintf(stderr, "viewer: bad key line %d\n", i);
            return 2;
        }
        conns[i].fd = -1;
    }
    srand((unsigned)getpid());
    ep = epoll_create1(EPOLL_CLOEXEC);

    loop_until(mono() + 4 * OPEN_TIMEOUT, none_opening);
    report("ready", 0, 0, 0);

    line = serve_until_command();
    if (!line || strcmp(line, "start")) {
        fprintf(stderr, "viewer: expected start, got %s\n", line ? line : "EOF");
        return 2;
    }
    double cpu0 = cpu_s(), t0 = mono();

    line = serve_until_command();
    long drain_ms = 0, n = 0;
    int used = 0;
    if (!line || sscanf(line, "done %ld %ld%n", &drain_ms, &n, &used) != 2 || n < 0) {
        fprintf(stderr, "viewer: expected done, got %s\n", line ? line : "EOF");
        return 2;
    }
    expected = calloc((size_t)n + 1, sizeof *expected);
    char *p = line + used;
    for (long i = 0; i < n; i++) expected[i] = strtol(p, &p, 10);
    n_expected = (size_t)n;
    loop_until(mono() + drain_ms / 1000.0, all_complete);
    double cpu1 = cpu_s(), t1 = mono();

    FILE *out = fopen(outfile, "wb");
    if (!out || fwrite(arena, 1, arena_len, out) != arena_len || fclose(out)) {
        fprintf(stderr, "viewer: cannot write %s\n", outfile);
        return 2;
    }
    report("result", cpu1 - cpu0, t1 - t0, 1);
    for (int i = 0; i < count; i++) {
        if (conns[i].state != OPEN) continue;
        static const unsigned char bye[] = {0x03, 0xe8};
        send_frame(&conns[i], 8, bye, 2);
        close(conns[i].fd);
    }
    return 0;
}
