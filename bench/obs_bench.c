/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * obs_bench: the libnats side of bench/objstore.sh: an object of a
 * JetStream object store (ADR-20 layout) written and read the way the
 * official clients do, with the same digest work as resty.nats (SHA-256
 * of every byte, OpenSSL), as the native figures the HTTP front of
 * examples/lua/files.lua is compared with. libnats 3.4 has no object
 * store API: the layout is written here by hand. One figure on stdout;
 * errors on stderr with exit status 1.
 *
 *   obs_bench put URL BUCKET NAME FILE CHUNK
 *       reads FILE CHUNK bytes at a time and publishes each piece to
 *       $O.BUCKET.C.<nuid> with js_PublishMsgAsync (libnats's default
 *       window of unacknowledged publishes), then the meta (JSON, header
 *       Nats-Rollup: sub) on $O.BUCKET.M.<base64url(NAME)>, and waits for
 *       every acknowledgement; prints "<bytes/s>".
 *   obs_bench get URL BUCKET NAME
 *       reads the meta (js_GetLastMsg), then the chunks through an
 *       ordered consumer (jsSubOptions.Ordered), hashing them, until the
 *       meta's size arrived; checks the digest; prints "<bytes/s>" from
 *       the subscribe to the last byte.
 */

#include <nats/nats.h>
#include <openssl/evp.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


#define WAIT_SEC   60


static double
now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* base64url with padding, as the official clients write names/digests */
static void
b64url(const unsigned char *in, size_t len, char *out)
{
    size_t  i, n;

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);
    for (i = 0; i < n; i++) {
        if (out[i] == '+') {
            out[i] = '-';
        } else if (out[i] == '/') {
            out[i] = '_';
        }
    }
    out[n] = '\0';
}


