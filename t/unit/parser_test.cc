/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "nats_parser.h"
#include "test_util.h"


namespace resty_nats {
namespace {


using test::dump_event;
using test::sv;


/* feeds chunk, then takes events until again or an error */
errc
drain(parser &p, std::string_view chunk, std::vector<std::string> &out)
{
    resty_nats_event_t  ev;
    errc                rc;

    rc = p.feed(chunk.data(), chunk.size());
    if (rc != errc::ok) {
        return rc;
    }

    for ( ;; ) {
        rc = p.next(ev);
        if (rc == errc::again) {
            EXPECT_EQ(ev.type, RESTY_NATS_EV_NONE);
            return errc::ok;
        }
        if (rc != errc::ok) {
            return rc;
        }
        out.push_back(dump_event(ev));
    }
}


/* all events of data fed in one piece; EXPECTs no error */
std::vector<std::string>
events_of(std::string_view data, std::size_t max_payload = 0)
{
    parser                    p(max_payload);
    std::vector<std::string>  out;

    EXPECT_EQ(drain(p, data, out), errc::ok) << p.error_text();
    EXPECT_EQ(p.buffered(), 0u);
    return out;
}


/* the error of data fed in one piece */
std::string
error_of(std::string_view data, errc expect, std::size_t max_payload = 0)
{
    parser                    p(max_payload);
    std::vector<std::string>  out;

    EXPECT_EQ(drain(p, data, out), expect);
    return std::string(p.error_text());
}


/* exactly one event, returned in ev */
void
one_event(parser &p, std::string_view data, resty_nats_event_t &ev)
{
    resty_nats_event_t  none;

    ASSERT_EQ(p.feed(data.data(), data.size()), errc::ok);
    ASSERT_EQ(p.next(ev), errc::ok) << p.error_text();
    ASSERT_EQ(p.buffered(), 0u);
    /* next() never moves memory, so ev stays readable after this */
    ASSERT_EQ(p.next(none), errc::again);
}


const char *const vector_names[] = {
    "info_server_2_9", "msg", "msg_binary", "hmsg_503", "hmsg_headers",
    "hmsg_heartbeat", "ping_pong_ok", "err_auth", "session",
};


TEST(Parser, VectorsWhole)
{
    for (const char *name : vector_names) {
        std::string  bin = test::read_file(test::vector_path(
                                               std::string(name) + ".bin"));
        std::string  exp = test::read_file(test::vector_path(
                                               std::string(name)
                                               + ".events"));

        ASSERT_FALSE(bin.empty()) << name;
        ASSERT_FALSE(exp.empty()) << name;
        EXPECT_EQ(events_of(bin), test::split_lines(exp)) << name;
    }
}


TEST(Parser, VectorsByteByByte)
{
    for (const char *name : vector_names) {
        std::string  bin = test::read_file(test::vector_path(
                                               std::string(name) + ".bin"));
        std::string  exp = test::read_file(test::vector_path(
                                               std::string(name)
                                               + ".events"));
        parser                    p;
        std::vector<std::string>  out;

        ASSERT_FALSE(bin.empty()) << name;
        for (char c : bin) {
            ASSERT_EQ(drain(p, std::string_view(&c, 1), out), errc::ok)
                << name << ": " << p.error_text();
        }
        EXPECT_EQ(out, test::split_lines(exp)) << name;
        EXPECT_EQ(p.buffered(), 0u) << name;
    }
}


TEST(Parser, VectorsEveryTwoWaySplit)
{
    for (const char *name : vector_names) {
        std::string  bin = test::read_file(test::vector_path(
                                               std::string(name) + ".bin"));
        std::vector<std::string>  exp = test::split_lines(
            test::read_file(test::vector_path(std::string(name)
                                              + ".events")));

        ASSERT_FALSE(bin.empty()) << name;
        for (std::size_t cut = 0; cut <= bin.size(); cut++) {
            parser                    p;
            std::vector<std::string>  out;
            std::string_view          all(bin);

            ASSERT_EQ(drain(p, all.substr(0, cut), out), errc::ok)
                << name << " cut " << cut << ": " << p.error_text();
            ASSERT_EQ(drain(p, all.substr(cut), out), errc::ok)
                << name << " cut " << cut << ": " << p.error_text();
            ASSERT_EQ(out, exp) << name << " cut " << cut;
            ASSERT_EQ(p.buffered(), 0u);
        }
    }
}


TEST(Parser, OpsInEveryCase)
{
    std::vector<std::string>  exp = {
        "PING", "PONG", "OK", "ERR payload=\"x\"",
        "MSG subject=\"Foo.Bar\" sid=\"1\" reply=\"\" payload=\"ab\"",
        "HMSG subject=\"Foo\" sid=\"2\" reply=\"\" status=0 description=\"\" "
        "headers={} payload=\"\"",
        "INFO payload=\"{}\"",
    };

    const char *const upper =
        "PING\r\nPONG\r\n+OK\r\n-ERR 'x'\r\nMSG Foo.Bar 1 2\r\nab\r\n"
        "HMSG Foo 2 12 12\r\nNATS/1.0\r\n\r\n\r\nINFO {}\r\n";
    const char *const lower =
        "ping\r\npong\r\n+ok\r\n-err 'x'\r\nmsg Foo.Bar 1 2\r\nab\r\n"
        "hmsg Foo 2 12 12\r\nNATS/1.0\r\n\r\n\r\ninfo {}\r\n";
    const char *const mixed =
        "PiNg\r\npOnG\r\n+oK\r\n-eRr 'x'\r\nMsg Foo.Bar 1 2\r\nab\r\n"
        "hMsG Foo 2 12 12\r\nNATS/1.0\r\n\r\n\r\niNfO {}\r\n";

    EXPECT_EQ(events_of(upper), exp);
    EXPECT_EQ(events_of(lower), exp);
    EXPECT_EQ(events_of(mixed), exp);
}


TEST(Parser, ManyMessagesInOneFeed)
{
    std::string               data;
    std::vector<std::string>  out;
    parser                    p;
    resty_nats_event_t        ev;
    const int                 count = 20000;

    for (int i = 0; i < count; i++) {
        std::string  payload = "payload-" + std::to_string(i);

        data += "MSG s.x " + std::to_string(i + 1) + " "
                + std::to_string(payload.size()) + "\r\n" + payload
                + "\r\n";
    }
    data += "PING\r\n";

    ASSERT_EQ(p.feed(data.data(), data.size()), errc::ok);

    for (int i = 0; i < count; i++) {
        ASSERT_EQ(p.next(ev), errc::ok) << p.error_text();
        ASSERT_EQ(ev.type, RESTY_NATS_EV_MSG);
        ASSERT_EQ(ev.sid, static_cast<std::uint64_t>(i + 1));
        ASSERT_EQ(sv(ev.payload), "payload-" + std::to_string(i));
    }

    ASSERT_EQ(p.next(ev), errc::ok);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_PING);
    EXPECT_EQ(p.next(ev), errc::again);
    EXPECT_EQ(p.buffered(), 0u);
}


TEST(Parser, StreamInOddChunks)
{
    /* many messages in chunks that never align with frames */
    std::string               data;
    std::vector<std::string>  out, exp;
    parser                    p;

    for (int i = 0; i < 3000; i++) {
        std::string  payload(static_cast<std::size_t>(i % 97), 'x');

        data += "MSG a.b 7 " + std::to_string(payload.size()) + "\r\n"
                + payload + "\r\n";
        exp.push_back("MSG subject=\"a.b\" sid=\"7\" reply=\"\" payload=\""
                      + payload + "\"");
    }

    for (std::size_t off = 0, step = 1; off < data.size(); step++) {
        std::size_t  n = (step * 7919) % 4099 + 1;

        n = std::min(n, data.size() - off);
        ASSERT_EQ(drain(p, std::string_view(data).substr(off, n), out),
                  errc::ok) << p.error_text();
        off += n;
    }

    EXPECT_EQ(out, exp);
    EXPECT_EQ(p.buffered(), 0u);
}


TEST(Parser, BinaryPayload)
{
    parser              p;
    resty_nats_event_t  ev;
    std::string         payload("\r\n\0\r\nMSG x 1 1\r\n\0\n\r", 18);
    std::string         data = "MSG bin 1 " + std::to_string(payload.size())
                               + "\r\n" + payload + "\r\n";

    one_event(p, data, ev);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_MSG);
    EXPECT_EQ(sv(ev.payload), payload);
}


