/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include "nats_framer.h"

#include <cstring>
#include <initializer_list>

#include "nats_json.h"


namespace resty_nats {
namespace detail {


/*
 * Appends to the caller's buffer while it fits and keeps counting after
 * that, so one pass gives both the frame and the size it needs.
 */
class writer {
public:
    writer(char *buf, std::size_t size) noexcept : buf_(buf), size_(size) {}

    void put(const char *s, std::size_t len) noexcept
    {
        if (len > 0 && n_ <= size_ && len <= size_ - n_) {
            std::memcpy(buf_ + n_, s, len);
        }
        n_ += len;
    }

    void put(std::string_view s) noexcept { put(s.data(), s.size()); }
    void put(char c) noexcept { put(&c, 1); }

    void put_u64(std::uint64_t v) noexcept
    {
        char         tmp[20];
        std::size_t  i = sizeof(tmp);

        do {
            tmp[--i] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);

        put(tmp + i, sizeof(tmp) - i);
    }

    void put_escaped(std::string_view s) noexcept
    {
        std::size_t  len = json::escaped_size(s.data(), s.size());

        if (len > 0 && n_ <= size_ && len <= size_ - n_) {
            json::escape(buf_ + n_, s.data(), s.size());
        }
        n_ += len;
    }

    std::size_t size() const noexcept { return n_; }

    errc finish(std::size_t &n) const noexcept
    {
        n = n_;
        return n_ <= size_ ? errc::ok : errc::again;
    }

private:
    char         *buf_;
    std::size_t   size_;
    std::size_t   n_ = 0;
};


inline bool
is_subject_byte(unsigned char c) noexcept
{
    return c >= 33 && c != 127;
}


errc
line_too_long(std::size_t len, error_detail *err) noexcept
{
    if (err != nullptr) {
        err->format(errc::line_too_long,
                    "control line too long (%zu > %d bytes)", len,
                    RESTY_NATS_MAX_CONTROL_LINE);
    }
    return errc::line_too_long;
}


errc
payload_too_large(std::size_t len, std::size_t max, error_detail *err)
    noexcept
{
    if (err != nullptr) {
        err->format(errc::payload_too_large,
                    "payload too large (%zu > max_payload %zu)", len, max);
    }
    return errc::payload_too_large;
}


}  // namespace detail


using namespace detail;


errc
validate_subject(std::string_view s, subject_kind kind, error_detail *err)
    noexcept
{
    const char   *what = kind == subject_kind::reply ? "invalid reply subject"
                                                     : "invalid subject";
    errc          code = kind == subject_kind::reply ? errc::invalid_reply
                                                     : errc::invalid_subject;
    const char   *problem = nullptr;
    std::size_t   start = 0, end;

    if (s.empty()) {
        problem = "empty";
        goto failed;
    }

    for (char c : s) {
        if (!is_subject_byte(static_cast<unsigned char>(c))) {
            problem = "contains whitespace or control character";
            goto failed;
        }
    }

    for ( ;; ) {
        std::string_view  tok;

        end = s.find('.', start);
        tok = s.substr(start,
                       end == std::string_view::npos ? end : end - start);

        if (tok.empty()) {
            problem = "empty token";
            goto failed;
        }

        if (tok == "*" || tok == ">") {
            if (kind != subject_kind::subscribe) {
                problem = "wildcard not allowed";
                goto failed;
            }
            if (tok == ">" && end != std::string_view::npos) {
                problem = "'>' must be the last token";
                goto failed;
            }
        }

        if (end == std::string_view::npos) {
            return errc::ok;
        }
        start = end + 1;
    }

failed:

    if (err != nullptr) {
        err->format(code, "%s: %s", what, problem);
    }
    return code;
}


errc
validate_queue(std::string_view q, error_detail *err) noexcept
{
    if (q.empty()) {
        return set_error(err, errc::invalid_queue,
                         "invalid queue group: empty");
    }

    for (char c : q) {
        if (!is_subject_byte(static_cast<unsigned char>(c))) {
            return set_error(err, errc::invalid_queue,
                             "invalid queue group: contains whitespace or "
                             "control character");
        }
    }

    return errc::ok;
}


errc
validate_header(const resty_nats_header_t &h, error_detail *err) noexcept
{
    if ((h.name.data == nullptr && h.name.len > 0)
        || (h.value.data == nullptr && h.value.len > 0))
    {
        return set_error(err, errc::null_pointer, "null pointer");
    }

    if (h.name.len == 0) {
        return set_error(err, errc::invalid_header_name,
                         "invalid header name: empty");
    }

    for (std::size_t i = 0; i < h.name.len; i++) {
        unsigned char  c = static_cast<unsigned char>(h.name.data[i]);

        if (c < 33 || c > 126 || c == ':') {
            return set_error(err, errc::invalid_header_name,
                             "invalid header name: contains a byte "
                             "outside 33-126 or ':'");
        }
    }

    for (std::size_t i = 0; i < h.value.len; i++) {
        char  c = h.value.data[i];

        if (c == '\r' || c == '\n') {
            return set_error(err, errc::invalid_header_value,
                             "invalid header value: contains CR or LF");
        }
    }

    return errc::ok;
}


errc
frame_connect(char *buf, std::size_t size, std::size_t &n,
    const resty_nats_connect_opts_t &o, error_detail *err) noexcept
{
    struct flag {
        const char  *key;
        int          value;
    };

    struct text {
        const char              *key;
        const resty_nats_str_t  *value;
    };

    writer  w(buf, size);
    bool    first = true;

    const text  texts[] = {
        { "name", &o.name }, { "lang", &o.lang }, { "version", &o.version },
        { "user", &o.user }, { "pass", &o.pass },
        { "auth_token", &o.auth_token }, { "jwt", &o.jwt },
        { "nkey", &o.nkey }, { "sig", &o.sig },
    };

    for (const text &t : texts) {
        if (t.value->data == nullptr && t.value->len > 0) {
            return set_error(err, errc::null_pointer, "null pointer");
        }
    }

    auto key = [&](const char *k) {
        if (!first) {
            w.put(',');
        }
        first = false;
        w.put('"');
        w.put(k, std::strlen(k));
        w.put("\":", 2);
    };

    auto put_flags = [&](std::initializer_list<flag> flags) {
        for (const flag &f : flags) {
            if (f.value >= 0) {
                key(f.key);
                w.put(f.value ? std::string_view("true")
                              : std::string_view("false"));
            }
        }
    };

    auto put_texts = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; i++) {
            const resty_nats_str_t  *v = texts[i].value;

            if (v->data != nullptr) {
                key(texts[i].key);
                w.put('"');
                w.put_escaped(std::string_view(v->data, v->len));
                w.put('"');
            }
        }
    };

    w.put("CONNECT {");

    put_flags({ { "verbose", o.verbose }, { "pedantic", o.pedantic },
                { "tls_required", o.tls_required } });
    put_texts(0, 3);  /* name, lang, version */

    if (o.protocol >= 0) {
        key("protocol");
        w.put_u64(static_cast<std::uint64_t>(o.protocol));
    }

    put_flags({ { "echo", o.echo }, { "headers", o.headers },
                { "no_responders", o.no_responders } });
    put_texts(3, sizeof(texts) / sizeof(texts[0]));

    w.put("}\r\n");

    if (w.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        return line_too_long(w.size(), err);
    }

    return w.finish(n);
}


