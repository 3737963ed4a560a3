/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * The C ABI as LuaJIT sees it: codes, NULL arguments, error text.
 */

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nats_errc.h"
#include "nats_sub_table.h"
#include "resty_nats.h"
#include "test_util.h"


namespace {


using resty_nats::test::sv;


/* an error buffer with a canary after the part the callee may use */
struct err_buf {
    char         buf[256];
    std::size_t  len;

    explicit err_buf(std::size_t cap = 200) : len(cap)
    {
        std::memset(buf, '#', sizeof(buf));
    }

    std::string text() const { return std::string(buf, len); }
};


struct parser_ptr {
    resty_nats_parser_t  *p = nullptr;

    explicit parser_ptr(std::size_t max_payload = 0)
    {
        EXPECT_EQ(resty_nats_parser_new(&p, max_payload), RESTY_NATS_OK);
    }
    ~parser_ptr() { resty_nats_parser_free(p); }
};


struct subs_ptr {
    resty_nats_subs_t  *t = nullptr;

    subs_ptr() { EXPECT_EQ(resty_nats_subs_new(&t), RESTY_NATS_OK); }
    ~subs_ptr() { resty_nats_subs_free(t); }
};


TEST(Abi, CodesNeverChange)
{
    EXPECT_EQ(RESTY_NATS_DONE, 1);
    EXPECT_EQ(RESTY_NATS_OK, 0);
    EXPECT_EQ(RESTY_NATS_ERROR, -1);
    EXPECT_EQ(RESTY_NATS_AGAIN, -2);
    EXPECT_EQ(RESTY_NATS_DECLINED, -5);
    EXPECT_EQ(RESTY_NATS_EV_NONE, 0);
    EXPECT_EQ(RESTY_NATS_EV_INFO, 1);
    EXPECT_EQ(RESTY_NATS_EV_MSG, 2);
    EXPECT_EQ(RESTY_NATS_EV_HMSG, 3);
    EXPECT_EQ(RESTY_NATS_EV_PING, 4);
    EXPECT_EQ(RESTY_NATS_EV_PONG, 5);
    EXPECT_EQ(RESTY_NATS_EV_OK, 6);
    EXPECT_EQ(RESTY_NATS_EV_ERR, 7);
    /* the event struct is passed by pointer and allocated once */
    EXPECT_LE(sizeof(resty_nats_event_t), 128u);
}


/*
 * The version parts come from CMakeLists.txt's project(), given to this
 * test as to the core: no version number is written anywhere else.
 */
TEST(Abi, VersionIsTheProjectVersion)
{
    int  v = resty_nats_version();

    EXPECT_EQ(v, RESTY_NATS_VERSION_MAJOR * 10000
                 + RESTY_NATS_VERSION_MINOR * 100 + RESTY_NATS_VERSION_PATCH);
    /* decoded as the nginx module and the Lua side do */
    EXPECT_EQ(v / 10000, RESTY_NATS_VERSION_MAJOR);
    EXPECT_EQ(v / 100 % 100, RESTY_NATS_VERSION_MINOR);
    EXPECT_EQ(v % 100, RESTY_NATS_VERSION_PATCH);
    EXPECT_GT(v, 0);
}


TEST(Abi, ParserCodes)
{
    parser_ptr          pp;
    resty_nats_event_t  ev;
    err_buf             e;
    std::string         data = "PING\r\nMSG a 1 2\r\nhi\r\nMSG a 1 5\r\nxy";

    ASSERT_NE(pp.p, nullptr);
    EXPECT_EQ(resty_nats_parser_feed(pp.p, data.data(), data.size(), e.buf,
                                     &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(e.len, 200u);  /* untouched on success */
    EXPECT_EQ(resty_nats_parser_buffered(pp.p), data.size());

    ASSERT_EQ(resty_nats_parser_next(pp.p, &ev, e.buf, &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_PING);

    ASSERT_EQ(resty_nats_parser_next(pp.p, &ev, e.buf, &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_MSG);
    EXPECT_EQ(sv(ev.payload), "hi");
    EXPECT_EQ(ev.sid, 1u);

    ev.type = 99;
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, e.buf, &e.len),
              RESTY_NATS_AGAIN);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_NONE);
    EXPECT_EQ(e.len, 200u);

    EXPECT_EQ(resty_nats_parser_feed(pp.p, "zzzz", 4, e.buf, &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "missing CRLF after payload");
    EXPECT_EQ(e.buf[e.len], '#');

    /* sticky, same message, from feed and next */
    err_buf  e2, e3;
    EXPECT_EQ(resty_nats_parser_feed(pp.p, "PING\r\n", 6, e2.buf, &e2.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e2.text(), "missing CRLF after payload");
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, e3.buf, &e3.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e3.text(), "missing CRLF after payload");
    /* the error dropped what was buffered */
    EXPECT_EQ(resty_nats_parser_buffered(pp.p), 0u);
}


TEST(Abi, ParserMaxPayload)
{
    parser_ptr          pp(10);
    resty_nats_event_t  ev;
    err_buf             e;

    ASSERT_EQ(resty_nats_parser_feed(pp.p, "MSG a 1 11\r\n", 12, e.buf,
                                     &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "payload too large (11 > max_payload 10)");

    /* the same bound, lifted before the message arrives */
    parser_ptr  lifted(10);

    EXPECT_EQ(resty_nats_parser_set_max_payload(lifted.p, 0), RESTY_NATS_OK);
    ASSERT_EQ(resty_nats_parser_feed(lifted.p,
                                     "MSG a 1 11\r\nhello world\r\n", 25,
                                     nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(lifted.p, &ev, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(sv(ev.payload), "hello world");

    /* and lowered again */
    EXPECT_EQ(resty_nats_parser_set_max_payload(lifted.p, 4), RESTY_NATS_OK);
    ASSERT_EQ(resty_nats_parser_feed(lifted.p, "MSG a 1 5\r\n", 11, nullptr,
                                     nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(lifted.p, &ev, nullptr, nullptr),
              RESTY_NATS_ERROR);
}


TEST(Abi, ParserInfo)
{
    parser_ptr         pp;
    resty_nats_info_t  info;
    err_buf            e;
    const char        *json = "{\"server_id\":\"S\",\"max_payload\":2048,"
                              "\"headers\":true,\"connect_urls\":[\"a\","
                              "\"b\"],\"ldm\":true}";

    ASSERT_EQ(resty_nats_parser_info(pp.p, json, std::strlen(json), &info,
                                     e.buf, &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(sv(info.server_id), "S");
    EXPECT_EQ(info.max_payload, 2048);
    EXPECT_EQ(info.headers, 1);
    EXPECT_EQ(info.ldm, 1);
    EXPECT_EQ(sv(info.connect_urls), "a,b");

    EXPECT_EQ(resty_nats_parser_info(pp.p, "[1]", 3, &info, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_NE(e.text().find("not an object"), std::string::npos);

    err_buf  e2;
    EXPECT_EQ(resty_nats_parser_info(pp.p, "{\"a\"", 4, &info, e2.buf,
                                     &e2.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e2.text().rfind("invalid json", 0), 0u);

    err_buf  e3;
    EXPECT_EQ(resty_nats_parser_info(pp.p, nullptr, 0, &info, e3.buf,
                                     &e3.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e3.text().rfind("invalid json", 0), 0u);
}


TEST(Abi, NullArguments)
{
    parser_ptr          pp;
    resty_nats_event_t  ev;
    resty_nats_info_t   info;
    std::size_t         n = 0;
    char                buf[64];

    /* NULL objects */
    EXPECT_EQ(resty_nats_parser_new(nullptr, 0), RESTY_NATS_ERROR);
    resty_nats_parser_free(nullptr);
    EXPECT_EQ(resty_nats_parser_set_max_payload(nullptr, 1),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_parser_buffered(nullptr), 0u);

    err_buf  e;
    EXPECT_EQ(resty_nats_parser_feed(nullptr, "x", 1, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "null pointer");
    EXPECT_EQ(resty_nats_parser_next(nullptr, &ev, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_NONE);
    EXPECT_EQ(resty_nats_parser_next(pp.p, nullptr, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_parser_info(nullptr, "{}", 2, &info, nullptr,
                                     nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_parser_info(pp.p, "{}", 2, nullptr, nullptr,
                                     nullptr),
              RESTY_NATS_ERROR);

    /* NULL data: fine with length 0, refused with a length */
    EXPECT_EQ(resty_nats_parser_feed(pp.p, nullptr, 0, nullptr, nullptr),
              RESTY_NATS_OK);
    err_buf  e2;
    EXPECT_EQ(resty_nats_parser_feed(pp.p, nullptr, 3, e2.buf, &e2.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e2.text(), "null pointer");
    /* the refusal is not a stream error */
    EXPECT_EQ(resty_nats_parser_feed(pp.p, "PING\r\n", 6, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, nullptr, nullptr),
              RESTY_NATS_OK);

    /* a NULL subject with length 0 is an empty one, refused as such */
    err_buf  e3;
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, nullptr, 0,
                                   nullptr, 0, 0, 0, e3.buf, &e3.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e3.text(), "invalid subject: empty");

    /* framers */
    resty_nats_connect_opts_t  o;
    std::memset(&o, 0, sizeof(o));
    EXPECT_EQ(resty_nats_frame_connect(buf, sizeof(buf), nullptr, &o,
                                       nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_connect(buf, sizeof(buf), &n, nullptr,
                                       nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_connect(nullptr, 10, &n, &o, nullptr,
                                       nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), nullptr, "a", 1,
                                   nullptr, 0, 0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, nullptr, 1,
                                   nullptr, 0, 0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "a", 1, nullptr,
                                   2, 0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(nullptr, 5, &n, "a", 1, nullptr, 0, 0,
                                   0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "a", 1, nullptr,
                                   0, 0, 0, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n), "PUB a 0\r\n");
    EXPECT_EQ(resty_nats_frame_hpub(buf, sizeof(buf), &n, "a", 1, nullptr,
                                    0, nullptr, 2, 0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_hpub(buf, sizeof(buf), &n, "a", 1, nullptr,
                                    0, nullptr, 0, 0, 0, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "a", 1, nullptr, 1,
                                   1, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), nullptr, "a", 1,
                                   nullptr, 0, 1, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_unsub(buf, sizeof(buf), nullptr, 1, 0,
                                     nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_unsub(nullptr, 3, &n, 1, 0, nullptr,
                                     nullptr),
              RESTY_NATS_ERROR);

    /* subscription table */
    EXPECT_EQ(resty_nats_subs_new(nullptr), RESTY_NATS_ERROR);
    resty_nats_subs_free(nullptr);
    EXPECT_EQ(resty_nats_subs_set_max(nullptr, 1, 1), RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_subs_deliver(nullptr, 1), RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_subs_remove(nullptr, 1), RESTY_NATS_ERROR);
    /* resty_nats_subs_subscribe: Abi.SubsSubscribeNullArguments */
}


TEST(Abi, ErrlenTruncation)
{
    const std::string  full = "invalid subject: empty token";
    char               buf[64];
    std::size_t        n;

    /* a refused PUB subject */
    auto refuse = [&](char *err, std::size_t *errlen) {
        return resty_nats_frame_pub(buf, sizeof(buf), &n, "a..b", 4, nullptr,
                                    0, 0, 0, err, errlen);
    };

    /* errlen 5: exactly 5 bytes, nothing after them */
    err_buf  e(5);
    EXPECT_EQ(refuse(e.buf, &e.len), RESTY_NATS_ERROR);
    EXPECT_EQ(e.len, 5u);
    EXPECT_EQ(std::string(e.buf, 5), full.substr(0, 5));
    EXPECT_EQ(e.buf[5], '#');

    /* errlen 0: nothing written */
    err_buf  z(0);
    EXPECT_EQ(refuse(z.buf, &z.len), RESTY_NATS_ERROR);
    EXPECT_EQ(z.len, 0u);
    EXPECT_EQ(z.buf[0], '#');

    /* exact fit and room to spare */
    err_buf  x(full.size());
    EXPECT_EQ(refuse(x.buf, &x.len), RESTY_NATS_ERROR);
    EXPECT_EQ(x.text(), full);
    EXPECT_EQ(x.buf[full.size()], '#');

    err_buf  big(250);
    EXPECT_EQ(refuse(big.buf, &big.len), RESTY_NATS_ERROR);
    EXPECT_EQ(big.text(), full);

    /* err NULL: errlen untouched; errlen NULL: err untouched */
    std::size_t  len = 77;
    EXPECT_EQ(refuse(nullptr, &len), RESTY_NATS_ERROR);
    EXPECT_EQ(len, 77u);
    err_buf  untouched;
    EXPECT_EQ(refuse(untouched.buf, nullptr), RESTY_NATS_ERROR);
    EXPECT_EQ(untouched.buf[0], '#');

    /* truncation of a parser error */
    parser_ptr          pp;
    resty_nats_event_t  ev;
    err_buf             pe(5);
    ASSERT_EQ(resty_nats_parser_feed(pp.p, "BOGUS\r\n", 7, nullptr,
                                     nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_parser_next(pp.p, &ev, pe.buf, &pe.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(pe.text(), "unkno");
    EXPECT_EQ(pe.buf[5], '#');
}


/*
 * Subject and queue rules as the framers apply them (the rules
 * themselves: Framer.* in framer_test.cc; matching: SubTable.*).
 */
TEST(Abi, FramersValidate)
{
    char         buf[128];
    std::size_t  n = 0;

    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "foo.bar", 7,
                                   nullptr, 0, 0, 0, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "foo.*", 5,
                                   nullptr, 0, 0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "foo", 3, "r.>", 3,
                                   0, 0, nullptr, nullptr),
              RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "foo.*", 5,
                                   nullptr, 0, 1, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "foo.>", 5,
                                   nullptr, 0, 1, nullptr, nullptr),
              RESTY_NATS_OK);

    err_buf  e;
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, ">.a", 3, nullptr,
                                   0, 1, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "invalid subject: '>' must be the last token");

    err_buf  q;
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "a", 1, "a b", 3, 1,
                                   q.buf, &q.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(q.text(), "invalid queue group: contains whitespace or "
                        "control character");
    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "a", 1, "a.b", 3, 1,
                                   nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n), "SUB a a.b 1\r\n");
}


TEST(Abi, FramerCodes)
{
    char         buf[64];
    std::size_t  n = 0, need;
    err_buf      e;

    EXPECT_EQ(resty_nats_frame_pub(nullptr, 0, &n, "foo", 3, "r", 1, 5, 0,
                                   e.buf, &e.len),
              RESTY_NATS_AGAIN);
    need = n;
    EXPECT_EQ(need, std::strlen("PUB foo r 5\r\n"));
    EXPECT_EQ(e.len, 200u);
    EXPECT_EQ(resty_nats_frame_pub(buf, need, &n, "foo", 3, "r", 1, 5, 0,
                                   e.buf, &e.len),
              RESTY_NATS_OK);
    EXPECT_EQ(n, need);
    EXPECT_EQ(std::string(buf, n), "PUB foo r 5\r\n");

    EXPECT_EQ(resty_nats_frame_pub(buf, sizeof(buf), &n, "foo", 3, nullptr,
                                   0, 2000000, 1048576, e.buf, &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "payload too large (2000000 > max_payload 1048576)");

    resty_nats_header_t  h[2];
    h[0].name.data = "A";
    h[0].name.len = 1;
    h[0].value.data = "1";
    h[0].value.len = 1;
    h[1].name.data = "B";
    h[1].name.len = 1;
    h[1].value.data = nullptr;
    h[1].value.len = 0;
    EXPECT_EQ(resty_nats_frame_hpub(buf, sizeof(buf), &n, "s", 1, nullptr,
                                    0, h, 2, 2, 0, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n),
              "HPUB s 23 25\r\nNATS/1.0\r\nA: 1\r\nB: \r\n\r\n");

    EXPECT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "s.*", 3, "q", 1,
                                   9, nullptr, nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n), "SUB s.* q 9\r\n");
    EXPECT_EQ(resty_nats_frame_sub(buf, 3, &n, "s.*", 3, "q", 1, 9, nullptr,
                                   nullptr),
              RESTY_NATS_AGAIN);
    EXPECT_EQ(n, 13u);

    EXPECT_EQ(resty_nats_frame_unsub(buf, sizeof(buf), &n, 9, 1, nullptr,
                                     nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n), "UNSUB 9 1\r\n");

    resty_nats_connect_opts_t  o;
    std::memset(&o, 0, sizeof(o));
    o.verbose = o.pedantic = o.tls_required = o.echo = o.headers =
        o.no_responders = o.protocol = -1;
    o.lang.data = "lua";
    o.lang.len = 3;
    EXPECT_EQ(resty_nats_frame_connect(buf, sizeof(buf), &n, &o, nullptr,
                                       nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(buf, n), "CONNECT {\"lang\":\"lua\"}\r\n");
}


/* resty_nats_subs_subscribe() with a buffer that fits */
int
subscribe(resty_nats_subs_t *t, std::string *frame, std::string_view subject,
    std::string_view queue, std::uint64_t max, std::uint64_t *sid,
    err_buf *e = nullptr)
{
    char         buf[RESTY_NATS_MAX_CONTROL_LINE + 64];
    std::size_t  n = 0;
    int          rc;

    rc = resty_nats_subs_subscribe(t, buf, sizeof(buf), &n, subject.data(),
                                   subject.size(), queue.data(),
                                   queue.size(), max, sid,
                                   e != nullptr ? e->buf : nullptr,
                                   e != nullptr ? &e->len : nullptr);
    if (rc == RESTY_NATS_OK && frame != nullptr) {
        frame->assign(buf, n);
    }
    return rc;
}


TEST(Abi, SubsCodes)
{
    subs_ptr       sp;
    std::uint64_t  a = 0, b = 0, c = 0;
    err_buf        e;

    ASSERT_EQ(subscribe(sp.t, nullptr, "foo.*", "q", 0, &a, &e),
              RESTY_NATS_OK);
    ASSERT_EQ(subscribe(sp.t, nullptr, "bar", "", 0, &b), RESTY_NATS_OK);
    EXPECT_EQ(a, 1u);
    EXPECT_EQ(b, 2u);
    EXPECT_EQ(e.len, 200u);  /* untouched on success */

    c = 77;
    EXPECT_EQ(subscribe(sp.t, nullptr, "bad subject", "", 0, &c, &e),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(),
              "invalid subject: contains whitespace or control character");
    EXPECT_EQ(c, 77u);

    EXPECT_EQ(resty_nats_subs_set_max(sp.t, a, 2), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_DONE);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, a, 1), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_remove(sp.t, a), RESTY_NATS_DECLINED);

    EXPECT_EQ(resty_nats_subs_deliver(sp.t, b), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, b, 1), RESTY_NATS_DONE);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, b), RESTY_NATS_DECLINED);

    ASSERT_EQ(subscribe(sp.t, nullptr, ">", "", 0, &c), RESTY_NATS_OK);
    EXPECT_EQ(c, 3u);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, c, 0), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_remove(sp.t, c), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_remove(sp.t, c), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, 99, 1), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, 0), RESTY_NATS_DECLINED);
}


TEST(Abi, SubsSubscribeBytes)
{
    subs_ptr       sp;
    std::string    f;
    std::uint64_t  sid = 0;

    ASSERT_EQ(subscribe(sp.t, &f, "foo.*", "", 0, &sid), RESTY_NATS_OK);
    EXPECT_EQ(f, "SUB foo.* 1\r\n");
    EXPECT_EQ(sid, 1u);

    ASSERT_EQ(subscribe(sp.t, &f, "foo.>", "workers", 0, &sid),
              RESTY_NATS_OK);
    EXPECT_EQ(f, "SUB foo.> workers 2\r\n");
    EXPECT_EQ(sid, 2u);

    ASSERT_EQ(subscribe(sp.t, &f, "_INBOX.abc", "", 1, &sid), RESTY_NATS_OK);
    EXPECT_EQ(f, "SUB _INBOX.abc 3\r\nUNSUB 3 1\r\n");
    EXPECT_EQ(sid, 3u);

    ASSERT_EQ(subscribe(sp.t, &f, "jobs.*", "q.1", 18446744073709551615ull,
                        &sid),
              RESTY_NATS_OK);
    EXPECT_EQ(f, "SUB jobs.* q.1 4\r\nUNSUB 4 18446744073709551615\r\n");
    EXPECT_EQ(sid, 4u);

    /* the same bytes as the two framers give */
    char         buf[64];
    std::size_t  n = 0, m = 0;

    ASSERT_EQ(resty_nats_frame_sub(buf, sizeof(buf), &n, "jobs.*", 6, "q.1",
                                   3, 4, nullptr, nullptr),
              RESTY_NATS_OK);
    ASSERT_EQ(resty_nats_frame_unsub(buf + n, sizeof(buf) - n, &m, 4,
                                     18446744073709551615ull, nullptr,
                                     nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(f, std::string(buf, n + m));

    /* NULL queue with length 0: no queue group */
    char         out[64];
    std::size_t  k = 0;

    ASSERT_EQ(resty_nats_subs_subscribe(sp.t, out, sizeof(out), &k, "x", 1,
                                        nullptr, 0, 0, &sid, nullptr,
                                        nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(std::string(out, k), "SUB x 5\r\n");
    EXPECT_EQ(sid, 5u);
}


/*
 * AGAIN: the size of both lines, nothing registered, no sid used; a
 * buffer of exactly that size then gives OK, the same size and the sid
 * the probe would have had.
 */
TEST(Abi, SubsSubscribeSizeProbe)
{
    subs_ptr           sp;
    std::uint64_t      sid = 0;
    const std::string  want = "SUB s.* q 1\r\nUNSUB 1 7\r\n";
    std::size_t        n = 0;

    auto call = [&](char *buf, std::size_t size) {
        return resty_nats_subs_subscribe(sp.t, buf, size, &n, "s.*", 3, "q",
                                         1, 7, &sid, nullptr, nullptr);
    };

    /* probe without a buffer */
    sid = 99;
    EXPECT_EQ(call(nullptr, 0), RESTY_NATS_AGAIN);
    EXPECT_EQ(n, want.size());
    EXPECT_EQ(sid, 99u);                                /* untouched */
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, 1), RESTY_NATS_DECLINED);

    /* every size too small, including those where only SUB fits */
    for (std::size_t size = 1; size < want.size(); size++) {
        std::vector<char>  small(size);

        n = 0;
        EXPECT_EQ(call(small.data(), size), RESTY_NATS_AGAIN) << size;
        EXPECT_EQ(n, want.size()) << size;
        EXPECT_EQ(sid, 99u);
    }
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, 1), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_remove(sp.t, 1), RESTY_NATS_DECLINED);

    /* the exact size: OK, and the sid no probe used */
    std::vector<char>  exact(want.size());

    ASSERT_EQ(call(exact.data(), exact.size()), RESTY_NATS_OK);
    EXPECT_EQ(n, want.size());
    EXPECT_EQ(std::string(exact.data(), n), want);
    EXPECT_EQ(sid, 1u);

    /* a subscription without max: the size of the SUB line alone */
    sid = 0;
    EXPECT_EQ(resty_nats_subs_subscribe(sp.t, nullptr, 0, &n, "t", 1,
                                        nullptr, 0, 0, &sid, nullptr,
                                        nullptr),
              RESTY_NATS_AGAIN);
    EXPECT_EQ(n, std::strlen("SUB t 2\r\n"));
    EXPECT_EQ(sid, 0u);

    /* the sid's digits count: sid 10 needs one byte more than sid 9 */
    std::string    f;
    std::uint64_t  s = 0;

    for (int i = 0; i < 7; i++) {
        ASSERT_EQ(subscribe(sp.t, &f, "t", "", 0, &s), RESTY_NATS_OK);
    }
    EXPECT_EQ(s, 8u);
    EXPECT_EQ(resty_nats_subs_subscribe(sp.t, nullptr, 0, &n, "t", 1,
                                        nullptr, 0, 3, &sid, nullptr,
                                        nullptr),
              RESTY_NATS_AGAIN);
    EXPECT_EQ(n, std::strlen("SUB t 9\r\nUNSUB 9 3\r\n"));
    ASSERT_EQ(subscribe(sp.t, &f, "t", "", 0, &s), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_subscribe(sp.t, nullptr, 0, &n, "t", 1,
                                        nullptr, 0, 3, &sid, nullptr,
                                        nullptr),
              RESTY_NATS_AGAIN);
    EXPECT_EQ(n, std::strlen("SUB t 10\r\nUNSUB 10 3\r\n"));
}


/* refusals register nothing, use no sid, and say why */
TEST(Abi, SubsSubscribeRefusals)
{
    subs_ptr       sp;
    std::uint64_t  sid = 0;
    std::string    f;

    struct {
        const char  *subject;
        const char  *queue;
        const char  *error;
    } cases[] = {
        { "", "", "invalid subject: empty" },
        { "a b", "", "invalid subject: contains whitespace or control "
                     "character" },
        { "a..b", "", "invalid subject: empty token" },
        { ">.a", "", "invalid subject: '>' must be the last token" },
        { "a", "q q", "invalid queue group: contains whitespace or control "
                      "character" },
        { "a", "q\r\n", "invalid queue group: contains whitespace or "
                        "control character" },
    };

    for (const auto &c : cases) {
        err_buf  e;

        sid = 42;
        EXPECT_EQ(subscribe(sp.t, &f, c.subject, c.queue, 5, &sid, &e),
                  RESTY_NATS_ERROR) << c.subject;
        EXPECT_EQ(e.text(), c.error);
        EXPECT_EQ(sid, 42u);
        /* the size probe is refused the same way */
        std::size_t  n = 0;
        EXPECT_EQ(resty_nats_subs_subscribe(sp.t, nullptr, 0, &n, c.subject,
                                            std::strlen(c.subject), c.queue,
                                            std::strlen(c.queue), 5, &sid,
                                            nullptr, nullptr),
                  RESTY_NATS_ERROR);
    }

    /* a SUB line over the control line limit */
    std::string  longsubject(RESTY_NATS_MAX_CONTROL_LINE, 'a');
    err_buf      e;

    EXPECT_EQ(subscribe(sp.t, &f, longsubject, "", 0, &sid, &e),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text().rfind("control line too long", 0), 0u) << e.text();

    /* nothing was registered: sid 1 is unknown, and is the next one */
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, 1), RESTY_NATS_DECLINED);
    ASSERT_EQ(subscribe(sp.t, &f, "ok", "", 0, &sid), RESTY_NATS_OK);
    EXPECT_EQ(sid, 1u);
    EXPECT_EQ(f, "SUB ok 1\r\n");
}


/* max counts deliveries from the SUB, as "UNSUB <sid> <max>" does */
TEST(Abi, SubsSubscribeMax)
{
    subs_ptr       sp;
    std::uint64_t  a = 0, b = 0, c = 0;
    std::string    f;

    ASSERT_EQ(subscribe(sp.t, &f, "a", "", 3, &a), RESTY_NATS_OK);
    ASSERT_EQ(subscribe(sp.t, &f, "_INBOX.x", "", 1, &b), RESTY_NATS_OK);
    ASSERT_EQ(subscribe(sp.t, &f, "c", "", 0, &c), RESTY_NATS_OK);

    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_DONE);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, a), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_subs_remove(sp.t, a), RESTY_NATS_DECLINED);

    /* a request's reply inbox: the first message is the last */
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, b), RESTY_NATS_DONE);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, b), RESTY_NATS_DECLINED);

    /* no max: no end */
    for (int i = 0; i < 100; i++) {
        ASSERT_EQ(resty_nats_subs_deliver(sp.t, c), RESTY_NATS_OK);
    }

    /* set_max() later still counts from the SUB */
    std::uint64_t  d = 0;

    ASSERT_EQ(subscribe(sp.t, &f, "d", "", 5, &d), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, d), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, d), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, d, 2), RESTY_NATS_DONE);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, d), RESTY_NATS_DECLINED);

    std::uint64_t  e = 0;

    ASSERT_EQ(subscribe(sp.t, &f, "e", "", 2, &e), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_set_max(sp.t, e, 0), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, e), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, e), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, e), RESTY_NATS_OK);
}


