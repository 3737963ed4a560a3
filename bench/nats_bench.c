/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_bench: the C-client (libnats) side of bench/run.sh: the peers the
 * resty.nats handlers talk to, and the native figures they are compared
 * with. Every figure is printed on one line of stdout; errors go to
 * stderr with exit status 1. Every wait is bounded in time.
 *
 *   nats_bench serve URL
 *       runs until SIGTERM/SIGINT with three connections:
 *       - responder (SendAsap: each reply is written at once):
 *         bench.echo          replies with the request's payload
 *       - sink:
 *         bench.sink.>        counts messages and bytes
 *         bench.sinkreset     zeroes the counters, replies "ok"
 *         bench.sinkwait      payload "<n>": waits (up to 60 s) until n
 *                             messages were counted, replies
 *                             "<count> <bytes>" and takes n off the count
 *                             (replies "timeout <count>" when they did not
 *                             all arrive)
 *       - publisher:
 *         bench.trigger       payload "<subject> <count> <size>": replies
 *                             "ok", then publishes count messages of size
 *                             bytes to subject and flushes
 *       prints "ready" once every subscription is registered.
 *   nats_bench pub URL SIZE COUNT
 *       publish baseline: publishes COUNT messages of SIZE bytes to
 *       bench.sink.c, then asks bench.sinkwait; prints "<msgs/s>", the rate
 *       until the sink has counted all of them.
 *   nats_bench recv URL SIZE COUNT
 *       receive baseline: subscribes a fresh subject, flushes (the server
 *       has the SUB), asks bench.trigger to publish COUNT messages of SIZE
 *       bytes to it; prints "<msgs/s>", the rate until all COUNT arrived.
 *   nats_bench reqloop URL CONCURRENCY SECONDS [PAYLOAD]
 *       native request loop: CONCURRENCY threads share one connection,
 *       each sending natsConnection_Request("bench.echo", PAYLOAD) in a
 *       loop for SECONDS; prints "<req/s> <p50 ms> <p99 ms> <errors>
 *       <requests>".
 *   nats_bench reqloop-conns URL CONCURRENCY SECONDS [PAYLOAD]
 *       the same with one connection per thread (each writing at once,
 *       natsOptions_SetSendAsap): no request shares a read or a write
 *       with another, as with one pooled connection per HTTP request.
 *   nats_bench jspub URL SIZE COUNT
 *       JetStream publish baseline (SendAsap, as jsfetch): js_Publish
 *       (each waits for its acknowledgement) of COUNT messages of SIZE bytes to bench.js.c
 *       (stream BENCHJS, memory, made or purged first); prints "<msgs/s>".
 *   nats_bench jsfetch URL COUNT BATCH
 *       pull baseline: stores COUNT messages of 16 bytes in the stream
 *       BENCHFETCH (memory, made or purged first), then a durable pull
 *       consumer reads them with natsSubscription_Fetch(BATCH) and acks
 *       each; prints "<msgs/s>" of the reading.
 */

#include <nats/nats.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


#define SINK_WAIT_SEC     60
#define RECV_WAIT_SEC     120
#define REQUEST_TIMEOUT   5000    /* ms */
#define MAX_SIZE          (8 * 1024 * 1024)


static volatile sig_atomic_t  stop;

static pthread_mutex_t        lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t         cond = PTHREAD_COND_INITIALIZER;
static int64_t                sink_count;
static int64_t                sink_bytes;
static int64_t                sink_target;   /* 0: nobody waits */
static int64_t                recv_count;
static int64_t                recv_target;


static double
now_sec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
deadline_in(struct timespec *ts, int sec)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += sec;
}


static void
reply_with(natsConnection *nc, natsMsg *req, const char *data, int len)
{
    const char  *reply = natsMsg_GetReply(req);

    if (reply != NULL && reply[0] != '\0') {
        natsConnection_Publish(nc, reply, data, len);
    }
}


/* responder ----------------------------------------------------------- */

static void
on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    (void) sub;
    (void) c;

    reply_with(nc, msg, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    natsMsg_Destroy(msg);
}


/* sink ---------------------------------------------------------------- */

