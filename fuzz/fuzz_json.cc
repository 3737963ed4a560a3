/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_json: the INFO JSON reader and the CONNECT string escaper.
 *
 * Input layout: byte 0 selects the mode, the rest is the text.
 *   even: the text is a JSON document. When json::parse accepts it, the
 *         tree is written out again (by an encoder of this file), parsed
 *         again and must be the same tree; integers must read back through
 *         get_int64/get_uint64 as an independent decimal model says;
 *         resty_nats_parser_info must succeed exactly for objects and
 *         return the fields the tree holds; nesting is at most
 *         json::max_depth. When json::parse refuses it, so must
 *         resty_nats_parser_info, and "too deep" only for text nested
 *         deeper than json::max_depth.
 *   odd:  the text is any byte string: json::escape must produce exactly
 *         escaped_size() bytes, none below 0x20 and no bare '"', and
 *         parsing "\"<escaped>\"" must give the original bytes back.
 */

#include "fuzz_common.h"
#include "nats_json.h"


namespace json = resty_nats::json;


namespace {


void
encode_string(std::string &out, std::string_view s)
{
    static const char  hex[] = "0123456789abcdef";

    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}


void
encode(std::string &out, const json::value &v)
{
    switch (v.type()) {
    case json::kind::null_value:
        out += "null";
        break;
    case json::kind::boolean:
        out += v.boolean() ? "true" : "false";
        break;
    case json::kind::number:
        out += v.text();
        break;
    case json::kind::string:
        encode_string(out, v.text());
        break;
    case json::kind::array:
        out += '[';
        for (std::size_t i = 0; i < v.size(); i++) {
            if (i > 0) {
                out += ',';
            }
            encode(out, v.at(i));
        }
        out += ']';
        break;
    case json::kind::object:
        out += '{';
        for (std::size_t i = 0; i < v.size(); i++) {
            if (i > 0) {
                out += ',';
            }
            encode_string(out, v.key(i));
            out += ':';
            encode(out, v.at(i));
        }
        out += '}';
        break;
    }
}


bool
same_tree(const json::value &a, const json::value &b)
{
    if (a.type() != b.type()) {
        return false;
    }
    switch (a.type()) {
    case json::kind::null_value:
        return true;
    case json::kind::boolean:
        return a.boolean() == b.boolean();
    case json::kind::number:
    case json::kind::string:
        return a.text() == b.text();
    case json::kind::array:
    case json::kind::object:
        if (a.size() != b.size()) {
            return false;
        }
        for (std::size_t i = 0; i < a.size(); i++) {
            if (a.type() == json::kind::object && a.key(i) != b.key(i)) {
                return false;
            }
            if (!same_tree(a.at(i), b.at(i))) {
                return false;
            }
        }
        return true;
    }
    return false;
}


/* -?(0|[1-9][0-9]*) that fits, as the reader documents its integers */
bool
model_int(std::string_view t, bool want_signed, std::int64_t &i64,
    std::uint64_t &u64)
{
    bool              neg = false;
    unsigned __int128 v = 0;

    if (!t.empty() && t[0] == '-') {
        neg = true;
        t.remove_prefix(1);
    }
    if (t.empty() || t.size() > 25) {
        return false;
    }
    for (char c : t) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }

    if (!want_signed) {
        if (neg || v > UINT64_MAX) {
            return false;
        }
        u64 = static_cast<std::uint64_t>(v);
        return true;
    }

    if (neg) {
        if (v > static_cast<unsigned __int128>(INT64_MAX) + 1) {
            return false;
        }
        i64 = v == 0 ? 0 : static_cast<std::int64_t>(-(static_cast<__int128>(v)));
        return true;
    }
    if (v > INT64_MAX) {
        return false;
    }
    i64 = static_cast<std::int64_t>(v);
    return true;
}


void
check_numbers(const json::value &v)
{
    if (v.is(json::kind::number)) {
        std::int64_t   i = 0, mi = 0;
        std::uint64_t  u = 0, mu = 0;
        bool           ok_i = v.get_int64(i);
        bool           ok_u = v.get_uint64(u);

        FUZZ_CHECK_MSG(ok_i == model_int(v.text(), true, mi, mu),
                       "get_int64 " + fuzz::quote(v.text()));
        FUZZ_CHECK(!ok_i || i == mi);
        FUZZ_CHECK_MSG(ok_u == model_int(v.text(), false, mi, mu),
                       "get_uint64 " + fuzz::quote(v.text()));
        FUZZ_CHECK(!ok_u || u == mu);
        return;
    }

    if (v.is(json::kind::array) || v.is(json::kind::object)) {
        for (std::size_t i = 0; i < v.size(); i++) {
            check_numbers(v.at(i));
        }
    } else {
        std::int64_t   i;
        std::uint64_t  u;

        FUZZ_CHECK(!v.get_int64(i) && !v.get_uint64(u));
    }
}


