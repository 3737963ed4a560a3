/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * regression_test.cc: bugs found by the fuzz targets in fuzz/. Each test
 * names the target that found it; the reproducers are in
 * fuzz/corpus/<target>/regress-*.
 */

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "nats_parser.h"
#include "test_util.h"


namespace resty_nats {
namespace {


using test::dump_event;
using test::quote;
using test::sv;


struct outcome {
    std::vector<std::string>  events;
    errc                      rc = errc::ok;
    std::string               error;
};


/* data fed in pieces of at most chunk bytes (0: one piece) */
outcome
parse(std::string_view data, std::size_t chunk = 0)
{
    parser               p;
    outcome              out;
    resty_nats_event_t   ev;
    std::size_t          off = 0;

    if (chunk == 0) {
        chunk = data.size() > 0 ? data.size() : 1;
    }

    while (off < data.size() && out.rc == errc::ok) {
        std::size_t  n = std::min(chunk, data.size() - off);

        out.rc = p.feed(data.data() + off, n);
        off += n;

        while (out.rc == errc::ok) {
            errc  rc = p.next(ev);

            if (rc == errc::again) {
                break;
            }
            if (rc != errc::ok) {
                out.rc = rc;
                break;
            }
            out.events.push_back(dump_event(ev));
        }
    }

    out.error = std::string(p.error_text());
    return out;
}


std::string
hmsg_with_block(const std::string &block)
{
    return "HMSG s 1 " + std::to_string(block.size()) + " "
           + std::to_string(block.size()) + "\r\n" + block + "\r\n";
}


/*
 * A refused header block: the HMSG is still delivered (status -1, no
 * headers, the reason as description) and the next operation parses, in
 * one feed and byte by byte alike.
 */
void
expect_headers_refused(const std::string &block, const char *reason)
{
    std::string  data = hmsg_with_block(block) + "PING\r\n";

    for (std::size_t chunk : { 0u, 1u }) {
        outcome  r = parse(data, chunk);

        ASSERT_EQ(r.rc, errc::ok) << quote(block) << ": " << r.error;
        ASSERT_EQ(r.events.size(), 2u) << quote(block);
        EXPECT_EQ(r.events[0],
                  "HMSG subject=\"s\" sid=\"1\" reply=\"\" status=-1 "
                  "description=\"invalid header block: " + std::string(reason)
                  + "\" headers={} payload=\"\"") << quote(block);
        EXPECT_EQ(r.events[1], "PING");
    }
}


/*
 * fuzz_headers: header names took any byte but a blank, and values and
 * the status description kept a bare CR or LF, so an application copying
 * NATS headers into HTTP headers could be made to split them.
 */
TEST(Regression, HeaderNameBytesOutside33To126)
{
    const char *const names[] = {
        "Emp\x93y", "A\x7f", "A\x01", "A\nB", "A\rB", "\xff",
    };

    for (const char *name : names) {
        std::string  block = std::string("NATS/1.0\r\n") + name
                             + ": v\r\n\r\n";

        expect_headers_refused(block, "bad header name");
    }
}


TEST(Regression, HeaderValueWithBareCrOrLf)
{
    const char *const values[] = {
        "a\nb", "a\rb", "\n", "x\r", "Set-Cookie: y\nZ",
    };

    for (const char *value : values) {
        std::string  block = std::string("NATS/1.0\r\nX-Tag: ") + value
                             + "\r\n\r\n";

        expect_headers_refused(block, "bad header value");
    }
}


TEST(Regression, StatusDescriptionWithBareCrOrLf)
{
    for (const char *d : { "No\nResponders", "No\rResponders" }) {
        std::string  block = std::string("NATS/1.0 503 ") + d + "\r\n\r\n";

        expect_headers_refused(block, "bad status");
    }
}


TEST(Regression, StrictHeadersStillAcceptValidBlocks)
{
    /* every printable name byte but ':', values with any other byte */
    std::string  name;

    for (int c = 33; c <= 126; c++) {
        if (c != ':') {
            name += static_cast<char>(c);
        }
    }

    static const char  raw[] = "a\x00\x01\x7f\x80\xff: b\tc";
    std::string        value(raw, sizeof(raw) - 1);
    std::string        block = "NATS/1.0 100 Idle Heartbeat\r\n" + name
                               + ":" + value + "\r\nK:\r\n\r\n";
    outcome            r = parse(hmsg_with_block(block));

    ASSERT_EQ(r.rc, errc::ok) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0],
              "HMSG subject=\"s\" sid=\"1\" reply=\"\" status=100 "
              "description=\"Idle Heartbeat\" headers={" + quote(name)
              + "=" + quote(value) + ",\"K\"=\"\"} payload=\"\"");
}