static void
on_sink(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    (void) nc;
    (void) sub;
    (void) c;

    pthread_mutex_lock(&lock);
    sink_count++;
    sink_bytes += natsMsg_GetDataLength(msg);
    if (sink_target > 0 && sink_count >= sink_target) {
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&lock);
    natsMsg_Destroy(msg);
}


static void
on_sinkreset(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *c)
{
    (void) sub;
    (void) c;

    pthread_mutex_lock(&lock);
    sink_count = 0;
    sink_bytes = 0;
    pthread_mutex_unlock(&lock);
    reply_with(nc, msg, "ok", 2);
    natsConnection_Flush(nc);
    natsMsg_Destroy(msg);
}


static void
on_sinkwait(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *c)
{
    char             out[96];
    long long        want;
    int              n, rc = 0;
    struct timespec  ts;

    (void) sub;
    (void) c;

    want = natsMsg_GetDataLength(msg) > 0 && natsMsg_GetDataLength(msg) < 32
           ? atoll(natsMsg_GetData(msg)) : 0;
    if (want <= 0) {
        reply_with(nc, msg, "bad request", 11);
        natsConnection_Flush(nc);
        natsMsg_Destroy(msg);
        return;
    }

    deadline_in(&ts, SINK_WAIT_SEC);
    pthread_mutex_lock(&lock);
    sink_target = want;
    while (sink_count < want && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&cond, &lock, &ts);
    }
    sink_target = 0;
    if (sink_count >= want) {
        n = snprintf(out, sizeof(out), "%lld %lld", (long long) sink_count,
                     (long long) sink_bytes);
        sink_count -= want;
        sink_bytes = 0;
    } else {
        n = snprintf(out, sizeof(out), "timeout %lld",
                     (long long) sink_count);
    }
    pthread_mutex_unlock(&lock);

    reply_with(nc, msg, out, n);
    natsConnection_Flush(nc);
    natsMsg_Destroy(msg);
}


/* publisher ----------------------------------------------------------- */

static void
on_trigger(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *c)
{
    char   subject[256];
    char  *data;
    long   count = 0, size = -1, i;

    (void) sub;
    (void) c;

    memset(subject, 0, sizeof(subject));
    if (natsMsg_GetDataLength(msg) > 300
        || sscanf(natsMsg_GetData(msg), "%255s %ld %ld", subject, &count,
                  &size) != 3
        || count < 0 || size < 0 || size > MAX_SIZE)
    {
        reply_with(nc, msg, "bad request", 11);
        natsConnection_Flush(nc);
        natsMsg_Destroy(msg);
        return;
    }

    data = malloc(size > 0 ? size : 1);
    if (data == NULL) {
        natsMsg_Destroy(msg);
        return;
    }
    memset(data, 'x', size > 0 ? size : 1);

    /* "ok" goes out first, on the same connection as the messages */
    reply_with(nc, msg, "ok", 2);
    for (i = 0; i < count && !stop; i++) {
        if (natsConnection_Publish(nc, subject, data, (int) size)
            != NATS_OK)
        {
            break;
        }
    }
    natsConnection_FlushTimeout(nc, SINK_WAIT_SEC * 1000);
    free(data);
    natsMsg_Destroy(msg);
}


static void
on_signal(int sig)
{
    (void) sig;
    stop = 1;
}


static natsStatus
connect_to(natsConnection **nc, const char *url, const char *name,
    int send_asap)
{
    natsOptions  *opts = NULL;
    natsStatus    s;

    s = natsOptions_Create(&opts);
    if (s == NATS_OK) {
        s = natsOptions_SetURL(opts, url);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetName(opts, name);
    }
    if (s == NATS_OK && send_asap) {
        s = natsOptions_SetSendAsap(opts, true);
    }
    if (s == NATS_OK) {
        /* the native figures never wait for a reconnect */
        s = natsOptions_SetAllowReconnect(opts, false);
    }
    if (s == NATS_OK) {
        s = natsConnection_Connect(nc, opts);
    }
    natsOptions_Destroy(opts);

    if (s != NATS_OK) {
        fprintf(stderr, "nats_bench: connect %s: %s\n", url,
                natsStatus_GetText(s));
    }
    return s;
}


