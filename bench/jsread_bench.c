/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * jsread_bench: the libnats side of bench/jsread.sh, reading a stream as
 * the official C client does. One figure on stdout; errors on stderr
 * with exit status 1.
 *
 *   jsread_bench fill URL STREAM SUBJECT N SIZE
 *       makes the stream (memory storage, SUBJECT) if needed and publishes
 *       N messages of SIZE bytes to it (js_PublishAsync, then waits for
 *       every acknowledgement); prints "<msgs/s>".
 *   jsread_bench ordered URL STREAM SUBJECT N
 *       reads the first N messages of the stream on SUBJECT through an
 *       ordered consumer (jsSubOptions.Ordered: a push consumer with flow
 *       control and idle heartbeats), each message's payload length added
 *       up in the callback; prints "<msgs/s>" from the subscribe to the
 *       N-th message.
 *   jsread_bench fetch URL STREAM CONSUMER N BATCH
 *       reads N messages of the pull consumer CONSUMER (made by the
 *       caller) with natsSubscription_Fetch(BATCH) in a loop, acking each
 *       (natsMsg_Ack); prints "<msgs/s>".
 */

#include <nats/nats.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define WAIT_SEC   120


static double
now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static int
fail(const char *what, natsStatus s, jsErrCode jerr)
{
    fprintf(stderr, "jsread_bench: %s: %s (%d) %s\n", what,
            natsStatus_GetText(s), (int) jerr, nats_GetLastError(NULL));
    return 1;
}


static int
bench_fill(natsConnection *nc, const char *stream, const char *subject,
    long n, long size)
{
    jsCtx            *js = NULL;
    jsOptions         jo;
    jsStreamConfig    cfg;
    jsStreamInfo     *si = NULL;
    jsErrCode         jerr = 0;
    jsPubOptions      po;
    char             *data;
    double            t0, t1;
    long              i;
    natsStatus        s;

    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.StallWait = 30000;     /* ms: wait, do not fail */
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        return fail("jetstream", s, 0);
    }
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Subjects = &subject;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        return fail("add stream", s, jerr);
    }
    jsStreamInfo_Destroy(si);

    data = malloc(size > 0 ? size : 1);
    memset(data, 'x', size > 0 ? size : 1);
    jsPubOptions_Init(&po);
    t0 = now_sec();
    for (i = 0; i < n && s == NATS_OK; i++) {
        s = js_PublishAsync(js, subject, data, (int) size, &po);
    }
    if (s == NATS_OK) {
        po.MaxWait = WAIT_SEC * 1000;
        s = js_PublishAsyncComplete(js, &po);
    }
    t1 = now_sec();
    free(data);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        return fail("publish", s, 0);
    }
    printf("%.0f\n", n / (t1 - t0));
    return 0;
}


typedef struct {
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    long             want;
    long             got;
    long long        bytes;
    int              done;
} counter_t;


static void
on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    counter_t  *c = arg;

    (void) nc;
    (void) sub;
    c->bytes += natsMsg_GetDataLength(msg);
    natsMsg_Destroy(msg);
    if (++c->got == c->want) {
        pthread_mutex_lock(&c->lock);
        c->done = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
    }
}


static int
bench_ordered(natsConnection *nc, const char *subject, long n)
{
    jsCtx              *js = NULL;
    jsSubOptions        so;
    jsErrCode           jerr = 0;
    natsSubscription   *sub = NULL;
    counter_t           c;
    struct timespec     until;
    double              t0, t1;
    natsStatus          s;

    memset(&c, 0, sizeof(c));
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    c.want = n;
    s = natsConnection_JetStream(&js, nc, NULL);
    t0 = now_sec();
    if (s == NATS_OK) {
        jsSubOptions_Init(&so);
        so.Ordered = true;
        s = js_Subscribe(&sub, js, subject, on_msg, &c, NULL, &so, &jerr);
    }
    if (s == NATS_OK) {
        /* no pending limits: the figure is the delivery, not drops */
        natsSubscription_SetPendingLimits(sub, -1, -1);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WAIT_SEC;
        pthread_mutex_lock(&c.lock);
        while (!c.done && s == NATS_OK) {
            if (pthread_cond_timedwait(&c.cond, &c.lock, &until) != 0) {
                s = NATS_TIMEOUT;
            }
        }
        pthread_mutex_unlock(&c.lock);
    }
    t1 = now_sec();
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        fprintf(stderr, "jsread_bench: ordered: %s (%d), %ld of %ld\n",
                natsStatus_GetText(s), (int) jerr, c.got, n);
        return 1;
    }
    printf("%.0f\n", n / (t1 - t0));
    return 0;
}


static int
bench_fetch(natsConnection *nc, const char *stream, const char *consumer,
    long n, int batch)
{
    jsCtx              *js = NULL;
    jsSubOptions        so;
    jsErrCode           jerr = 0;
    natsSubscription   *sub = NULL;
    natsMsgList         list;
    double              t0, t1;
    long                got = 0;
    int                 i;
    natsStatus          s;

    s = natsConnection_JetStream(&js, nc, NULL);
    t0 = now_sec();
    if (s == NATS_OK) {
        jsSubOptions_Init(&so);
        so.Stream = stream;
        so.Consumer = consumer;
        s = js_PullSubscribe(&sub, js, NULL, consumer, NULL, &so, &jerr);
    }
    while (s == NATS_OK && got < n) {
        s = natsSubscription_Fetch(&list, sub, batch, 5000, &jerr);
        if (s != NATS_OK) {
            break;
        }
        for (i = 0; i < list.Count; i++) {
            if (natsMsg_Ack(list.Msgs[i], NULL) != NATS_OK) {
                s = NATS_ERR;
            }
        }
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    t1 = now_sec();
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        fprintf(stderr, "jsread_bench: fetch: %s (%d), %ld of %ld\n",
                natsStatus_GetText(s), (int) jerr, got, n);
        return 1;
    }
    printf("%.0f\n", got / (t1 - t0));
    return 0;
}


int
main(int argc, char **argv)
{
    natsConnection  *nc = NULL;
    natsOptions     *opts = NULL;
    int              rc = 2;

    if (argc < 6) {
        fprintf(stderr, "usage: jsread_bench fill URL STREAM SUBJECT N SIZE"
                " | ordered URL STREAM SUBJECT N"
                " | fetch URL STREAM CONSUMER N BATCH\n");
        return 2;
    }
    if (natsOptions_Create(&opts) != NATS_OK
        || natsOptions_SetURL(opts, argv[2]) != NATS_OK
        || natsConnection_Connect(&nc, opts) != NATS_OK)
    {
        fprintf(stderr, "jsread_bench: cannot connect to %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "fill") == 0 && argc == 7) {
        rc = bench_fill(nc, argv[3], argv[4], atol(argv[5]), atol(argv[6]));
    } else if (strcmp(argv[1], "ordered") == 0 && argc == 6) {
        rc = bench_ordered(nc, argv[4], atol(argv[5]));
    } else if (strcmp(argv[1], "fetch") == 0 && argc == 7) {
        rc = bench_fetch(nc, argv[3], argv[4], atol(argv[5]), atoi(argv[6]));
    } else {
        fprintf(stderr, "jsread_bench: bad arguments\n");
    }
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
