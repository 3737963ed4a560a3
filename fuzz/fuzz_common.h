/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_common.h: helpers shared by the libFuzzer targets in fuzz/.
 *
 * - FUZZ_CHECK: an invariant; on failure prints what broke and aborts, so
 *   libFuzzer writes the input to the artifact directory.
 * - byte_source: takes values out of the fuzz input (zeros once it is
 *   used up), so generators are deterministic in the input.
 * - event_rec: an owned copy of one resty_nats_event_t (plus what
 *   resty_nats_parser_info said about an INFO), comparable and printable.
 * - run_stream(): feeds bytes to a parser through the C ABI in the given
 *   splits, drains events after every feed and checks the parser's
 *   contract on every call (see the comment above it). The reset at the
 *   end goes to the C++ parser behind the handle (resty_nats_abi.h): the
 *   C ABI has no reset.
 */

#ifndef RESTY_NATS_FUZZ_COMMON_H
#define RESTY_NATS_FUZZ_COMMON_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "resty_nats.h"
#include "resty_nats_abi.h"


#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            ::fuzz::check_failed(#cond, __FILE__, __LINE__, nullptr);       \
        }                                                                   \
    } while (0)

#define FUZZ_CHECK_MSG(cond, msg)                                           \
    do {                                                                    \
        if (!(cond)) {                                                      \
            ::fuzz::check_failed(#cond, __FILE__, __LINE__,                 \
                                 std::string(msg).c_str());                 \
        }                                                                   \
    } while (0)


namespace fuzz {


[[noreturn]] inline void
check_failed(const char *cond, const char *file, int line, const char *msg)
{
    std::fprintf(stderr, "\n==FUZZ CHECK FAILED== %s:%d: %s\n", file, line,
                 cond);
    if (msg != nullptr) {
        std::fprintf(stderr, "  %s\n", msg);
    }
    std::fflush(stderr);
    std::abort();
}


/* "..." with \xNN for bytes outside 0x20-0x7e */
inline std::string
quote(std::string_view s)
{
    std::string  out = "\"";
    char         tmp[8];

    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            std::snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            out += tmp;
        }
    }

    return out + "\"";
}


inline std::string_view
sv(const resty_nats_str_t &s)
{
    return s.len == 0 ? std::string_view() : std::string_view(s.data, s.len);
}


inline bool
is_blank(char c)
{
    return c == ' ' || c == '\t';
}


inline std::string_view
trim_blanks(std::string_view s)
{
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}


inline std::string
dec(std::uint64_t v)
{
    return std::to_string(v);
}


/* the parser's sid rule: decimal digits that fit, else UINT64_MAX */
inline std::uint64_t
model_sid(std::string_view s)
{
    std::uint64_t  v = 0;

    if (s.empty()) {
        return UINT64_MAX;
    }
    for (char c : s) {
        unsigned  d = static_cast<unsigned char>(c) - static_cast<unsigned>('0');

        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return UINT64_MAX;
        }
        v = v * 10 + d;
    }
    return v;
}


/* ------------------------------------------------------------------ */


class byte_source {
public:
    byte_source(const std::uint8_t *data, std::size_t size)
        : p_(data), end_(data + size)
    {
    }

    std::size_t left() const { return static_cast<std::size_t>(end_ - p_); }
    bool empty() const { return p_ == end_; }

    std::uint8_t u8()
    {
        return p_ < end_ ? *p_++ : 0;
    }

    std::uint16_t u16()
    {
        std::uint16_t  v = u8();
        return static_cast<std::uint16_t>(v | (u8() << 8));
    }

    std::uint32_t u32()
    {
        std::uint32_t  v = u16();
        return v | (static_cast<std::uint32_t>(u16()) << 16);
    }

    std::uint64_t u64()
    {
        std::uint64_t  v = u32();
        return v | (static_cast<std::uint64_t>(u32()) << 32);
    }