TEST(Abi, SubsSubscribeNullArguments)
{
    subs_ptr       sp;
    std::uint64_t  sid = 0;
    std::size_t    n = 0;
    char           buf[64];

    struct {
        resty_nats_subs_t  *t;
        char               *buf;
        std::size_t         size;
        std::size_t        *n;
        const char         *subject;
        std::size_t         subject_len;
        const char         *queue;
        std::size_t         queue_len;
        std::uint64_t      *sid;
    } cases[] = {
        { nullptr, buf, sizeof(buf), &n, "a", 1, nullptr, 0, &sid },
        { sp.t, buf, sizeof(buf), nullptr, "a", 1, nullptr, 0, &sid },
        { sp.t, buf, sizeof(buf), &n, "a", 1, nullptr, 0, nullptr },
        { sp.t, nullptr, 5, &n, "a", 1, nullptr, 0, &sid },
        { sp.t, buf, sizeof(buf), &n, nullptr, 1, nullptr, 0, &sid },
        { sp.t, buf, sizeof(buf), &n, "a", 1, nullptr, 1, &sid },
    };

    for (const auto &c : cases) {
        err_buf  e;

        sid = 42;
        EXPECT_EQ(resty_nats_subs_subscribe(c.t, c.buf, c.size, c.n,
                                            c.subject, c.subject_len,
                                            c.queue, c.queue_len, 1, c.sid,
                                            e.buf, &e.len),
                  RESTY_NATS_ERROR);
        EXPECT_EQ(e.text(), "null pointer");
        EXPECT_EQ(sid, 42u);
        /* and without an error buffer */
        EXPECT_EQ(resty_nats_subs_subscribe(c.t, c.buf, c.size, c.n,
                                            c.subject, c.subject_len,
                                            c.queue, c.queue_len, 1, c.sid,
                                            nullptr, nullptr),
                  RESTY_NATS_ERROR);
    }

    /* a NULL subject with length 0 is empty: refused as a subject */
    err_buf  e;
    EXPECT_EQ(resty_nats_subs_subscribe(sp.t, buf, sizeof(buf), &n, nullptr,
                                        0, nullptr, 0, 0, &sid, e.buf,
                                        &e.len),
              RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "invalid subject: empty");

    /* none of it registered anything */
    EXPECT_EQ(resty_nats_subs_deliver(sp.t, 1), RESTY_NATS_DECLINED);
    ASSERT_EQ(resty_nats_subs_subscribe(sp.t, buf, sizeof(buf), &n, "a", 1,
                                        nullptr, 0, 0, &sid, nullptr,
                                        nullptr),
              RESTY_NATS_OK);
    EXPECT_EQ(sid, 1u);
}


