/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include "nats_json.h"

#include <cstring>


namespace resty_nats {
namespace json {
namespace detail {


class reader {
public:
    reader(const char *data, std::size_t len, error_detail *err) noexcept
        : start_(data), p_(data), end_(data + len), err_(err)
    {
    }

    errc parse_document(value &out);

private:
    errc parse_value(value &v, std::size_t depth);
    errc parse_object(value &v, std::size_t depth);
    errc parse_array(value &v, std::size_t depth);
    errc parse_string(std::string &out);
    errc parse_number(value &v);
    errc parse_literal(const char *word, std::size_t len);
    bool parse_hex4(unsigned &cp) noexcept;

    void skip_ws() noexcept;
    errc fail(const char *what) noexcept;

    const char    *start_;
    const char    *p_;
    const char    *end_;
    error_detail  *err_;
};


static void
put_utf8(std::string &out, unsigned cp)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);

    } else if (cp < 0x800) {
        out += static_cast<char>(0xc0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        out += static_cast<char>(0xe0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));

    } else {
        out += static_cast<char>(0xf0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
        out += static_cast<char>(0x80 | (cp & 0x3f));
    }
}


static bool
is_digit(char c) noexcept
{
    return c >= '0' && c <= '9';
}


errc
reader::fail(const char *what) noexcept
{
    if (err_ != nullptr) {
        err_->format(errc::json_syntax, "invalid json: %s at offset %zu",
                     what, static_cast<std::size_t>(p_ - start_));
    }
    return errc::json_syntax;
}


void
reader::skip_ws() noexcept
{
    while (p_ < end_
           && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r'))
    {
        p_++;
    }
}


errc
reader::parse_document(value &out)
{
    errc  rc;

    skip_ws();
    rc = parse_value(out, 1);
    if (rc != errc::ok) {
        return rc;
    }

    skip_ws();
    if (p_ != end_) {
        return fail("trailing characters");
    }

    return errc::ok;
}


errc
reader::parse_value(value &v, std::size_t depth)
{
    if (p_ == end_) {
        return fail("unexpected end of input");
    }

    switch (*p_) {
    case '{':
    case '[':
        if (depth > max_depth) {
            if (err_ != nullptr) {
                err_->format(errc::json_too_deep,
                             "json nesting too deep (over %zu levels)",
                             max_depth);
            }
            return errc::json_too_deep;
        }
        return *p_ == '{' ? parse_object(v, depth) : parse_array(v, depth);

    case '"':
        v.kind_ = kind::string;
        return parse_string(v.text_);

    case 't':
        v.kind_ = kind::boolean;
        v.bool_ = true;
        return parse_literal("true", 4);

    case 'f':
        v.kind_ = kind::boolean;
        v.bool_ = false;
        return parse_literal("false", 5);

    case 'n':
        v.kind_ = kind::null_value;
        return parse_literal("null", 4);

    default:
        if (*p_ == '-' || is_digit(*p_)) {
            return parse_number(v);
        }
        return fail("unexpected character");
    }
}


errc
reader::parse_literal(const char *word, std::size_t len)
{
    if (static_cast<std::size_t>(end_ - p_) < len
        || std::memcmp(p_, word, len) != 0)
    {
        return fail("invalid literal");
    }

    p_ += len;
    return errc::ok;
}


errc
reader::parse_object(value &v, std::size_t depth)
{
    errc  rc;

    v.kind_ = kind::object;
    p_++;  /* '{' */

    skip_ws();
    if (p_ < end_ && *p_ == '}') {
        p_++;
        return errc::ok;
    }

    for ( ;; ) {
        skip_ws();
        if (p_ == end_ || *p_ != '"') {
            return fail("expected a string key");
        }

        v.keys_.emplace_back();
        rc = parse_string(v.keys_.back());
        if (rc != errc::ok) {
            return rc;
        }

        skip_ws();
        if (p_ == end_ || *p_ != ':') {
            return fail("expected ':'");
        }
        p_++;

        skip_ws();
        v.items_.emplace_back();
        rc = parse_value(v.items_.back(), depth + 1);
        if (rc != errc::ok) {
            return rc;
        }

        skip_ws();
        if (p_ == end_) {
            return fail("unterminated object");
        }
        if (*p_ == '}') {
            p_++;
            return errc::ok;
        }
        if (*p_ != ',') {
            return fail("expected ',' or '}'");
        }
        p_++;
    }
}


errc
reader::parse_array(value &v, std::size_t depth)
{
    errc  rc;

    v.kind_ = kind::array;
    p_++;  /* '[' */

    skip_ws();
    if (p_ < end_ && *p_ == ']') {
        p_++;
        return errc::ok;
    }

    for ( ;; ) {
        skip_ws();
        v.items_.emplace_back();
        rc = parse_value(v.items_.back(), depth + 1);
        if (rc != errc::ok) {
            return rc;
        }

        skip_ws();
        if (p_ == end_) {
            return fail("unterminated array");
        }
        if (*p_ == ']') {
            p_++;
            return errc::ok;
        }
        if (*p_ != ',') {
            return fail("expected ',' or ']'");
        }
        p_++;
    }
}


bool
reader::parse_hex4(unsigned &cp) noexcept
{
    unsigned  v = 0;

    if (end_ - p_ < 4) {
        return false;
    }

    for (int i = 0; i < 4; i++) {
        char  c = p_[i];

        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= static_cast<unsigned>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= static_cast<unsigned>(c - 'A' + 10);
        } else {
            return false;
        }
    }

    p_ += 4;
    cp = v;
    return true;
}


errc
reader::parse_string(std::string &out)
{
    const char  *run;
    unsigned     cp, lo;

    p_++;  /* '"' */
    out.clear();

    for ( ;; ) {
        /* copy runs of plain bytes at once */
        run = p_;
        while (p_ < end_ && *p_ != '"' && *p_ != '\\'
               && static_cast<unsigned char>(*p_) >= 0x20)
        {
            p_++;
        }
        out.append(run, static_cast<std::size_t>(p_ - run));

        if (p_ == end_) {
            return fail("unterminated string");
        }

        if (*p_ == '"') {
            p_++;
            return errc::ok;
        }

        if (*p_ != '\\') {
            return fail("control character in string");
        }

        p_++;
        if (p_ == end_) {
            return fail("unterminated string");
        }

        switch (*p_++) {
        case '"':  out += '"'; break;
        case '\\': out += '\\'; break;
        case '/':  out += '/'; break;
        case 'b':  out += '\b'; break;
        case 'f':  out += '\f'; break;
        case 'n':  out += '\n'; break;
        case 'r':  out += '\r'; break;
        case 't':  out += '\t'; break;

        case 'u':
            if (!parse_hex4(cp)) {
                return fail("invalid \\u escape");
            }

            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return fail("lone low surrogate");
            }

            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
                    return fail("lone high surrogate");
                }
                p_ += 2;
                if (!parse_hex4(lo)) {
                    return fail("invalid \\u escape");
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    return fail("lone high surrogate");
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }

            put_utf8(out, cp);
            break;

        default:
            p_--;
            return fail("invalid escape");
        }
    }
}