    /* lo..hi inclusive */
    std::size_t range(std::size_t lo, std::size_t hi)
    {
        std::size_t  span = hi - lo + 1;
        std::size_t  v = span <= 256 ? u8() : span <= 65536 ? u16() : u32();

        return span == 0 ? lo + v : lo + v % span;
    }

    bool flag() { return (u8() & 1) != 0; }

    /* true about num times in den */
    bool chance(unsigned num, unsigned den) { return u8() % den < num; }

    /* up to n raw bytes */
    std::string bytes(std::size_t n)
    {
        std::size_t  k = n < left() ? n : left();
        std::string  s(reinterpret_cast<const char *>(p_), k);

        p_ += k;
        return s;
    }

    std::string rest() { return bytes(left()); }

private:
    const std::uint8_t  *p_;
    const std::uint8_t  *end_;
};


/* ------------------------------------------------------------------ */


struct event_rec {
    int                                               type = 0;
    int                                               status = 0;
    std::uint64_t                                     sid = 0;
    std::string                                       subject;
    std::string                                       sid_str;
    std::string                                       reply;
    std::string                                       payload;
    std::string                                       description;
    std::vector<std::pair<std::string, std::string>>  headers;

    /* INFO only, filled by run_stream() from resty_nats_parser_info() */
    bool                                              info_ok = false;
    std::string                                       info_server_id;
    std::string                                       info_version;
    std::string                                       info_connect_urls;
    std::int64_t                                      info_max_payload = 0;
    std::int64_t                                      info_proto = 0;
    std::uint64_t                                     info_client_id = 0;
    int                                               info_headers = 0;
    int                                               info_ldm = 0;

    static event_rec from(const resty_nats_event_t &ev)
    {
        event_rec  r;

        r.type = ev.type;
        r.status = ev.status;
        r.sid = ev.sid;
        r.subject = std::string(sv(ev.subject));
        r.sid_str = std::string(sv(ev.sid_str));
        r.reply = std::string(sv(ev.reply));
        r.payload = std::string(sv(ev.payload));
        r.description = std::string(sv(ev.description));
        for (std::size_t i = 0; i < ev.nheaders; i++) {
            r.headers.emplace_back(std::string(sv(ev.headers[i].name)),
                                   std::string(sv(ev.headers[i].value)));
        }
        return r;
    }

    /* the stream fields (the INFO decode is compared separately) */
    bool same_event(const event_rec &o) const
    {
        return type == o.type && status == o.status && sid == o.sid
               && subject == o.subject && sid_str == o.sid_str
               && reply == o.reply && payload == o.payload
               && description == o.description && headers == o.headers;
    }

    bool same_info(const event_rec &o) const
    {
        return info_ok == o.info_ok && info_server_id == o.info_server_id
               && info_version == o.info_version
               && info_connect_urls == o.info_connect_urls
               && info_max_payload == o.info_max_payload
               && info_proto == o.info_proto
               && info_client_id == o.info_client_id
               && info_headers == o.info_headers && info_ldm == o.info_ldm;
    }

    std::string str() const
    {
        std::string  s = "type=" + std::to_string(type);

        s += " subject=" + quote(subject) + " sid=" + quote(sid_str) + "("
             + (sid == UINT64_MAX ? std::string("max") : dec(sid)) + ")"
             + " reply=" + quote(reply)
             + " status=" + std::to_string(status)
             + " description=" + quote(description) + " headers={";
        for (const auto &h : headers) {
            s += quote(h.first) + "=" + quote(h.second) + ",";
        }
        s += "} payload=" + quote(payload);
        if (type == RESTY_NATS_EV_INFO) {
            s += " info_ok=" + std::to_string(info_ok)
                 + " server_id=" + quote(info_server_id)
                 + " version=" + quote(info_version)
                 + " connect_urls=" + quote(info_connect_urls)
                 + " max_payload=" + std::to_string(info_max_payload)
                 + " proto=" + std::to_string(info_proto)
                 + " client_id=" + dec(info_client_id)
                 + " headers=" + std::to_string(info_headers)
                 + " ldm=" + std::to_string(info_ldm);
        }
        return s;
    }
};


