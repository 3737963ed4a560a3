/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "nats_framer.h"
#include "nats_json.h"


namespace resty_nats {
namespace {


using frame_fn = std::function<errc(char *, std::size_t, std::size_t &,
                                    error_detail *)>;


/*
 * Runs the size-probe contract on fn and returns the frame: size 0 and
 * size n - 1 give again with the exact n, size n gives ok with the same
 * n, a larger buffer gives the same bytes and nothing past n is touched.
 */
std::string
frame(const frame_fn &fn)
{
    std::size_t   n = 12345, n2 = 0, n3 = 0;
    error_detail  err;
    errc          rc;

    rc = fn(nullptr, 0, n, &err);
    EXPECT_EQ(rc, errc::again) << err.text();
    if (rc != errc::again) {
        return "<no probe>";
    }

    std::vector<char>  small(n - 1 > 0 ? n - 1 : 1, '#');
    EXPECT_EQ(fn(small.data(), n - 1, n2, &err), errc::again);
    EXPECT_EQ(n2, n);

    std::vector<char>  exact(n, '#');
    EXPECT_EQ(fn(exact.data(), n, n3, &err), errc::ok) << err.text();
    EXPECT_EQ(n3, n);

    std::vector<char>  big(n + 64, '#');
    std::size_t        n4 = 0;
    EXPECT_EQ(fn(big.data(), big.size(), n4, &err), errc::ok);
    EXPECT_EQ(n4, n);
    EXPECT_EQ(std::string(big.data(), n), std::string(exact.data(), n));
    EXPECT_EQ(std::string(big.data() + n, 64), std::string(64, '#'));

    return std::string(exact.data(), n);
}


/* the error of fn with a big buffer and with a size-0 probe */
std::string
refusal(const frame_fn &fn, errc expect)
{
    std::size_t   n = 0;
    error_detail  err, err0;
    char          buf[8192];

    EXPECT_EQ(fn(buf, sizeof(buf), n, &err), expect);
    /* validation comes before the size check */
    EXPECT_EQ(fn(nullptr, 0, n, &err0), expect);
    EXPECT_EQ(err.text(), err0.text());
    EXPECT_EQ(err.code(), expect);
    return std::string(err.text());
}


frame_fn
pub(std::string subject, std::string reply = "", std::size_t len = 5,
    std::size_t max = 0)
{
    return [=](char *b, std::size_t s, std::size_t &n, error_detail *e) {
        return frame_pub(b, s, n, subject, reply, len, max, e);
    };
}


frame_fn
hpub(std::string subject, std::string reply,
    std::vector<std::pair<std::string, std::string>> hdrs,
    std::size_t len = 0, std::size_t max = 0)
{
    return [=](char *b, std::size_t s, std::size_t &n, error_detail *e) {
        std::vector<resty_nats_header_t>  h;

        for (const auto &kv : hdrs) {
            resty_nats_header_t  x;

            x.name.data = kv.first.data();
            x.name.len = kv.first.size();
            x.value.data = kv.second.data();
            x.value.len = kv.second.size();
            h.push_back(x);
        }
        return frame_hpub(b, s, n, subject, reply, h.data(), h.size(), len,
                          max, e);
    };
}


frame_fn
sub(std::string subject, std::string queue, std::uint64_t sid)
{
    return [=](char *b, std::size_t s, std::size_t &n, error_detail *e) {
        return frame_sub(b, s, n, subject, queue, sid, e);
    };
}


frame_fn
connect(const resty_nats_connect_opts_t &o)
{
    return [=](char *b, std::size_t s, std::size_t &n, error_detail *e) {
        return frame_connect(b, s, n, o, e);
    };
}


resty_nats_str_t
str(const char *s)
{
    resty_nats_str_t  r;

    r.data = s;
    r.len = s == nullptr ? 0 : std::strlen(s);
    return r;
}


resty_nats_connect_opts_t
no_options()
{
    resty_nats_connect_opts_t  o;

    std::memset(&o, 0, sizeof(o));
    o.verbose = o.pedantic = o.tls_required = o.echo = o.headers =
        o.no_responders = o.protocol = -1;
    return o;
}


TEST(Framer, PubExact)
{
    EXPECT_EQ(frame(pub("foo", "", 5)), "PUB foo 5\r\n");
    EXPECT_EQ(frame(pub("foo.bar", "_INBOX.a.1", 0)),
              "PUB foo.bar _INBOX.a.1 0\r\n");
    EXPECT_EQ(frame(pub("x", "", 1048576)), "PUB x 1048576\r\n");
    EXPECT_EQ(frame(pub("foo*.b>r", "", 18446744073709551615ull)),
              "PUB foo*.b>r 18446744073709551615\r\n");
    EXPECT_EQ(frame(pub("caf\xc3\xa9", "r\xc3\xa9", 2)),
              "PUB caf\xc3\xa9 r\xc3\xa9 2\r\n");
}


TEST(Framer, HpubExact)
{
    /* the protocol reference's example: 22 bytes of headers, 33 total */
    EXPECT_EQ(frame(hpub("FOO", "", {{"Bar", "Baz"}}, 11)),
              "HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\n");
    EXPECT_EQ(frame(hpub("foo", "", {}, 0)),
              "HPUB foo 12 12\r\nNATS/1.0\r\n\r\n");
    EXPECT_EQ(frame(hpub("foo", "rep.ly", {{"A", "1"}, {"A", "2"},
                                           {"Nats-Msg-Id", ""}}, 3)),
              "HPUB foo rep.ly 39 42\r\nNATS/1.0\r\nA: 1\r\nA: 2\r\n"
              "Nats-Msg-Id: \r\n\r\n");
    /* values may hold any byte but CR and LF */
    EXPECT_EQ(frame(hpub("s", "", {{"K", "a: b\t\xc3\xa9 \x01"}}, 0)),
              "HPUB s 26 26\r\nNATS/1.0\r\nK: a: b\t\xc3\xa9 \x01\r\n\r\n");
}


TEST(Framer, SubExact)
{
    EXPECT_EQ(frame(sub("foo", "", 1)), "SUB foo 1\r\n");
    EXPECT_EQ(frame(sub("foo.*.>", "workers", 42)),
              "SUB foo.*.> workers 42\r\n");
    EXPECT_EQ(frame(sub(">", "q.a.b", 18446744073709551615ull)),
              "SUB > q.a.b 18446744073709551615\r\n");
    EXPECT_EQ(frame(sub("*", "", 0)), "SUB * 0\r\n");
}


TEST(Framer, UnsubExact)
{
    auto  unsub = [](std::uint64_t sid, std::uint64_t max) {
        return [=](char *b, std::size_t s, std::size_t &n, error_detail *) {
            return frame_unsub(b, s, n, sid, max);
        };
    };

    EXPECT_EQ(frame(unsub(1, 0)), "UNSUB 1\r\n");
    EXPECT_EQ(frame(unsub(7, 1)), "UNSUB 7 1\r\n");
    EXPECT_EQ(frame(unsub(UINT64_MAX, UINT64_MAX)),
              "UNSUB 18446744073709551615 18446744073709551615\r\n");
}


TEST(Framer, ConnectExact)
{
    resty_nats_connect_opts_t  o = no_options();

    EXPECT_EQ(frame(connect(o)), "CONNECT {}\r\n");

    o.verbose = 0;
    o.pedantic = 0;
    o.tls_required = 0;
    o.name = str("svc");
    o.lang = str("lua");
    o.version = str("0.1.0");
    o.protocol = 1;
    o.echo = 1;
    o.headers = 1;
    o.no_responders = 1;
    EXPECT_EQ(frame(connect(o)),
              "CONNECT {\"verbose\":false,\"pedantic\":false,"
              "\"tls_required\":false,\"name\":\"svc\",\"lang\":\"lua\","
              "\"version\":\"0.1.0\",\"protocol\":1,\"echo\":true,"
              "\"headers\":true,\"no_responders\":true}\r\n");

    o = no_options();
    o.user = str("u");
    o.pass = str("p");
    o.auth_token = str("t");
    o.jwt = str("j");
    o.nkey = str("k");
    o.sig = str("s");
    o.verbose = 7;  /* any positive value is true */
    o.protocol = 0;
    EXPECT_EQ(frame(connect(o)),
              "CONNECT {\"verbose\":true,\"protocol\":0,\"user\":\"u\","
              "\"pass\":\"p\",\"auth_token\":\"t\",\"jwt\":\"j\","
              "\"nkey\":\"k\",\"sig\":\"s\"}\r\n");

    /* data non-NULL with len 0 is "", data NULL is left out */
    o = no_options();
    o.name = str("");
    o.pass.data = nullptr;
    EXPECT_EQ(frame(connect(o)), "CONNECT {\"name\":\"\"}\r\n");
}


TEST(Framer, ConnectEscapingRoundTrips)
{
    const std::string  pass = "p\"a\\ss\r\nword\",\"user\":\"x\"\x01\x7f"
                              "\xc3\xa9";
    const std::string  user = "alice";
    const std::string  name = "we\"ird\tname\n";

    resty_nats_connect_opts_t  o = no_options();

    o.verbose = 0;
    o.user.data = user.data();
    o.user.len = user.size();
    o.pass.data = pass.data();
    o.pass.len = pass.size();
    o.name.data = name.data();
    o.name.len = name.size();

    std::string  line = frame(connect(o));

    ASSERT_EQ(line.compare(0, 8, "CONNECT "), 0);
    ASSERT_EQ(line.substr(line.size() - 2), "\r\n");
    /* one line: no raw CR or LF before the end */
    EXPECT_EQ(line.find_first_of("\r\n"), line.size() - 2);

    std::string   doc = line.substr(8, line.size() - 10);
    json::value   v;
    error_detail  err;

    ASSERT_EQ(json::parse(doc.data(), doc.size(), v, &err), errc::ok)
        << err.text();
    ASSERT_TRUE(v.is(json::kind::object));
    ASSERT_EQ(v.size(), 4u);  /* verbose, name, user, pass: nothing more */
    EXPECT_EQ(v.key(0), "verbose");
    EXPECT_EQ(v.key(1), "name");
    EXPECT_EQ(v.key(2), "user");
    EXPECT_EQ(v.key(3), "pass");
    EXPECT_EQ(v.find("pass")->text(), pass);
    EXPECT_EQ(v.find("user")->text(), user);
    EXPECT_EQ(v.find("name")->text(), name);
}


TEST(Framer, ConnectRefusals)
{
    resty_nats_connect_opts_t  o = no_options();
    std::string                jwt(5000, 'j');

    o.jwt.data = jwt.data();
    o.jwt.len = jwt.size();
    EXPECT_NE(refusal(connect(o), errc::line_too_long)
                  .find("control line too long"),
              std::string::npos);

    /* just fits: "CONNECT {\"jwt\":\"" + x + "\"}\r\n" == 4096 */
    std::string  fits(4096 - std::strlen("CONNECT {\"jwt\":\"\"}\r\n"), 'j');
    o.jwt.data = fits.data();
    o.jwt.len = fits.size();
    EXPECT_EQ(frame(connect(o)).size(), 4096u);

    /* escaping counts: 2100 quotes become 4200 bytes */
    std::string  quotes(2100, '"');
    o.jwt.data = quotes.data();
    o.jwt.len = quotes.size();
    refusal(connect(o), errc::line_too_long);

    o = no_options();
    o.pass.data = nullptr;
    o.pass.len = 3;
    EXPECT_EQ(refusal(connect(o), errc::null_pointer), "null pointer");
}


TEST(Framer, SubjectRefusals)
{
    struct {
        const char   *subject;
        std::size_t   len;
        const char   *problem;
    } cases[] = {
        { "", 0, "empty" },
        { "foo bar", 7, "contains whitespace or control character" },
        { "foo\tbar", 7, "contains whitespace or control character" },
        { "foo\rbar", 7, "contains whitespace or control character" },
        { "foo\nbar", 7, "contains whitespace or control character" },
        { "foo\r\nPUB x 1", 12, "contains whitespace or control character" },
        { "foo\0bar", 7, "contains whitespace or control character" },
        { "foo\x7f", 4, "contains whitespace or control character" },
        { "foo\x1f", 4, "contains whitespace or control character" },
        { " ", 1, "contains whitespace or control character" },
        { "foo..bar", 8, "empty token" },
        { ".foo", 4, "empty token" },
        { "foo.", 4, "empty token" },
        { ".", 1, "empty token" },
        { "*", 1, "wildcard not allowed" },
        { ">", 1, "wildcard not allowed" },
        { "foo.*", 5, "wildcard not allowed" },
        { "foo.>", 5, "wildcard not allowed" },
        { "*.foo", 5, "wildcard not allowed" },
    };

    for (const auto &c : cases) {
        std::string  s(c.subject, c.len);
        std::string  exp = std::string("invalid subject: ") + c.problem;

        EXPECT_EQ(refusal(pub(s), errc::invalid_subject), exp) << s;
        EXPECT_EQ(refusal(hpub(s, "", {}), errc::invalid_subject), exp) << s;
        EXPECT_EQ(validate_subject(s, subject_kind::publish, nullptr),
                  errc::invalid_subject);

        if (c.len == 0) {
            continue;  /* an empty reply means none */
        }

        std::string  rexp = std::string("invalid reply subject: ")
                            + c.problem;
        EXPECT_EQ(refusal(pub("ok", s), errc::invalid_reply), rexp) << s;
        EXPECT_EQ(refusal(hpub("ok", s, {}), errc::invalid_reply), rexp);
    }
}


TEST(Framer, SubSubjectRules)
{
    const char *const good[] = {
        "foo", "foo.bar", "*", ">", "foo.*", "foo.>", "*.*.>", "foo.*.bar",
        "foo*", "f>o", "foo>.bar", "*foo.b*r", "caf\xc3\xa9.>", "$JS.API.>",
    };
    for (const char *g : good) {
        EXPECT_EQ(validate_subject(g, subject_kind::subscribe, nullptr),
                  errc::ok) << g;
        EXPECT_EQ(frame(sub(g, "", 1)),
                  std::string("SUB ") + g + " 1\r\n");
    }

    /* literal look-alikes are fine for PUB too */
    const char *const literal[] = { "foo*", "f>o", "foo>.bar", "*foo" };
    for (const char *l : literal) {
        EXPECT_EQ(validate_subject(l, subject_kind::publish, nullptr),
                  errc::ok) << l;
    }

    EXPECT_EQ(refusal(sub(">.foo", "", 1), errc::invalid_subject),
              "invalid subject: '>' must be the last token");
    EXPECT_EQ(refusal(sub("a.>.b", "", 1), errc::invalid_subject),
              "invalid subject: '>' must be the last token");
    EXPECT_EQ(refusal(sub("a..b", "", 1), errc::invalid_subject),
              "invalid subject: empty token");
    EXPECT_EQ(refusal(sub("a b", "", 1), errc::invalid_subject),
              "invalid subject: contains whitespace or control character");
    EXPECT_EQ(refusal(sub("", "", 1), errc::invalid_subject),
              "invalid subject: empty");
}


TEST(Framer, QueueRules)
{
    EXPECT_EQ(validate_queue("workers", nullptr), errc::ok);
    EXPECT_EQ(validate_queue("a.b", nullptr), errc::ok);
    EXPECT_EQ(validate_queue("q\xc3\xa9", nullptr), errc::ok);
    EXPECT_EQ(validate_queue("*", nullptr), errc::ok);

    EXPECT_EQ(refusal(sub("foo", "a b", 1), errc::invalid_queue),
              "invalid queue group: contains whitespace or control "
              "character");
    EXPECT_EQ(refusal(sub("foo", "a\r\nUNSUB 1", 1), errc::invalid_queue),
              "invalid queue group: contains whitespace or control "
              "character");
    EXPECT_EQ(refusal(sub("foo", "\t", 1), errc::invalid_queue),
              "invalid queue group: contains whitespace or control "
              "character");

    error_detail  err;
    EXPECT_EQ(validate_queue("", &err), errc::invalid_queue);
    EXPECT_EQ(err.text(), "invalid queue group: empty");
}


TEST(Framer, HeaderRefusals)
{
    const char *const bad_names[] = {
        "", "Bad Name", "Bad:Name", "Tab\tName", "Cr\r", "Lf\n", "Del\x7f",
        "Utf\xc3\xa9", "Nul\x01",
    };
    for (const char *n : bad_names) {
        std::string  msg = refusal(hpub("s", "", {{n, "v"}}),
                                   errc::invalid_header_name);

        EXPECT_EQ(msg.rfind("invalid header name: ", 0), 0u) << msg;
    }

    const char *const bad_values[] = { "a\rb", "a\nb", "\r\n", "x\r\nY: 1" };
    for (const char *v : bad_values) {
        EXPECT_EQ(refusal(hpub("s", "", {{"K", "ok"}, {"Name", v}}),
                          errc::invalid_header_value),
                  "invalid header value: contains CR or LF");
    }

    /* NULL with a length is refused, NULL array with count too */
    resty_nats_header_t  h;
    std::size_t          n = 0;
    error_detail         err;

    h.name = str("A");
    h.value.data = nullptr;
    h.value.len = 2;
    EXPECT_EQ(frame_hpub(nullptr, 0, n, "s", "", &h, 1, 0, 0, &err),
              errc::null_pointer);
    EXPECT_EQ(frame_hpub(nullptr, 0, n, "s", "", nullptr, 1, 0, 0, &err),
              errc::null_pointer);
    EXPECT_EQ(frame_hpub(nullptr, 0, n, "s", "", nullptr, 0, 0, 0, &err),
              errc::again);
    EXPECT_EQ(n, 26u);  /* "HPUB s 12 12\r\n" + "NATS/1.0\r\n\r\n" */
}


TEST(Framer, ControlLineTooLong)
{
    /* "PUB " + subject + " 5\r\n" */
    std::string  fits(4096 - 4 - 4, 's');
    std::string  over = fits + "s";

    EXPECT_EQ(frame(pub(fits)).size(), 4096u);
    EXPECT_EQ(refusal(pub(over), errc::line_too_long),
              "control line too long (4097 > 4096 bytes)");

    std::string  reply(4000, 'r');
    refusal(pub(std::string(100, 's'), reply), errc::line_too_long);

    /* HPUB: only the first line counts, headers may be long */
    std::string  big_value(10000, 'v');
    EXPECT_EQ(frame(hpub("s", "", {{"K", big_value}})).size(),
              std::strlen("HPUB s 10017 10017\r\n") + 10017);
    std::string  hsub(4096 - std::strlen("HPUB  12 12\r\n") + 1, 's');
    refusal(hpub(hsub, "", {}), errc::line_too_long);

    std::string  ssub(4096, 's');
    refusal(sub(ssub, "", 1), errc::line_too_long);
    refusal(sub("s", ssub, 1), errc::line_too_long);
}


TEST(Framer, MaxPayload)
{
    EXPECT_EQ(refusal(pub("s", "", 2000000, 1048576),
                      errc::payload_too_large),
              "payload too large (2000000 > max_payload 1048576)");
    EXPECT_EQ(frame(pub("s", "", 1048576, 1048576)), "PUB s 1048576\r\n");
    /* 0: no bound */
    EXPECT_EQ(frame(pub("s", "", 2000000, 0)), "PUB s 2000000\r\n");

    /* HPUB counts headers plus payload: 22 + 78 = 100 */
    EXPECT_EQ(frame(hpub("FOO", "", {{"Bar", "Baz"}}, 78, 100)),
              "HPUB FOO 22 100\r\nNATS/1.0\r\nBar: Baz\r\n\r\n");
    EXPECT_EQ(refusal(hpub("FOO", "", {{"Bar", "Baz"}}, 79, 100),
                      errc::payload_too_large),
              "payload too large (101 > max_payload 100)");
    refusal(hpub("FOO", "", {}, SIZE_MAX, 0), errc::payload_too_large);
}


TEST(Framer, ValidationBeforeSizeCheck)
{
    std::size_t   n = 99;
    error_detail  err;

    EXPECT_EQ(frame_pub(nullptr, 0, n, "bad subject", "", 1, 0, &err),
              errc::invalid_subject);
    EXPECT_EQ(n, 99u);  /* untouched on error */
    EXPECT_EQ(frame_sub(nullptr, 0, n, "a.>.b", "", 1, &err),
              errc::invalid_subject);
    EXPECT_EQ(frame_pub(nullptr, 0, n, "ok", "", 10, 5, &err),
              errc::payload_too_large);
    EXPECT_EQ(n, 99u);
}


}  // namespace
}  // namespace resty_nats