/* errlen truncation, as for the framers */
TEST(Abi, SubsSubscribeErrlen)
{
    subs_ptr       sp;
    std::uint64_t  sid = 0;
    std::string    f;
    err_buf        e(7);

    EXPECT_EQ(subscribe(sp.t, &f, "a b", "", 0, &sid, &e), RESTY_NATS_ERROR);
    EXPECT_EQ(e.text(), "invalid");
    EXPECT_EQ(e.buf[7], '#');
}


TEST(Errc, FixedValuesAndMessageTable)
{
    using resty_nats::errc;

    struct {
        errc         code;
        int          value;
        const char  *name;
    } table[] = {
        { errc::ok, 0, "OK" },
        { errc::again, 1, "AGAIN" },
        { errc::no_memory, 2, "NO_MEMORY" },
        { errc::internal, 3, "INTERNAL" },
        { errc::null_pointer, 4, "NULL_POINTER" },
        { errc::unknown_sid, 5, "UNKNOWN_SID" },
        { errc::sids_exhausted, 6, "SIDS_EXHAUSTED" },
        { errc::unknown_op, 10, "UNKNOWN_OP" },
        { errc::line_too_long, 11, "LINE_TOO_LONG" },
        { errc::invalid_arguments, 12, "INVALID_ARGUMENTS" },
        { errc::invalid_size, 13, "INVALID_SIZE" },
        { errc::payload_too_large, 14, "PAYLOAD_TOO_LARGE" },
        { errc::missing_crlf, 15, "MISSING_CRLF" },
        { errc::invalid_header_block, 16, "INVALID_HEADER_BLOCK" },
        { errc::json_syntax, 20, "JSON_SYNTAX" },
        { errc::json_too_deep, 21, "JSON_TOO_DEEP" },
        { errc::json_not_object, 22, "JSON_NOT_OBJECT" },
        { errc::invalid_subject, 30, "INVALID_SUBJECT" },
        { errc::invalid_reply, 31, "INVALID_REPLY" },
        { errc::invalid_queue, 32, "INVALID_QUEUE" },
        { errc::invalid_header_name, 33, "INVALID_HEADER_NAME" },
        { errc::invalid_header_value, 34, "INVALID_HEADER_VALUE" },
    };

    for (const auto &t : table) {
        std::string  msg = resty_nats::errc_message(t.code);
        std::string  text(resty_nats::errc_text(t.code));

        EXPECT_EQ(static_cast<int>(t.code), t.value) << t.name;
        EXPECT_EQ(resty_nats::errc_name(t.code), t.name);
        EXPECT_EQ(msg, std::string(t.name) + ": " + text);
        ASSERT_FALSE(text.empty()) << t.name;
        EXPECT_NE(text.back(), '.') << t.name;
        /* lowercase text; acronyms such as CRLF stay as they are */
        EXPECT_FALSE(text[0] >= 'A' && text[0] <= 'Z') << msg;
        EXPECT_EQ(resty_nats::errc_is_fatal(t.code),
                  t.value >= 10 && t.value < 20) << t.name;
    }

    EXPECT_STREQ(resty_nats::errc_message(static_cast<errc>(999)),
                 "UNKNOWN: unknown error");

    /* detail messages are cut to the fixed buffer, never overflow it */
    resty_nats::error_detail  d;
    std::string               longtext(1000, 'x');
    d.set(errc::internal, longtext);
    EXPECT_EQ(d.text().size(), resty_nats::error_detail::capacity);
    d.format(errc::internal, "%s", longtext.c_str());
    EXPECT_EQ(d.text().size(), resty_nats::error_detail::capacity - 1);
    d.set(errc::unknown_op);
    EXPECT_EQ(d.text(), "unknown protocol operation");
    EXPECT_EQ(d.code(), errc::unknown_op);
    d.clear();
    EXPECT_EQ(d.code(), errc::ok);
    EXPECT_TRUE(d.text().empty());
}