struct stream_result {
    std::vector<event_rec>  events;
    bool                    failed = false;
    std::string             error;      /* the sticky message */
};


inline std::string
describe(const stream_result &r)
{
    std::string  s;

    for (const event_rec &e : r.events) {
        s += "  " + e.str() + "\n";
    }
    s += r.failed ? "  ERROR " + quote(r.error) + "\n" : "  (no error)\n";
    return s;
}


inline bool
same_events(const stream_result &a, const stream_result &b)
{
    if (a.events.size() != b.events.size() || a.failed != b.failed
        || a.error != b.error)
    {
        return false;
    }
    for (std::size_t i = 0; i < a.events.size(); i++) {
        if (!a.events[i].same_event(b.events[i])) {
            return false;
        }
    }
    return true;
}


/* ------------------------------------------------------------------ */


namespace detail {


inline bool
ptr_in(const char *p, std::size_t len, const char *base, std::size_t size)
{
    std::uintptr_t  a = reinterpret_cast<std::uintptr_t>(p);
    std::uintptr_t  b = reinterpret_cast<std::uintptr_t>(base);

    return a >= b && len <= size && a - b <= size - len;
}


inline char
lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}


/*
 * The text of an INFO or -ERR line as the parser documents it: the args
 * after the op name, blanks trimmed, and for -ERR one quote stripped on
 * each side.
 */
inline std::string_view
model_line_text(std::string_view frame, bool is_err)
{
    std::string_view  line = frame.substr(0, frame.size() - 1);  /* LF */
    std::size_t       i = 0;

    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    while (i < line.size() && is_blank(line[i])) {
        i++;
    }
    line.remove_prefix(i + 4);  /* "INFO", "-ERR" */
    line = trim_blanks(line);

    if (is_err) {
        if (!line.empty() && line.front() == '\'') {
            line.remove_prefix(1);
        }
        if (!line.empty() && line.back() == '\'') {
            line.remove_suffix(1);
        }
    }
    return line;
}


inline bool
has_byte(std::string_view s, char a, char b)
{
    return s.find(a) != std::string_view::npos
           || s.find(b) != std::string_view::npos;
}


inline void
check_str_sanity(const resty_nats_str_t &s, std::size_t frame_len)
{
    FUZZ_CHECK(s.data != nullptr || s.len == 0);
    FUZZ_CHECK(s.len <= frame_len);
}


/*
 * A MSG/HMSG: every string lies inside the consumed frame's bytes (the
 * frame ends with the payload and CRLF, which fixes where the frame
 * starts in parser memory) and equals the input at that offset.
 */