errc
frame_pub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view reply,
    std::size_t payload_len, std::size_t max_payload,
    error_detail *err) noexcept
{
    writer  w(buf, size);
    errc    rc;

    rc = validate_subject(subject, subject_kind::publish, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (!reply.empty()) {
        rc = validate_subject(reply, subject_kind::reply, err);
        if (rc != errc::ok) {
            return rc;
        }
    }

    if (max_payload > 0 && payload_len > max_payload) {
        return payload_too_large(payload_len, max_payload, err);
    }

    w.put("PUB ");
    w.put(subject);
    if (!reply.empty()) {
        w.put(' ');
        w.put(reply);
    }
    w.put(' ');
    w.put_u64(payload_len);
    w.put("\r\n");

    if (w.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        return line_too_long(w.size(), err);
    }

    return w.finish(n);
}


errc
frame_hpub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view reply,
    const resty_nats_header_t *headers, std::size_t nheaders,
    std::size_t payload_len, std::size_t max_payload,
    error_detail *err) noexcept
{
    static const char  version_line[] = "NATS/1.0\r\n";

    writer       w(buf, size);
    errc         rc;
    std::size_t  hdr_len, total;

    rc = validate_subject(subject, subject_kind::publish, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (!reply.empty()) {
        rc = validate_subject(reply, subject_kind::reply, err);
        if (rc != errc::ok) {
            return rc;
        }
    }

    if (headers == nullptr && nheaders > 0) {
        return set_error(err, errc::null_pointer, "null pointer");
    }

    hdr_len = sizeof(version_line) - 1 + 2;

    for (std::size_t i = 0; i < nheaders; i++) {
        rc = validate_header(headers[i], err);
        if (rc != errc::ok) {
            return rc;
        }
        /* "Name: value\r\n" */
        hdr_len += headers[i].name.len + 2 + headers[i].value.len + 2;
    }

    if (payload_len > SIZE_MAX - hdr_len) {
        return payload_too_large(SIZE_MAX, max_payload, err);
    }

    total = hdr_len + payload_len;

    if (max_payload > 0 && total > max_payload) {
        return payload_too_large(total, max_payload, err);
    }

    w.put("HPUB ");
    w.put(subject);
    if (!reply.empty()) {
        w.put(' ');
        w.put(reply);
    }
    w.put(' ');
    w.put_u64(hdr_len);
    w.put(' ');
    w.put_u64(total);
    w.put("\r\n");

    if (w.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        return line_too_long(w.size(), err);
    }

    w.put(version_line, sizeof(version_line) - 1);

    for (std::size_t i = 0; i < nheaders; i++) {
        w.put(headers[i].name.data, headers[i].name.len);
        w.put(": ", 2);
        w.put(headers[i].value.data, headers[i].value.len);
        w.put("\r\n", 2);
    }

    w.put("\r\n", 2);

    return w.finish(n);
}


errc
frame_sub(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view queue, std::uint64_t sid,
    error_detail *err) noexcept
{
    writer  w(buf, size);
    errc    rc;

    rc = validate_subject(subject, subject_kind::subscribe, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (!queue.empty()) {
        rc = validate_queue(queue, err);
        if (rc != errc::ok) {
            return rc;
        }
    }

    w.put("SUB ");
    w.put(subject);
    if (!queue.empty()) {
        w.put(' ');
        w.put(queue);
    }
    w.put(' ');
    w.put_u64(sid);
    w.put("\r\n");

    if (w.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        return line_too_long(w.size(), err);
    }

    return w.finish(n);
}


errc
frame_unsub(char *buf, std::size_t size, std::size_t &n, std::uint64_t sid,
    std::uint64_t max_msgs) noexcept
{
    writer  w(buf, size);

    w.put("UNSUB ");
    w.put_u64(sid);
    if (max_msgs > 0) {
        w.put(' ');
        w.put_u64(max_msgs);
    }
    w.put("\r\n");

    return w.finish(n);
}


}  // namespace resty_nats