TEST(Parser, EmptyPayload)
{
    EXPECT_EQ(events_of("MSG x 1 0\r\n\r\nMSG y 2 r 0\r\n\r\n"),
              (std::vector<std::string>{
                  "MSG subject=\"x\" sid=\"1\" reply=\"\" payload=\"\"",
                  "MSG subject=\"y\" sid=\"2\" reply=\"r\" payload=\"\"",
              }));
}


TEST(Parser, TabsAndRunsOfSpaces)
{
    EXPECT_EQ(events_of("MSG \t foo.bar\t\t9  \t_INBOX.1 \t 3\t \r\nabc\r\n"
                        "  PING  \r\n\tPONG\t\r\n+OK \r\n"
                        "HMSG\tfoo 1\t 12 \t12  \r\nNATS/1.0\r\n\r\n\r\n"),
              (std::vector<std::string>{
                  "MSG subject=\"foo.bar\" sid=\"9\" reply=\"_INBOX.1\" "
                  "payload=\"abc\"",
                  "PING", "PONG", "OK",
                  "HMSG subject=\"foo\" sid=\"1\" reply=\"\" status=0 "
                  "description=\"\" headers={} payload=\"\"",
              }));
}


TEST(Parser, BareLineFeed)
{
    EXPECT_EQ(events_of("PING\nMSG foo 1 2\nhi\r\n+OK\n"),
              (std::vector<std::string>{
                  "PING",
                  "MSG subject=\"foo\" sid=\"1\" reply=\"\" payload=\"hi\"",
                  "OK",
              }));
}


