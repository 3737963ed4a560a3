/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_framer: the framers and the subscription table of the C ABI, and
 * the C++ validators and subject matcher behind them, against independent
 * models.
 *
 * The input is a sequence of operations (up to 8), each one byte for the
 * kind followed by the bytes its generator takes:
 *   PUB, HPUB, SUB, UNSUB, CONNECT: subjects, replies, queues, header
 *     names and values, payload sizes, max_payload, sids and CONNECT
 *     options, mostly valid, sometimes with a bad byte, an empty token, a
 *     wildcard, an overlong line or a huge size.
 *   validate: resty_nats::validate_subject (publish and subscribe rules),
 *     validate_queue and subject_matches on generated strings (C++: the
 *     C ABI checks subjects only inside the framers).
 *   subs: a run of resty_nats_subs_subscribe (with its size probe and a
 *     max) or sub_table::add, set_max, deliver, remove, and the table's
 *     contents read through the handle (sub_table::find, size, next_sid).
 *
 * For every framer call:
 * - accept or refuse exactly as the model of the subject rules says (the
 *   NATS client protocol, https://docs.nats.io/reference/reference-protocols/
 *   nats-protocol, as src/resty_nats.h documents it above the framers:
 *   bytes 33-126 and 128-255, non-empty tokens, wildcards only where
 *   allowed, header names 33-126 without ':', values without CR/LF, the
 *   4096-byte control line, max_payload on headers + payload), with an
 *   error message of the right kind, truncated correctly into small
 *   error buffers;
 * - the size probe: a too small buffer gives AGAIN with the exact size,
 *   a buffer of exactly that size gives OK with the same size and the
 *   same bytes, one byte less gives AGAIN again (buffers are heap blocks
 *   of the exact size, so ASan catches any write past them);
 * - the bytes equal the frame built by the model, and they parse back:
 *   PUB/HPUB are turned into the MSG/HMSG the server would echo (a sid
 *   inserted after the subject), followed by a payload and CRLF, and the
 *   parser must return the same subject, reply, payload and headers;
 *   CONNECT's JSON is read back with the core's JSON reader and must hold
 *   exactly the options given.
 */

#include <climits>
#include <iterator>
#include <map>
#include <memory>

#include "fuzz_common.h"
#include "nats_framer.h"
#include "nats_json.h"
#include "nats_sub_table.h"
#include "resty_nats_abi.h"


namespace json = resty_nats::json;


namespace {


enum class kind { publish, reply, subscribe };


/* "" when valid, else the start of the expected error message */
std::string
model_subject(std::string_view s, kind k)
{
    std::string  what = k == kind::reply ? "invalid reply subject"
                                         : "invalid subject";
    std::size_t  start = 0;

    if (s.empty()) {
        return what;
    }
    for (unsigned char c : s) {
        if (c < 33 || c == 127) {
            return what;
        }
    }
    for ( ;; ) {
        std::size_t       dot = s.find('.', start);
        std::string_view  tok = s.substr(start, dot == std::string_view::npos
                                                ? dot : dot - start);

        if (tok.empty()) {
            return what;
        }
        if (tok == "*" || tok == ">") {
            if (k != kind::subscribe) {
                return what;
            }
            if (tok == ">" && dot != std::string_view::npos) {
                return what;
            }
        }
        if (dot == std::string_view::npos) {
            return "";
        }
        start = dot + 1;
    }
}


std::string
model_queue(std::string_view q)
{
    if (q.empty()) {
        return "invalid queue group";
    }
    for (unsigned char c : q) {
        if (c < 33 || c == 127) {
            return "invalid queue group";
        }
    }
    return "";
}


std::vector<std::string_view>
tokens(std::string_view s)
{
    std::vector<std::string_view>  out;
    std::size_t                    start = 0;

    for ( ;; ) {
        std::size_t  dot = s.find('.', start);

        if (dot == std::string_view::npos) {
            out.push_back(s.substr(start));
            return out;
        }
        out.push_back(s.substr(start, dot - start));
        start = dot + 1;
    }
}


bool
model_matches(std::string_view pattern, std::string_view subject)
{
    std::vector<std::string_view>  p, s;

    if (pattern.empty() || subject.empty()) {
        return false;
    }
    p = tokens(pattern);
    s = tokens(subject);
    for (auto t : p) {
        if (t.empty()) {
            return false;
        }
    }
    for (auto t : s) {
        if (t.empty()) {
            return false;
        }
    }
    for (std::size_t i = 0; i < p.size(); i++) {
        if (p[i] == ">" && i + 1 == p.size()) {
            return s.size() > i;
        }
        if (i >= s.size() || (p[i] != "*" && p[i] != s[i])) {
            return false;
        }
    }
    return p.size() == s.size();
}


/* ------------------------------------------------------------------ */
/* generators */


char
special_byte(std::uint8_t b)
{
    static const char  bad[] = { ' ', '\t', '\r', '\n', '\0', '\x7f',
                                 '.', '\x80', '\xff', '*', '>', ':' };

    return bad[b % sizeof(bad)];
}


std::string
gen_token(fuzz::byte_source &in)
{
    std::uint8_t  v = in.u8();
    std::string   t;

    if (v < 20) {
        return "*";
    }
    if (v < 35) {
        return ">";
    }
    for (unsigned n = 1 + v % 10; n > 0; n--) {
        std::uint8_t  b = in.u8();

        t += b < 230 ? static_cast<char>(33 + b % 94)
                     : b < 245 ? static_cast<char>(0x80 | (b & 0x3f))
                               : special_byte(b);
    }
    return t;
}


/* mostly subject-shaped; sometimes raw bytes, empty or very long */
std::string
gen_subject(fuzz::byte_source &in)
{
    std::uint8_t  m = in.u8();
    std::string   s;

    if (m < 170) {
        for (unsigned n = 1 + m % 5; n > 0; n--) {
            if (!s.empty()) {
                s += '.';
            }
            s += gen_token(in);
        }
        if (m < 12 && !s.empty()) {
            /* a bad byte somewhere */
            s[in.u8() % s.size()] = special_byte(in.u8());
        }
        return s;
    }
    if (m < 200) {
        return in.bytes(in.u8() % 48);
    }
    if (m < 215) {
        return s;
    }
    /* near the 4096-byte control line */
    s.assign(3900 + in.u16() % 300, 'a');
    for (std::size_t i = 1 + in.u8() % 64; i < s.size(); i += 1 + in.u8()) {
        s[i] = '.';
        if (in.empty()) {
            break;
        }
    }
    return s;
}


std::string
gen_optional(fuzz::byte_source &in)
{
    return in.u8() < 100 ? std::string() : gen_subject(in);
}


std::size_t
gen_max_payload(fuzz::byte_source &in)
{
    switch (in.u8() % 4) {
    case 0: return 0;
    case 1: return in.u16();
    case 2: return RESTY_NATS_DEFAULT_MAX_PAYLOAD;
    default: return in.u8();
    }
}


std::size_t
gen_payload_len(fuzz::byte_source &in, std::size_t max_payload)
{
    std::uint8_t  m = in.u8();

    if (m < 128) {
        return in.u8();
    }
    if (m < 192) {
        return in.u16();
    }
    if (m < 230) {
        std::size_t  d = in.u8() % 3;
        return max_payload + d >= 1 ? max_payload + d - 1 : 0;
    }
    return SIZE_MAX - in.u8();
}


/* a string that may be NULL (with length 0) */
struct opt_str {
    bool         null = true;
    std::string  s;

