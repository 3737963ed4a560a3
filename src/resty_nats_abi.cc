/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * resty_nats_abi.cc: the extern "C" shims of resty_nats.h. Each one checks
 * its pointers, calls the C++ core, maps errc to the RESTY_NATS_* codes,
 * copies error text into (err, errlen), and catches every exception.
 */

#include "resty_nats.h"

#include <cstring>
#include <new>
#include <string_view>

#include "nats_errc.h"
#include "nats_framer.h"
#include "nats_parser.h"
#include "nats_sub_table.h"
#include "resty_nats_abi.h"


#define RESTY_NATS_EXPORT  __attribute__((visibility("default")))

/*
 * The version is written once, in CMakeLists.txt's project(); CMake passes
 * its parts to this file's compile (RESTY_NATS_VERSION_DEFINITIONS).
 */
#if !defined(RESTY_NATS_VERSION_MAJOR) || !defined(RESTY_NATS_VERSION_MINOR) \
    || !defined(RESTY_NATS_VERSION_PATCH)
#error "RESTY_NATS_VERSION_MAJOR/MINOR/PATCH not defined (set by CMake)"
#endif

static_assert(RESTY_NATS_VERSION_MINOR < 100
              && RESTY_NATS_VERSION_PATCH < 100,
              "minor and patch must be below 100 for the version number");

/* MAJOR * 10000 + MINOR * 100 + PATCH */
#define RESTY_NATS_VERSION_NUMBER                                           \
    (RESTY_NATS_VERSION_MAJOR * 10000 + RESTY_NATS_VERSION_MINOR * 100      \
     + RESTY_NATS_VERSION_PATCH)


namespace {


using resty_nats::errc;
using resty_nats::error_detail;


void
write_err(char *err, std::size_t *errlen, std::string_view msg) noexcept
{
    std::size_t  n;

    if (err == nullptr || errlen == nullptr) {
        return;
    }

    n = msg.size() < *errlen ? msg.size() : *errlen;
    if (n > 0) {
        std::memcpy(err, msg.data(), n);
    }
    *errlen = n;
}


int
fail(char *err, std::size_t *errlen, std::string_view msg) noexcept
{
    write_err(err, errlen, msg);
    return RESTY_NATS_ERROR;
}


int
null_pointer(char *err, std::size_t *errlen) noexcept
{
    return fail(err, errlen, "null pointer");
}


/* a NULL pointer is only fine with a zero length */
inline bool
bad_bytes(const char *p, std::size_t len) noexcept
{
    return p == nullptr && len > 0;
}


inline std::string_view
view(const char *p, std::size_t len) noexcept
{
    return p == nullptr ? std::string_view() : std::string_view(p, len);
}


/* errc of a framer -> RESTY_NATS_* plus error text */
int
framer_result(errc rc, const error_detail &e, char *err,
    std::size_t *errlen) noexcept
{
    switch (rc) {
    case errc::ok:
        return RESTY_NATS_OK;
    case errc::again:
        return RESTY_NATS_AGAIN;
    default:
        return fail(err, errlen, e.text());
    }
}


int
sub_result(resty_nats::sub_table::result r) noexcept
{
    switch (r) {
    case resty_nats::sub_table::result::ok:
        return RESTY_NATS_OK;
    case resty_nats::sub_table::result::done:
        return RESTY_NATS_DONE;
    case resty_nats::sub_table::result::unknown:
        break;
    }
    return RESTY_NATS_DECLINED;
}


/*
 * The catch-all around every shim body: no C++ exception may cross into
 * C or LuaJIT.
 */
template <typename F>
int
guarded(char *err, std::size_t *errlen, F &&body) noexcept
{
    try {
        return body();

    } catch (const std::bad_alloc &) {
        return fail(err, errlen, "no memory");

    } catch (...) {
        return fail(err, errlen, "internal error");
    }
}


}  // namespace


extern "C" {


RESTY_NATS_EXPORT int
resty_nats_version(void)
{
    return RESTY_NATS_VERSION_NUMBER;
}


RESTY_NATS_EXPORT int
resty_nats_parser_new(resty_nats_parser_t **out, size_t max_payload)
{
    if (out == nullptr) {
        return RESTY_NATS_ERROR;
    }

    *out = nullptr;

    return guarded(nullptr, nullptr, [&]() -> int {
        *out = new resty_nats_parser_s(max_payload);
        return RESTY_NATS_OK;
    });
}


RESTY_NATS_EXPORT void
resty_nats_parser_free(resty_nats_parser_t *p)
{
    delete p;
}


RESTY_NATS_EXPORT int
resty_nats_parser_set_max_payload(resty_nats_parser_t *p,
    size_t max_payload)
{
    if (p == nullptr) {
        return RESTY_NATS_ERROR;
    }

    p->impl.set_max_payload(max_payload);
    return RESTY_NATS_OK;
}


RESTY_NATS_EXPORT int
resty_nats_parser_feed(resty_nats_parser_t *p, const char *data,
    size_t len, char *err, size_t *errlen)
{
    if (p == nullptr || bad_bytes(data, len)) {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        if (p->impl.feed(data, len) != errc::ok) {
            return fail(err, errlen, p->impl.error_text());
        }
        return RESTY_NATS_OK;
    });
}