inline void
check_msg_event(const resty_nats_event_t &ev, const char *frame,
    std::size_t frame_len, std::size_t max_payload)
{
    const char   *base;
    std::size_t   line_end, payload_off;

    FUZZ_CHECK(frame_len >= 2 && frame[frame_len - 2] == '\r'
               && frame[frame_len - 1] == '\n');
    FUZZ_CHECK(ev.payload.data != nullptr);
    FUZZ_CHECK(ev.payload.len + 2 <= frame_len);
    FUZZ_CHECK(ev.payload.len <= max_payload);

    base = ev.payload.data + ev.payload.len + 2 - frame_len;
    payload_off = frame_len - 2 - ev.payload.len;

    line_end = std::string_view(frame, frame_len).find('\n');
    FUZZ_CHECK(line_end != std::string_view::npos);
    FUZZ_CHECK(line_end < payload_off);
    FUZZ_CHECK(line_end < RESTY_NATS_MAX_CONTROL_LINE);

    auto check_in = [&](const resty_nats_str_t &s, std::size_t lo,
                        std::size_t hi, const char *what) {
        std::size_t  off;

        if (s.len == 0) {
            return;
        }
        FUZZ_CHECK_MSG(ptr_in(s.data, s.len, base + lo, hi - lo),
                       std::string(what) + " points outside its part of "
                       "the frame");
        off = static_cast<std::size_t>(s.data - base);
        FUZZ_CHECK_MSG(std::memcmp(s.data, frame + off, s.len) == 0,
                       std::string(what) + " differs from the input bytes");
    };

    /* control-line fields: non-empty tokens without blanks or LF */
    FUZZ_CHECK(ev.subject.len > 0 && ev.sid_str.len > 0);
    check_in(ev.subject, 0, line_end, "subject");
    check_in(ev.sid_str, 0, line_end, "sid");
    check_in(ev.reply, 0, line_end, "reply");
    for (const resty_nats_str_t *s : { &ev.subject, &ev.sid_str, &ev.reply })
    {
        std::string_view  v = sv(*s);

        FUZZ_CHECK(v.find_first_of(" \t\n") == std::string_view::npos);
    }
    FUZZ_CHECK(ev.reply.len == 0 || ev.reply.data > ev.sid_str.data);
    FUZZ_CHECK(ev.sid_str.data > ev.subject.data);
    FUZZ_CHECK(ev.sid == model_sid(sv(ev.sid_str)));

    check_in(ev.payload, payload_off, payload_off + ev.payload.len,
             "payload");

    if (ev.type == RESTY_NATS_EV_MSG) {
        FUZZ_CHECK(ev.headers == nullptr && ev.nheaders == 0);
        FUZZ_CHECK(ev.status == 0 && ev.description.len == 0);
        return;
    }

    /* HMSG whose block was refused: payload only, the reason as text */
    if (ev.status == RESTY_NATS_STATUS_INVALID_HEADERS) {
        FUZZ_CHECK(ev.headers == nullptr && ev.nheaders == 0);
        FUZZ_CHECK(sv(ev.description).rfind("invalid header block", 0) == 0);
        return;
    }

    /* HMSG: the header block sits between the line and the payload */
    FUZZ_CHECK(payload_off >= line_end + 1 + 12);
    FUZZ_CHECK(std::memcmp(frame + line_end + 1, "NATS/1.0", 8) == 0);
    FUZZ_CHECK(std::memcmp(frame + payload_off - 4, "\r\n\r\n", 4) == 0);
    FUZZ_CHECK(ev.status >= 0 && ev.status <= 999);
    FUZZ_CHECK((ev.nheaders == 0) == (ev.headers == nullptr));
    FUZZ_CHECK(ev.nheaders <= frame_len / 4);

    check_in(ev.description, line_end + 1, payload_off, "description");
    FUZZ_CHECK(!has_byte(sv(ev.description), '\r', '\n'));
    FUZZ_CHECK(trim_blanks(sv(ev.description)).size() == ev.description.len);

    for (std::size_t i = 0; i < ev.nheaders; i++) {
        const resty_nats_header_t  &h = ev.headers[i];
        std::string_view            name = sv(h.name);
        std::string_view            value = sv(h.value);

        check_str_sanity(h.name, frame_len);
        check_str_sanity(h.value, frame_len);
        check_in(h.name, line_end + 1, payload_off, "header name");
        check_in(h.value, line_end + 1, payload_off, "header value");

        FUZZ_CHECK_MSG(!name.empty(), "empty header name");
        for (unsigned char c : name) {
            FUZZ_CHECK_MSG(c >= 33 && c <= 126 && c != ':',
                           "header name " + quote(name)
                           + " has a byte outside 33-126 or ':'");
        }
        FUZZ_CHECK_MSG(!has_byte(value, '\r', '\n'),
                       "header value " + quote(value) + " has CR or LF");
        FUZZ_CHECK(trim_blanks(value).size() == value.size());
        /* the name is followed by its colon in the input */
        FUZZ_CHECK(frame[h.name.data - base + h.name.len] == ':');
        if (i > 0) {
            FUZZ_CHECK(h.name.data > ev.headers[i - 1].name.data);
        }
    }
}


}  // namespace detail


/* ------------------------------------------------------------------ */