    resty_nats_str_t c() const
    {
        resty_nats_str_t  r;

        r.data = null ? nullptr : s.data();
        r.len = null ? 0 : s.size();
        return r;
    }
};


/* ------------------------------------------------------------------ */
/* the size probe */


struct frame_result {
    bool         ok = false;
    std::string  bytes;
    std::string  error;
};


/*
 * call(buf, size, &n, err, &errlen) -> rc. Checks the AGAIN/OK size
 * contract and error reporting; returns the frame or the refusal.
 */
template <typename F>
frame_result
probe(fuzz::byte_source &in, F call)
{
    frame_result  res;
    std::size_t   size0, n = 0, n2 = 0, errlen;
    char          err[256];
    int           rc;

    switch (in.u8() % 4) {
    case 0: size0 = 0; break;
    case 1: size0 = 1 + in.u8() % 64; break;
    case 2: size0 = in.u16() % 8192; break;
    default: size0 = 65536; break;
    }

    std::unique_ptr<char[]>  buf0(size0 > 0 ? new char[size0] : nullptr);

    errlen = sizeof(err);
    n = 0xdead;
    rc = call(buf0.get(), size0, &n, err, &errlen);

    if (rc == RESTY_NATS_ERROR) {
        char         small[16];
        std::size_t  k = in.u8() % sizeof(small);
        std::size_t  want;

        FUZZ_CHECK(errlen > 0 && errlen <= sizeof(err));
        res.error.assign(err, errlen);

        /* refusal does not depend on the buffer */
        std::unique_ptr<char[]>  big(new char[65536]);

        errlen = sizeof(err);
        FUZZ_CHECK(call(big.get(), 65536, &n, err, &errlen)
                   == RESTY_NATS_ERROR);
        FUZZ_CHECK(std::string_view(err, errlen) == res.error);

        /* a small error buffer gets a truncated message */
        errlen = k;
        FUZZ_CHECK(call(nullptr, 0, &n, small, &errlen) == RESTY_NATS_ERROR);
        want = res.error.size() < k ? res.error.size() : k;
        FUZZ_CHECK(errlen == want);
        FUZZ_CHECK(std::memcmp(small, res.error.data(), want) == 0);

        /* and no error buffer at all is fine */
        FUZZ_CHECK(call(nullptr, 0, &n, nullptr, nullptr)
                   == RESTY_NATS_ERROR);
        return res;
    }

    if (rc == RESTY_NATS_AGAIN) {
        FUZZ_CHECK_MSG(n > size0, "AGAIN with n " + std::to_string(n)
                       + " <= size " + std::to_string(size0));
    } else {
        FUZZ_CHECK_MSG(rc == RESTY_NATS_OK, "rc " + std::to_string(rc));
        FUZZ_CHECK(n <= size0);
        res.bytes.assign(buf0.get(), n);
    }

    FUZZ_CHECK(n > 0);

    /* exactly n bytes: OK, the same size */
    std::unique_ptr<char[]>  exact(new char[n]);

    errlen = sizeof(err);
    FUZZ_CHECK(call(exact.get(), n, &n2, err, &errlen) == RESTY_NATS_OK);
    FUZZ_CHECK_MSG(n2 == n, "size " + std::to_string(n) + " then "
                   + std::to_string(n2));
    if (rc == RESTY_NATS_OK) {
        FUZZ_CHECK(std::memcmp(exact.get(), res.bytes.data(), n) == 0);
    } else {
        res.bytes.assign(exact.get(), n);
    }

    /* one byte less: AGAIN with the same size */
    std::unique_ptr<char[]>  less(n > 1 ? new char[n - 1] : nullptr);

    errlen = sizeof(err);
    n2 = 0;
    FUZZ_CHECK(call(less.get(), n - 1, &n2, err, &errlen)
               == RESTY_NATS_AGAIN);
    FUZZ_CHECK(n2 == n);

    res.ok = true;
    return res;
}


void
expect_outcome(const frame_result &r, const std::string &want_error,
    const std::string &want_bytes, const char *what)
{
    if (!want_error.empty()) {
        FUZZ_CHECK_MSG(!r.ok, std::string(what) + " accepted "
                       + fuzz::quote(r.bytes) + ", model says "
                       + want_error);
        FUZZ_CHECK_MSG(r.error.compare(0, want_error.size(), want_error)
                       == 0, std::string(what) + " error "
                       + fuzz::quote(r.error) + ", model says "
                       + want_error);
        return;
    }

    FUZZ_CHECK_MSG(r.ok, std::string(what) + " refused: "
                   + fuzz::quote(r.error) + ", model builds "
                   + fuzz::quote(want_bytes));
    FUZZ_CHECK_MSG(r.bytes == want_bytes, std::string(what) + " gave "
                   + fuzz::quote(r.bytes) + ", model builds "
                   + fuzz::quote(want_bytes));
}


/* ------------------------------------------------------------------ */
/* parse-back: PUB -> MSG, HPUB -> HMSG, through the parser */


void
parse_back(const std::string &frame, std::size_t payload_len,
    const std::string &subject, const std::string &reply,
    const std::vector<std::pair<std::string, std::string>> *headers,
    std::uint64_t sid)
{
    std::size_t                line_end = frame.find("\r\n");
    std::string                line = frame.substr(0, line_end);
    std::string                wire, payload;
    std::vector<std::string>   tok;
    std::size_t                start = 0;
    fuzz::stream_options       opt;

    if (payload_len > 4096) {
        return;
    }

    for ( ;; ) {
        std::size_t  sp = line.find(' ', start);

        tok.push_back(line.substr(start, sp - start));
        if (sp == std::string::npos) {
            break;
        }
        start = sp + 1;
    }

    /* the framed line has single spaces and no empty field */
    FUZZ_CHECK(tok.size() >= 3);
    for (const std::string &t : tok) {
        FUZZ_CHECK(!t.empty());
    }
    FUZZ_CHECK(tok[0] == (headers != nullptr ? "HPUB" : "PUB"));

    wire = headers != nullptr ? "HMSG " : "MSG ";
    wire += tok[1] + " " + fuzz::dec(sid);
    for (std::size_t i = 2; i < tok.size(); i++) {
        wire += " " + tok[i];
    }
    wire += "\r\n";
    if (wire.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        return;  /* the sid made it too long for a server line */
    }
    wire += frame.substr(line_end + 2);  /* the header block */

    for (std::size_t i = 0; i < payload_len; i++) {
        payload += "\r\nxy"[(i * 7 + payload_len) % 4];
    }
    wire += payload + "\r\n";

    opt.max_payload = frame.size() + payload_len;
    opt.check_reset = false;

    fuzz::stream_result  r = fuzz::run_stream(wire.data(), wire.size(), {},
                                              opt);

    FUZZ_CHECK_MSG(!r.failed && r.events.size() == 1,
                   fuzz::quote(wire) + " parsed as:\n" + fuzz::describe(r));

    const fuzz::event_rec  &e = r.events[0];

    FUZZ_CHECK(e.type == (headers != nullptr ? RESTY_NATS_EV_HMSG
                                             : RESTY_NATS_EV_MSG));
    FUZZ_CHECK(e.subject == subject);
    FUZZ_CHECK(e.reply == reply);
    FUZZ_CHECK(e.sid == sid && e.sid_str == fuzz::dec(sid));
    FUZZ_CHECK(e.payload == payload);

    if (headers != nullptr) {
        FUZZ_CHECK(e.status == 0 && e.description.empty());
        FUZZ_CHECK(e.headers.size() == headers->size());
        for (std::size_t i = 0; i < headers->size(); i++) {
            /* blanks around a value do not survive the wire */
            FUZZ_CHECK(e.headers[i].first == (*headers)[i].first);
            FUZZ_CHECK_MSG(e.headers[i].second
                           == fuzz::trim_blanks((*headers)[i].second),
                           fuzz::quote(e.headers[i].second) + " vs "
                           + fuzz::quote((*headers)[i].second));
        }
    }
}


/* ------------------------------------------------------------------ */
/* operations */


void
op_pub(fuzz::byte_source &in)
{
    std::string  subject = gen_subject(in);
    std::string  reply = gen_optional(in);
    std::size_t  max = gen_max_payload(in);
    std::size_t  plen = gen_payload_len(in, max);
    bool         null_subject = subject.empty() && in.flag();
    std::string  want_err, want;

    frame_result  r = probe(in, [&](char *buf, size_t size, size_t *n,
                                    char *err, size_t *errlen) {
        return resty_nats_frame_pub(buf, size, n,
                                    null_subject ? nullptr : subject.data(),
                                    subject.size(),
                                    reply.empty() ? nullptr : reply.data(),
                                    reply.size(), plen, max, err, errlen);
    });

    want = "PUB " + subject + (reply.empty() ? "" : " " + reply) + " "
           + fuzz::dec(plen) + "\r\n";
    want_err = model_subject(subject, kind::publish);
    if (want_err.empty() && !reply.empty()) {
        want_err = model_subject(reply, kind::reply);
    }
    if (want_err.empty() && max > 0 && plen > max) {
        want_err = "payload too large";
    }
    if (want_err.empty() && want.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        want_err = "control line too long";
    }

    expect_outcome(r, want_err, want, "PUB");

    if (r.ok) {
        /* no control byte and no empty token reached the wire */
        for (unsigned char c : r.bytes.substr(0, r.bytes.size() - 2)) {
            FUZZ_CHECK(c >= 32 && c != 127);
        }
        parse_back(r.bytes, plen, subject, reply, nullptr,
                   1 + in.u8() % 100);
    }
}


void
op_hpub(fuzz::byte_source &in)
{
    std::string                                       subject, reply;
    std::vector<std::pair<std::string, std::string>>  hv;
    std::vector<opt_str>                              names, values;
    std::vector<resty_nats_header_t>                  hs;
    std::size_t                                       max, plen, hdr_len;
    std::string                                       want_err, want, block;
    bool                                              null_headers;

    subject = gen_subject(in);
    reply = gen_optional(in);
    max = gen_max_payload(in);

    for (unsigned n = in.u8() % 7; n > 0; n--) {
        opt_str       name, value;
        std::uint8_t  m = in.u8();

        name.null = false;
        if (m < 200) {
            for (unsigned k = 1 + in.u8() % 16; k > 0; k--) {
                char  c = static_cast<char>(33 + in.u8() % 94);

                name.s += c == ':' ? 'K' : c;
            }
            if (m < 16) {
                name.s[in.u8() % name.s.size()] = special_byte(in.u8());
            }
        } else if (m < 230) {
            name.s = in.bytes(in.u8() % 12);
        } else {
            name.null = in.flag();  /* empty, maybe NULL */
        }

        m = in.u8();
        if (m < 20) {
            value.null = true;
        } else {
            value.null = false;
            value.s = in.bytes(in.u8() % 40);
            for (char &c : value.s) {
                if ((c == '\r' || c == '\n') && m >= 40) {
                    c = ' ';
                }
            }
        }
        names.push_back(name);
        values.push_back(value);
    }

    for (std::size_t i = 0; i < names.size(); i++) {
        resty_nats_header_t  h;

        h.name = names[i].c();
        h.value = values[i].c();
        hs.push_back(h);
        hv.emplace_back(names[i].s, values[i].s);
    }
    null_headers = hs.empty() && in.flag();
    plen = gen_payload_len(in, max);

    frame_result  r = probe(in, [&](char *buf, size_t size, size_t *n,
                                    char *err, size_t *errlen) {
        return resty_nats_frame_hpub(buf, size, n, subject.data(),
                                     subject.size(), reply.data(),
                                     reply.size(),
                                     null_headers ? nullptr : hs.data(),
                                     hs.size(), plen, max, err, errlen);
    });

    /* the model */
    want_err = model_subject(subject, kind::publish);
    if (want_err.empty() && !reply.empty()) {
        want_err = model_subject(reply, kind::reply);
    }
    block = "NATS/1.0\r\n";
    for (const auto &h : hv) {
        if (!want_err.empty()) {
            break;
        }
        if (h.first.empty()) {
            want_err = "invalid header name";
        }
        for (unsigned char c : h.first) {
            if (c < 33 || c > 126 || c == ':') {
                want_err = "invalid header name";
            }
        }
        if (want_err.empty()
            && h.second.find_first_of("\r\n") != std::string::npos)
        {
            want_err = "invalid header value";
        }
        block += h.first + ": " + h.second + "\r\n";
    }
    block += "\r\n";
    hdr_len = block.size();

    if (want_err.empty()
        && (plen > SIZE_MAX - hdr_len || (max > 0 && hdr_len + plen > max)))
    {
        want_err = "payload too large";
    }
    want = "HPUB " + subject + (reply.empty() ? "" : " " + reply) + " "
           + fuzz::dec(hdr_len) + " " + fuzz::dec(hdr_len + plen) + "\r\n";
    if (want_err.empty() && want.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        want_err = "control line too long";
    }
    want += block;

    expect_outcome(r, want_err, want, "HPUB");

    if (r.ok) {
        parse_back(r.bytes, plen, subject, reply, &hv, in.u64() % 1000000);
    }
}


void
op_sub(fuzz::byte_source &in)
{
    std::string    subject = gen_subject(in);
    std::string    queue = in.u8() < 128 ? std::string() : gen_subject(in);
    std::uint64_t  sid = in.flag() ? in.u8() : in.u64();
    std::string    want_err, want;

    frame_result  r = probe(in, [&](char *buf, size_t size, size_t *n,
                                    char *err, size_t *errlen) {
        return resty_nats_frame_sub(buf, size, n, subject.data(),
                                    subject.size(), queue.data(),
                                    queue.size(), sid, err, errlen);
    });

    want_err = model_subject(subject, kind::subscribe);
    if (want_err.empty() && !queue.empty()) {
        want_err = model_queue(queue);
    }
    want = "SUB " + subject + (queue.empty() ? "" : " " + queue) + " "
           + fuzz::dec(sid) + "\r\n";
    if (want_err.empty() && want.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        want_err = "control line too long";
    }

    expect_outcome(r, want_err, want, "SUB");
}


void
op_unsub(fuzz::byte_source &in)
{
    std::uint64_t  sid = in.flag() ? in.u8() : in.u64();
    std::uint64_t  max = in.flag() ? in.u8() % 3 : in.u64();
    std::string    want;

    frame_result  r = probe(in, [&](char *buf, size_t size, size_t *n,
                                    char *err, size_t *errlen) {
        return resty_nats_frame_unsub(buf, size, n, sid, max, err, errlen);
    });

    want = "UNSUB " + fuzz::dec(sid)
           + (max > 0 ? " " + fuzz::dec(max) : std::string()) + "\r\n";
    expect_outcome(r, "", want, "UNSUB");
}


void
json_escape_model(std::string &out, std::string_view s)
{
    static const char  hex[] = "0123456789abcdef";

    for (unsigned char c : s) {
        switch (c) {
        case '"':  out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += static_cast<char>(c);
            }
        }
    }
}


