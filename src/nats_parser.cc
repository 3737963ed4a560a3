/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include "nats_parser.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <new>

#include "nats_json.h"


namespace resty_nats {
namespace detail {


/* compact the buffer in feed() once this many bytes are consumed */
constexpr std::size_t compact_threshold = 64 * 1024;

/* keeps line + payload + CRLF arithmetic far from overflowing */
constexpr std::size_t max_payload_limit = SIZE_MAX >> 2;

/* "NATS/1.0\r\n\r\n" */
constexpr std::size_t min_header_block = 12;


inline bool
is_blank(char c) noexcept
{
    return c == ' ' || c == '\t';
}


inline bool
is_delim(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* a header name byte: 33-126 except ':' (the first ':' ends the name) */
inline bool
is_header_name_byte(char c) noexcept
{
    unsigned char  u = static_cast<unsigned char>(c);

    return u >= 33 && u <= 126 && u != ':';
}


/* a bare CR or LF in [p, end): header text must never carry one */
inline bool
has_cr_or_lf(const char *p, const char *end) noexcept
{
    for ( ; p < end; p++) {
        if (*p == '\r' || *p == '\n') {
            return true;
        }
    }
    return false;
}


inline char
lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}


struct op_name {
    const char     *name;
    std::size_t     len;
    op              type;
};


/* MSG first: it is by far the most frequent */
const op_name op_names[] = {
    { "msg",  3, op::msg },
    { "hmsg", 4, op::hmsg },
    { "ping", 4, op::ping },
    { "pong", 4, op::pong },
    { "+ok",  3, op::ok },
    { "-err", 4, op::err },
    { "info", 4, op::info },
};


enum class match { partial, found, impossible };


/*
 * Finds the op name at the start of p[0..n), after optional blanks. An
 * op name counts only when a space, tab, CR or LF follows it, so "PINGX"
 * is impossible while "PIN" is partial. Fails as soon as no op name can
 * match the bytes seen so far.
 *
 * decided: the offset of the byte that settled the outcome (found: the
 * delimiter after the name, which is name_end; impossible: the byte that
 * ruled out the last candidate). A result is only reachable through
 * partial matches of every shorter prefix, so next() applies the control
 * line bound to it too: the outcome then never depends on how the bytes
 * were split across feeds.
 */
match
match_op(const char *p, std::size_t n, op &type, std::size_t &name_end,
    std::size_t &decided) noexcept
{
    std::size_t  s = 0;
    bool         partial = false;

    decided = 0;

    while (s < n && is_blank(p[s])) {
        s++;
    }

    if (s == n) {
        return match::partial;
    }

    for (const op_name &o : op_names) {
        std::size_t  have = n - s;
        std::size_t  cmp = have < o.len ? have : o.len;
        std::size_t  i;

        for (i = 0; i < cmp; i++) {
            if (lower(p[s + i]) != o.name[i]) {
                break;
            }
        }

        if (i < cmp) {
            decided = s + i > decided ? s + i : decided;
            continue;
        }

        if (have <= o.len) {
            partial = true;
            continue;
        }

        if (is_delim(p[s + o.len])) {
            type = o.type;
            name_end = s + o.len;
            decided = name_end;
            return match::found;
        }

        decided = s + o.len > decided ? s + o.len : decided;
    }

    return partial ? match::partial : match::impossible;
}


/* decimal digits only, no sign; false on overflow */
bool
parse_u64(const char *p, std::size_t len, std::uint64_t &out) noexcept
{
    std::uint64_t  v = 0;

    if (len == 0) {
        return false;
    }

    for (std::size_t i = 0; i < len; i++) {
        unsigned  d = static_cast<unsigned char>(p[i]) - '0';

        if (d > 9) {
            return false;
        }
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }

    out = v;
    return true;
}


const char *
op_label(op type) noexcept
{
    switch (type) {
    case op::info: return "INFO";
    case op::msg:  return "MSG";
    case op::hmsg: return "HMSG";
    case op::ping: return "PING";
    case op::pong: return "PONG";
    case op::ok:   return "+OK";
    case op::err:  return "-ERR";
    case op::none: break;
    }
    return "?";
}


/* the first CRLF in [p, end), or end */
const char *
find_crlf(const char *p, const char *end) noexcept
{
    while (p < end) {
        const void  *cr = std::memchr(p, '\r',
                                      static_cast<std::size_t>(end - p));

        if (cr == nullptr) {
            return end;
        }

        p = static_cast<const char *>(cr);
        if (p + 1 < end && p[1] == '\n') {
            return p;
        }
        p++;
    }

    return end;
}


inline resty_nats_str_t
make_str(const char *p, std::size_t len) noexcept
{
    resty_nats_str_t  s;

    s.data = p;
    s.len = len;
    return s;
}


}  // namespace detail


using namespace detail;


parser::parser(std::size_t max_payload)
{
    set_max_payload(max_payload);
}


void
parser::set_max_payload(std::size_t max_payload) noexcept
{
    if (max_payload == 0) {
        max_payload = RESTY_NATS_DEFAULT_MAX_PAYLOAD;
    }
    max_payload_ = max_payload < max_payload_limit ? max_payload
                                                   : max_payload_limit;
}


void
parser::reset() noexcept
{
    /* give memory back: reset happens between connections */
    std::vector<char>().swap(buf_);
    pos_ = 0;
    scanned_ = 0;
    in_payload_ = false;
    msg_ = pending_msg();
    headers_.clear();
    err_.clear();
}


errc
parser::fail(errc code)
{
    return fail(code, nullptr);
}


errc
parser::fail(errc code, const char *text)
{
    if (text == nullptr) {
        err_.set(code);
    } else {
        err_.set(code, text);
    }

    /* the stream is out of sync: nothing buffered is worth keeping */
    buf_.clear();
    pos_ = 0;
    scanned_ = 0;
    in_payload_ = false;
    headers_.clear();
    return code;
}


errc
parser::fail_format(errc code, const char *fmt, ...)
{
    va_list  ap;
    char     text[error_detail::capacity];

    va_start(ap, fmt);
    std::vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    return fail(code, text);
}


errc
parser::feed(const char *data, std::size_t len)
{
    std::size_t  live;

    if (err_.code() != errc::ok) {
        return err_.code();
    }

    if (len == 0) {
        return errc::ok;
    }

    if (pos_ > 0) {
        live = buf_.size() - pos_;

        if (live == 0) {
            buf_.clear();
            pos_ = 0;

        } else if (pos_ >= compact_threshold || pos_ > live
                   || buf_.size() + len > buf_.capacity())
        {
            /* moving costs at most what was consumed: amortized O(1) */
            std::memmove(buf_.data(), buf_.data() + pos_, live);
            buf_.resize(live);
            pos_ = 0;
        }
    }

    try {
        buf_.insert(buf_.end(), data, data + len);

    } catch (const std::bad_alloc &) {
        /* the bytes are lost, so the stream is broken */
        return fail(errc::no_memory);
    }

    return errc::ok;
}


errc
parser::next(resty_nats_event_t &ev)
{
    const char   *p, *lf;
    std::size_t   avail, cap, limit, name_end = 0, line_len, len;
    std::size_t   decided = 0;
    op            type = op::none;
    match         m;

    std::memset(&ev, 0, sizeof(ev));
    ev.type = RESTY_NATS_EV_NONE;

    if (err_.code() != errc::ok) {
        return err_.code();
    }

    if (in_payload_) {
        return finish_msg(ev);
    }

    avail = buf_.size() - pos_;
    if (avail == 0) {
        return errc::again;
    }

    p = buf_.data() + pos_;

    m = match_op(p, avail, type, name_end, decided);

    /*
     * Only blanks and part of an op name so far (no LF yet), or an
     * outcome settled by a byte at or past the control line cap: fed in
     * smaller pieces, the first RESTY_NATS_MAX_CONTROL_LINE bytes would
     * have been a partial match, so it is the same error here. This also
     * bounds leading blanks before INFO.
     */
    if ((m == match::partial && avail >= RESTY_NATS_MAX_CONTROL_LINE)
        || (m != match::partial && decided >= RESTY_NATS_MAX_CONTROL_LINE))
    {
        return fail_format(errc::line_too_long,
                           "control line too long (over %d bytes)",
                           RESTY_NATS_MAX_CONTROL_LINE);
    }

    switch (m) {
    case match::impossible:
        return fail(errc::unknown_op, "unknown protocol operation");

    case match::partial:
        return errc::again;

    case match::found:
        break;
    }

    cap = type == op::info ? static_cast<std::size_t>(RESTY_NATS_MAX_INFO_LINE)
                           : static_cast<std::size_t>(
                                 RESTY_NATS_MAX_CONTROL_LINE);

    /* never look further than a line may be long */
    limit = avail < cap ? avail : cap;
    lf = nullptr;
    if (scanned_ < limit) {
        lf = static_cast<const char *>(
                 std::memchr(p + scanned_, '\n', limit - scanned_));
    }

    if (lf == nullptr) {
        scanned_ = limit;
        if (avail >= cap) {
            return fail_format(errc::line_too_long,
                               "%s line too long (over %zu bytes)",
                               type == op::info ? "INFO" : "control", cap);
        }
        return errc::again;
    }

    scanned_ = 0;
    line_len = static_cast<std::size_t>(lf - p) + 1;
    len = line_len - 1;
    if (len > 0 && p[len - 1] == '\r') {
        len--;
    }

    return parse_line(p, len, line_len, type, name_end, ev);
}


errc
parser::parse_line(const char *line, std::size_t len, std::size_t line_len,
    op type, std::size_t name_end, resty_nats_event_t &ev)
{
    const char  *args = line + name_end;
    const char  *end = line + len;

    if (type == op::msg || type == op::hmsg) {
        errc  rc = parse_msg_args(line, args, end, type, line_len);

        if (rc != errc::ok) {
            return rc;
        }

        in_payload_ = true;
        return finish_msg(ev);
    }

    while (args < end && is_blank(*args)) {
        args++;
    }
    while (end > args && is_blank(end[-1])) {
        end--;
    }

    switch (type) {
    case op::ping:
    case op::pong:
    case op::ok:
        if (args != end) {
            return fail_format(errc::invalid_arguments,
                               "invalid %s arguments", op_label(type));
        }
        ev.type = type == op::ping ? RESTY_NATS_EV_PING
                  : type == op::pong ? RESTY_NATS_EV_PONG
                  : RESTY_NATS_EV_OK;
        break;

    case op::info:
        if (args == end) {
            return fail(errc::invalid_arguments, "invalid INFO arguments");
        }
        ev.type = RESTY_NATS_EV_INFO;
        ev.payload = make_str(args, static_cast<std::size_t>(end - args));
        break;

    case op::err:
        /* '<text>'; tolerate a missing quote on either side */
        if (args < end && *args == '\'') {
            args++;
        }
        if (end > args && end[-1] == '\'') {
            end--;
        }
        ev.type = RESTY_NATS_EV_ERR;
        ev.payload = make_str(args, static_cast<std::size_t>(end - args));
        break;

    default:
        return fail(errc::internal, "internal error: unexpected op");
    }

    pos_ += line_len;
    return errc::ok;
}


errc
parser::parse_msg_args(const char *line, const char *args, const char *end,
    op type, std::size_t line_len)
{
    const char     *tok[5];
    std::size_t     tok_len[5];
    std::size_t     ntok = 0, size_arg;
    std::uint64_t   hdr = 0, total = 0;
    bool            has_reply;
    const char     *q = args;

    for ( ;; ) {
        const char  *s;

        while (q < end && is_blank(*q)) {
            q++;
        }
        if (q == end) {
            break;
        }
        if (ntok == 5) {
            return fail_format(errc::invalid_arguments,
                               "invalid %s arguments", op_label(type));
        }

        s = q;
        while (q < end && !is_blank(*q)) {
            q++;
        }
        tok[ntok] = s;
        tok_len[ntok] = static_cast<std::size_t>(q - s);
        ntok++;
    }

    if (type == op::msg) {
        if (ntok != 3 && ntok != 4) {
            return fail(errc::invalid_arguments, "invalid MSG arguments");
        }
        has_reply = ntok == 4;

    } else {
        if (ntok != 4 && ntok != 5) {
            return fail(errc::invalid_arguments, "invalid HMSG arguments");
        }
        has_reply = ntok == 5;
    }

    size_arg = ntok - 1;

    if (!parse_u64(tok[size_arg], tok_len[size_arg], total)) {
        return fail_format(errc::invalid_size, "invalid payload size in %s",
                           op_label(type));
    }

    if (type == op::hmsg) {
        if (!parse_u64(tok[size_arg - 1], tok_len[size_arg - 1], hdr)) {
            return fail(errc::invalid_size,
                        "invalid header size in HMSG");
        }
        if (hdr > total) {
            return fail_format(errc::invalid_size,
                               "invalid payload size in HMSG (header size "
                               "%llu > total size %llu)",
                               static_cast<unsigned long long>(hdr),
                               static_cast<unsigned long long>(total));
        }
    }

    if (total > max_payload_) {
        return fail_format(errc::payload_too_large,
                           "payload too large (%llu > max_payload %zu)",
                           static_cast<unsigned long long>(total),
                           max_payload_);
    }

    msg_.type = type;
    msg_.line_len = line_len;
    msg_.subject_off = static_cast<std::size_t>(tok[0] - line);
    msg_.subject_len = tok_len[0];
    msg_.sid_off = static_cast<std::size_t>(tok[1] - line);
    msg_.sid_len = tok_len[1];

    if (has_reply) {
        msg_.reply_off = static_cast<std::size_t>(tok[2] - line);
        msg_.reply_len = tok_len[2];
    } else {
        msg_.reply_off = 0;
        msg_.reply_len = 0;
    }

    msg_.hdr_len = static_cast<std::size_t>(hdr);
    msg_.total_len = static_cast<std::size_t>(total);

    if (!parse_u64(tok[1], tok_len[1], msg_.sid)) {
        msg_.sid = UINT64_MAX;
    }

    return errc::ok;
}


errc
parser::finish_msg(resty_nats_event_t &ev)
{
    const char   *p = buf_.data() + pos_;
    std::size_t   avail = buf_.size() - pos_;
    std::size_t   payload_end = msg_.line_len + msg_.total_len;
    const char   *bad;

    /* reject a wrong terminator as soon as its first byte is here */
    if (avail > payload_end && p[payload_end] != '\r') {
        return fail(errc::missing_crlf, "missing CRLF after payload");
    }
    if (avail > payload_end + 1 && p[payload_end + 1] != '\n') {
        return fail(errc::missing_crlf, "missing CRLF after payload");
    }
    if (avail < payload_end + 2) {
        return errc::again;
    }

    ev.subject = make_str(p + msg_.subject_off, msg_.subject_len);
    ev.sid_str = make_str(p + msg_.sid_off, msg_.sid_len);
    ev.sid = msg_.sid;
    if (msg_.reply_len > 0) {
        ev.reply = make_str(p + msg_.reply_off, msg_.reply_len);
    }

    if (msg_.type == op::hmsg) {
        bad = parse_headers(p + msg_.line_len, msg_.hdr_len, ev);
        if (bad != nullptr) {
            /*
             * The frame itself is sound (its sizes were checked), only
             * the block inside is not: any publisher can send that, so
             * it costs this message its headers, never the connection.
             */
            ev.status = RESTY_NATS_STATUS_INVALID_HEADERS;
            ev.description = make_str(bad, std::strlen(bad));
            ev.headers = nullptr;
            ev.nheaders = 0;
        }
        ev.type = RESTY_NATS_EV_HMSG;

    } else {
        ev.type = RESTY_NATS_EV_MSG;
    }

    ev.payload = make_str(p + msg_.line_len + msg_.hdr_len,
                          msg_.total_len - msg_.hdr_len);

    pos_ += payload_end + 2;
    in_payload_ = false;
    return errc::ok;
}


const char *
parser::parse_headers(const char *block, std::size_t len,
    resty_nats_event_t &ev)
{
    const char  *end, *eol, *s, *q, *colon, *v, *ve;
    int          status = 0;

    if (len < min_header_block || std::memcmp(block, "NATS/1.0", 8) != 0
        || std::memcmp(block + len - 4, "\r\n\r\n", 4) != 0)
    {
        return "invalid header block";
    }

    /* the lines, each with its CRLF, without the blank last line */
    end = block + len - 2;

    /* NATS/1.0[ <3-digit status>[ <description>]] */
    eol = find_crlf(block, end);
    s = block + 8;

    if (s < eol) {
        if (!is_blank(*s)) {
            return "invalid header block: bad version line";
        }
        while (s < eol && is_blank(*s)) {
            s++;
        }
    }

    if (s < eol) {
        if (eol - s < 3 || static_cast<unsigned>(s[0] - '0') > 9
            || static_cast<unsigned>(s[1] - '0') > 9
            || static_cast<unsigned>(s[2] - '0') > 9
            || (eol - s > 3 && !is_blank(s[3])))
        {
            return "invalid header block: bad status";
        }

        status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
        s += 3;

        while (s < eol && is_blank(*s)) {
            s++;
        }
        ve = eol;
        while (ve > s && is_blank(ve[-1])) {
            ve--;
        }
        if (has_cr_or_lf(s, ve)) {
            return "invalid header block: bad status";
        }
        if (ve > s) {
            ev.description = make_str(s, static_cast<std::size_t>(ve - s));
        }
    }

    ev.status = status;
    headers_.clear();

    for (q = eol + 2; q < end; q = eol + 2) {
        resty_nats_header_t  h;

        eol = find_crlf(q, end);

        colon = static_cast<const char *>(
                    std::memchr(q, ':', static_cast<std::size_t>(eol - q)));
        if (colon == nullptr || colon == q) {
            return "invalid header block: bad header line";
        }

        /* ADR-4 names: bytes 33-126 (so no blank, no bare CR or LF) */
        for (s = q; s < colon; s++) {
            if (!is_header_name_byte(*s)) {
                return "invalid header block: bad header name";
            }
        }

        v = colon + 1;
        ve = eol;

        /* lines end only at CRLF: a bare CR or LF stays in the value */
        if (has_cr_or_lf(v, ve)) {
            return "invalid header block: bad header value";
        }
        while (v < ve && is_blank(*v)) {
            v++;
        }
        while (ve > v && is_blank(ve[-1])) {
            ve--;
        }

        h.name = make_str(q, static_cast<std::size_t>(colon - q));
        h.value = make_str(v, static_cast<std::size_t>(ve - v));
        headers_.push_back(h);
    }

    if (!headers_.empty()) {
        ev.headers = headers_.data();
        ev.nheaders = headers_.size();
    }

    return nullptr;
}


/* a string member, or "" when absent or not a string */
static void
info_string(const json::value &root, std::string_view key,
    std::string &dst, resty_nats_str_t &out)
{
    const json::value  *v = root.find(key);

    if (v != nullptr && v->is(json::kind::string)) {
        dst.assign(v->text().data(), v->text().size());
    } else {
        dst.clear();
    }

    out = make_str(dst.data(), dst.size());
}


static int
info_bool(const json::value &root, std::string_view key) noexcept
{
    const json::value  *v = root.find(key);

    return v != nullptr && v->is(json::kind::boolean) && v->boolean();
}


errc
parser::info(const char *json, std::size_t len, resty_nats_info_t &out,
    error_detail *err)
{
    json::value         root;
    const json::value  *v;
    errc                rc;
    std::int64_t        i64;
    std::uint64_t       u64;

    rc = json::parse(json, len, root, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (!root.is(json::kind::object)) {
        return set_error(err, errc::json_not_object,
                         "invalid INFO: json text is not an object");
    }

    std::memset(&out, 0, sizeof(out));

    info_string(root, "server_id", server_id_, out.server_id);
    info_string(root, "server_name", server_name_, out.server_name);
    info_string(root, "version", version_, out.version);
    info_string(root, "nonce", nonce_, out.nonce);

    connect_urls_.clear();
    v = root.find("connect_urls");
    if (v != nullptr && v->is(json::kind::array)) {
        for (std::size_t i = 0; i < v->size(); i++) {
            const json::value  &u = v->at(i);

            if (!u.is(json::kind::string)) {
                continue;
            }
            if (!connect_urls_.empty()) {
                connect_urls_ += ',';
            }
            connect_urls_.append(u.text().data(), u.text().size());
        }
    }
    out.connect_urls = make_str(connect_urls_.data(), connect_urls_.size());

    v = root.find("max_payload");
    if (v != nullptr && v->get_int64(i64)) {
        out.max_payload = i64;
    }

    v = root.find("proto");
    if (v != nullptr && v->get_int64(i64)) {
        out.proto = i64;
    }

    v = root.find("client_id");
    if (v != nullptr && v->get_uint64(u64)) {
        out.client_id = u64;
    }

    out.headers = info_bool(root, "headers");
    out.auth_required = info_bool(root, "auth_required");
    out.tls_required = info_bool(root, "tls_required");
    out.tls_available = info_bool(root, "tls_available");
    out.tls_verify = info_bool(root, "tls_verify");
    out.ldm = info_bool(root, "ldm");
    out.jetstream = info_bool(root, "jetstream");

    return errc::ok;
}


}  // namespace resty_nats
