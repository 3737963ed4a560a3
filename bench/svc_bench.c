/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * svc_bench: the client of bench/service.sh, an independent requester on
 * the official C client (libnats). One line on stdout; errors on stderr
 * with exit status 1.
 *
 *   svc_bench URL SUBJECT K DURATION SIZE
 *       keeps K requests of SIZE (1 or more) bytes in flight on SUBJECT
 *       for DURATION seconds: slot i publishes with the reply subject
 *       <inbox>.<i> (natsConnection_PublishRequest) and, when its reply
 *       comes on the wildcard subscription <inbox>.*, publishes the next
 *       one at once.
 *       After DURATION no new request goes out and the ones in flight
 *       are waited for (up to 5 s). Prints "<req/s> <replies> <mean
 *       latency us> <lost>": replies within DURATION per second, every
 *       reply counted (drain included, for CPU per request), the mean
 *       time from publish to reply, the requests never answered. A reply
 *       that is not the request's payload (a no-responders status) is an
 *       error.
 */

#include <nats/nats.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define DRAIN_SEC  5
#define MAX_K      100000


typedef struct {
    natsConnection  *nc;
    const char      *subject;
    char             inbox[64];
    char            *payload;
    int              size;
    long             k;
    double          *sent;           /* per slot: when its request went */
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    volatile int     stop;           /* no new requests */
    long             in_flight;
    long             replies;        /* all of them */
    long             timed;          /* those before the stop */
    long             bad;            /* not an echo: the slot stops */
    double           latency;        /* sum, s */
    natsStatus       err;
} bench_t;


static double
now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static natsStatus
send_one(bench_t *b, long slot)
{
    char  reply[96];

    snprintf(reply, sizeof(reply), "%s.%ld", b->inbox, slot);
    b->sent[slot] = now_sec();
    return natsConnection_PublishRequest(b->nc, b->subject, reply,
                                         b->payload, b->size);
}


/* the replies: one delivery thread, so the counters need no lock but for
 * the waiter */
static void
on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    bench_t     *b = arg;
    const char  *subj = natsMsg_GetSubject(msg);
    const char  *dot = strrchr(subj, '.');
    long         slot = dot != NULL ? strtol(dot + 1, NULL, 10) : -1;
    int          len = natsMsg_GetDataLength(msg);
    double       t = now_sec();
    natsStatus   s;

    (void) nc;
    (void) sub;
    natsMsg_Destroy(msg);
    if (slot < 0 || slot >= b->k || b->sent[slot] == 0) {
        return;                                 /* not ours, or late */
    }
    if (len != b->size) {
        b->bad++;                   /* no responders (a 503 status) */
    } else {
        b->replies++;
    }
    if (len == b->size && !b->stop) {
        b->timed++;
        b->latency += t - b->sent[slot];
        s = send_one(b, slot);
        if (s == NATS_OK) {
            return;
        }
        b->err = s;
    }
    b->sent[slot] = 0;
    pthread_mutex_lock(&b->lock);
    if (--b->in_flight == 0) {
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
}


static int
fail(const char *what, natsStatus s)
{
    fprintf(stderr, "svc_bench: %s: %s %s\n", what, natsStatus_GetText(s),
            nats_GetLastError(NULL));
    return 1;
}


int
main(int argc, char **argv)
{
    natsConnection    *nc = NULL;
    natsOptions       *opts = NULL;
    natsSubscription  *sub = NULL;
    bench_t            b;
    struct timespec    until;
    char               wild[80];
    double             duration, t0, t1;
    long               i;
    natsStatus         s;

    if (argc != 6) {
        fprintf(stderr, "usage: svc_bench URL SUBJECT K DURATION SIZE\n");
        return 2;
    }
    memset(&b, 0, sizeof(b));
    b.subject = argv[2];
    b.k = atol(argv[3]);
    duration = atof(argv[4]);
    b.size = atoi(argv[5]);
    if (b.k < 1 || b.k > MAX_K || duration <= 0 || b.size < 1) {
        fprintf(stderr, "svc_bench: bad arguments\n");
        return 2;
    }
    b.payload = malloc(b.size);
    b.sent = calloc(b.k, sizeof(double));
    if (b.payload == NULL || b.sent == NULL) {
        fprintf(stderr, "svc_bench: no memory\n");
        return 1;
    }
    memset(b.payload, 'x', b.size);
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);

    if (natsOptions_Create(&opts) != NATS_OK
        || natsOptions_SetURL(opts, argv[1]) != NATS_OK
        || natsOptions_SetMaxPendingMsgs(opts, 1000000) != NATS_OK
        || natsConnection_Connect(&nc, opts) != NATS_OK)
    {
        fprintf(stderr, "svc_bench: cannot connect to %s\n", argv[1]);
        return 1;
    }
    b.nc = nc;
    snprintf(b.inbox, sizeof(b.inbox), "_SVCB.%ld.%ld", (long) getpid(),
             (long) (now_sec() * 1000) % 1000000);
    snprintf(wild, sizeof(wild), "%s.*", b.inbox);
    s = natsConnection_Subscribe(&sub, nc, wild, on_reply, &b);
    if (s == NATS_OK) {
        s = natsConnection_Flush(nc);
    }
    if (s != NATS_OK) {
        return fail("subscribe", s);
    }

    t0 = now_sec();
    b.in_flight = b.k;
    for (i = 0; i < b.k && s == NATS_OK; i++) {
        s = send_one(&b, i);
    }
    if (s != NATS_OK) {
        return fail("publish", s);
    }
    nats_Sleep((int64_t) (duration * 1000));
    b.stop = 1;
    t1 = now_sec();

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += DRAIN_SEC;
    pthread_mutex_lock(&b.lock);
    while (b.in_flight > 0) {
        if (pthread_cond_timedwait(&b.cond, &b.lock, &until) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&b.lock);
    if (b.err != NATS_OK) {
        return fail("publish", b.err);
    }
    if (b.bad > 0) {
        fprintf(stderr, "svc_bench: %ld replies on %s were not echoes "
                "(no responders?)\n", b.bad, b.subject);
        return 1;
    }
    if (b.timed == 0) {
        fprintf(stderr, "svc_bench: no reply on %s\n", b.subject);
        return 1;
    }
    printf("%.0f %ld %.1f %ld\n", b.timed / (t1 - t0), b.replies,
           b.latency / b.timed * 1e6, b.in_flight);

    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return 0;
}