int
gen_flag(fuzz::byte_source &in)
{
    static const int  values[] = { -1, 0, 1, 0, 1, 2, -7, INT_MIN, INT_MAX };

    return values[in.u8() % 9];
}


void
op_connect(fuzz::byte_source &in)
{
    static const char *const  text_keys[] = {
        "name", "lang", "version", "user", "pass", "auth_token", "jwt",
        "nkey", "sig"
    };

    resty_nats_connect_opts_t  o;
    opt_str                    texts[9];
    int                        flags[6];
    std::string                want = "CONNECT {", want_err;
    bool                       first = true;

    for (int &f : flags) {
        f = gen_flag(in);
    }
    o.verbose = flags[0];
    o.pedantic = flags[1];
    o.tls_required = flags[2];
    o.echo = flags[3];
    o.headers = flags[4];
    o.no_responders = flags[5];
    o.protocol = gen_flag(in);

    for (opt_str &t : texts) {
        std::uint8_t  m = in.u8();

        t.null = m < 90;
        if (m >= 250) {
            t.s.assign(700 + in.u16() % 3500, 'j');
        } else if (!t.null) {
            t.s = in.bytes(in.u8() % 40);
        }
    }
    o.name = texts[0].c();
    o.lang = texts[1].c();
    o.version = texts[2].c();
    o.user = texts[3].c();
    o.pass = texts[4].c();
    o.auth_token = texts[5].c();
    o.jwt = texts[6].c();
    o.nkey = texts[7].c();
    o.sig = texts[8].c();

    frame_result  r = probe(in, [&](char *buf, size_t size, size_t *n,
                                    char *err, size_t *errlen) {
        return resty_nats_frame_connect(buf, size, n, &o, err, errlen);
    });

    /* the model: fixed key order, absent fields left out */
    auto key = [&](const char *k) {
        if (!first) {
            want += ',';
        }
        first = false;
        want += '"';
        want += k;
        want += "\":";
    };
    auto flag = [&](const char *k, int v) {
        if (v >= 0) {
            key(k);
            want += v ? "true" : "false";
        }
    };
    auto text = [&](int i) {
        if (!texts[i].null) {
            key(text_keys[i]);
            want += '"';
            json_escape_model(want, texts[i].s);
            want += '"';
        }
    };

    flag("verbose", o.verbose);
    flag("pedantic", o.pedantic);
    flag("tls_required", o.tls_required);
    text(0);
    text(1);
    text(2);
    if (o.protocol >= 0) {
        key("protocol");
        want += std::to_string(o.protocol);
    }
    flag("echo", o.echo);
    flag("headers", o.headers);
    flag("no_responders", o.no_responders);
    for (int i = 3; i < 9; i++) {
        text(i);
    }
    want += "}\r\n";
    if (want.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        want_err = "control line too long";
    }

    expect_outcome(r, want_err, want, "CONNECT");

    if (!r.ok) {
        return;
    }

    /* one line, and its JSON holds exactly the options */
    std::string_view  line(r.bytes);
    json::value       v;

    FUZZ_CHECK(line.find_first_of("\r\n") == line.size() - 2);
    line = line.substr(8, line.size() - 10);  /* "CONNECT ", CRLF */
    FUZZ_CHECK(json::parse(line.data(), line.size(), v, nullptr)
               == resty_nats::errc::ok);
    FUZZ_CHECK(v.is(json::kind::object));

    std::size_t  members = 0;
    const char  *flag_keys[6] = { "verbose", "pedantic", "tls_required",
                                  "echo", "headers", "no_responders" };

    for (int i = 0; i < 6; i++) {
        const json::value  *m = v.find(flag_keys[i]);

        FUZZ_CHECK((m != nullptr) == (flags[i] >= 0));
        if (m != nullptr) {
            members++;
            FUZZ_CHECK(m->is(json::kind::boolean));
            FUZZ_CHECK(m->boolean() == (flags[i] != 0));
        }
    }
    for (int i = 0; i < 9; i++) {
        const json::value  *m = v.find(text_keys[i]);

        FUZZ_CHECK((m != nullptr) == !texts[i].null);
        if (m != nullptr) {
            members++;
            FUZZ_CHECK(m->is(json::kind::string));
            FUZZ_CHECK(m->text() == texts[i].s);
        }
    }

    const json::value  *pm = v.find("protocol");
    std::int64_t        proto;

    FUZZ_CHECK((pm != nullptr) == (o.protocol >= 0));
    if (pm != nullptr) {
        members++;
        FUZZ_CHECK(pm->get_int64(proto) && proto == o.protocol);
    }
    FUZZ_CHECK(v.size() == members);
}


