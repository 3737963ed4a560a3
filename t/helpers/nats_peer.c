/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_peer: an independent NATS peer built on the official C client
 * (libnats), for interop tests of resty.nats.
 *
 *   nats_peer serve URL
 *       runs until killed, serving (all over NATS):
 *       interop.echo, rpc replies with the request's payload and headers
 *       interop.inspect   replies "subject=<s> reply=<r> len=<n> crc=<c>"
 *                         plus " h:<key>=<v1>,<v2>" per header key
 *       interop.publish   payload "<subject> <count> <size>": publishes
 *                         count messages of size bytes ("0123456789"
 *                         repeated, the last 4 bytes being the index
 *                         mod 10000), flushes, then replies "done <count>"
 *       interop.headers   replies with the request's payload and the
 *                         headers X-One: 1, X-Multi: a, X-Multi: b
 *       interop.slow      replies "slow: <payload>" after 300 ms
 *       interop.sink.>    counts messages; interop.sinkstat replies
 *                         "<count> <bytes>" and resets the counters
 *   nats_peer request URL SUBJECT PAYLOAD [TIMEOUT_MS]
 *       sends one request, prints the reply payload, exits 0 (1 on error)
 *   nats_peer publish URL SUBJECT PAYLOAD [COUNT]
 *       publishes COUNT (default 1) copies, flushes, exits
 *   nats_peer jspub URL SUBJECT PAYLOAD COUNT
 *       JetStream: publishes COUNT messages "<PAYLOAD> <i>" (i from 1)
 *       with js_Publish, prints "<stream> <last seq>"
 *   nats_peer jsfetch URL STREAM CONSUMER COUNT [TIMEOUT_MS]
 *       JetStream: fetches COUNT messages of an existing pull consumer
 *       (natsSubscription_Fetch), acks each, prints their payloads, one
 *       a line
 *   nats_peer kvput URL BUCKET KEY VALUE
 *       key-value: kvStore_PutString, prints the revision
 */

#include <nats/nats.h>

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static volatile sig_atomic_t  stop;
/* libnats delivers each subscription on its own thread: the sink counts
 * on one, interop.sinkstat reads and resets on another */
static pthread_mutex_t        sink_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t                sink_count;
static int64_t                sink_bytes;


static uint32_t
crc32_of(const unsigned char *p, int len)
{
    uint32_t  c = 0xffffffffu;
    int       i, k;

    for (i = 0; i < len; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }

    return c ^ 0xffffffffu;
}


static void
reply_with(natsConnection *nc, natsMsg *req, const char *data, int len)
{
    const char  *reply = natsMsg_GetReply(req);

    if (reply == NULL || reply[0] == '\0') {
        return;
    }

    natsConnection_Publish(nc, reply, data, len);
    natsConnection_Flush(nc);
}


static void
on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    const char   *reply = natsMsg_GetReply(msg);
    const char  **keys = NULL, **vals = NULL;
    natsMsg      *out = NULL;
    int           nkeys = 0, nvals = 0, i, j;

    (void) sub;
    (void) c;

    if (reply != NULL && reply[0] != '\0'
        && natsMsg_Create(&out, reply, NULL, natsMsg_GetData(msg),
                          natsMsg_GetDataLength(msg)) == NATS_OK)
    {
        if (natsMsgHeader_Keys(msg, &keys, &nkeys) == NATS_OK) {
            for (i = 0; i < nkeys; i++) {
                if (natsMsgHeader_Values(msg, keys[i], &vals, &nvals)
                    == NATS_OK)
                {
                    for (j = 0; j < nvals; j++) {
                        natsMsgHeader_Add(out, keys[i], vals[j]);
                    }
                    free((void *) vals);
                }
            }
            free((void *) keys);
        }

        natsConnection_PublishMsg(nc, out);
        natsConnection_Flush(nc);
        natsMsg_Destroy(out);
    }

    natsMsg_Destroy(msg);
}


static void
on_headers(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    const char  *reply = natsMsg_GetReply(msg);
    natsMsg     *out = NULL;

    (void) sub;
    (void) c;

    if (reply != NULL && reply[0] != '\0'
        && natsMsg_Create(&out, reply, NULL, natsMsg_GetData(msg),
                          natsMsg_GetDataLength(msg)) == NATS_OK)
    {
        natsMsgHeader_Set(out, "X-One", "1");
        natsMsgHeader_Add(out, "X-Multi", "a");
        natsMsgHeader_Add(out, "X-Multi", "b");
        natsConnection_PublishMsg(nc, out);
        natsConnection_Flush(nc);
        natsMsg_Destroy(out);
    }

    natsMsg_Destroy(msg);
}


static void
on_slow(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    char  out[512];
    int   n;

    (void) sub;
    (void) c;

    nats_Sleep(300);
    n = snprintf(out, sizeof(out), "slow: %.*s",
                 natsMsg_GetDataLength(msg) > 400
                 ? 400 : natsMsg_GetDataLength(msg),
                 natsMsg_GetData(msg));
    reply_with(nc, msg, out, n);
    natsMsg_Destroy(msg);
}