/* what next() leaves in the event when it returns AGAIN or ERROR */
inline bool
is_empty_event(const resty_nats_event_t &ev)
{
    return ev.type == RESTY_NATS_EV_NONE && ev.status == 0 && ev.sid == 0
           && ev.subject.data == nullptr && ev.subject.len == 0
           && ev.sid_str.data == nullptr && ev.sid_str.len == 0
           && ev.reply.data == nullptr && ev.reply.len == 0
           && ev.payload.data == nullptr && ev.payload.len == 0
           && ev.description.data == nullptr && ev.description.len == 0
           && ev.headers == nullptr && ev.nheaders == 0;
}


struct stream_options {
    std::size_t  max_payload = 0;       /* given to resty_nats_parser_new */
    bool         decode_info = true;    /* call resty_nats_parser_info */
    bool         check_reset = true;    /* reset at the end and reuse
                                           (parser::reset(), no ABI) */
};


/*
 * Feeds data[0..len) to a new parser in chunks of splits[0], splits[1],
 * ... (cycled; empty splits or a 0 entry: the rest at once), and after
 * every feed takes events until AGAIN or ERROR. Checked on every call:
 * - feed: OK while no error, then ERROR with the sticky message;
 * - next OK: a known type; the consumed bytes (fed - buffered, which only
 *   grows) form the frame; every string of the event is inside parser
 *   memory holding exactly those input bytes (checked by offset for
 *   MSG/HMSG and by content for INFO/-ERR) and obeys the field rules;
 *   INFO text decodes or fails cleanly through resty_nats_parser_info;
 * - next AGAIN: type NONE, nothing consumed, and the bytes held stay
 *   bounded: under the control line cap unless a MSG/HMSG line waits for
 *   its payload (then under line + max_payload + CRLF) or an INFO line is
 *   pending (under RESTY_NATS_MAX_INFO_LINE);
 * - next ERROR: a non-empty message, nothing buffered, and it is sticky
 *   for next() and feed();
 * - reset (the C++ parser's, behind the handle): drops everything and
 *   the parser works again through the ABI.
 */
