/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_framer.h: validation of outgoing strings and framing of client
 * operations into caller buffers.
 *
 * Every framer validates first, then measures: errc::ok with n = bytes
 * written when the frame fits in size bytes, errc::again with n = the
 * exact size needed when it does not (the buffer then holds garbage), or
 * an error (nothing may be sent). Calling again with size == n gives
 * errc::ok and the same n.
 */

#ifndef RESTY_NATS_FRAMER_H
#define RESTY_NATS_FRAMER_H

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nats_errc.h"
#include "resty_nats.h"


namespace resty_nats {


enum class subject_kind {
    publish,    /* PUB/HPUB subject: no wildcard tokens */
    reply,      /* reply subject: no wildcard tokens */
    subscribe   /* SUB subject: "*" tokens, ">" as the last token */
};


/*
 * Subjects: non-empty, dot-separated non-empty tokens, bytes 33-126 or
 * 128-255 (UTF-8). Wildcards count only as whole tokens ("foo*" is a
 * literal). Queue groups: non-empty, same bytes, dots allowed.
 */
errc validate_subject(std::string_view s, subject_kind kind,
    error_detail *err) noexcept;
errc validate_queue(std::string_view q, error_detail *err) noexcept;
/* header names: bytes 33-126 except ':'; values: anything but CR, LF */
errc validate_header(const resty_nats_header_t &h, error_detail *err)
    noexcept;

errc frame_connect(char *buf, std::size_t size, std::size_t &n,
    const resty_nats_connect_opts_t &opts, error_detail *err) noexcept;

/* an empty reply means none */
errc frame_pub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view reply,
    std::size_t payload_len, std::size_t max_payload,
    error_detail *err) noexcept;

errc frame_hpub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view reply,
    const resty_nats_header_t *headers, std::size_t nheaders,
    std::size_t payload_len, std::size_t max_payload,
    error_detail *err) noexcept;

/* an empty queue means none */
errc frame_sub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view queue, std::uint64_t sid,
    error_detail *err) noexcept;

/* max_msgs 0 means none */
errc frame_unsub(char *buf, std::size_t size, std::size_t &n,
    std::uint64_t sid, std::uint64_t max_msgs) noexcept;


}  // namespace resty_nats

#endif  // RESTY_NATS_FRAMER_H
