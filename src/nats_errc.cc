/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include "nats_errc.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>


namespace resty_nats {


const char *
errc_message(errc code) noexcept
{
    switch (code) {
    case errc::ok:
        return "OK: success";
    case errc::again:
        return "AGAIN: more input or a larger buffer needed";
    case errc::no_memory:
        return "NO_MEMORY: no memory";
    case errc::internal:
        return "INTERNAL: internal error";
    case errc::null_pointer:
        return "NULL_POINTER: null pointer";
    case errc::unknown_sid:
        return "UNKNOWN_SID: unknown sid";
    case errc::sids_exhausted:
        return "SIDS_EXHAUSTED: no sid left to allocate";
    case errc::unknown_op:
        return "UNKNOWN_OP: unknown protocol operation";
    case errc::line_too_long:
        return "LINE_TOO_LONG: control line too long";
    case errc::invalid_arguments:
        return "INVALID_ARGUMENTS: invalid protocol arguments";
    case errc::invalid_size:
        return "INVALID_SIZE: invalid payload size";
    case errc::payload_too_large:
        return "PAYLOAD_TOO_LARGE: payload too large";
    case errc::missing_crlf:
        return "MISSING_CRLF: missing CRLF after payload";
    case errc::invalid_header_block:
        return "INVALID_HEADER_BLOCK: invalid header block";
    case errc::json_syntax:
        return "JSON_SYNTAX: invalid json";
    case errc::json_too_deep:
        return "JSON_TOO_DEEP: json nesting too deep";
    case errc::json_not_object:
        return "JSON_NOT_OBJECT: json text is not an object";
    case errc::invalid_subject:
        return "INVALID_SUBJECT: invalid subject";
    case errc::invalid_reply:
        return "INVALID_REPLY: invalid reply subject";
    case errc::invalid_queue:
        return "INVALID_QUEUE: invalid queue group";
    case errc::invalid_header_name:
        return "INVALID_HEADER_NAME: invalid header name";
    case errc::invalid_header_value:
        return "INVALID_HEADER_VALUE: invalid header value";
    }

    return "UNKNOWN: unknown error";
}


std::string_view
errc_name(errc code) noexcept
{
    std::string_view  msg = errc_message(code);

    return msg.substr(0, msg.find(':'));
}


std::string_view
errc_text(errc code) noexcept
{
    std::string_view  msg = errc_message(code);

    return msg.substr(msg.find(": ") + 2);
}


bool
errc_is_fatal(errc code) noexcept
{
    int  v = static_cast<int>(code);

    return v >= 10 && v < 20;
}


errc
error_detail::set(errc code) noexcept
{
    return set(code, errc_text(code));
}


errc
error_detail::set(errc code, std::string_view text) noexcept
{
    code_ = code;
    len_ = text.size() < capacity ? text.size() : capacity;
    std::memcpy(text_, text.data(), len_);
    return code;
}


errc
error_detail::format(errc code, const char *fmt, ...) noexcept
{
    va_list  ap;
    int      rc;

    va_start(ap, fmt);
    rc = std::vsnprintf(text_, capacity, fmt, ap);
    va_end(ap);

    code_ = code;

    if (rc < 0) {
        return set(code);
    }

    /* vsnprintf keeps a byte for its NUL */
    len_ = static_cast<std::size_t>(rc) < capacity
           ? static_cast<std::size_t>(rc) : capacity - 1;
    return code;
}


}  // namespace resty_nats
