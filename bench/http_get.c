/*
 * http_get: the lean HTTP client of bench/objstore.sh. One GET over a
 * fresh connection; the body is read into a buffer of BUF bytes (32 KiB
 * by default: libnats' read size) and dropped. Prints "<bytes/s>" of the
 * body, timed from the connect to its last byte (as curl's
 * speed_download); fails (exit 1) unless the status is 200 and the body
 * has Content-Length bytes.
 *
 *   http_get HOST PORT PATH [BUF]
 *
 * curl, the other client of the script, reads 16 KiB at a time and costs
 * about 0.05 s of CPU per 64 MiB here, on the two cores that nginx and
 * nats-server share (bench/README.md).
 */

#define _GNU_SOURCE     /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
fail(const char *what)
{
    fprintf(stderr, "http_get: %s\n", what);
    return 1;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in  sa;
    char                req[1024], *buf, *end, *cl;
    size_t              bufsize = 32 * 1024, have = 0;
    long long           length, got;
    double              t0, t1;
    ssize_t             n;
    int                 fd, len;

    if (argc < 4 || argc > 5) {
        return fail("usage: http_get HOST PORT PATH [BUF]");
    }
    if (argc == 5) {
        bufsize = (size_t) atol(argv[4]);
        if (bufsize < 4096) {
            return fail("BUF must be at least 4096");
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        return fail("HOST must be an IPv4 address");
    }
    len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n"
                   "Connection: close\r\n\r\n", argv[3], argv[1]);
    if (len < 0 || (size_t) len >= sizeof(req)) {
        return fail("PATH too long");
    }
    buf = malloc(bufsize + 1);
    if (buf == NULL) {
        return fail("out of memory");
    }

    t0 = now_sec();
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        return fail("cannot connect");
    }
    if (write(fd, req, (size_t) len) != len) {
        return fail("cannot send the request");
    }

    /* the head: status line and headers, in the first BUF bytes */
    for ( ;; ) {
        n = read(fd, buf + have, bufsize - have);
        if (n <= 0) {
            return fail("no complete response head");
        }
        have += (size_t) n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            break;
        }
        if (have == bufsize) {
            return fail("response head larger than BUF");
        }
    }
    if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) {
        return fail("status is not 200");
    }
    *end = '\0';
    cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl == NULL) {
        return fail("no Content-Length");
    }
    length = atoll(cl + 17);
    got = (long long) (have - (size_t) (end + 4 - buf));

    /* the body */
    while (got < length) {
        n = read(fd, buf, bufsize);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += n;
    }
    t1 = now_sec();
    close(fd);
    if (got != length) {
        fprintf(stderr, "http_get: %lld of %lld bytes\n", got, length);
        return 1;
    }
    printf("%.0f\n", (double) length / (t1 - t0));
    free(buf);
    return 0;
}