TEST(Parser, MsgWithAndWithoutReply)
{
    parser              p;
    resty_nats_event_t  ev;

    one_event(p, "MSG foo.bar 42 11\r\nhello world\r\n", ev);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_MSG);
    EXPECT_EQ(sv(ev.subject), "foo.bar");
    EXPECT_EQ(sv(ev.sid_str), "42");
    EXPECT_EQ(ev.sid, 42u);
    EXPECT_EQ(ev.reply.len, 0u);
    EXPECT_EQ(sv(ev.payload), "hello world");
    EXPECT_EQ(ev.status, 0);
    EXPECT_EQ(ev.nheaders, 0u);
    EXPECT_EQ(ev.headers, nullptr);

    one_event(p, "MSG foo.bar 42 _INBOX.abc.1 5\r\nhello\r\n", ev);
    EXPECT_EQ(sv(ev.subject), "foo.bar");
    EXPECT_EQ(sv(ev.reply), "_INBOX.abc.1");
    EXPECT_EQ(sv(ev.payload), "hello");
}


TEST(Parser, NumericSid)
{
    struct {
        const char     *sid;
        std::uint64_t   num;
    } cases[] = {
        { "0", 0 },
        { "7", 7 },
        { "007", 7 },
        { "18446744073709551614", UINT64_MAX - 1 },
        { "18446744073709551615", UINT64_MAX },
        { "18446744073709551616", UINT64_MAX },
        { "99999999999999999999999", UINT64_MAX },
        { "abc", UINT64_MAX },
        { "12a", UINT64_MAX },
        { "-1", UINT64_MAX },
    };

    for (const auto &c : cases) {
        parser              p;
        resty_nats_event_t  ev;

        one_event(p, std::string("MSG s ") + c.sid + " 1\r\nx\r\n", ev);
        EXPECT_EQ(ev.sid, c.num) << c.sid;
        EXPECT_EQ(sv(ev.sid_str), c.sid);
    }
}


TEST(Parser, Hmsg503NoHeaders)
{
    parser              p;
    resty_nats_event_t  ev;

    one_event(p, "HMSG _INBOX.x.1 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n", ev);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_HMSG);
    EXPECT_EQ(ev.status, 503);
    EXPECT_EQ(ev.description.len, 0u);
    EXPECT_EQ(ev.nheaders, 0u);
    EXPECT_EQ(ev.payload.len, 0u);
    EXPECT_EQ(sv(ev.subject), "_INBOX.x.1");
}


TEST(Parser, HmsgStatusWithDescription)
{
    parser              p;
    resty_nats_event_t  ev;
    std::string         block = "NATS/1.0   408  Request Timeout \r\n"
                                "Nats-Pending-Messages: 5\r\n\r\n";
    std::string         data = "HMSG a 1 r " + std::to_string(block.size())
                               + " " + std::to_string(block.size() + 2)
                               + "\r\n" + block + "hi\r\n";

    one_event(p, data, ev);
    EXPECT_EQ(ev.status, 408);
    EXPECT_EQ(sv(ev.description), "Request Timeout");
    ASSERT_EQ(ev.nheaders, 1u);
    EXPECT_EQ(sv(ev.headers[0].name), "Nats-Pending-Messages");
    EXPECT_EQ(sv(ev.headers[0].value), "5");
    EXPECT_EQ(sv(ev.reply), "r");
    EXPECT_EQ(sv(ev.payload), "hi");
}


TEST(Parser, HmsgMultiValueHeaders)
{
    parser              p;
    resty_nats_event_t  ev;
    std::string         block = "NATS/1.0\r\nA: 1\r\nb:2\r\nA:  3 \t\r\n"
                                "Empty:\r\nA: x: y\r\n\r\n";
    std::string         data = "HMSG s 9 " + std::to_string(block.size())
                               + " " + std::to_string(block.size() + 3)
                               + "\r\n" + block + "abc\r\n";

    one_event(p, data, ev);
    EXPECT_EQ(ev.status, 0);
    ASSERT_EQ(ev.nheaders, 5u);
    const char *const names[] = { "A", "b", "A", "Empty", "A" };
    const char *const values[] = { "1", "2", "3", "", "x: y" };
    for (std::size_t i = 0; i < 5; i++) {
        EXPECT_EQ(sv(ev.headers[i].name), names[i]) << i;
        EXPECT_EQ(sv(ev.headers[i].value), values[i]) << i;
    }
    EXPECT_EQ(sv(ev.payload), "abc");
}