/*
 * Inputs that end right before an unmapped page: any read past the
 * given length faults, with or without ASan.
 */
class guarded {
public:
    guarded()
    {
        page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        mem_ = mmap(nullptr, 2 * page_, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem_ == MAP_FAILED) {
            mem_ = nullptr;
            return;
        }
        if (mprotect(static_cast<char *>(mem_) + page_, page_, PROT_NONE)
            != 0)
        {
            munmap(mem_, 2 * page_);
            mem_ = nullptr;
        }
    }

    ~guarded()
    {
        if (mem_ != nullptr) {
            munmap(mem_, 2 * page_);
        }
    }

    bool ok() const { return mem_ != nullptr; }

    /* a copy of s whose last byte is the last readable one */
    const char *place(const std::string &s)
    {
        char  *end = static_cast<char *>(mem_) + page_;

        std::memcpy(end - s.size(), s.data(), s.size());
        return end - s.size();
    }

private:
    void         *mem_ = nullptr;
    std::size_t   page_ = 0;
};


TEST(Abi, GuardPage)
{
    guarded   g;
    subs_ptr  sp;

    ASSERT_TRUE(g.ok());

    const char *const subjects[] = {
        "foo", "foo.", "foo.bar.>", "foo.*", "a..b", ">", "*", "x y",
    };
    for (const char *s : subjects) {
        std::string  str(s);
        const char  *p = g.place(str);
        std::size_t  n = 0;
        char         buf[64];

        std::uint64_t  sid;

        resty_nats::subject_matches(std::string_view(p, str.size()),
                                    "foo.bar");
        resty_nats::subject_matches("foo.>",
                                    std::string_view(p, str.size()));
        resty_nats_frame_pub(buf, sizeof(buf), &n, p, str.size(), p,
                             str.size(), 1, 0, nullptr, nullptr);
        resty_nats_frame_sub(buf, sizeof(buf), &n, p, str.size(), p,
                             str.size(), 1, nullptr, nullptr);
        resty_nats_subs_subscribe(sp.t, buf, sizeof(buf), &n, p, str.size(),
                                  p, str.size(), 1, &sid, nullptr, nullptr);
        resty_nats_subs_subscribe(sp.t, buf, sizeof(buf), &n, p, str.size(),
                                  nullptr, 0, 0, &sid, nullptr, nullptr);
    }

    /* protocol bytes cut at every length */
    std::string  wire = "HMSG a.b 1 r 24 26\r\nNATS/1.0 503 x\r\nA: b\r\n\r\n"
                        "hi\r\nINFO {\"a\":[1,\"\\u00e9\"]}\r\n-ERR 'x'\r\n";
    for (std::size_t len = 0; len <= wire.size(); len++) {
        parser_ptr          pp;
        resty_nats_event_t  ev;
        const char         *p = g.place(wire.substr(0, len));

        resty_nats_parser_feed(pp.p, p, len, nullptr, nullptr);
        while (resty_nats_parser_next(pp.p, &ev, nullptr, nullptr)
               == RESTY_NATS_OK)
        {
        }
    }

    /* json cut at every length */
    std::string  json = "{\"server_id\":\"\\ud83d\\ude00\",\"proto\":1,"
                        "\"connect_urls\":[\"a\",\"b\"],\"x\":-1.5e3}";
    for (std::size_t len = 0; len <= json.size(); len++) {
        parser_ptr         pp;
        resty_nats_info_t  info;
        const char        *p = g.place(json.substr(0, len));
        int                rc;

        rc = resty_nats_parser_info(pp.p, p, len, &info, nullptr, nullptr);
        EXPECT_EQ(rc, len == json.size() ? RESTY_NATS_OK : RESTY_NATS_ERROR)
            << len;
    }
}


}  // namespace

