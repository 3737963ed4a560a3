/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_parser.h: streaming, pull-style parser of NATS server operations.
 *
 * feed() copies bytes into the parser, next() returns one complete
 * operation or errc::again. No I/O, no allocation per message once the
 * buffer and the header vector have grown to fit the traffic.
 *
 * Event pointers point into the parser's buffer: they stay valid until the
 * next feed(), next(), reset() or destruction. Consumed bytes are moved
 * away only in feed(), so next() never moves memory.
 *
 * Errors are sticky: after next() failed, feed() and next() return the
 * same code and error_text() keeps the same message until reset(). The
 * buffered bytes are dropped on error.
 *
 * Wire leniency: op names in any case, blanks (spaces, tabs) before the
 * op and around fields, bare LF line ends. An unknown op fails as soon as
 * the bytes seen cannot start an op name followed by a blank, CR or LF
 * ("HT", "MSX", "PINGX"); "H" alone waits, as it may start HMSG. -ERR
 * gives the text without its quotes; a missing quote on either side is
 * tolerated. The payload of a MSG/HMSG must be followed by exactly CRLF.
 * Header blocks are strict (ADR-4): lines end at CRLF only, names are
 * bytes 33-126 without ':', and a bare CR or LF in a value or in the
 * status description fails the block.
 */

#ifndef RESTY_NATS_PARSER_H
#define RESTY_NATS_PARSER_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nats_errc.h"
#include "resty_nats.h"


namespace resty_nats {


namespace detail {

enum class op : unsigned char {
    none, info, msg, hmsg, ping, pong, ok, err
};

}  // namespace detail


class parser {
public:
    /* max_payload 0 means RESTY_NATS_DEFAULT_MAX_PAYLOAD */
    explicit parser(std::size_t max_payload = 0);

    /* errc::ok, or the sticky error (the bytes are dropped) */
    errc feed(const char *data, std::size_t len);
    /* errc::ok with ev filled, errc::again, or a (sticky) error */
    errc next(resty_nats_event_t &ev);
    void reset() noexcept;

    void set_max_payload(std::size_t max_payload) noexcept;
    std::size_t max_payload() const noexcept { return max_payload_; }

    /* bytes fed but not yet returned as events */
    std::size_t buffered() const noexcept { return buf_.size() - pos_; }

    errc error() const noexcept { return err_.code(); }
    std::string_view error_text() const noexcept { return err_.text(); }

    /*
     * Decodes an INFO JSON object into out; strings point into storage
     * owned by this parser, valid until the next info() call or
     * destruction. Does not touch the stream state.
     */
    errc info(const char *json, std::size_t len, resty_nats_info_t &out,
        error_detail *err);

private:
    using op = detail::op;

    /* a MSG/HMSG whose control line is parsed; offsets from pos_ */
    struct pending_msg {
        op             type = op::none;
        std::size_t    line_len = 0;      /* LF included */
        std::size_t    subject_off = 0;
        std::size_t    subject_len = 0;
        std::size_t    sid_off = 0;
        std::size_t    sid_len = 0;
        std::size_t    reply_off = 0;
        std::size_t    reply_len = 0;
        std::size_t    hdr_len = 0;
        std::size_t    total_len = 0;     /* headers + payload */
        std::uint64_t  sid = 0;
    };

    errc parse_line(const char *line, std::size_t len, std::size_t line_len,
        op type, std::size_t name_end, resty_nats_event_t &ev);
    errc parse_msg_args(const char *line, const char *args,
        const char *end, op type, std::size_t line_len);
    errc finish_msg(resty_nats_event_t &ev);
    const char *parse_headers(const char *block, std::size_t len,
        resty_nats_event_t &ev);
    errc fail(errc code);
    errc fail(errc code, const char *text);
    errc fail_format(errc code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    std::vector<char>                 buf_;
    std::size_t                       pos_ = 0;      /* first unconsumed */
    std::size_t                       scanned_ = 0;  /* from pos_, no LF */
    bool                              in_payload_ = false;
    pending_msg                       msg_;
    std::size_t                       max_payload_;
    std::vector<resty_nats_header_t>  headers_;
    error_detail                      err_;

    /* INFO strings handed out by info() */
    std::string  server_id_;
    std::string  server_name_;
    std::string  version_;
    std::string  nonce_;
    std::string  connect_urls_;
};


}  // namespace resty_nats

#endif  // RESTY_NATS_PARSER_H