inline stream_result
run_stream(const char *data, std::size_t len,
    const std::vector<std::size_t> &splits, const stream_options &opt)
{
    stream_result         res;
    resty_nats_parser_t  *p = nullptr;
    resty_nats_event_t    ev;
    char                  err[256];
    std::size_t           errlen, fed = 0, consumed = 0, split_i = 0;
    std::size_t           eff_max = opt.max_payload == 0
                                    ? RESTY_NATS_DEFAULT_MAX_PAYLOAD
                                    : opt.max_payload;
    int                   rc;

    FUZZ_CHECK(resty_nats_parser_new(&p, opt.max_payload) == RESTY_NATS_OK);
    FUZZ_CHECK(p != nullptr);
    FUZZ_CHECK(resty_nats_parser_buffered(p) == 0);

    auto check_sticky = [&]() {
        char         err2[256];
        std::size_t  errlen2 = sizeof(err2);

        FUZZ_CHECK(resty_nats_parser_next(p, &ev, err2, &errlen2)
                   == RESTY_NATS_ERROR);
        FUZZ_CHECK(is_empty_event(ev));
        FUZZ_CHECK_MSG(std::string_view(err2, errlen2) == res.error,
                       "error not sticky: " + quote(res.error) + " then "
                       + quote(std::string_view(err2, errlen2)));
        errlen2 = sizeof(err2);
        FUZZ_CHECK(resty_nats_parser_feed(p, "P", 1, err2, &errlen2)
                   == RESTY_NATS_ERROR);
        FUZZ_CHECK(std::string_view(err2, errlen2) == res.error);
        FUZZ_CHECK(resty_nats_parser_buffered(p) == 0);
    };

    auto drain = [&]() {
        for ( ;; ) {
            std::size_t  before = resty_nats_parser_buffered(p);

            errlen = sizeof(err);
            rc = resty_nats_parser_next(p, &ev, err, &errlen);

            if (rc == RESTY_NATS_AGAIN) {
                std::string_view  pending(data + consumed, fed - consumed);

                FUZZ_CHECK(is_empty_event(ev));
                FUZZ_CHECK(resty_nats_parser_buffered(p) == before);
                FUZZ_CHECK(before == fed - consumed);

                if (before >= RESTY_NATS_MAX_CONTROL_LINE) {
                    std::size_t  lf = pending.find('\n');

                    if (lf != std::string_view::npos
                        && lf < RESTY_NATS_MAX_CONTROL_LINE)
                    {
                        /* a MSG/HMSG waiting for its payload */
                        FUZZ_CHECK_MSG(before < lf + 1 + eff_max + 2,
                                       "buffer grows past line + "
                                       "max_payload + CRLF");
                    } else {
                        std::string_view  t = trim_blanks(pending);

                        FUZZ_CHECK_MSG(t.size() >= 4
                                       && detail::lower(t[0]) == 'i'
                                       && detail::lower(t[1]) == 'n'
                                       && detail::lower(t[2]) == 'f'
                                       && detail::lower(t[3]) == 'o',
                                       "over a control line buffered "
                                       "without a line end");
                        FUZZ_CHECK(before < RESTY_NATS_MAX_INFO_LINE);
                    }
                }
                return;
            }

            if (rc == RESTY_NATS_ERROR) {
                /* no pointer into the dropped buffer survives */
                FUZZ_CHECK_MSG(is_empty_event(ev),
                               "event left filled after an error");
                FUZZ_CHECK(errlen > 0 && errlen <= sizeof(err));
                res.failed = true;
                res.error.assign(err, errlen);
                check_sticky();
                return;
            }

            FUZZ_CHECK_MSG(rc == RESTY_NATS_OK,
                           "next() returned " + std::to_string(rc));
            FUZZ_CHECK(ev.type >= RESTY_NATS_EV_INFO
                       && ev.type <= RESTY_NATS_EV_ERR);

            std::size_t  after = resty_nats_parser_buffered(p);
            FUZZ_CHECK(after < before);
            std::size_t  frame_len = before - after;
            const char  *frame = data + consumed;

            FUZZ_CHECK(frame[frame_len - 1] == '\n');

            for (const resty_nats_str_t *s :
                 { &ev.subject, &ev.sid_str, &ev.reply, &ev.payload })
            {
                detail::check_str_sanity(*s, frame_len);
            }
            /* a refused header block's reason is static text */
            if (ev.status != RESTY_NATS_STATUS_INVALID_HEADERS) {
                detail::check_str_sanity(ev.description, frame_len);
            } else {
                FUZZ_CHECK(ev.description.data != nullptr
                           && ev.description.len > 0);
            }

            switch (ev.type) {
            case RESTY_NATS_EV_MSG:
            case RESTY_NATS_EV_HMSG:
                detail::check_msg_event(ev, frame, frame_len, eff_max);
                break;

            case RESTY_NATS_EV_INFO:
            case RESTY_NATS_EV_ERR: {
                std::string_view  want = detail::model_line_text(
                    std::string_view(frame, frame_len),
                    ev.type == RESTY_NATS_EV_ERR);

                FUZZ_CHECK_MSG(sv(ev.payload) == want,
                               "line text " + quote(sv(ev.payload))
                               + " want " + quote(want));
                FUZZ_CHECK(ev.type == RESTY_NATS_EV_ERR
                           || ev.payload.len > 0);
                FUZZ_CHECK(frame_len <= (ev.type == RESTY_NATS_EV_INFO
                                         ? RESTY_NATS_MAX_INFO_LINE
                                         : RESTY_NATS_MAX_CONTROL_LINE));
                FUZZ_CHECK(ev.subject.len == 0 && ev.sid_str.len == 0
                           && ev.reply.len == 0 && ev.nheaders == 0
                           && ev.headers == nullptr);
                break;
            }

            default:  /* PING, PONG, +OK */
                FUZZ_CHECK(frame_len <= RESTY_NATS_MAX_CONTROL_LINE);
                FUZZ_CHECK(ev.subject.len == 0 && ev.sid_str.len == 0
                           && ev.reply.len == 0 && ev.payload.len == 0
                           && ev.nheaders == 0 && ev.headers == nullptr
                           && ev.status == 0);
                break;
            }

            event_rec  r = event_rec::from(ev);

            if (ev.type == RESTY_NATS_EV_INFO && opt.decode_info) {
                resty_nats_info_t  info;

                errlen = sizeof(err);
                rc = resty_nats_parser_info(p, ev.payload.data,
                                            ev.payload.len, &info, err,
                                            &errlen);
                FUZZ_CHECK(rc == RESTY_NATS_OK || rc == RESTY_NATS_ERROR);
                if (rc == RESTY_NATS_OK) {
                    std::string_view  t = sv(ev.payload);

                    FUZZ_CHECK(t.find_first_not_of(" \t\r\n")
                               != std::string_view::npos);
                    FUZZ_CHECK(t[t.find_first_not_of(" \t\r\n")] == '{');
                    r.info_ok = true;
                    r.info_server_id = std::string(sv(info.server_id));
                    r.info_version = std::string(sv(info.version));
                    r.info_connect_urls = std::string(sv(info.connect_urls));
                    /* read every string: ASan checks they are live */
                    std::string  all = std::string(sv(info.server_name))
                                       + std::string(sv(info.nonce));
                    (void) all;
                    r.info_max_payload = info.max_payload;
                    r.info_proto = info.proto;
                    r.info_client_id = info.client_id;
                    r.info_headers = info.headers;
                    r.info_ldm = info.ldm;
                    for (int b : { info.headers, info.auth_required,
                                   info.tls_required, info.tls_available,
                                   info.tls_verify, info.ldm,
                                   info.jetstream })
                    {
                        FUZZ_CHECK(b == 0 || b == 1);
                    }
                } else {
                    FUZZ_CHECK(errlen > 0);
                }
                /* the event stays valid across info() */
                FUZZ_CHECK(sv(ev.payload) == r.payload);
            }

            res.events.push_back(std::move(r));
            consumed += frame_len;
        }
    };

    while (fed < len) {
        std::size_t  chunk = len - fed;

        if (!splits.empty()) {
            std::size_t  s = splits[split_i++ % splits.size()];

            if (s > 0 && s < chunk) {
                chunk = s;
            }
        }

        errlen = sizeof(err);
        rc = resty_nats_parser_feed(p, data + fed, chunk, err, &errlen);

        if (res.failed) {
            FUZZ_CHECK(rc == RESTY_NATS_ERROR);
            FUZZ_CHECK(std::string_view(err, errlen) == res.error);
            FUZZ_CHECK(resty_nats_parser_buffered(p) == 0);
            break;
        }

        FUZZ_CHECK(rc == RESTY_NATS_OK);
        fed += chunk;
        FUZZ_CHECK(resty_nats_parser_buffered(p) == fed - consumed);
        drain();
    }

    if (!res.failed) {
        /* nothing more comes without more bytes */
        errlen = sizeof(err);
        FUZZ_CHECK(resty_nats_parser_next(p, &ev, err, &errlen)
                   == RESTY_NATS_AGAIN);
        FUZZ_CHECK(resty_nats_parser_buffered(p) == fed - consumed);
        FUZZ_CHECK(fed == len);
    }

    if (opt.check_reset) {
        p->impl.reset();
        FUZZ_CHECK(resty_nats_parser_buffered(p) == 0);
        errlen = sizeof(err);
        FUZZ_CHECK(resty_nats_parser_feed(p, "PING\r\n", 6, err, &errlen)
                   == RESTY_NATS_OK);
        errlen = sizeof(err);
        FUZZ_CHECK(resty_nats_parser_next(p, &ev, err, &errlen)
                   == RESTY_NATS_OK);
        FUZZ_CHECK(ev.type == RESTY_NATS_EV_PING);
        FUZZ_CHECK(resty_nats_parser_buffered(p) == 0);
    }

    resty_nats_parser_free(p);
    return res;
}


}  // namespace fuzz

#endif  // RESTY_NATS_FUZZ_COMMON_H