static void
on_inspect(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    char          buf[4096];
    const char   *reply = natsMsg_GetReply(msg);
    const char  **keys = NULL, **vals = NULL;
    int           n, nkeys = 0, nvals = 0, i, j;

    (void) sub;
    (void) c;

    n = snprintf(buf, sizeof(buf), "subject=%s reply=%s len=%d crc=%08x",
                 natsMsg_GetSubject(msg), reply ? reply : "",
                 natsMsg_GetDataLength(msg),
                 crc32_of((const unsigned char *) natsMsg_GetData(msg),
                          natsMsg_GetDataLength(msg)));

    if (natsMsgHeader_Keys(msg, &keys, &nkeys) == NATS_OK) {
        for (i = 0; i < nkeys && n < (int) sizeof(buf) - 64; i++) {
            n += snprintf(buf + n, sizeof(buf) - n, " h:%s=", keys[i]);
            if (natsMsgHeader_Values(msg, keys[i], &vals, &nvals)
                == NATS_OK)
            {
                for (j = 0; j < nvals && n < (int) sizeof(buf) - 64; j++) {
                    n += snprintf(buf + n, sizeof(buf) - n, "%s%s",
                                  j ? "," : "", vals[j]);
                }
                free((void *) vals);
            }
        }
        free((void *) keys);
    }

    reply_with(nc, msg, buf, n);
    natsMsg_Destroy(msg);
}


static void
on_publish(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    char    subject[256], out[64];
    char   *data;
    long    count = 0, size = 0, i, k;
    int     n;

    (void) sub;
    (void) c;

    memset(subject, 0, sizeof(subject));
    if (natsMsg_GetDataLength(msg) > 300
        || sscanf(natsMsg_GetData(msg), "%255s %ld %ld", subject, &count,
                  &size) != 3
        || count < 0 || size < 4 || size > 8 * 1024 * 1024)
    {
        reply_with(nc, msg, "bad request", 11);
        natsMsg_Destroy(msg);
        return;
    }

    data = malloc(size);
    if (data == NULL) {
        natsMsg_Destroy(msg);
        return;
    }

    for (k = 0; k < size; k++) {
        data[k] = (char) ('0' + k % 10);
    }

    for (i = 0; i < count; i++) {
        snprintf(out, sizeof(out), "%04ld", i % 10000);
        memcpy(data + size - 4, out, 4);
        natsConnection_Publish(nc, subject, data, (int) size);
    }

    free(data);
    natsConnection_Flush(nc);

    n = snprintf(out, sizeof(out), "done %ld", count);
    reply_with(nc, msg, out, n);
    natsMsg_Destroy(msg);
}


static void
on_sink(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    (void) nc;
    (void) sub;
    (void) c;

    pthread_mutex_lock(&sink_lock);
    sink_count++;
    sink_bytes += natsMsg_GetDataLength(msg);
    pthread_mutex_unlock(&sink_lock);
    natsMsg_Destroy(msg);
}


static void
on_sinkstat(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *c)
{
    char  out[64];
    int   n;

    (void) sub;
    (void) c;

    pthread_mutex_lock(&sink_lock);
    n = snprintf(out, sizeof(out), "%lld %lld", (long long) sink_count,
                 (long long) sink_bytes);
    sink_count = 0;
    sink_bytes = 0;
    pthread_mutex_unlock(&sink_lock);
    reply_with(nc, msg, out, n);
    natsMsg_Destroy(msg);
}


static void
on_signal(int sig)
{
    (void) sig;
    stop = 1;
}


static int
serve(natsConnection *nc)
{
    natsSubscription  *subs[8];
    natsStatus         s;

    s = natsConnection_Subscribe(&subs[0], nc, "interop.echo", on_echo,
                                 NULL);
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[1], nc, "interop.inspect",
                                     on_inspect, NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[2], nc, "interop.publish",
                                     on_publish, NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[3], nc, "interop.sink.>",
                                     on_sink, NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[4], nc, "interop.sinkstat",
                                     on_sinkstat, NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[5], nc, "rpc", on_echo, NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Subscribe(&subs[6], nc, "interop.headers",
                                     on_headers, NULL);
    }
    if (s == NATS_OK) {
        /* its own thread: a slow reply must not hold up the others */
        s = natsConnection_Subscribe(&subs[7], nc, "interop.slow", on_slow,
                                     NULL);
    }
    if (s == NATS_OK) {
        s = natsConnection_Flush(nc);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "nats_peer: serve: %s\n", natsStatus_GetText(s));
        return 1;
    }

    /* the runner waits for this line before starting the suites */
    printf("ready\n");
    fflush(stdout);

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop) {
        nats_Sleep(100);
    }

    return 0;
}


