/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "nats_json.h"


namespace resty_nats {
namespace {


errc
parse_str(const std::string &text, json::value &v, error_detail *err = nullptr)
{
    return json::parse(text.data(), text.size(), v, err);
}


std::string
string_of(const std::string &text)
{
    json::value   v;
    error_detail  err;

    EXPECT_EQ(parse_str(text, v, &err), errc::ok) << text << ": "
                                                  << err.text();
    EXPECT_TRUE(v.is(json::kind::string)) << text;
    return std::string(v.text());
}


TEST(Json, Literals)
{
    json::value  v;

    ASSERT_EQ(parse_str("true", v), errc::ok);
    EXPECT_TRUE(v.is(json::kind::boolean));
    EXPECT_TRUE(v.boolean());

    ASSERT_EQ(parse_str(" false ", v), errc::ok);
    EXPECT_TRUE(v.is(json::kind::boolean));
    EXPECT_FALSE(v.boolean());

    ASSERT_EQ(parse_str("\r\n\tnull\n", v), errc::ok);
    EXPECT_TRUE(v.is(json::kind::null_value));
}


TEST(Json, ObjectsAndArrays)
{
    json::value         v;
    const json::value  *m;

    ASSERT_EQ(parse_str("{\"a\": [1, \"two\", {\"b\": null}, []],"
                        " \"c\" : {} , \"a2\":true}", v),
              errc::ok);
    ASSERT_TRUE(v.is(json::kind::object));
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v.key(0), "a");
    EXPECT_EQ(v.key(1), "c");
    EXPECT_EQ(v.key(2), "a2");

    m = v.find("a");
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->is(json::kind::array));
    ASSERT_EQ(m->size(), 4u);
    EXPECT_EQ(m->at(0).text(), "1");
    EXPECT_EQ(m->at(1).text(), "two");
    ASSERT_NE(m->at(2).find("b"), nullptr);
    EXPECT_TRUE(m->at(2).find("b")->is(json::kind::null_value));
    EXPECT_EQ(m->at(3).size(), 0u);

    EXPECT_TRUE(v.find("c")->is(json::kind::object));
    EXPECT_EQ(v.find("missing"), nullptr);
    EXPECT_EQ(m->find("a"), nullptr);  /* not an object */
}


TEST(Json, DuplicateKeysLastWins)
{
    json::value  v;

    ASSERT_EQ(parse_str("{\"k\":1,\"k\":2}", v), errc::ok);
    EXPECT_EQ(v.size(), 2u);
    EXPECT_EQ(v.find("k")->text(), "2");
}


TEST(Json, Numbers)
{
    json::value    v;
    std::int64_t   i;
    std::uint64_t  u;

    const char *const good[] = {
        "0", "-0", "1", "-1", "123456789", "1.5", "-0.25", "1e10", "1E+2",
        "2e-3", "0.0e0",
    };
    for (const char *g : good) {
        ASSERT_EQ(parse_str(g, v), errc::ok) << g;
        EXPECT_TRUE(v.is(json::kind::number));
        EXPECT_EQ(v.text(), g);
    }

    const char *const bad[] = {
        "01", "-", "+1", "1.", ".5", "1e", "1e+", "--1", "0x10", "1.5.5",
        "NaN", "Infinity", "-01",
    };
    for (const char *b : bad) {
        error_detail  err;
        EXPECT_EQ(parse_str(b, v, &err), errc::json_syntax) << b;
        EXPECT_NE(std::string(err.text()).find("invalid json"),
                  std::string::npos);
    }

    ASSERT_EQ(parse_str("9223372036854775807", v), errc::ok);
    ASSERT_TRUE(v.get_int64(i));
    EXPECT_EQ(i, INT64_MAX);
    ASSERT_EQ(parse_str("-9223372036854775808", v), errc::ok);
    ASSERT_TRUE(v.get_int64(i));
    EXPECT_EQ(i, INT64_MIN);
    ASSERT_EQ(parse_str("9223372036854775808", v), errc::ok);
    EXPECT_FALSE(v.get_int64(i));
    ASSERT_TRUE(v.get_uint64(u));
    EXPECT_EQ(u, 9223372036854775808ull);
    ASSERT_EQ(parse_str("18446744073709551615", v), errc::ok);
    ASSERT_TRUE(v.get_uint64(u));
    EXPECT_EQ(u, UINT64_MAX);
    ASSERT_EQ(parse_str("18446744073709551616", v), errc::ok);
    EXPECT_FALSE(v.get_uint64(u));
    ASSERT_EQ(parse_str("-5", v), errc::ok);
    EXPECT_FALSE(v.get_uint64(u));
    ASSERT_TRUE(v.get_int64(i));
    EXPECT_EQ(i, -5);
    ASSERT_EQ(parse_str("1.0", v), errc::ok);
    EXPECT_FALSE(v.get_int64(i));
    ASSERT_EQ(parse_str("1e3", v), errc::ok);
    EXPECT_FALSE(v.get_uint64(u));
    ASSERT_EQ(parse_str("\"5\"", v), errc::ok);
    EXPECT_FALSE(v.get_int64(i));
}