RESTY_NATS_EXPORT int
resty_nats_parser_next(resty_nats_parser_t *p, resty_nats_event_t *ev,
    char *err, size_t *errlen)
{
    if (ev != nullptr) {
        std::memset(ev, 0, sizeof(*ev));
        ev->type = RESTY_NATS_EV_NONE;
    }

    if (p == nullptr || ev == nullptr) {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        switch (p->impl.next(*ev)) {
        case errc::ok:
            return RESTY_NATS_OK;
        case errc::again:
            return RESTY_NATS_AGAIN;
        default:
            return fail(err, errlen, p->impl.error_text());
        }
    });
}


RESTY_NATS_EXPORT size_t
resty_nats_parser_buffered(const resty_nats_parser_t *p)
{
    return p == nullptr ? 0 : p->impl.buffered();
}


RESTY_NATS_EXPORT int
resty_nats_parser_info(resty_nats_parser_t *p, const char *json,
    size_t len, resty_nats_info_t *out, char *err, size_t *errlen)
{
    if (p == nullptr || out == nullptr || bad_bytes(json, len)) {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = p->impl.info(json == nullptr ? "" : json, len, *out, &e);
        return rc == errc::ok ? RESTY_NATS_OK : fail(err, errlen, e.text());
    });
}


RESTY_NATS_EXPORT int
resty_nats_frame_connect(char *buf, size_t size, size_t *n,
    const resty_nats_connect_opts_t *opts, char *err, size_t *errlen)
{
    if (n == nullptr || opts == nullptr || bad_bytes(buf, size)) {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = resty_nats::frame_connect(buf, size, *n, *opts, &e);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_frame_pub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *reply,
    size_t reply_len, size_t payload_len, size_t max_payload, char *err,
    size_t *errlen)
{
    if (n == nullptr || bad_bytes(buf, size)
        || bad_bytes(subject, subject_len) || bad_bytes(reply, reply_len))
    {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = resty_nats::frame_pub(buf, size, *n, view(subject, subject_len),
                                   view(reply, reply_len), payload_len,
                                   max_payload, &e);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_frame_hpub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *reply,
    size_t reply_len, const resty_nats_header_t *headers, size_t nheaders,
    size_t payload_len, size_t max_payload, char *err, size_t *errlen)
{
    if (n == nullptr || bad_bytes(buf, size)
        || bad_bytes(subject, subject_len) || bad_bytes(reply, reply_len)
        || (headers == nullptr && nheaders > 0))
    {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = resty_nats::frame_hpub(buf, size, *n,
                                    view(subject, subject_len),
                                    view(reply, reply_len), headers,
                                    nheaders, payload_len, max_payload, &e);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_frame_sub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *queue,
    size_t queue_len, uint64_t sid, char *err, size_t *errlen)
{
    if (n == nullptr || bad_bytes(buf, size)
        || bad_bytes(subject, subject_len) || bad_bytes(queue, queue_len))
    {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = resty_nats::frame_sub(buf, size, *n, view(subject, subject_len),
                                   view(queue, queue_len), sid, &e);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_frame_unsub(char *buf, size_t size, size_t *n, uint64_t sid,
    uint64_t max_msgs, char *err, size_t *errlen)
{
    if (n == nullptr || bad_bytes(buf, size)) {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = resty_nats::frame_unsub(buf, size, *n, sid, max_msgs);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_subs_new(resty_nats_subs_t **out)
{
    if (out == nullptr) {
        return RESTY_NATS_ERROR;
    }

    *out = nullptr;

    return guarded(nullptr, nullptr, [&]() -> int {
        *out = new resty_nats_subs_s();
        return RESTY_NATS_OK;
    });
}


RESTY_NATS_EXPORT void
resty_nats_subs_free(resty_nats_subs_t *t)
{
    delete t;
}


RESTY_NATS_EXPORT int
resty_nats_subs_subscribe(resty_nats_subs_t *t, char *buf, size_t size,
    size_t *n, const char *subject, size_t subject_len, const char *queue,
    size_t queue_len, uint64_t max, uint64_t *sid, char *err,
    size_t *errlen)
{
    if (t == nullptr || n == nullptr || sid == nullptr
        || bad_bytes(buf, size) || bad_bytes(subject, subject_len)
        || bad_bytes(queue, queue_len))
    {
        return null_pointer(err, errlen);
    }

    return guarded(err, errlen, [&]() -> int {
        error_detail  e;
        errc          rc;

        rc = t->impl.subscribe(buf, size, *n, view(subject, subject_len),
                               view(queue, queue_len), max, *sid, &e);
        return framer_result(rc, e, err, errlen);
    });
}


RESTY_NATS_EXPORT int
resty_nats_subs_set_max(resty_nats_subs_t *t, uint64_t sid, uint64_t max)
{
    if (t == nullptr) {
        return RESTY_NATS_ERROR;
    }

    return guarded(nullptr, nullptr, [&]() -> int {
        return sub_result(t->impl.set_max(sid, max));
    });
}


RESTY_NATS_EXPORT int
resty_nats_subs_deliver(resty_nats_subs_t *t, uint64_t sid)
{
    if (t == nullptr) {
        return RESTY_NATS_ERROR;
    }

    return guarded(nullptr, nullptr, [&]() -> int {
        return sub_result(t->impl.deliver(sid));
    });
}


RESTY_NATS_EXPORT int
resty_nats_subs_remove(resty_nats_subs_t *t, uint64_t sid)
{
    if (t == nullptr) {
        return RESTY_NATS_ERROR;
    }

    return t->impl.remove(sid) ? RESTY_NATS_OK : RESTY_NATS_DECLINED;
}


}  /* extern "C" */