TEST(Parser, HmsgHeaderVectorIsReused)
{
    /* later messages with fewer headers must not see stale entries */
    std::string  b1 = "NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n";
    std::string  b2 = "NATS/1.0 503\r\n\r\n";
    std::string  data = "HMSG s 1 " + std::to_string(b1.size()) + " "
                        + std::to_string(b1.size()) + "\r\n" + b1 + "\r\n"
                        + "HMSG s 1 " + std::to_string(b2.size()) + " "
                        + std::to_string(b2.size()) + "\r\n" + b2 + "\r\n";

    EXPECT_EQ(events_of(data),
              (std::vector<std::string>{
                  "HMSG subject=\"s\" sid=\"1\" reply=\"\" status=0 "
                  "description=\"\" headers={\"A\"=\"1\",\"B\"=\"2\"} "
                  "payload=\"\"",
                  "HMSG subject=\"s\" sid=\"1\" reply=\"\" status=503 "
                  "description=\"\" headers={} payload=\"\"",
              }));
}


/*
 * A header block that is not valid inside a well-framed HMSG costs that
 * message its headers, not the connection: any publisher can send one
 * through the server. The message is delivered with status -1 and the
 * reason; what follows parses as usual.
 */
TEST(Parser, InvalidHeaderBlocks)
{
    const struct {
        const char  *block;
        const char  *reason;
    } cases[] = {
        { "NATS/2.0\r\n\r\n", "invalid header block" },
        { "NATS/1.0x\r\n\r\n", "bad version line" },
        { "NATS/1.0 50\r\n\r\n", "bad status" },
        { "NATS/1.0 5x3\r\n\r\n", "bad status" },
        { "NATS/1.0 5034\r\n\r\n", "bad status" },
        { "NATS/1.0\r\nNoColon\r\n\r\n", "bad header line" },
        { "NATS/1.0\r\n: empty\r\n\r\n", "bad header line" },
        { "NATS/1.0\r\nBad Key: v\r\n\r\n", "bad header name" },
        { "NATS/1.0\r\nA: 1\r\n\r\n\r\n", "bad header line" },
        { "NATS/1.0\r\nA: 1\r\nxx", "invalid header block" },
        { "HTTP/1.0 200\r\n\r\n", "invalid header block" },
        { "NATS/1.0\r\n\r", "invalid header block" },  /* too short */
        { "", "invalid header block" },                   /* empty */
    };

    for (const auto &c : cases) {
        std::string  block(c.block);
        std::string  data = "HMSG s 1 " + std::to_string(block.size()) + " "
                            + std::to_string(block.size() + 3) + "\r\n"
                            + block + "pay\r\nPING\r\n";
        std::vector<std::string>  ev = events_of(data);

        ASSERT_EQ(ev.size(), 2u) << test::quote(block);
        EXPECT_EQ(ev[0].rfind("HMSG subject=\"s\" sid=\"1\" reply=\"\" "
                              "status=-1 description=\"invalid header block",
                              0), 0u) << ev[0];
        EXPECT_NE(ev[0].find(c.reason), std::string::npos) << ev[0];
        EXPECT_NE(ev[0].find("headers={} payload=\"pay\""),
                  std::string::npos) << ev[0];
        EXPECT_EQ(ev[1], "PING");
    }
}


TEST(Parser, ErrText)
{
    EXPECT_EQ(events_of("-ERR 'Authorization Violation'\r\n"
                        "-ERR   'Stale Connection'  \r\n"
                        "-ERR Unknown Protocol Operation\r\n"
                        "-ERR 'missing end\r\n"
                        "-ERR\r\n"
                        "-ERR ''\r\n"),
              (std::vector<std::string>{
                  "ERR payload=\"Authorization Violation\"",
                  "ERR payload=\"Stale Connection\"",
                  "ERR payload=\"Unknown Protocol Operation\"",
                  "ERR payload=\"missing end\"",
                  "ERR payload=\"\"",
                  "ERR payload=\"\"",
              }));
}


TEST(Parser, InfoPayload)
{
    parser              p;
    resty_nats_event_t  ev;

    one_event(p, "INFO   {\"a\": 1}  \r\n", ev);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_INFO);
    EXPECT_EQ(sv(ev.payload), "{\"a\": 1}");

    error_of("INFO\r\n", errc::invalid_arguments);
    error_of("INFO  \r\n", errc::invalid_arguments);
}


TEST(Parser, InfoLongerThanControlLine)
{
    std::string  json = "{\"connect_urls\":[";

    for (int i = 0; i < 5000; i++) {
        json += (i ? ",\"" : "\"") + std::to_string(i) + ".example:4222\"";
    }
    json += "]}";
    ASSERT_GT(json.size(), 50000u);

    std::string  data = "INFO " + json + "\r\n";

    EXPECT_EQ(events_of(data),
              std::vector<std::string>{"INFO payload=" + test::quote(json)});

    /* byte by byte too: the cap must not apply before the op is known */
    parser                    p;
    std::vector<std::string>  out;
    for (char c : data) {
        ASSERT_EQ(drain(p, std::string_view(&c, 1), out), errc::ok);
    }
    EXPECT_EQ(out.size(), 1u);
}