static natsStatus
sub_unlimited(natsSubscription **sub, natsConnection *nc,
    const char *subject, natsMsgHandler cb)
{
    natsStatus  s;

    s = natsConnection_Subscribe(sub, nc, subject, cb, NULL);
    if (s == NATS_OK) {
        /* a burst of N messages must never be dropped by the client */
        s = natsSubscription_SetPendingLimits(*sub, -1, -1);
    }
    return s;
}


static int
serve(const char *url)
{
    natsConnection    *rc = NULL, *sc = NULL, *pc = NULL;
    natsSubscription  *subs[5] = { NULL };
    natsStatus         s;
    int                i;

    s = connect_to(&rc, url, "bench_responder", 1);
    if (s == NATS_OK) {
        s = connect_to(&sc, url, "bench_sink", 0);
    }
    if (s == NATS_OK) {
        s = connect_to(&pc, url, "bench_publisher", 0);
    }
    if (s == NATS_OK) {
        s = sub_unlimited(&subs[0], rc, "bench.echo", on_echo);
    }
    if (s == NATS_OK) {
        s = sub_unlimited(&subs[1], sc, "bench.sink.>", on_sink);
    }
    if (s == NATS_OK) {
        s = sub_unlimited(&subs[2], sc, "bench.sinkreset", on_sinkreset);
    }
    if (s == NATS_OK) {
        s = sub_unlimited(&subs[3], sc, "bench.sinkwait", on_sinkwait);
    }
    if (s == NATS_OK) {
        s = sub_unlimited(&subs[4], pc, "bench.trigger", on_trigger);
    }
    if (s == NATS_OK) {
        s = natsConnection_Flush(rc);
    }
    if (s == NATS_OK) {
        s = natsConnection_Flush(sc);
    }
    if (s == NATS_OK) {
        s = natsConnection_Flush(pc);
    }

    if (s == NATS_OK) {
        printf("ready\n");
        fflush(stdout);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        while (!stop) {
            nats_Sleep(100);
        }

    } else {
        fprintf(stderr, "nats_bench: serve: %s\n", natsStatus_GetText(s));
    }

    for (i = 0; i < 5; i++) {
        natsSubscription_Destroy(subs[i]);
    }
    natsConnection_Destroy(rc);
    natsConnection_Destroy(sc);
    natsConnection_Destroy(pc);
    return s == NATS_OK ? 0 : 1;
}


/* publish baseline ---------------------------------------------------- */

static int
bench_pub(natsConnection *nc, long size, long count)
{
    natsMsg    *reply = NULL;
    char        want[32];
    char       *data;
    double      t0, t1;
    long        i;
    natsStatus  s;

    data = calloc(1, size > 0 ? size : 1);
    if (data == NULL) {
        return 1;
    }

    s = natsConnection_RequestString(&reply, nc, "bench.sinkreset", "",
                                     REQUEST_TIMEOUT);
    natsMsg_Destroy(reply);
    reply = NULL;

    t0 = now_sec();
    for (i = 0; i < count && s == NATS_OK; i++) {
        s = natsConnection_Publish(nc, "bench.sink.c", data, (int) size);
    }
    free(data);

    if (s == NATS_OK) {
        snprintf(want, sizeof(want), "%ld", count);
        s = natsConnection_RequestString(&reply, nc, "bench.sinkwait", want,
                                         (SINK_WAIT_SEC + 5) * 1000);
    }
    t1 = now_sec();

    if (s != NATS_OK) {
        fprintf(stderr, "nats_bench: pub: %s\n", natsStatus_GetText(s));
        return 1;
    }
    if (strncmp(natsMsg_GetData(reply), "timeout", 7) == 0) {
        fprintf(stderr, "nats_bench: pub: sink: %s\n",
                natsMsg_GetData(reply));
        natsMsg_Destroy(reply);
        return 1;
    }
    natsMsg_Destroy(reply);

    printf("%.0f\n", count / (t1 - t0));
    return 0;
}