static int
js_cli(natsConnection *nc, int argc, char **argv)
{
    jsCtx             *js = NULL;
    jsPubAck          *pa = NULL;
    jsErrCode          jerr = 0;
    jsSubOptions       so;
    natsSubscription  *sub = NULL;
    natsMsgList        list = { 0 };
    kvStore           *kv = NULL;
    natsStatus         s;
    uint64_t           rev = 0;
    char               buf[4096];
    long               i, count, got;
    int                k, rc = 1;

    s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_peer: jetstream: %s\n", natsStatus_GetText(s));
        return 1;
    }

    if (strcmp(argv[1], "jspub") == 0 && argc >= 6) {
        count = atol(argv[5]);
        for (i = 1; i <= count && s == NATS_OK; i++) {
            snprintf(buf, sizeof(buf), "%s %ld", argv[4], i);
            jsPubAck_Destroy(pa);
            pa = NULL;
            s = js_Publish(&pa, js, argv[3], buf, (int) strlen(buf), NULL,
                           &jerr);
        }
        if (s == NATS_OK && pa != NULL) {
            printf("%s %llu\n", pa->Stream, (unsigned long long) pa->Sequence);
            rc = 0;
        }
        jsPubAck_Destroy(pa);

    } else if (strcmp(argv[1], "jsfetch") == 0 && argc >= 6) {
        count = atol(argv[5]);
        jsSubOptions_Init(&so);
        so.Stream = argv[3];
        so.Consumer = argv[4];
        s = js_PullSubscribe(&sub, js, NULL, argv[4], NULL, &so, &jerr);
        got = 0;
        while (s == NATS_OK && got < count) {
            s = natsSubscription_Fetch(&list, sub, (int) (count - got),
                                       argc > 6 ? atol(argv[6]) : 5000,
                                       &jerr);
            for (k = 0; s == NATS_OK && k < list.Count; k++) {
                fwrite(natsMsg_GetData(list.Msgs[k]), 1,
                       natsMsg_GetDataLength(list.Msgs[k]), stdout);
                printf("\n");
                natsMsg_Ack(list.Msgs[k], NULL);
                got++;
            }
            natsMsgList_Destroy(&list);
        }
        natsSubscription_Destroy(sub);
        rc = got == count ? 0 : 1;

    } else if (strcmp(argv[1], "kvput") == 0 && argc >= 6) {
        s = js_KeyValue(&kv, js, argv[3]);
        if (s == NATS_OK) {
            s = kvStore_PutString(&rev, kv, argv[4], argv[5]);
        }
        if (s == NATS_OK) {
            printf("%llu\n", (unsigned long long) rev);
            rc = 0;
        }
        kvStore_Destroy(kv);
    }

    if (s != NATS_OK) {
        fprintf(stderr, "nats_peer: %s: %s (%d)\n", argv[1],
                natsStatus_GetText(s), (int) jerr);
    }
    fflush(stdout);
    jsCtx_Destroy(js);
    return rc;
}


int
main(int argc, char **argv)
{
    natsConnection  *nc = NULL;
    natsMsg         *reply = NULL;
    natsOptions     *opts = NULL;
    natsStatus       s;
    long             i, count;
    int              rc = 1;

    if (argc < 3) {
        fprintf(stderr, "usage: nats_peer serve|request|publish URL ...\n");
        return 2;
    }

    s = natsOptions_Create(&opts);
    if (s == NATS_OK) {
        s = natsOptions_SetURL(opts, argv[2]);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetName(opts, "nats_peer");
    }
    if (s == NATS_OK) {
        s = natsConnection_Connect(&nc, opts);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "nats_peer: connect %s: %s\n", argv[2],
                natsStatus_GetText(s));
        return 1;
    }

    if (strcmp(argv[1], "serve") == 0) {
        rc = serve(nc);

    } else if (strcmp(argv[1], "request") == 0 && argc >= 5) {
        s = natsConnection_Request(&reply, nc, argv[3], argv[4],
                                   (int) strlen(argv[4]),
                                   argc > 5 ? atol(argv[5]) : 2000);
        if (s == NATS_OK) {
            fwrite(natsMsg_GetData(reply), 1, natsMsg_GetDataLength(reply),
                   stdout);
            printf("\n");
            natsMsg_Destroy(reply);
            rc = 0;

        } else {
            fprintf(stderr, "nats_peer: request: %s\n",
                    natsStatus_GetText(s));
        }

    } else if (strcmp(argv[1], "publish") == 0 && argc >= 5) {
        count = argc > 5 ? atol(argv[5]) : 1;
        for (i = 0; i < count && s == NATS_OK; i++) {
            s = natsConnection_PublishString(nc, argv[3], argv[4]);
        }
        if (s == NATS_OK) {
            s = natsConnection_Flush(nc);
        }
        rc = s == NATS_OK ? 0 : 1;

    } else if (strcmp(argv[1], "jspub") == 0
               || strcmp(argv[1], "jsfetch") == 0
               || strcmp(argv[1], "kvput") == 0)
    {
        rc = js_cli(nc, argc, argv);

    } else {
        fprintf(stderr, "nats_peer: bad arguments\n");
        rc = 2;
    }

    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