TEST(Parser, InfoLineTooLong)
{
    parser                    p;
    std::vector<std::string>  out;
    std::string               chunk(64 * 1024, 'x');
    errc                      rc = errc::ok;
    std::size_t               fed = 0;

    ASSERT_EQ(drain(p, "INFO {\"a\":\"", out), errc::ok);
    while (rc == errc::ok && fed < 4 * RESTY_NATS_MAX_INFO_LINE) {
        rc = drain(p, chunk, out);
        fed += chunk.size();
    }

    EXPECT_EQ(rc, errc::line_too_long);
    EXPECT_LE(fed, static_cast<std::size_t>(RESTY_NATS_MAX_INFO_LINE)
                   + chunk.size());
    EXPECT_NE(std::string(p.error_text()).find("line too long"),
              std::string::npos);
}


TEST(Parser, ControlLineLimitIsExact)
{
    /* 4096 bytes with the CRLF: accepted; one more: refused */
    std::string  head = "MSG ";
    std::string  tail = " 1 0\r\n";
    std::string  subject(RESTY_NATS_MAX_CONTROL_LINE - head.size()
                         - tail.size(), 's');
    std::string  line = head + subject + tail;

    ASSERT_EQ(line.size(), static_cast<std::size_t>(
                               RESTY_NATS_MAX_CONTROL_LINE));
    EXPECT_EQ(events_of(line + "\r\n").size(), 1u);

    std::string  longer = head + subject + "s" + tail + "\r\n";
    std::string  msg = error_of(longer, errc::line_too_long);

    EXPECT_NE(msg.find("control line too long"), std::string::npos) << msg;

    /* the same with a bare LF: 4095 bytes + LF is fine */
    std::string  lf_line = head + subject + "s 1 0\n";
    ASSERT_EQ(lf_line.size(), static_cast<std::size_t>(
                                  RESTY_NATS_MAX_CONTROL_LINE));
    EXPECT_EQ(events_of(lf_line + "\r\n").size(), 1u);
}


TEST(Parser, HugeLineWithoutNewlineFailsEarly)
{
    parser                    p;
    std::vector<std::string>  out;
    std::string               chunk(1024, 'a');
    std::size_t               fed = 0;
    errc                      rc = errc::ok;

    ASSERT_EQ(drain(p, "MSG ", out), errc::ok);
    while (rc == errc::ok && fed < 1024 * 1024) {
        rc = drain(p, chunk, out);
        fed += chunk.size();
    }

    EXPECT_EQ(rc, errc::line_too_long);
    EXPECT_LE(fed, static_cast<std::size_t>(RESTY_NATS_MAX_CONTROL_LINE));
    EXPECT_EQ(p.buffered(), 0u);

    /* 1 MB in a single feed fails without a LF search over all of it */
    std::string  big = "PUB " + std::string(1024 * 1024, 'b');
    error_of(big, errc::unknown_op);
    std::string  big_msg = "MSG " + std::string(1024 * 1024, 'b') + "\n";
    error_of(big_msg, errc::line_too_long);

    /* blanks only, no op name yet */
    error_of(std::string(RESTY_NATS_MAX_CONTROL_LINE, ' '),
             errc::line_too_long);
}


TEST(Parser, UnknownOpDetectedEarly)
{
    parser                    p;
    std::vector<std::string>  out;

    /* "H" may still become HMSG; "HT" cannot */
    EXPECT_EQ(drain(p, "H", out), errc::ok);
    EXPECT_EQ(drain(p, "T", out), errc::unknown_op);
    EXPECT_EQ(p.error_text(), "unknown protocol operation");

    p.reset();
    EXPECT_EQ(drain(p, "MS", out), errc::ok);
    EXPECT_EQ(drain(p, "X", out), errc::unknown_op);

    p.reset();
    EXPECT_EQ(drain(p, "PING", out), errc::ok);
    EXPECT_EQ(drain(p, "X", out), errc::unknown_op);

    const char *const bad[] = {
        "HTTP/1.1 200 OK\r\n", "X", "PINGX\r\n", "PONGPONG\r\n", "PIN\r\n",
        "\r\n", "\n", "  \r\n", "+OKAY\r\n", "-ER\r\n", "INFO{}\r\n",
        "MSGfoo 1 2\r\n", "PUB foo 1\r\n", "SUB foo 1\r\n", "CONNECT {}\r\n",
        "+\r\n", "\x16\x03\x01", "ok\r\n",
    };
    for (const char *b : bad) {
        EXPECT_EQ(error_of(b, errc::unknown_op),
                  "unknown protocol operation") << test::quote(b);
    }

    /* prefixes of valid ops wait */
    const char *const partial[] = {
        "M", "m", "H", "hM", "P", "pi", "PON", "+", "+o", "-", "-eR", "I",
        "inF", "INFO", "MSG", "  ", " \tP",
    };
    for (const char *s : partial) {
        parser  q;
        EXPECT_EQ(drain(q, s, out), errc::ok) << s;
        EXPECT_EQ(q.buffered(), std::strlen(s));
    }
}