/* JetStream baselines ------------------------------------------------ */

/* the stream name on subjects "<subject>.>", memory storage, empty */
static natsStatus
js_fresh_stream(jsCtx *js, const char *name, const char *subject)
{
    jsStreamConfig   cfg;
    jsStreamInfo    *si = NULL;
    jsErrCode        jerr = 0;
    natsStatus       s;
    char             subj[128];
    const char      *subjects[1];

    snprintf(subj, sizeof(subj), "%s.>", subject);
    subjects[0] = subj;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_MemoryStorage;
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK || jerr == JSStreamNameExistErr) {
        s = js_PurgeStream(js, name, NULL, &jerr);
    }
    return s;
}


static int
bench_jspub(natsConnection *nc, long size, long count)
{
    jsCtx       *js = NULL;
    jsPubAck    *pa = NULL;
    jsErrCode    jerr = 0;
    char        *data;
    double       t0, t1;
    long         i;
    natsStatus   s;

    data = calloc(1, size > 0 ? size : 1);
    if (data == NULL) {
        return 1;
    }
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) {
        s = js_fresh_stream(js, "BENCHJS", "bench.js");
    }
    t0 = now_sec();
    for (i = 0; i < count && s == NATS_OK; i++) {
        s = js_Publish(&pa, js, "bench.js.c", data, (int) size, NULL, &jerr);
        jsPubAck_Destroy(pa);
        pa = NULL;
    }
    t1 = now_sec();
    free(data);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_bench: jspub: %s (%d)\n",
                natsStatus_GetText(s), (int) jerr);
        return 1;
    }
    printf("%.0f\n", count / (t1 - t0));
    return 0;
}


static int
bench_jsfetch(natsConnection *nc, long count, int batch)
{
    jsCtx             *js = NULL;
    jsErrCode          jerr = 0;
    jsConsumerConfig   cc;
    jsConsumerInfo    *ci = NULL;
    jsSubOptions       so;
    natsSubscription  *sub = NULL;
    natsMsgList        list = { 0 };
    double             t0, t1;
    long               i, got = 0;
    int                k;
    natsStatus         s;

    s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) {
        s = js_fresh_stream(js, "BENCHFETCH", "bench.fetch");
    }
    for (i = 0; i < count && s == NATS_OK; i++) {
        s = js_PublishAsync(js, "bench.fetch.x", "0123456789abcdef", 16,
                            NULL);
    }
    if (s == NATS_OK) {
        s = js_PublishAsyncComplete(js, NULL);
    }
    if (s == NATS_OK) {
        js_DeleteConsumer(js, "BENCHFETCH", "cfetch", NULL, NULL);
        jsConsumerConfig_Init(&cc);
        cc.Durable = "cfetch";
        cc.AckPolicy = js_AckExplicit;
        s = js_AddConsumer(&ci, js, "BENCHFETCH", &cc, NULL, &jerr);
        jsConsumerInfo_Destroy(ci);
    }
    if (s == NATS_OK) {
        jsSubOptions_Init(&so);
        so.Stream = "BENCHFETCH";
        so.Consumer = "cfetch";
        s = js_PullSubscribe(&sub, js, NULL, "cfetch", NULL, &so, &jerr);
    }
    t0 = now_sec();
    while (s == NATS_OK && got < count) {
        s = natsSubscription_Fetch(&list, sub, batch, 5000, &jerr);
        for (k = 0; s == NATS_OK && k < list.Count; k++) {
            s = natsMsg_Ack(list.Msgs[k], NULL);
            got++;
        }
        natsMsgList_Destroy(&list);
    }
    t1 = now_sec();
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_bench: jsfetch: %s (%d) after %ld\n",
                natsStatus_GetText(s), (int) jerr, got);
        return 1;
    }
    printf("%.0f\n", got / (t1 - t0));
    return 0;
}


/* receive baseline ---------------------------------------------------- */

static void
on_recv(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    (void) nc;
    (void) sub;
    (void) c;

    pthread_mutex_lock(&lock);
    if (++recv_count >= recv_target) {
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&lock);
    natsMsg_Destroy(msg);
}