namespace {

bool token_chars_ok(const std::string &s) {
    for (char c : s) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

std::string token(size_t len) {
    std::string s(len, '\0');
    EXPECT_EQ(resty_nats_random_token(&s[0], len), RESTY_NATS_OK);
    return s;
}

}  // namespace

TEST(Random, TokensAreAlphanumericAndDistinct) {
    EXPECT_EQ(resty_nats_random_token(nullptr, 0), RESTY_NATS_OK);
    EXPECT_EQ(resty_nats_random_token(nullptr, 1), RESTY_NATS_ERROR);

    // many more than one buffered page of draws
    std::set<std::string> seen;
    for (int i = 0; i < 2000; i++) {
        std::string t = token(12);
        ASSERT_TRUE(token_chars_ok(t)) << t;
        seen.insert(t);
    }
    EXPECT_EQ(seen.size(), 2000u);

    // a token longer than the buffer
    std::string big = token(20000);
    EXPECT_TRUE(token_chars_ok(big));
}

TEST(Random, UnbiasedOverTheAlphabet) {
    // 62 symbols x 10,000 expected each; 5 standard deviations (~98 each)
    std::string s = token(620000);
    std::map<char, int> count;
    for (char c : s) count[c]++;
    EXPECT_EQ(count.size(), 62u);
    for (const auto &kv : count) {
        EXPECT_GT(kv.second, 10000 - 500) << kv.first;
        EXPECT_LT(kv.second, 10000 + 500) << kv.first;
    }
}

TEST(Random, ForkedChildDoesNotRepeatTheParent) {
    // the parent's buffer is filled before the fork; were it copied into
    // the child, both would hand out the same next tokens
    std::string first = token(22);
    ASSERT_TRUE(token_chars_ok(first));

    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        std::string t;
        for (int i = 0; i < 8; i++) {
            char buf[22];
            if (resty_nats_random_token(buf, sizeof(buf)) != RESTY_NATS_OK) {
                _exit(2);
            }
            t.append(buf, sizeof(buf));
        }
        ssize_t w = write(fds[1], t.data(), t.size());
        _exit(w == static_cast<ssize_t>(t.size()) ? 0 : 3);
    }
    close(fds[1]);
    std::string parent;
    for (int i = 0; i < 8; i++) parent += token(22);