void
op_validate(fuzz::byte_source &in)
{
    using resty_nats::errc;
    using resty_nats::error_detail;
    using resty_nats::subject_kind;

    std::string       s = gen_subject(in);
    std::string       t = in.flag() ? s : gen_subject(in);
    /* an empty subject as the ABI passes a NULL one with length 0 */
    std::string_view  v = s.empty() && in.flag() ? std::string_view()
                                                 : std::string_view(s);

    auto check = [&](errc rc, const error_detail &e, errc refusal,
                     const std::string &want_err) {
        if (want_err.empty()) {
            FUZZ_CHECK_MSG(rc == errc::ok,
                           fuzz::quote(s) + " refused: "
                           + fuzz::quote(e.text()));
        } else {
            FUZZ_CHECK_MSG(rc == refusal,
                           fuzz::quote(s) + " accepted, model: "
                           + want_err);
            FUZZ_CHECK(e.code() == refusal);
            FUZZ_CHECK(e.text().substr(0, want_err.size()) == want_err);
        }
    };

    {
        error_detail  e;
        check(resty_nats::validate_subject(v, subject_kind::publish, &e), e,
              errc::invalid_subject, model_subject(s, kind::publish));
    }
    {
        error_detail  e;
        check(resty_nats::validate_subject(v, subject_kind::reply, &e), e,
              errc::invalid_reply, model_subject(s, kind::reply));
    }
    {
        error_detail  e;
        check(resty_nats::validate_subject(v, subject_kind::subscribe, &e),
              e, errc::invalid_subject, model_subject(s, kind::subscribe));
    }
    {
        error_detail  e;
        check(resty_nats::validate_queue(v, &e), e, errc::invalid_queue,
              model_queue(s));
    }
    /* no error detail wanted: the same verdict */
    FUZZ_CHECK((resty_nats::validate_subject(v, subject_kind::subscribe,
                                             nullptr)
                == errc::ok)
               == model_subject(s, kind::subscribe).empty());

    /* t as a pattern against s, and s against itself */
    FUZZ_CHECK_MSG(resty_nats::subject_matches(t, v) == model_matches(t, s),
                   "pattern " + fuzz::quote(t) + " subject "
                   + fuzz::quote(s));
    FUZZ_CHECK(resty_nats::subject_matches(v, v) == model_matches(s, s));
}


