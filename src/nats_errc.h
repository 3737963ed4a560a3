/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_errc.h: error codes of the protocol core.
 *
 * The numeric values are part of the project's contract (they show up in
 * logs and tests): never renumber, only append. Every message table entry
 * starts with the code's name, e.g. "LINE_TOO_LONG: control line too long".
 */

#ifndef RESTY_NATS_ERRC_H
#define RESTY_NATS_ERRC_H

#include <cstddef>
#include <string_view>


namespace resty_nats {


enum class errc : int {
    ok = 0,
    again = 1,                  // more input, or a larger buffer, needed
    no_memory = 2,
    internal = 3,
    null_pointer = 4,
    unknown_sid = 5,
    sids_exhausted = 6,

    // protocol errors of the parser: the connection must be closed
    unknown_op = 10,
    line_too_long = 11,
    invalid_arguments = 12,
    invalid_size = 13,
    payload_too_large = 14,
    missing_crlf = 15,
    invalid_header_block = 16,

    // json reader
    json_syntax = 20,
    json_too_deep = 21,
    json_not_object = 22,

    // validation of outgoing data
    invalid_subject = 30,
    invalid_reply = 31,
    invalid_queue = 32,
    invalid_header_name = 33,
    invalid_header_value = 34
};


/* "NAME: text", e.g. "UNKNOWN_OP: unknown protocol operation" */
const char *errc_message(errc code) noexcept;
/* "UNKNOWN_OP" */
std::string_view errc_name(errc code) noexcept;
/* the text after the name: "unknown protocol operation" */
std::string_view errc_text(errc code) noexcept;
/* a parser error: the stream is out of sync and must be closed */
bool errc_is_fatal(errc code) noexcept;


/*
 * An error code plus a detail message in a fixed buffer, so that reporting
 * an error never allocates (the message may name sizes or the op).
 */
class error_detail {
public:
    static constexpr std::size_t capacity = 160;

    /* the table text of code */
    errc set(errc code) noexcept;
    /* a literal message */
    errc set(errc code, std::string_view text) noexcept;
    errc format(errc code, const char *fmt, ...) noexcept
        __attribute__((format(printf, 3, 4)));
    void clear() noexcept { code_ = errc::ok; len_ = 0; }

    errc code() const noexcept { return code_; }
    std::string_view text() const noexcept
    {
        return std::string_view(text_, len_);
    }

private:
    errc         code_ = errc::ok;
    std::size_t  len_ = 0;
    char         text_[capacity];   /* only its first len_ bytes are read */
};


/* sets *err when err is not null; returns code either way */
inline errc
set_error(error_detail *err, errc code, std::string_view text) noexcept
{
    if (err != nullptr) {
        err->set(code, text);
    }
    return code;
}


}  // namespace resty_nats

#endif  // RESTY_NATS_ERRC_H