static int
bench_recv(natsConnection *nc, long size, long count)
{
    natsSubscription  *sub = NULL;
    natsMsg           *reply = NULL;
    char               subject[64], trigger[128];
    double             t0, t1;
    int                rc = 0;
    int64_t            got;
    struct timespec    ts;
    natsStatus         s;

    snprintf(subject, sizeof(subject), "bench.recv.c.%ld", (long) getpid());
    snprintf(trigger, sizeof(trigger), "%s %ld %ld", subject, count, size);
    recv_target = count;

    s = sub_unlimited(&sub, nc, subject, on_recv);
    if (s == NATS_OK) {
        s = natsConnection_Flush(nc);
    }

    t0 = now_sec();
    if (s == NATS_OK) {
        s = natsConnection_RequestString(&reply, nc, "bench.trigger",
                                         trigger, REQUEST_TIMEOUT);
        natsMsg_Destroy(reply);
    }
    if (s != NATS_OK) {
        fprintf(stderr, "nats_bench: recv: %s\n", natsStatus_GetText(s));
        natsSubscription_Destroy(sub);
        return 1;
    }

    deadline_in(&ts, RECV_WAIT_SEC);
    pthread_mutex_lock(&lock);
    while (recv_count < count && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&cond, &lock, &ts);
    }
    got = recv_count;
    pthread_mutex_unlock(&lock);
    t1 = now_sec();

    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);

    if (got < count) {
        fprintf(stderr, "nats_bench: recv: %lld of %ld messages arrived\n",
                (long long) got, count);
        return 1;
    }

    printf("%.0f\n", count / (t1 - t0));
    return 0;
}


/* native request loop ------------------------------------------------- */

typedef struct {
    natsConnection  *nc;
    const char      *payload;
    double           until;
    double          *lat;       /* seconds per request */
    size_t           n;
    size_t           cap;
    long             errors;
} requester_t;