TEST(Parser, ArgumentErrors)
{
    struct {
        const char  *data;
        errc         code;
        const char  *text;
    } cases[] = {
        { "PING x\r\n", errc::invalid_arguments, "invalid PING arguments" },
        { "PONG 1\r\n", errc::invalid_arguments, "invalid PONG arguments" },
        { "+OK x\r\n", errc::invalid_arguments, "invalid +OK arguments" },
        { "PING\rX\r\n", errc::invalid_arguments, "invalid PING arguments" },
        { "MSG\r\n", errc::invalid_arguments, "invalid MSG arguments" },
        { "MSG foo\r\n", errc::invalid_arguments, "invalid MSG arguments" },
        { "MSG foo 1\r\n", errc::invalid_arguments, "invalid MSG arguments" },
        { "MSG a b c d e\r\n", errc::invalid_arguments,
          "invalid MSG arguments" },
        { "MSG a b c d e f g\r\n", errc::invalid_arguments,
          "invalid MSG arguments" },
        { "HMSG a 1 12\r\n", errc::invalid_arguments,
          "invalid HMSG arguments" },
        { "HMSG a 1 r x 12 12\r\n", errc::invalid_arguments,
          "invalid HMSG arguments" },
        { "MSG foo 1 -1\r\n", errc::invalid_size, "invalid payload size" },
        { "MSG foo 1 +1\r\n", errc::invalid_size, "invalid payload size" },
        { "MSG foo 1 abc\r\n", errc::invalid_size, "invalid payload size" },
        { "MSG foo 1 1.5\r\n", errc::invalid_size, "invalid payload size" },
        { "MSG foo 1 0x10\r\n", errc::invalid_size, "invalid payload size" },
        { "MSG foo 1 99999999999999999999\r\n", errc::invalid_size,
          "invalid payload size" },
        { "MSG foo 1 18446744073709551616\r\n", errc::invalid_size,
          "invalid payload size" },
        { "HMSG foo 1 -1 12\r\n", errc::invalid_size, "invalid header size" },
        { "HMSG foo 1 12 abc\r\n", errc::invalid_size,
          "invalid payload size" },
        { "HMSG foo 1 20 12\r\n", errc::invalid_size,
          "header size 20 > total size 12" },
        { "HMSG foo 1 99999999999999999999 12\r\n", errc::invalid_size,
          "invalid header size" },
    };

    for (const auto &c : cases) {
        std::string  msg = error_of(c.data, c.code);

        EXPECT_NE(msg.find(c.text), std::string::npos)
            << test::quote(c.data) << " gave: " << msg;
    }
}


TEST(Parser, PayloadTooLarge)
{
    EXPECT_EQ(error_of("MSG foo 1 11\r\n", errc::payload_too_large, 10),
              "payload too large (11 > max_payload 10)");
    EXPECT_NE(error_of("HMSG foo 1 12 11\r\n", errc::invalid_size, 10)
                  .find("header size"),
              std::string::npos);
    EXPECT_EQ(error_of("HMSG foo 1 12 20\r\n", errc::payload_too_large, 16),
              "payload too large (20 > max_payload 16)");
    EXPECT_EQ(events_of("MSG foo 1 10\r\n0123456789\r\n", 10).size(), 1u);

    /* the default is 1 MiB */
    EXPECT_EQ(error_of("MSG foo 1 1048577\r\n", errc::payload_too_large),
              "payload too large (1048577 > max_payload 1048576)");

    parser                    p(4);
    std::vector<std::string>  out;
    EXPECT_EQ(p.max_payload(), 4u);
    p.set_max_payload(100);
    EXPECT_EQ(drain(p, "MSG a 1 50\r\n" + std::string(50, 'z') + "\r\n",
                    out),
              errc::ok);
    EXPECT_EQ(out.size(), 1u);
    p.set_max_payload(0);
    EXPECT_EQ(p.max_payload(),
              static_cast<std::size_t>(RESTY_NATS_DEFAULT_MAX_PAYLOAD));
}


TEST(Parser, MissingCrlfAfterPayload)
{
    parser                    p;
    std::vector<std::string>  out;

    /* shorter than announced, then more data that is not CRLF */
    EXPECT_EQ(drain(p, "MSG foo 1 5\r\nabc", out), errc::ok);
    EXPECT_EQ(drain(p, "\r\n", out), errc::ok);
    EXPECT_EQ(drain(p, "X", out), errc::missing_crlf);
    EXPECT_EQ(p.error_text(), "missing CRLF after payload");
    EXPECT_TRUE(out.empty());

    EXPECT_EQ(error_of("MSG foo 1 2\r\nab\rX", errc::missing_crlf),
              "missing CRLF after payload");
    EXPECT_EQ(error_of("MSG foo 1 2\r\nab\n", errc::missing_crlf),
              "missing CRLF after payload");
    EXPECT_EQ(error_of("MSG foo 1 2\r\nabc\r\n", errc::missing_crlf),
              "missing CRLF after payload");
    EXPECT_EQ(error_of("HMSG foo 1 12 12\r\nNATS/1.0\r\n\r\nPING\r\n",
                       errc::missing_crlf),
              "missing CRLF after payload");
}