    std::string child;
    char buf[256];
    ssize_t r;
    while ((r = read(fds[0], buf, sizeof(buf))) > 0) child.append(buf, r);
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);

    ASSERT_EQ(child.size(), parent.size());
    EXPECT_TRUE(token_chars_ok(child));
    // 8 x 22 characters alike by chance: 62^-176
    EXPECT_NE(child, parent);
    for (size_t i = 0; i < 8; i++) {
        EXPECT_NE(child.substr(i * 22, 22), parent.substr(i * 22, 22)) << i;
    }
}


namespace {

std::string str_of(const resty_nats_str_t &s) {
    return std::string(s.data == nullptr ? "" : s.data, s.len);
}

}  // namespace

TEST(JsMeta, NineTokens) {
    std::string s = "$JS.ACK.ORDERS.worker.2.1234.17.1796623812598917202.5";
    resty_nats_js_meta_t m;
    ASSERT_EQ(resty_nats_js_meta(s.data(), s.size(), &m), RESTY_NATS_OK);
    EXPECT_EQ(str_of(m.stream), "ORDERS");
    EXPECT_EQ(str_of(m.consumer), "worker");
    EXPECT_EQ(m.domain.len, 0u);
    EXPECT_EQ(m.delivered, 2u);
    EXPECT_EQ(m.stream_seq, 1234u);
    EXPECT_EQ(m.consumer_seq, 17u);
    EXPECT_EQ(m.timestamp, 1796623812598917202ull);
    EXPECT_EQ(m.pending, 5u);
    // the strings point into the input
    EXPECT_EQ(m.stream.data, s.data() + 8);
}