/*
 * fuzz_headers (after the event checks were tightened): when an HMSG's
 * header block failed, resty_nats_parser_next returned ERROR with the
 * subject, sid, reply and status already filled in, pointing into the
 * buffer the error had just dropped. Since then a bad block is no longer
 * an error at all (it cost the subscriber its connection: a DoS by any
 * publisher); the event must then carry no header of the refused block
 * and only pointers that stay valid.
 */
TEST(Regression, EventAfterHeaderBlockRefused)
{
    resty_nats_parser_t  *p = nullptr;
    resty_nats_event_t    ev;
    std::string           data = hmsg_with_block("NATS/1.0 503 x\r\n"
                                                 "Good: 1\r\n"
                                                 "Bad Key: v\r\n\r\n")
                                 + "PING\r\n";
    char                  err[128];
    std::size_t           errlen = sizeof(err);

    ASSERT_EQ(resty_nats_parser_new(&p, 0), RESTY_NATS_OK);
    ASSERT_EQ(resty_nats_parser_feed(p, data.data(), data.size(), err,
                                     &errlen), RESTY_NATS_OK);

    errlen = sizeof(err);
    ASSERT_EQ(resty_nats_parser_next(p, &ev, err, &errlen), RESTY_NATS_OK);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_HMSG);
    EXPECT_EQ(sv(ev.subject), "s");
    EXPECT_EQ(ev.sid, 1u);
    EXPECT_EQ(ev.status, RESTY_NATS_STATUS_INVALID_HEADERS);
    EXPECT_EQ(sv(ev.description), "invalid header block: bad header name");
    EXPECT_EQ(ev.headers, nullptr);
    EXPECT_EQ(ev.nheaders, 0u);
    EXPECT_EQ(ev.payload.len, 0u);

    errlen = sizeof(err);
    ASSERT_EQ(resty_nats_parser_next(p, &ev, err, &errlen), RESTY_NATS_OK);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_PING);

    resty_nats_parser_free(p);
}


/*
 * fuzz_parser: 4 KB of blanks before an op name gave a different result
 * in one feed (INFO accepted, or "unknown protocol operation") than in
 * pieces (the first 4096 bytes are a partial match: "control line too
 * long"). Both now fail the same way.
 */
TEST(Regression, LeadingBlanksDoNotDependOnSplits)
{
    struct {
        std::string  data;
        errc         rc;
    } cases[] = {
        { std::string(4094, ' ') + "INFO {}\r\n", errc::line_too_long },
        { std::string(4092, ' ') + "PING\r\n", errc::line_too_long },
        { std::string(4100, ' ') + "X\r\n", errc::line_too_long },
        { std::string(4095, '\t') + "-ERR 'x'\r\n", errc::line_too_long },
        /* settled before the cap: as before */
        { std::string(4091, ' ') + "INFO {}\r\n", errc::ok },
        { std::string(4000, ' ') + "X\r\n", errc::unknown_op },
        { std::string(4091, ' ') + "PING\n", errc::ok },
    };

    for (const auto &c : cases) {
        outcome  whole = parse(c.data);

        EXPECT_EQ(whole.rc, c.rc) << c.data.size() << ": " << whole.error;

        for (std::size_t chunk : { 1u, 7u, 4096u, 4097u }) {
            outcome  split = parse(c.data, chunk);

            EXPECT_EQ(split.rc, whole.rc) << c.data.size() << "/" << chunk;
            EXPECT_EQ(split.error, whole.error);
            EXPECT_EQ(split.events, whole.events);
        }
    }
}


}  // namespace
}  // namespace resty_nats