TEST(Json, StringEscapes)
{
    EXPECT_EQ(string_of("\"\""), "");
    EXPECT_EQ(string_of("\"plain\""), "plain");
    EXPECT_EQ(string_of("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
              "\" \\ / \b \f \n \r \t");
    EXPECT_EQ(string_of("\"\\u0041\\u00e9\\u20AC\""),
              "A\xc3\xa9\xe2\x82\xac");
    EXPECT_EQ(string_of("\"\\u0000\""), std::string(1, '\0'));
    EXPECT_EQ(string_of("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\""),
              "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
    /* raw UTF-8 passes through */
    EXPECT_EQ(string_of("\"caf\xc3\xa9\""), "caf\xc3\xa9");
}


TEST(Json, SurrogatePairs)
{
    EXPECT_EQ(string_of("\"\\ud83d\\ude00\""), "\xf0\x9f\x98\x80");
    EXPECT_EQ(string_of("\"\\uD800\\uDC00\""), "\xf0\x90\x80\x80");
    EXPECT_EQ(string_of("\"\\udbff\\udfff\""), "\xf4\x8f\xbf\xbf");
    EXPECT_EQ(string_of("\"a\\ud83d\\ude00b\""), "a\xf0\x9f\x98\x80" "b");

    const char *const bad[] = {
        "\"\\ud83d\"",           /* high alone */
        "\"\\ud83dx\"",
        "\"\\ud83d\\n\"",
        "\"\\ud83d\\u0041\"",    /* high + non-low */
        "\"\\ud83d\\ud83d\"",
        "\"\\ude00\"",           /* low alone */
        "\"\\ude00\\ud83d\"",    /* reversed */
        "\"\\ud83d\\ude0\"",
    };
    for (const char *b : bad) {
        json::value   v;
        error_detail  err;

        EXPECT_EQ(parse_str(b, v, &err), errc::json_syntax) << b;
    }
}


TEST(Json, BadInput)
{
    const char *const bad[] = {
        "", " ", "{", "}", "[", "]", "[1,]", "{\"a\":1,}", "{,}", "[,1]",
        "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}", "{\"a\":1 \"b\":2}",
        "[1 2]", "tru", "truex", "nul", "True", "\"abc", "\"\\x\"",
        "\"\\u12\"", "\"\\u12g4\"", "\"a\nb\"", "\"a\tb\"",
        "1 2", "{} {}", "[] x", "//",
        "/* */ 1", "\"\\", "[\"a\",", "{\"a\":[}",
    };

    for (const char *b : bad) {
        json::value   v;
        error_detail  err;

        EXPECT_EQ(parse_str(b, v, &err), errc::json_syntax)
            << "input: " << b;
        EXPECT_EQ(err.code(), errc::json_syntax);
        EXPECT_NE(std::string(err.text()).find("offset"), std::string::npos);
    }

    /* raw control characters inside strings */
    for (int c = 0; c < 0x20; c++) {
        json::value  v;
        std::string  text = "\"a";

        text += static_cast<char>(c);
        text += "\"";
        EXPECT_EQ(parse_str(text, v), errc::json_syntax) << c;
    }
}


TEST(Json, DepthLimit)
{
    json::value   v;
    error_detail  err;
    std::size_t   d = json::max_depth;

    std::string  ok = std::string(d, '[') + std::string(d, ']');
    EXPECT_EQ(parse_str(ok, v), errc::ok);

    std::string  deep = std::string(d + 1, '[') + std::string(d + 1, ']');
    EXPECT_EQ(parse_str(deep, v, &err), errc::json_too_deep);
    EXPECT_NE(std::string(err.text()).find("too deep"), std::string::npos);

    std::string  objs;
    for (std::size_t i = 0; i < d; i++) {
        objs += "{\"a\":";
    }
    objs += "1" + std::string(d, '}');
    EXPECT_EQ(parse_str(objs, v), errc::ok);
    objs = "[" + objs + "]";
    EXPECT_EQ(parse_str(objs, v), errc::json_too_deep);

    /* a huge nesting fails fast, without exhausting the stack */
    std::string  huge(1000000, '[');
    EXPECT_EQ(parse_str(huge, v), errc::json_too_deep);
}


TEST(Json, EscapeShortForms)
{
    std::string  out;

    json::append_escaped(out, std::string_view("a\"b\\c\b\f\n\r\t", 10));
    EXPECT_EQ(out, "a\\\"b\\\\c\\b\\f\\n\\r\\t");
}


TEST(Json, EscapeControlAndPassThrough)
{
    std::string  out;

    json::append_escaped(out, std::string_view("\x00\x01\x1f\x7f", 4));
    EXPECT_EQ(out, "\\u0000\\u0001\\u001f\x7f");

    out.clear();
    json::append_escaped(out, "caf\xc3\xa9 \xe2\x80\xa8 / ' <>");
    EXPECT_EQ(out, "caf\xc3\xa9 \xe2\x80\xa8 / ' <>");

    out = "keep:";
    json::append_escaped(out, "");
    EXPECT_EQ(out, "keep:");
}


TEST(Json, EscapedSizeMatchesEscape)
{
    std::string  all;

    for (int c = 0; c < 256; c++) {
        all += static_cast<char>(c);
    }

    std::size_t  n = json::escaped_size(all.data(), all.size());
    std::string  buf(n + 8, '#');

    EXPECT_EQ(json::escape(&buf[0], all.data(), all.size()), n);
    EXPECT_EQ(buf.substr(n), "########");
}


TEST(Json, EscapeRoundTripsEveryByte)
{
    std::string   all, doc;
    json::value   v;
    error_detail  err;

    for (int c = 0; c < 256; c++) {
        all += static_cast<char>(c);
    }
    all += "\"\\\"\\";

    doc = "\"";
    json::append_escaped(doc, all);
    doc += "\"";

    ASSERT_EQ(parse_str(doc, v, &err), errc::ok) << err.text();
    EXPECT_EQ(v.text(), all);
}


TEST(Json, MutatedInputNeverCrashes)
{
    static const char  alphabet[] = "{}[]\",:\\u0123456789aeE-+. x";

    std::uint64_t  state = 0x2545f4914f6cdd1dull;
    auto           rnd = [&state]() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    const std::string  base =
        "{\"server_id\":\"N\\u00e9\\ud83d\\ude00\",\"proto\":1,"
        "\"max_payload\":1048576,\"connect_urls\":[\"a:1\",\"b:2\"],"
        "\"x\":[true,false,null,-1.5e3,{\"y\":[]}]}";

    json::value  v;
    ASSERT_EQ(parse_str(base, v), errc::ok);

    for (int round = 0; round < 5000; round++) {
        std::string   text = base;
        error_detail  err;
        int           flips = static_cast<int>(rnd() % 3) + 1;

        for (int i = 0; i < flips; i++) {
            text[rnd() % text.size()] =
                alphabet[rnd() % (sizeof(alphabet) - 1)];
        }
        text.resize(rnd() % (text.size() + 1));

        errc  rc = parse_str(text, v, &err);
        if (rc != errc::ok) {
            EXPECT_EQ(err.code(), rc);
            EXPECT_FALSE(err.text().empty());
        }
    }
}


}  // namespace
}  // namespace resty_nats