struct model_sub {
    std::string    subject, queue;
    std::uint64_t  max = 0, delivered = 0;
};


/*
 * resty_nats_subs_subscribe: refused exactly as the model says, with
 * nothing registered; AGAIN gives the exact size of SUB (+ UNSUB) and
 * registers nothing, one byte less is AGAIN again, exactly that size is
 * OK; the bytes equal the model's and the sid is the next one. Returns
 * true when the subscription was registered.
 */
bool
subscribe_checked(fuzz::byte_source &in, resty_nats_subs_t *t,
    const std::string &s, const std::string &q, std::uint64_t max,
    std::uint64_t next_sid, std::size_t live)
{
    std::string    want_err = model_subject(s, kind::subscribe);
    std::string    want;
    std::size_t    size0, n = 0, n2 = 0, errlen;
    std::uint64_t  sid = 0;
    char           err[256];
    int            rc;
    const char    *sp = s.empty() && in.flag() ? nullptr : s.data();
    const char    *qp = q.empty() && in.flag() ? nullptr : q.data();

    if (want_err.empty() && !q.empty()) {
        want_err = model_queue(q);
    }
    want = "SUB " + s + (q.empty() ? "" : " " + q) + " "
           + fuzz::dec(next_sid) + "\r\n";
    if (want_err.empty() && want.size() > RESTY_NATS_MAX_CONTROL_LINE) {
        want_err = "control line too long";
    }
    if (max > 0) {
        want += "UNSUB " + fuzz::dec(next_sid) + " " + fuzz::dec(max)
                + "\r\n";
    }

    auto call = [&](char *buf, std::size_t size, std::size_t *np,
                    char *e, std::size_t *elen) {
        return resty_nats_subs_subscribe(t, buf, size, np, sp, s.size(), qp,
                                         q.size(), max, &sid, e, elen);
    };

    /* nothing registered, no sid used */
    auto unchanged = [&]() {
        FUZZ_CHECK(sid == 0);
        FUZZ_CHECK(t->impl.size() == live);
        FUZZ_CHECK(t->impl.next_sid() == next_sid);
    };

    switch (in.u8() % 4) {
    case 0: size0 = 0; break;
    case 1: size0 = 1 + in.u8() % 64; break;
    case 2: size0 = in.u16() % 8192; break;
    default: size0 = 65536; break;
    }

    std::unique_ptr<char[]>  buf0(size0 > 0 ? new char[size0] : nullptr);

    errlen = sizeof(err);
    rc = call(buf0.get(), size0, &n, err, &errlen);

    if (!want_err.empty()) {
        FUZZ_CHECK_MSG(rc == RESTY_NATS_ERROR,
                       "subscribe " + fuzz::quote(s) + " " + fuzz::quote(q)
                       + " accepted, model says " + want_err);
        FUZZ_CHECK(errlen > 0 && errlen <= sizeof(err));
        FUZZ_CHECK_MSG(std::string_view(err, errlen).substr(
                           0, want_err.size()) == want_err,
                       "subscribe error "
                       + fuzz::quote(std::string_view(err, errlen))
                       + ", model says " + want_err);
        unchanged();

        /* truncated into a small error buffer */
        char         small[16];
        std::size_t  k = in.u8() % sizeof(small);
        std::string  full(err, errlen);

        errlen = k;
        FUZZ_CHECK(call(nullptr, 0, &n, small, &errlen) == RESTY_NATS_ERROR);
        FUZZ_CHECK(errlen == (full.size() < k ? full.size() : k));
        FUZZ_CHECK(std::memcmp(small, full.data(), errlen) == 0);
        unchanged();
        return false;
    }

    if (rc == RESTY_NATS_AGAIN) {
        FUZZ_CHECK_MSG(n > size0 && n == want.size(),
                       "AGAIN with n " + std::to_string(n) + ", size "
                       + std::to_string(size0) + ", model "
                       + std::to_string(want.size()));
        unchanged();

        /* one byte less: AGAIN again, the same size */
        std::unique_ptr<char[]>  less(n > 1 ? new char[n - 1] : nullptr);

        errlen = sizeof(err);
        FUZZ_CHECK(call(less.get(), n - 1, &n2, err, &errlen)
                   == RESTY_NATS_AGAIN);
        FUZZ_CHECK(n2 == n);
        unchanged();

        /* exactly that size: OK, the same size and the model's bytes */
        std::unique_ptr<char[]>  exact(new char[n]);

        errlen = sizeof(err);
        FUZZ_CHECK(call(exact.get(), n, &n2, err, &errlen)
                   == RESTY_NATS_OK);
        FUZZ_CHECK(n2 == n);
        FUZZ_CHECK_MSG(std::string(exact.get(), n) == want,
                       "subscribe gave "
                       + fuzz::quote(std::string_view(exact.get(), n))
                       + ", model " + fuzz::quote(want));
    } else {
        FUZZ_CHECK_MSG(rc == RESTY_NATS_OK, "rc " + std::to_string(rc));
        FUZZ_CHECK(n <= size0 && n == want.size());
        FUZZ_CHECK_MSG(std::string(buf0.get(), n) == want,
                       "subscribe gave "
                       + fuzz::quote(std::string_view(buf0.get(), n))
                       + ", model " + fuzz::quote(want));
    }

    FUZZ_CHECK(sid == next_sid);
    FUZZ_CHECK(t->impl.size() == live + 1);
    FUZZ_CHECK(t->impl.next_sid() == next_sid + 1);
    return true;
}