static void
nuid22(char *out)
{
    static const char  digits[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    int                 i;

    srandom((unsigned) (time(NULL) ^ (long) out));
    for (i = 0; i < 22; i++) {
        out[i] = digits[random() % 62];
    }
    out[22] = '\0';
}


static int
bench_put(natsConnection *nc, const char *bucket, const char *name,
    const char *file, long chunk)
{
    jsCtx          *js = NULL;
    jsErrCode       jerr = 0;
    natsMsg        *m = NULL;
    jsPubAck       *pa = NULL;
    EVP_MD_CTX     *h;
    FILE           *f;
    unsigned char   sha[32];
    char            nuid[23], subj[2048], ename[1024], digest[64];
    char           *buf, *meta;
    long            n, chunks = 0;
    long long       size = 0;
    double          t0, t1;
    natsStatus      s;

    f = fopen(file, "rb");
    buf = malloc(chunk);
    meta = malloc(4096);
    h = EVP_MD_CTX_new();
    if (f == NULL || buf == NULL || meta == NULL || h == NULL
        || strlen(name) > 700 || strlen(bucket) > 200)
    {
        fprintf(stderr, "obs_bench: put: cannot start\n");
        return 1;
    }
    EVP_DigestInit_ex(h, EVP_sha256(), NULL);
    nuid22(nuid);
    snprintf(subj, sizeof(subj), "$O.%s.C.%s", bucket, nuid);

    s = natsConnection_JetStream(&js, nc, NULL);
    t0 = now_sec();
    while (s == NATS_OK && (n = (long) fread(buf, 1, chunk, f)) > 0) {
        EVP_DigestUpdate(h, buf, n);
        s = natsMsg_Create(&m, subj, NULL, buf, (int) n);
        if (s == NATS_OK) {
            s = js_PublishMsgAsync(js, &m, NULL);
        }
        natsMsg_Destroy(m);     /* NULL when the library took it */
        m = NULL;
        size += n;
        chunks++;
    }
    if (s == NATS_OK) {
        s = js_PublishAsyncComplete(js, NULL);
    }
    EVP_DigestFinal_ex(h, sha, NULL);
    b64url(sha, 32, digest);
    b64url((const unsigned char *) name, strlen(name), ename);
    snprintf(meta, 4096, "{\"name\":\"%s\",\"bucket\":\"%s\",\"nuid\":\"%s\","
             "\"size\":%lld,\"chunks\":%ld,\"digest\":\"SHA-256=%s\","
             "\"options\":{\"max_chunk_size\":%ld}}", name, bucket, nuid,
             size, chunks, digest, chunk);
    snprintf(subj, sizeof(subj), "$O.%s.M.%s", bucket, ename);
    if (s == NATS_OK) {
        s = natsMsg_Create(&m, subj, NULL, meta, (int) strlen(meta));
    }
    if (s == NATS_OK) {
        s = natsMsgHeader_Set(m, "Nats-Rollup", "sub");
    }
    if (s == NATS_OK) {
        s = js_PublishMsg(&pa, js, m, NULL, &jerr);
    }
    t1 = now_sec();
    natsMsg_Destroy(m);
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    EVP_MD_CTX_free(h);
    fclose(f);
    free(buf);
    free(meta);
    if (s != NATS_OK) {
        fprintf(stderr, "obs_bench: put: %s (%d)\n", natsStatus_GetText(s),
                (int) jerr);
        return 1;
    }
    printf("%.0f\n", size / (t1 - t0));
    return 0;
}


typedef struct {
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    EVP_MD_CTX      *h;
    long long        got;
    long long        size;
    int              done;
} reader_t;


static void
on_chunk(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    reader_t  *r = c;
    int        n = natsMsg_GetDataLength(msg);

    (void) nc;
    (void) sub;
    pthread_mutex_lock(&r->lock);
    if (!r->done) {
        EVP_DigestUpdate(r->h, natsMsg_GetData(msg), n);
        r->got += n;
        if (r->got >= r->size) {
            r->done = 1;
            pthread_cond_signal(&r->cond);
        }
    }
    pthread_mutex_unlock(&r->lock);
    natsMsg_Destroy(msg);
}


/* the string value of "key":"..." in json, into out */
static int
json_str(const char *json, const char *key, char *out, size_t len)
{
    char         pat[64];
    const char  *p, *e;

    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    p = strstr(json, pat);
    if (p == NULL) {
        return -1;
    }
    p += strlen(pat);
    e = strchr(p, '"');
    if (e == NULL || (size_t) (e - p) >= len) {
        return -1;
    }
    memcpy(out, p, e - p);
    out[e - p] = '\0';
    return 0;
}


static int
bench_get(natsConnection *nc, const char *bucket, const char *name)
{
    jsCtx              *js = NULL;
    jsErrCode           jerr = 0;
    jsSubOptions        so;
    natsSubscription   *sub = NULL;
    natsMsg            *meta = NULL;
    reader_t            r;
    struct timespec     until;
    unsigned char       sha[32];
    char                subj[2048], ename[1024], nuid[64], digest[64],
                        mine[64], stream[256], *json = NULL;
    const char         *sz;
    double              t0, t1;
    natsStatus          s;

    memset(&r, 0, sizeof(r));
    pthread_mutex_init(&r.lock, NULL);
    pthread_cond_init(&r.cond, NULL);
    r.h = EVP_MD_CTX_new();
    EVP_DigestInit_ex(r.h, EVP_sha256(), NULL);

    if (strlen(name) > 700 || strlen(bucket) > 200) {
        fprintf(stderr, "obs_bench: get: name or bucket too long\n");
        return 1;
    }
    b64url((const unsigned char *) name, strlen(name), ename);
    snprintf(subj, sizeof(subj), "$O.%s.M.%s", bucket, ename);
    snprintf(stream, sizeof(stream), "OBJ_%s", bucket);
    s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) {
        s = js_GetLastMsg(&meta, js, stream, subj, NULL, &jerr);
    }
    if (s == NATS_OK) {
        json = strndup(natsMsg_GetData(meta), natsMsg_GetDataLength(meta));
        sz = json ? strstr(json, "\"size\":") : NULL;
        if (sz == NULL || json_str(json, "nuid", nuid, sizeof(nuid)) != 0
            || json_str(json, "digest", digest, sizeof(digest)) != 0)
        {
            fprintf(stderr, "obs_bench: get: bad meta\n");
            return 1;
        }
        r.size = atoll(sz + 7);
    }
    snprintf(subj, sizeof(subj), "$O.%s.C.%s", bucket, nuid);
    t0 = now_sec();
    if (s == NATS_OK) {
        jsSubOptions_Init(&so);
        so.Ordered = true;
        s = js_Subscribe(&sub, js, subj, on_chunk, &r, NULL, &so, &jerr);
    }
    if (s == NATS_OK) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WAIT_SEC;
        pthread_mutex_lock(&r.lock);
        while (!r.done && s == NATS_OK) {
            if (pthread_cond_timedwait(&r.cond, &r.lock, &until) != 0) {
                s = NATS_TIMEOUT;
            }
        }
        pthread_mutex_unlock(&r.lock);
    }
    t1 = now_sec();
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsMsg_Destroy(meta);
    jsCtx_Destroy(js);
    if (s != NATS_OK) {
        fprintf(stderr, "obs_bench: get: %s (%d), %lld of %lld bytes\n",
                natsStatus_GetText(s), (int) jerr, r.got, r.size);
        return 1;
    }
    EVP_DigestFinal_ex(r.h, sha, NULL);
    EVP_MD_CTX_free(r.h);
    b64url(sha, 32, mine);
    if (r.got != r.size || strncmp(digest, "SHA-256=", 8) != 0
        || strcmp(digest + 8, mine) != 0)
    {
        fprintf(stderr, "obs_bench: get: %lld of %lld bytes, digest %s, "
                "computed %s\n", r.got, r.size, digest, mine);
        return 1;
    }
    free(json);
    printf("%.0f\n", r.size / (t1 - t0));
    return 0;
}


int
main(int argc, char **argv)
{
    natsConnection  *nc = NULL;
    natsOptions     *opts = NULL;
    int              rc = 2;

    if (argc < 5) {
        fprintf(stderr, "usage: obs_bench put URL BUCKET NAME FILE CHUNK | "
                "get URL BUCKET NAME\n");
        return 2;
    }
    if (natsOptions_Create(&opts) != NATS_OK
        || natsOptions_SetURL(opts, argv[2]) != NATS_OK
        || natsConnection_Connect(&nc, opts) != NATS_OK)
    {
        fprintf(stderr, "obs_bench: cannot connect to %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "put") == 0 && argc == 7 && atol(argv[6]) > 0) {
        rc = bench_put(nc, argv[3], argv[4], argv[5], atol(argv[6]));
    } else if (strcmp(argv[1], "get") == 0 && argc == 5) {
        rc = bench_get(nc, argv[3], argv[4]);
    } else {
        fprintf(stderr, "obs_bench: bad arguments\n");
    }
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    nats_Close();
    return rc;
}