TEST(Parser, StickyErrorUntilReset)
{
    parser              p;
    resty_nats_event_t  ev;
    std::string         first;

    ASSERT_EQ(p.feed("PING\r\nBOGUS\r\nPONG\r\n", 19), errc::ok);
    ASSERT_EQ(p.next(ev), errc::ok);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_PING);

    ASSERT_EQ(p.next(ev), errc::unknown_op);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_NONE);
    first = std::string(p.error_text());
    EXPECT_EQ(p.buffered(), 0u);

    for (int i = 0; i < 3; i++) {
        EXPECT_EQ(p.next(ev), errc::unknown_op);
        EXPECT_EQ(p.feed("PING\r\n", 6), errc::unknown_op);
        EXPECT_EQ(p.error_text(), first);
        EXPECT_EQ(p.buffered(), 0u);
    }

    p.reset();
    EXPECT_EQ(p.error(), errc::ok);
    EXPECT_EQ(p.error_text(), "");
    ASSERT_EQ(p.feed("PONG\r\n", 6), errc::ok);
    ASSERT_EQ(p.next(ev), errc::ok);
    EXPECT_EQ(ev.type, RESTY_NATS_EV_PONG);
}


TEST(Parser, ResetDropsPartialState)
{
    parser                    p;
    std::vector<std::string>  out;

    ASSERT_EQ(drain(p, "MSG foo 1 5\r\nab", out), errc::ok);
    EXPECT_EQ(p.buffered(), 15u);
    p.reset();
    EXPECT_EQ(p.buffered(), 0u);
    ASSERT_EQ(drain(p, "PING\r\n", out), errc::ok);
    EXPECT_EQ(out, std::vector<std::string>{"PING"});
}


TEST(Parser, Buffered)
{
    parser              p;
    resty_nats_event_t  ev;
    std::string         a = "PING\r\nMSG a 1 3\r\nab";   /* 6 + 11 + 2 */
    std::string         b = "c\r\nPO";

    EXPECT_EQ(p.buffered(), 0u);
    ASSERT_EQ(p.feed(a.data(), a.size()), errc::ok);
    EXPECT_EQ(p.buffered(), 19u);
    ASSERT_EQ(p.next(ev), errc::ok);
    EXPECT_EQ(p.buffered(), 13u);
    EXPECT_EQ(p.next(ev), errc::again);
    EXPECT_EQ(p.buffered(), 13u);
    ASSERT_EQ(p.feed(b.data(), b.size()), errc::ok);
    EXPECT_EQ(p.buffered(), 18u);
    ASSERT_EQ(p.next(ev), errc::ok);
    EXPECT_EQ(sv(ev.payload), "abc");
    EXPECT_EQ(p.buffered(), 2u);
    EXPECT_EQ(p.next(ev), errc::again);
    ASSERT_EQ(p.feed(nullptr, 0), errc::ok);
    EXPECT_EQ(p.buffered(), 2u);
}


TEST(Parser, EventPointersSurviveLaterNext)
{
    /* next() never moves memory, so older events stay readable */
    parser              p;
    resty_nats_event_t  a, b;
    std::string         data = "MSG a 1 3\r\nfoo\r\nMSG b 2 3\r\nbar\r\n";

    ASSERT_EQ(p.feed(data.data(), data.size()), errc::ok);
    ASSERT_EQ(p.next(a), errc::ok);
    ASSERT_EQ(p.next(b), errc::ok);
    EXPECT_EQ(sv(a.payload), "foo");
    EXPECT_EQ(sv(b.payload), "bar");
}


TEST(Parser, InfoDecode)
{
    parser              p;
    resty_nats_info_t   info;
    error_detail        err;
    std::string         bin = test::read_file(
                                  test::vector_path("info_server_2_9.bin"));
    resty_nats_event_t  ev;

    ASSERT_FALSE(bin.empty());
    ASSERT_EQ(p.feed(bin.data(), bin.size()), errc::ok);
    ASSERT_EQ(p.next(ev), errc::ok);
    ASSERT_EQ(ev.type, RESTY_NATS_EV_INFO);

    ASSERT_EQ(p.info(ev.payload.data, ev.payload.len, info, &err),
              errc::ok) << err.text();
    EXPECT_EQ(sv(info.server_id),
              "NCXNGW6SGNDL4ZQD3RHLYBLUGKWYRNFBGJV2VCL6CNZPD5WA6TVOLQHN");
    EXPECT_EQ(sv(info.server_name), "nats-a");
    EXPECT_EQ(sv(info.version), "2.9.21");
    EXPECT_EQ(info.nonce.len, 0u);
    EXPECT_EQ(sv(info.connect_urls),
              "172.18.0.2:4222,172.18.0.3:4222,172.18.0.4:4222");
    EXPECT_EQ(info.max_payload, 1048576);
    EXPECT_EQ(info.proto, 1);
    EXPECT_EQ(info.client_id, 12u);
    EXPECT_EQ(info.headers, 1);
    EXPECT_EQ(info.jetstream, 1);
    EXPECT_EQ(info.auth_required, 0);
    EXPECT_EQ(info.tls_required, 0);
    EXPECT_EQ(info.tls_available, 0);
    EXPECT_EQ(info.tls_verify, 0);
    EXPECT_EQ(info.ldm, 0);
}