void
op_subs(fuzz::byte_source &in)
{
    resty_nats_subs_t                    *t = nullptr;
    std::map<std::uint64_t, model_sub>    model;
    std::uint64_t                         next_sid = 1;

    FUZZ_CHECK(resty_nats_subs_new(&t) == RESTY_NATS_OK);

    auto pick_sid = [&]() -> std::uint64_t {
        std::uint8_t  v = in.u8();

        if (v < 200 && !model.empty()) {
            auto  it = model.begin();

            std::advance(it, v % model.size());
            return it->first;
        }
        return v % 2 ? next_sid + v % 3 : in.u64();
    };

    for (int i = 0; i < 32 && !in.empty(); i++) {
        std::uint8_t   op = in.u8() % 6;
        std::uint64_t  sid = 0, max;
        int            rc;

        switch (op) {
        case 0: {
            std::string  s = gen_subject(in);
            std::string  q = in.u8() < 160 ? std::string() : gen_subject(in);

            if (in.u8() < 192) {
                /* what Lua calls: frames and registers, maybe with a max */
                max = in.flag() ? in.u8() % 4 : in.u64();
                if (subscribe_checked(in, t, s, q, max, next_sid,
                                      model.size()))
                {
                    model[next_sid++] = model_sub{ s, q, max, 0 };
                }
                break;
            }

            /* the C++ add() the table keeps for its own tests */
            resty_nats::error_detail  e;
            bool                      valid =
                model_subject(s, kind::subscribe).empty()
                && (q.empty() || model_queue(q).empty());

            rc = t->impl.add(s, q, sid, &e) == resty_nats::errc::ok
                 ? RESTY_NATS_OK : RESTY_NATS_ERROR;
            FUZZ_CHECK_MSG(rc == (valid ? RESTY_NATS_OK : RESTY_NATS_ERROR),
                           "add " + fuzz::quote(s) + " " + fuzz::quote(q));
            if (valid) {
                FUZZ_CHECK(sid == next_sid);
                model[next_sid++] = model_sub{ s, q, 0, 0 };
            } else {
                FUZZ_CHECK(!e.text().empty());
            }
            break;
        }

        case 1: {
            sid = pick_sid();
            max = in.u8() % 5;
            rc = resty_nats_subs_set_max(t, sid, max);

            auto  it = model.find(sid);

            if (it == model.end()) {
                FUZZ_CHECK(rc == RESTY_NATS_DECLINED);
            } else if (max > 0 && it->second.delivered >= max) {
                FUZZ_CHECK(rc == RESTY_NATS_DONE);
                model.erase(it);
            } else {
                FUZZ_CHECK(rc == RESTY_NATS_OK);
                it->second.max = max;
            }
            break;
        }

        case 2:
        case 3: {
            sid = pick_sid();
            rc = resty_nats_subs_deliver(t, sid);

            auto  it = model.find(sid);

            if (it == model.end()) {
                FUZZ_CHECK(rc == RESTY_NATS_DECLINED);
            } else if (++it->second.delivered, it->second.max > 0
                       && it->second.delivered >= it->second.max)
            {
                FUZZ_CHECK(rc == RESTY_NATS_DONE);
                model.erase(it);
            } else {
                FUZZ_CHECK(rc == RESTY_NATS_OK);
            }
            break;
        }

        case 4:
            sid = pick_sid();
            rc = resty_nats_subs_remove(t, sid);
            FUZZ_CHECK(rc == (model.erase(sid) > 0 ? RESTY_NATS_OK
                                                   : RESTY_NATS_DECLINED));
            break;

        default: {
            const resty_nats::sub_table::subscription  *sub;

            sid = pick_sid();
            sub = t->impl.find(sid);

            auto  it = model.find(sid);

            if (it == model.end()) {
                FUZZ_CHECK(sub == nullptr);
            } else {
                FUZZ_CHECK(sub != nullptr);
                FUZZ_CHECK(sub->subject == it->second.subject);
                FUZZ_CHECK(sub->queue == it->second.queue);
                FUZZ_CHECK(sub->max == it->second.max);
                FUZZ_CHECK(sub->delivered == it->second.delivered);
            }
            break;
        }
        }

        FUZZ_CHECK(t->impl.size() == model.size());
        FUZZ_CHECK(t->impl.next_sid() == next_sid);
    }

    /* every live subscription still holds its strings and counts */
    for (const auto &kv : model) {
        const resty_nats::sub_table::subscription  *sub;

        sub = t->impl.find(kv.first);
        FUZZ_CHECK(sub != nullptr);
        FUZZ_CHECK(sub->subject == kv.second.subject);
        FUZZ_CHECK(sub->queue == kv.second.queue);
        FUZZ_CHECK(sub->max == kv.second.max);
        FUZZ_CHECK(sub->delivered == kv.second.delivered);
    }

    resty_nats_subs_free(t);
}


}  // namespace


extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::byte_source  in(data, size);

    for (int i = 0; i < 8 && !in.empty(); i++) {
        switch (in.u8() % 8) {
        case 0: op_pub(in); break;
        case 1: case 2: op_hpub(in); break;
        case 3: op_sub(in); break;
        case 4: op_unsub(in); break;
        case 5: op_connect(in); break;
        case 6: op_validate(in); break;
        default: op_subs(in); break;
        }
    }

    return 0;
}
