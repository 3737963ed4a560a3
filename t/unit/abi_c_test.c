/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * abi_c_test.c: resty_nats.h compiled as C99 (-pedantic -Werror) and
 * linked against the shared library, so every declared function must be
 * exported. Exits non-zero on the first failed check.
 */

#include <stdio.h>
#include <string.h>

#include "resty_nats.h"


static int  failures;


#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            failures++;                                                     \
        }                                                                   \
    } while (0)


typedef void (*any_fn)(void);


/* taking every address makes the link fail on a missing export */
static const any_fn  all_functions[] = {
    (any_fn) resty_nats_version,
    (any_fn) resty_nats_parser_new,
    (any_fn) resty_nats_parser_free,
    (any_fn) resty_nats_parser_set_max_payload,
    (any_fn) resty_nats_parser_feed,
    (any_fn) resty_nats_parser_next,
    (any_fn) resty_nats_parser_buffered,
    (any_fn) resty_nats_parser_info,
    (any_fn) resty_nats_frame_connect,
    (any_fn) resty_nats_frame_pub,
    (any_fn) resty_nats_frame_hpub,
    (any_fn) resty_nats_frame_sub,
    (any_fn) resty_nats_frame_unsub,
    (any_fn) resty_nats_subs_new,
    (any_fn) resty_nats_subs_free,
    (any_fn) resty_nats_subs_subscribe,
    (any_fn) resty_nats_subs_set_max,
    (any_fn) resty_nats_subs_deliver,
    (any_fn) resty_nats_subs_remove,
    (any_fn) resty_nats_random_token,
    (any_fn) resty_nats_js_meta
};


static int
test_parser(void)
{
    resty_nats_parser_t  *p = NULL;
    resty_nats_event_t    ev;
    char                  err[64];
    size_t                errlen;
    const char           *wire = "MSG foo.bar 7 _INBOX.1 5\r\nhello\r\n"
                                 "PING\r\nBOGUS\r\n";

    CHECK(resty_nats_parser_new(&p, 0) == RESTY_NATS_OK);
    if (p == NULL) {
        return 1;
    }

    errlen = sizeof(err);
    CHECK(resty_nats_parser_feed(p, wire, strlen(wire), err, &errlen)
          == RESTY_NATS_OK);

    CHECK(resty_nats_parser_next(p, &ev, err, &errlen) == RESTY_NATS_OK);
    CHECK(ev.type == RESTY_NATS_EV_MSG);
    CHECK(ev.sid == 7);
    CHECK(ev.subject.len == 7 && memcmp(ev.subject.data, "foo.bar", 7) == 0);
    CHECK(ev.reply.len == 8 && memcmp(ev.reply.data, "_INBOX.1", 8) == 0);
    CHECK(ev.payload.len == 5 && memcmp(ev.payload.data, "hello", 5) == 0);

    CHECK(resty_nats_parser_next(p, &ev, err, &errlen) == RESTY_NATS_OK);
    CHECK(ev.type == RESTY_NATS_EV_PING);

    errlen = 7;
    CHECK(resty_nats_parser_next(p, &ev, err, &errlen) == RESTY_NATS_ERROR);
    CHECK(errlen == 7 && memcmp(err, "unknown", 7) == 0);
    CHECK(ev.type == RESTY_NATS_EV_NONE);

    CHECK(resty_nats_parser_buffered(p) == 0);
    resty_nats_parser_free(p);
    return 0;
}