errc
reader::parse_number(value &v)
{
    const char  *start = p_;

    v.kind_ = kind::number;

    if (*p_ == '-') {
        p_++;
    }

    if (p_ == end_ || !is_digit(*p_)) {
        return fail("invalid number");
    }

    if (*p_ == '0') {
        p_++;
        if (p_ < end_ && is_digit(*p_)) {
            return fail("leading zero in number");
        }

    } else {
        while (p_ < end_ && is_digit(*p_)) {
            p_++;
        }
    }

    if (p_ < end_ && *p_ == '.') {
        p_++;
        if (p_ == end_ || !is_digit(*p_)) {
            return fail("invalid number");
        }
        while (p_ < end_ && is_digit(*p_)) {
            p_++;
        }
    }

    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
        p_++;
        if (p_ < end_ && (*p_ == '+' || *p_ == '-')) {
            p_++;
        }
        if (p_ == end_ || !is_digit(*p_)) {
            return fail("invalid number");
        }
        while (p_ < end_ && is_digit(*p_)) {
            p_++;
        }
    }

    v.text_.assign(start, static_cast<std::size_t>(p_ - start));
    return errc::ok;
}


}  // namespace detail


/* digits only (the grammar was checked), overflow-safe */
static bool
parse_magnitude(std::string_view digits, std::uint64_t limit,
    std::uint64_t &out) noexcept
{
    std::uint64_t  v = 0;

    if (digits.empty()) {
        return false;
    }

    for (char c : digits) {
        unsigned  d;

        if (c < '0' || c > '9') {
            return false;  /* fraction or exponent */
        }
        d = static_cast<unsigned>(c - '0');
        if (v > (limit - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }

    out = v;
    return true;
}


bool
value::get_uint64(std::uint64_t &out) const noexcept
{
    if (kind_ != kind::number || text_.empty() || text_[0] == '-') {
        return false;
    }

    return parse_magnitude(text_, UINT64_MAX, out);
}


bool
value::get_int64(std::int64_t &out) const noexcept
{
    std::uint64_t     mag;
    std::string_view  digits = text_;
    bool              neg;

    if (kind_ != kind::number || digits.empty()) {
        return false;
    }

    neg = digits[0] == '-';
    if (neg) {
        digits.remove_prefix(1);
    }

    if (!parse_magnitude(digits,
                         neg ? static_cast<std::uint64_t>(INT64_MAX) + 1
                             : static_cast<std::uint64_t>(INT64_MAX),
                         mag))
    {
        return false;
    }

    if (neg) {
        /* -(mag) without overflowing at INT64_MIN */
        out = mag == 0 ? 0 : -static_cast<std::int64_t>(mag - 1) - 1;
    } else {
        out = static_cast<std::int64_t>(mag);
    }
    return true;
}


const value *
value::find(std::string_view key) const noexcept
{
    if (kind_ != kind::object) {
        return nullptr;
    }

    for (std::size_t i = keys_.size(); i > 0; i--) {
        if (keys_[i - 1] == key) {
            return &items_[i - 1];
        }
    }

    return nullptr;
}


errc
parse(const char *data, std::size_t len, value &out, error_detail *err)
{
    detail::reader  r(data, len, err);

    out = value();
    return r.parse_document(out);
}


/* the escape of byte c, or nullptr when c is copied as it is */
static const char *
short_escape(unsigned char c) noexcept
{
    switch (c) {
    case '"':  return "\\\"";
    case '\\': return "\\\\";
    case '\b': return "\\b";
    case '\f': return "\\f";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default:   return nullptr;
    }
}


std::size_t
escaped_size(const char *s, std::size_t len) noexcept
{
    std::size_t  n = len;

    for (std::size_t i = 0; i < len; i++) {
        unsigned char  c = static_cast<unsigned char>(s[i]);

        if (short_escape(c) != nullptr) {
            n += 1;
        } else if (c < 0x20) {
            n += 5;  /* \u00XX */
        }
    }

    return n;
}


std::size_t
escape(char *dst, const char *s, std::size_t len) noexcept
{
    static const char  hex[] = "0123456789abcdef";
    char              *p = dst;

    for (std::size_t i = 0; i < len; i++) {
        unsigned char  c = static_cast<unsigned char>(s[i]);
        const char    *e = short_escape(c);

        if (e != nullptr) {
            *p++ = e[0];
            *p++ = e[1];

        } else if (c < 0x20) {
            std::memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 0xf];
            p += 6;

        } else {
            *p++ = static_cast<char>(c);
        }
    }

    return static_cast<std::size_t>(p - dst);
}


void
append_escaped(std::string &out, std::string_view s)
{
    std::size_t  old = out.size();

    out.resize(old + escaped_size(s.data(), s.size()));
    escape(&out[old], s.data(), s.size());
}


}  // namespace json
}  // namespace resty_nats