TEST(JsMeta, DomainForm) {
    resty_nats_js_meta_t m;
    std::string s = "$JS.ACK.hub.ACCHASH.S.c.1.2.3.4.5.tok";
    ASSERT_EQ(resty_nats_js_meta(s.data(), s.size(), &m), RESTY_NATS_OK);
    EXPECT_EQ(str_of(m.domain), "hub");
    EXPECT_EQ(str_of(m.stream), "S");
    EXPECT_EQ(str_of(m.consumer), "c");
    EXPECT_EQ(m.stream_seq, 2u);
    EXPECT_EQ(m.pending, 5u);
    s = "$JS.ACK._.ACCHASH.S.c.1.2.3.4.5";
    ASSERT_EQ(resty_nats_js_meta(s.data(), s.size(), &m), RESTY_NATS_OK);
    EXPECT_EQ(m.domain.len, 0u);               // "_": no domain
    EXPECT_EQ(str_of(m.stream), "S");
}

TEST(JsMeta, RefusesWhatIsNotOne) {
    resty_nats_js_meta_t m;
    const char *bad[] = {
        "", "$JS.ACK.", "$JS.ACK", "_INBOX.abc.1", "$JS.ACK.S.c.1.2.3.4",
        "$JS.ACK.S.c.1.2.3.4.5.6",                 // 10 tokens
        "$JS.ACK.S..1.2.3.4.5",                    // an empty token
        "$JS.ACK.S.c.1.x2.3.4.5",                  // not a number
        "$JS.ACK.S.c.1.-2.3.4.5",
        "$JS.ACK.S.c.1.18446744073709551616.3.4.5",  // 2^64
        "$JS.ACK.S.c.1.2.3.4.5.",                  // a trailing dot
    };
    for (const char *s : bad) {
        EXPECT_EQ(resty_nats_js_meta(s, strlen(s), &m), RESTY_NATS_DECLINED)
            << s;
    }
    std::string max = "$JS.ACK.S.c.1.18446744073709551615.3.4.5";
    ASSERT_EQ(resty_nats_js_meta(max.data(), max.size(), &m), RESTY_NATS_OK);
    EXPECT_EQ(m.stream_seq, UINT64_MAX);
    // NULL: refused, never read
    EXPECT_EQ(resty_nats_js_meta(nullptr, 0, &m), RESTY_NATS_DECLINED);
    EXPECT_EQ(resty_nats_js_meta(nullptr, 5, &m), RESTY_NATS_ERROR);
    EXPECT_EQ(resty_nats_js_meta(max.data(), max.size(), nullptr),
              RESTY_NATS_ERROR);
    // a length shorter than the string: only those bytes count
    EXPECT_EQ(resty_nats_js_meta(max.data(), max.size() - 2, &m),
              RESTY_NATS_DECLINED);
}