static void
test_framers(void)
{
    resty_nats_connect_opts_t  opts;
    resty_nats_header_t        h;
    char                       buf[128];
    char                       err[128];
    size_t                     n, errlen;

    CHECK(resty_nats_frame_pub(NULL, 0, &n, "a.b", 3, NULL, 0, 2, 0, NULL,
                               NULL)
          == RESTY_NATS_AGAIN);
    CHECK(n == 11);
    CHECK(resty_nats_frame_pub(buf, n, &n, "a.b", 3, NULL, 0, 2, 0, NULL,
                               NULL)
          == RESTY_NATS_OK);
    CHECK(n == 11 && memcmp(buf, "PUB a.b 2\r\n", 11) == 0);

    errlen = sizeof(err);
    CHECK(resty_nats_frame_pub(buf, sizeof(buf), &n, "a b", 3, NULL, 0, 2,
                               0, err, &errlen)
          == RESTY_NATS_ERROR);
    CHECK(errlen == strlen("invalid subject: contains whitespace or "
                           "control character"));

    h.name.data = "Bar";
    h.name.len = 3;
    h.value.data = "Baz";
    h.value.len = 3;
    CHECK(resty_nats_frame_hpub(buf, sizeof(buf), &n, "FOO", 3, NULL, 0, &h,
                                1, 11, 0, NULL, NULL)
          == RESTY_NATS_OK);
    CHECK(n == 38
          && memcmp(buf, "HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\n", 38)
             == 0);

    memset(&opts, 0, sizeof(opts));
    opts.verbose = 0;
    opts.pedantic = 0;
    opts.tls_required = -1;
    opts.echo = -1;
    opts.headers = 1;
    opts.no_responders = -1;
    opts.protocol = 1;
    CHECK(resty_nats_frame_connect(buf, sizeof(buf), &n, &opts, NULL, NULL)
          == RESTY_NATS_OK);
    CHECK(n == strlen("CONNECT {\"verbose\":false,\"pedantic\":false,"
                      "\"protocol\":1,\"headers\":true}\r\n"));

    CHECK(resty_nats_frame_unsub(buf, sizeof(buf), &n, 3, 0, NULL, NULL)
          == RESTY_NATS_OK);
    CHECK(n == 9 && memcmp(buf, "UNSUB 3\r\n", 9) == 0);
}


static void
test_subs(void)
{
    resty_nats_subs_t  *t = NULL;
    char                buf[64];
    char                err[64];
    size_t              n, errlen;
    uint64_t            sid = 0;

    CHECK(resty_nats_subs_new(&t) == RESTY_NATS_OK);
    if (t == NULL) {
        return;
    }

    /* size probe: nothing registered, the retry gets sid 1 */
    CHECK(resty_nats_subs_subscribe(t, NULL, 0, &n, "foo.>", 5, NULL, 0, 1,
                                    &sid, NULL, NULL)
          == RESTY_NATS_AGAIN);
    CHECK(n == 24 && sid == 0);
    CHECK(resty_nats_subs_deliver(t, 1) == RESTY_NATS_DECLINED);

    CHECK(resty_nats_subs_subscribe(t, buf, n, &n, "foo.>", 5, NULL, 0, 1,
                                    &sid, NULL, NULL)
          == RESTY_NATS_OK);
    CHECK(sid == 1);
    CHECK(n == 24 && memcmp(buf, "SUB foo.> 1\r\nUNSUB 1 1\r\n", 24) == 0);
    CHECK(resty_nats_subs_deliver(t, sid) == RESTY_NATS_DONE);
    CHECK(resty_nats_subs_deliver(t, sid) == RESTY_NATS_DECLINED);

    CHECK(resty_nats_subs_subscribe(t, buf, sizeof(buf), &n, "a", 1, "q", 1,
                                    0, &sid, NULL, NULL)
          == RESTY_NATS_OK);
    CHECK(sid == 2);
    CHECK(n == 11 && memcmp(buf, "SUB a q 2\r\n", 11) == 0);
    CHECK(resty_nats_subs_set_max(t, sid, 1) == RESTY_NATS_OK);
    CHECK(resty_nats_subs_deliver(t, sid) == RESTY_NATS_DONE);

    errlen = sizeof(err);
    CHECK(resty_nats_subs_subscribe(t, buf, sizeof(buf), &n, "a", 1, "q q",
                                    3, 0, &sid, err, &errlen)
          == RESTY_NATS_ERROR);
    CHECK(errlen > 0 && memcmp(err, "invalid queue group", 19) == 0);
    CHECK(resty_nats_subs_subscribe(NULL, buf, sizeof(buf), &n, "a", 1,
                                    NULL, 0, 0, &sid, NULL, NULL)
          == RESTY_NATS_ERROR);
    CHECK(resty_nats_subs_remove(t, 3) == RESTY_NATS_DECLINED);

    resty_nats_subs_free(t);
}


int
main(void)
{
    size_t  i;

    for (i = 0; i < sizeof(all_functions) / sizeof(all_functions[0]); i++) {
        CHECK(all_functions[i] != NULL);
    }

    /* the parts of CMakeLists.txt's project() VERSION, given to this test */
    CHECK(resty_nats_version()
          == RESTY_NATS_VERSION_MAJOR * 10000 + RESTY_NATS_VERSION_MINOR * 100
             + RESTY_NATS_VERSION_PATCH);
    CHECK(sizeof(resty_nats_event_t) <= 128);

    test_parser();
    test_framers();
    test_subs();

    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }

    printf("abi_c_test: ok\n");
    return 0;
}