/* the deepest array/object nesting of the text, strings skipped */
std::size_t
scan_depth(std::string_view t)
{
    std::size_t  depth = 0, deepest = 0;
    bool         in_string = false;

    for (std::size_t i = 0; i < t.size(); i++) {
        char  c = t[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            depth++;
            deepest = depth > deepest ? depth : deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}


std::string
member_string(const json::value &root, std::string_view key)
{
    const json::value  *v = root.find(key);

    return v != nullptr && v->is(json::kind::string) ? std::string(v->text())
                                                     : std::string();
}


int
member_bool(const json::value &root, std::string_view key)
{
    const json::value  *v = root.find(key);

    return v != nullptr && v->is(json::kind::boolean) && v->boolean();
}


void
check_document(const std::string &text)
{
    json::value                root, again;
    resty_nats::error_detail   e;
    resty_nats::errc           rc;
    resty_nats_parser_t       *p = nullptr;
    resty_nats_info_t          info;
    char                       err[256];
    std::size_t                errlen = sizeof(err);
    int                        irc;

    rc = json::parse(text.data(), text.size(), root, &e);

    FUZZ_CHECK(resty_nats_parser_new(&p, 0) == RESTY_NATS_OK);
    irc = resty_nats_parser_info(p, text.data(), text.size(), &info, err,
                                 &errlen);

    if (rc != resty_nats::errc::ok) {
        FUZZ_CHECK(rc == resty_nats::errc::json_syntax
                   || rc == resty_nats::errc::json_too_deep);
        FUZZ_CHECK(!e.text().empty());
        FUZZ_CHECK(rc != resty_nats::errc::json_too_deep
                   || scan_depth(text) > json::max_depth);
        FUZZ_CHECK(irc == RESTY_NATS_ERROR && errlen > 0);
        FUZZ_CHECK(std::string_view(err, errlen) == e.text());
        resty_nats_parser_free(p);
        return;
    }

    /* write it out, read it back: the same tree */
    std::string  out;

    encode(out, root);
    FUZZ_CHECK_MSG(json::parse(out.data(), out.size(), again, nullptr)
                   == resty_nats::errc::ok, "re-encoded text refused: "
                   + fuzz::quote(out));
    FUZZ_CHECK_MSG(same_tree(root, again), fuzz::quote(text) + " vs "
                   + fuzz::quote(out));

    check_numbers(root);
    FUZZ_CHECK(scan_depth(text) <= json::max_depth);

    if (!root.is(json::kind::object)) {
        FUZZ_CHECK(irc == RESTY_NATS_ERROR);
        FUZZ_CHECK(std::string_view(err, errlen).find("not an object")
                   != std::string_view::npos);
        resty_nats_parser_free(p);
        return;
    }

    FUZZ_CHECK(irc == RESTY_NATS_OK);
    FUZZ_CHECK(fuzz::sv(info.server_id) == member_string(root, "server_id"));
    FUZZ_CHECK(fuzz::sv(info.server_name)
               == member_string(root, "server_name"));
    FUZZ_CHECK(fuzz::sv(info.version) == member_string(root, "version"));
    FUZZ_CHECK(fuzz::sv(info.nonce) == member_string(root, "nonce"));

    std::string         urls;
    const json::value  *cu = root.find("connect_urls");

    if (cu != nullptr && cu->is(json::kind::array)) {
        for (std::size_t i = 0; i < cu->size(); i++) {
            if (cu->at(i).is(json::kind::string)) {
                if (!urls.empty()) {
                    urls += ',';
                }
                urls += cu->at(i).text();
            }
        }
    }
    FUZZ_CHECK(fuzz::sv(info.connect_urls) == urls);

    std::int64_t        i64 = 0;
    std::uint64_t       u64 = 0;
    const json::value  *mp = root.find("max_payload");

    FUZZ_CHECK(info.max_payload
               == (mp != nullptr && mp->get_int64(i64) ? i64 : 0));
    mp = root.find("proto");
    FUZZ_CHECK(info.proto == (mp != nullptr && mp->get_int64(i64) ? i64 : 0));
    mp = root.find("client_id");
    FUZZ_CHECK(info.client_id
               == (mp != nullptr && mp->get_uint64(u64) ? u64 : 0));

    FUZZ_CHECK(info.headers == member_bool(root, "headers"));
    FUZZ_CHECK(info.auth_required == member_bool(root, "auth_required"));
    FUZZ_CHECK(info.tls_required == member_bool(root, "tls_required"));
    FUZZ_CHECK(info.tls_available == member_bool(root, "tls_available"));
    FUZZ_CHECK(info.tls_verify == member_bool(root, "tls_verify"));
    FUZZ_CHECK(info.ldm == member_bool(root, "ldm"));
    FUZZ_CHECK(info.jetstream == member_bool(root, "jetstream"));

    resty_nats_parser_free(p);
}


void
check_escape(const std::string &s)
{
    std::size_t   n = json::escaped_size(s.data(), s.size());
    std::string   esc(n, '\0');
    std::string   doc, appended = "x";
    json::value   v;

    FUZZ_CHECK(n >= s.size());
    FUZZ_CHECK(json::escape(esc.empty() ? nullptr : &esc[0], s.data(),
                            s.size()) == n);

    for (std::size_t i = 0; i < esc.size(); i++) {
        unsigned char  c = static_cast<unsigned char>(esc[i]);

        FUZZ_CHECK(c >= 0x20);
        if (c == '\\') {
            i++;  /* the escaped byte */
            FUZZ_CHECK(i < esc.size());
        } else {
            FUZZ_CHECK(c != '"');
        }
    }

    json::append_escaped(appended, s);
    FUZZ_CHECK(appended == "x" + esc);

    doc = "\"" + esc + "\"";
    FUZZ_CHECK_MSG(json::parse(doc.data(), doc.size(), v, nullptr)
                   == resty_nats::errc::ok, fuzz::quote(doc));
    FUZZ_CHECK(v.is(json::kind::string));
    FUZZ_CHECK_MSG(v.text() == s, fuzz::quote(s) + " -> " + fuzz::quote(doc)
                   + " -> " + fuzz::quote(v.text()));
}


}  // namespace


extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::byte_source  in(data, size);
    std::uint8_t       mode = in.u8();
    std::string        text = in.rest();

    if (mode & 1) {
        check_escape(text);
    } else {
        check_document(text);
    }

    return 0;
}