static void *
requester(void *arg)
{
    requester_t  *r = arg;
    natsMsg      *reply;
    natsStatus    s;
    double        t0, t1, *grown;
    int           len = (int) strlen(r->payload);

    for ( ;; ) {
        t0 = now_sec();
        if (t0 >= r->until) {
            break;
        }

        reply = NULL;
        s = natsConnection_Request(&reply, r->nc, "bench.echo", r->payload,
                                   len, REQUEST_TIMEOUT);
        t1 = now_sec();
        if (s != NATS_OK || natsMsg_GetDataLength(reply) != len) {
            r->errors++;
            natsMsg_Destroy(reply);
            if (s == NATS_CONNECTION_CLOSED) {
                break;
            }
            continue;
        }
        natsMsg_Destroy(reply);

        if (r->n == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 65536;
            grown = realloc(r->lat, r->cap * sizeof(double));
            if (grown == NULL) {
                r->errors++;
                break;
            }
            r->lat = grown;
        }
        r->lat[r->n++] = t1 - t0;
    }

    return NULL;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static int
bench_reqloop(natsConnection *nc, int conc, double seconds,
    const char *payload, const char *own_url)
{
    requester_t  *rs;
    pthread_t    *th;
    natsMsg      *reply = NULL;
    double       *all, t0, t1;
    size_t        total = 0, k = 0;
    long          errors = 0;
    int           i, started = 0;

    /* the responder is there, and the request machinery is warm */
    if (natsConnection_RequestString(&reply, nc, "bench.echo", payload,
                                     REQUEST_TIMEOUT) != NATS_OK)
    {
        fprintf(stderr, "nats_bench: reqloop: no responder\n");
        return 1;
    }
    natsMsg_Destroy(reply);

    rs = calloc(conc, sizeof(*rs));
    th = calloc(conc, sizeof(*th));
    if (rs == NULL || th == NULL) {
        return 1;
    }

    if (own_url != NULL) {
        for (i = 0; i < conc; i++) {
            if (connect_to(&rs[i].nc, own_url, "bench_requester", 1)
                != NATS_OK)
            {
                return 1;
            }
        }
    }

    t0 = now_sec();
    for (i = 0; i < conc; i++) {
        if (own_url == NULL) {
            rs[i].nc = nc;
        }
        rs[i].payload = payload;
        rs[i].until = t0 + seconds;
        if (pthread_create(&th[i], NULL, requester, &rs[i]) != 0) {
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    t1 = now_sec();

    for (i = 0; i < started; i++) {
        total += rs[i].n;
        errors += rs[i].errors;
    }
    if (own_url != NULL) {
        for (i = 0; i < conc; i++) {
            natsConnection_Destroy(rs[i].nc);
        }
    }
    all = malloc((total ? total : 1) * sizeof(double));
    if (all == NULL) {
        return 1;
    }
    for (i = 0; i < started; i++) {
        memcpy(all + k, rs[i].lat, rs[i].n * sizeof(double));
        k += rs[i].n;
        free(rs[i].lat);
    }
    if (started < conc || total == 0) {
        fprintf(stderr, "nats_bench: reqloop: %d of %d threads, %zu "
                "requests\n", started, conc, total);
        return 1;
    }
    qsort(all, total, sizeof(double), cmp_double);

    printf("%.0f %.3f %.3f %ld %zu\n", total / (t1 - t0),
           all[(size_t) (total * 0.50)] * 1000,
           all[(size_t) (total * 0.99)] * 1000, errors, total);

    free(all);
    free(rs);
    free(th);
    return 0;
}


int
main(int argc, char **argv)
{
    natsConnection  *nc = NULL;
    int              rc = 2;

    if (argc < 3) {
        fprintf(stderr, "usage: nats_bench serve|pub|recv|reqloop|reqloop-conns|jspub|"
                "jsfetch URL "
                "...\n");
        return 2;
    }

    if (strcmp(argv[1], "serve") == 0) {
        rc = serve(argv[2]);
        nats_Close();
        return rc;
    }

    /* a JetStream publish or fetch waits for the server at every step:
     * its requests are written at once (SendAsap), libnats at its best */
    if (connect_to(&nc, argv[2], "nats_bench",
                   strncmp(argv[1], "js", 2) == 0) != NATS_OK)
    {
        return 1;
    }

    if ((strcmp(argv[1], "pub") == 0 || strcmp(argv[1], "recv") == 0)
        && argc == 5
        && (atol(argv[3]) < 0 || atol(argv[3]) > MAX_SIZE
            || atol(argv[4]) <= 0))
    {
        fprintf(stderr, "nats_bench: bad SIZE or COUNT\n");

    } else if (strcmp(argv[1], "pub") == 0 && argc == 5) {
        rc = bench_pub(nc, atol(argv[3]), atol(argv[4]));

    } else if (strcmp(argv[1], "recv") == 0 && argc == 5) {
        rc = bench_recv(nc, atol(argv[3]), atol(argv[4]));

    } else if (strcmp(argv[1], "jspub") == 0 && argc == 5
               && atol(argv[3]) >= 0 && atol(argv[3]) <= MAX_SIZE
               && atol(argv[4]) > 0)
    {
        rc = bench_jspub(nc, atol(argv[3]), atol(argv[4]));

    } else if (strcmp(argv[1], "jsfetch") == 0 && argc == 5
               && atol(argv[3]) > 0 && atoi(argv[4]) > 0)
    {
        rc = bench_jsfetch(nc, atol(argv[3]), atoi(argv[4]));

    } else if ((strcmp(argv[1], "reqloop") == 0
                || strcmp(argv[1], "reqloop-conns") == 0)
               && (argc == 5 || argc == 6)
               && atoi(argv[3]) >= 1 && atoi(argv[3]) <= 1000
               && atof(argv[4]) > 0 && atof(argv[4]) <= 3600)
    {
        rc = bench_reqloop(nc, atoi(argv[3]), atof(argv[4]),
                           argc == 6 ? argv[5] : "ping",
                           strcmp(argv[1], "reqloop") == 0 ? NULL : argv[2]);

    } else {
        fprintf(stderr, "nats_bench: bad arguments\n");
    }

    natsConnection_Destroy(nc);
    nats_Close();
    return rc;
}