TEST(Parser, InfoDecodeTypesAndEscapes)
{
    parser             p;
    resty_nats_info_t  info;
    error_detail       err;
    std::string        json =
        "{\"server_name\":\"caf\\u00e9 \\\"x\\\"\",\"nonce\":\"n\\/1\","
        "\"max_payload\":\"big\",\"proto\":1.5,\"client_id\":-3,"
        "\"headers\":1,\"auth_required\":true,\"tls_required\":true,"
        "\"tls_available\":true,\"tls_verify\":true,\"ldm\":true,"
        "\"jetstream\":false,\"version\":7,"
        "\"connect_urls\":[\"a:1\",5,null,\"b:2\"],"
        "\"unknown\":{\"deep\":[1,2,{\"x\":null}]},\"server_id\":null}";

    ASSERT_EQ(p.info(json.data(), json.size(), info, &err), errc::ok)
        << err.text();
    EXPECT_EQ(sv(info.server_name), "caf\xc3\xa9 \"x\"");
    EXPECT_EQ(sv(info.nonce), "n/1");
    EXPECT_EQ(info.server_id.len, 0u);
    EXPECT_EQ(info.version.len, 0u);
    EXPECT_EQ(info.max_payload, 0);
    EXPECT_EQ(info.proto, 0);
    EXPECT_EQ(info.client_id, 0u);
    EXPECT_EQ(info.headers, 0);
    EXPECT_EQ(info.auth_required, 1);
    EXPECT_EQ(info.tls_required, 1);
    EXPECT_EQ(info.tls_available, 1);
    EXPECT_EQ(info.tls_verify, 1);
    EXPECT_EQ(info.ldm, 1);
    EXPECT_EQ(info.jetstream, 0);
    EXPECT_EQ(sv(info.connect_urls), "a:1,b:2");

    /* a second decode replaces everything */
    ASSERT_EQ(p.info("{}", 2, info, &err), errc::ok);
    EXPECT_EQ(info.server_name.len, 0u);
    EXPECT_EQ(info.connect_urls.len, 0u);
    EXPECT_EQ(info.ldm, 0);
}


TEST(Parser, InfoDecodeErrors)
{
    parser             p;
    resty_nats_info_t  info;

    const char *const bad[] = {
        "", "[]", "\"x\"", "1", "null", "{", "{\"a\":}", "{} x",
        "{\"a\":1,}",
    };
    for (const char *b : bad) {
        error_detail  err;
        errc          rc = p.info(b, std::strlen(b), info, &err);

        EXPECT_TRUE(rc == errc::json_syntax || rc == errc::json_not_object)
            << b;
        EXPECT_FALSE(err.text().empty()) << b;
    }

    error_detail  err;
    EXPECT_EQ(p.info("[1]", 3, info, &err), errc::json_not_object);
    EXPECT_NE(std::string(err.text()).find("not an object"),
              std::string::npos);

    /* the stream state is untouched by info() */
    EXPECT_EQ(p.error(), errc::ok);
}


TEST(Parser, MutatedTrafficNeverCrashes)
{
    /* a fixed-seed xorshift, so failures reproduce */
    std::uint64_t  state = 0x9e3779b97f4a7c15ull;
    auto           rnd = [&state]() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };

    std::string  base = test::read_file(test::vector_path("session.bin"));
    ASSERT_FALSE(base.empty());

    for (int round = 0; round < 2000; round++) {
        std::string               data = base;
        parser                    p(static_cast<std::size_t>(rnd() % 4096));
        std::vector<std::string>  out;
        errc                      rc = errc::ok;
        int                       flips = static_cast<int>(rnd() % 4) + 1;

        for (int i = 0; i < flips; i++) {
            data[rnd() % data.size()] = static_cast<char>(rnd() & 0xff);
        }

        for (std::size_t off = 0; off < data.size() && rc == errc::ok; ) {
            std::size_t  n = std::min<std::size_t>(rnd() % 64 + 1,
                                                   data.size() - off);

            rc = drain(p, std::string_view(data).substr(off, n), out);
            off += n;
        }

        if (rc != errc::ok) {
            std::string  msg(p.error_text());
            resty_nats_event_t  ev;

            EXPECT_FALSE(msg.empty());
            EXPECT_EQ(p.next(ev), rc);
            EXPECT_EQ(p.error_text(), msg);
            EXPECT_EQ(p.buffered(), 0u);
        }
    }
}


}  // namespace
}  // namespace resty_nats
