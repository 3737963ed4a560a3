/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_json.h: a small strict JSON reader (for INFO) and the string
 * escaper used by the CONNECT framer.
 *
 * The reader follows RFC 8259: no comments, no trailing commas, no leading
 * zeros, no raw control characters in strings, no lone surrogates. Bytes
 * >= 0x80 inside strings are passed through as they are (not checked as
 * UTF-8). Nesting is bounded by json::max_depth. Duplicate object keys are
 * kept; find() returns the last one.
 */

#ifndef RESTY_NATS_JSON_H
#define RESTY_NATS_JSON_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nats_errc.h"


namespace resty_nats {
namespace json {


constexpr std::size_t max_depth = 64;

enum class kind : unsigned char {
    null_value,
    boolean,
    number,
    string,
    array,
    object
};


namespace detail {
class reader;
}


class value {
public:
    kind type() const noexcept { return kind_; }
    bool is(kind k) const noexcept { return kind_ == k; }

    bool boolean() const noexcept { return bool_; }
    /* the unescaped string, or the number's text as written */
    std::string_view text() const noexcept { return text_; }

    /* integers without fraction or exponent that fit; else false */
    bool get_int64(std::int64_t &out) const noexcept;
    bool get_uint64(std::uint64_t &out) const noexcept;

    /* arrays and objects: number of elements or members */
    std::size_t size() const noexcept { return items_.size(); }
    const value &at(std::size_t i) const noexcept { return items_[i]; }
    /* objects: the key of member i */
    std::string_view key(std::size_t i) const noexcept { return keys_[i]; }
    /* objects: the member named key (the last one), or nullptr */
    const value *find(std::string_view key) const noexcept;

private:
    friend class detail::reader;

    kind                      kind_ = kind::null_value;
    bool                      bool_ = false;
    std::string               text_;
    std::vector<std::string>  keys_;
    std::vector<value>        items_;
};


/*
 * Parses the whole of [data, data + len) as one JSON text into out.
 * Returns errc::ok, errc::json_syntax or errc::json_too_deep (err gets a
 * message naming the problem and its offset). May throw std::bad_alloc.
 */
errc parse(const char *data, std::size_t len, value &out,
    error_detail *err = nullptr);

/*
 * The escaped form of a string without the surrounding quotes: '"', '\\'
 * and bytes < 0x20 are escaped (\b \f \n \r \t or \u00XX); other bytes
 * are copied. escape() writes to dst, which must hold escaped_size()
 * bytes, and returns that size.
 */
std::size_t escaped_size(const char *s, std::size_t len) noexcept;
std::size_t escape(char *dst, const char *s, std::size_t len) noexcept;
void append_escaped(std::string &out, std::string_view s);


}  // namespace json
}  // namespace resty_nats

#endif  // RESTY_NATS_JSON_H
