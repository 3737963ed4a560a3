/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_parser_structured: a generator of valid server traffic.
 *
 * The input drives a generator of server operations: INFO (JSON with
 * known fields, escapes, nesting), MSG and HMSG (subjects, numeric and
 * other sids, replies, binary payloads with CR/LF inside, header blocks
 * with status lines, descriptions and repeated names), PING, PONG, +OK and
 * -ERR, written with the wire leniency the parser documents (op names in
 * any case, runs of spaces and tabs, leading blanks, bare LF line ends).
 * The generator knows the events each op must give.
 *
 * Input layout:
 *   byte 0        number of mutations m (byte % 8; 0-3: none)
 *   m * 4 bytes   mutation: position (2 bytes), action, value
 *   byte          number of split sizes k (0-16), then k split bytes as in
 *                 fuzz_parser
 *   the rest      drives the generator, one op after the other
 *
 * Without mutations the events must equal the generated ones exactly
 * (INFO also through resty_nats_parser_info), with no error and nothing
 * left buffered. With mutations (a byte replaced, inserted, deleted, or
 * a range duplicated) the parser is checked as in fuzz_parser, and every
 * op that ends before the first mutated byte must still come out intact.
 * Either way the result must not depend on the splits.
 */

#include <algorithm>

#include "fuzz_common.h"


namespace {


struct expected_op {
    fuzz::event_rec  ev;
    std::size_t      end = 0;       /* offset just after its frame */
    bool             check_info = false;
};


class generator {
public:
    explicit generator(fuzz::byte_source &in) : in_(in) {}

    std::string               wire;
    std::vector<expected_op>  ops;

    void run()
    {
        for (int i = 0; i < 48 && !in_.empty(); i++) {
            switch (in_.u8() % 10) {
            case 0: info(); break;
            case 1: case 2: msg(); break;
            case 3: case 4: hmsg(); break;
            case 5: simple("ping", RESTY_NATS_EV_PING); break;
            case 6: simple("pong", RESTY_NATS_EV_PONG); break;
            case 7: simple("+ok", RESTY_NATS_EV_OK); break;
            default: err(); break;
            }
        }
    }

private:
    fuzz::byte_source  &in_;

    void done(fuzz::event_rec ev, bool check_info = false)
    {
        expected_op  op;

        op.ev = std::move(ev);
        op.end = wire.size();
        op.check_info = check_info;
        ops.push_back(std::move(op));
    }

    /* an op name in mixed case, maybe after blanks */
    void op_name(const char *name)
    {
        std::uint8_t  v = in_.u8();

        if (v & 0x80) {
            wire += (v & 0x40) ? "\t " : " ";
        }
        for (const char *c = name; *c != '\0'; c++) {
            bool  upper = (v & 1) == 0;

            if (v & 2) {
                upper = (in_.u8() & 1) != 0;
            }
            wire += (upper && *c >= 'a' && *c <= 'z')
                    ? static_cast<char>(*c - 32) : *c;
        }
    }

    void blanks()
    {
        std::uint8_t  v = in_.u8();

        if (v < 200) {
            wire += ' ';
            return;
        }
        for (unsigned n = 1 + v % 3; n > 0; n--) {
            wire += (in_.u8() & 1) ? '\t' : ' ';
        }
    }

    void trailing_blanks()
    {
        if (in_.u8() > 220) {
            blanks();
        }
    }

    void line_end()
    {
        wire += in_.u8() > 230 ? "\n" : "\r\n";
    }

    /* a subject byte: printable ASCII or UTF-8 looking, never '.' */
    char subject_byte()
    {
        std::uint8_t  b = in_.u8();
        char          c;

        if (b >= 240) {
            return static_cast<char>(0x80 | (b & 0x3f));
        }
        c = static_cast<char>(33 + b % 94);
        return c == '.' ? '_' : c;
    }

    std::string subject()
    {
        std::string  s;
        unsigned     ntok = 1 + in_.u8() % 4;

        for (unsigned t = 0; t < ntok; t++) {
            if (t > 0) {
                s += '.';
            }
            for (unsigned n = 1 + in_.u8() % 8; n > 0; n--) {
                s += subject_byte();
            }
        }
        return s;
    }

    std::string sid()
    {
        std::uint8_t  v = in_.u8();
        std::string   s;

        if (v < 160) {
            return fuzz::dec(1 + v % 50);
        }
        if (v < 200) {
            /* up to 22 digits: some overflow uint64 */
            for (unsigned n = 1 + v % 22; n > 0; n--) {
                s += static_cast<char>('0' + in_.u8() % 10);
            }
            return s;
        }
        for (unsigned n = 1 + v % 6; n > 0; n--) {
            s += subject_byte();
        }
        return s;
    }

    std::string payload()
    {
        std::uint8_t  v = in_.u8();
        std::size_t   len = v < 128 ? v % 40 : v < 250 ? v * 4u : v * 40u;
        std::string   s = in_.bytes(len);

        /* fill what the input did not provide with a CRLF-rich pattern */
        while (s.size() < len) {
            s += "\r\n."[s.size() % 3];
        }
        return s;
    }

    void msg()
    {
        fuzz::event_rec  ev;
        std::string      p;

        ev.type = RESTY_NATS_EV_MSG;
        ev.subject = subject();
        ev.sid_str = sid();
        ev.sid = fuzz::model_sid(ev.sid_str);
        if (in_.flag()) {
            ev.reply = subject();
        }
        p = payload();
        ev.payload = p;

        op_name("msg");
        blanks();
        wire += ev.subject;
        blanks();
        wire += ev.sid_str;
        blanks();
        if (!ev.reply.empty()) {
            wire += ev.reply;
            blanks();
        }
        wire += fuzz::dec(p.size());
        trailing_blanks();
        line_end();
        wire += p;
        wire += "\r\n";
        done(std::move(ev));
    }

    /* bytes for a header value or description: anything but CR and LF */
    std::string text(std::size_t max, bool printable)
    {
        std::string  s;

        for (std::size_t n = in_.u8() % (max + 1); n > 0; n--) {
            std::uint8_t  b = in_.u8();

            if (printable) {
                b = static_cast<std::uint8_t>(32 + b % 95);
            }
            if (b == '\r' || b == '\n') {
                b = ' ';
            }
            s += static_cast<char>(b);
        }
        return s;
    }

    void hmsg()
    {
        fuzz::event_rec  ev;
        std::string      block = "NATS/1.0", p;
        std::uint8_t     v = in_.u8();

        ev.type = RESTY_NATS_EV_HMSG;
        ev.subject = subject();
        ev.sid_str = sid();
        ev.sid = fuzz::model_sid(ev.sid_str);
        if (in_.flag()) {
            ev.reply = subject();
        }

        /* status line */
        if (v % 4 != 0) {
            static const int  codes[] = { 503, 100, 404, 408, 409, 423 };
            int               code = v % 4 == 3
                                     ? static_cast<int>(in_.u16() % 1000)
                                     : codes[in_.u8() % 6];
            char              digits[4];

            std::snprintf(digits, sizeof(digits), "%03d", code);
            ev.status = code;
            block += (in_.u8() & 1) ? " " : " \t ";
            block += digits;
            if (in_.flag()) {
                std::string  d = text(24, (v & 0x10) != 0);

                block += (in_.u8() & 1) ? " " : "\t";
                block += d;
                ev.description = std::string(fuzz::trim_blanks(d));
            }
        }
        if (v & 0x20) {
            block += "  ";  /* trailing blanks */
        }
        block += "\r\n";

        for (unsigned n = in_.u8() % 7; n > 0; n--) {
            std::string  name, value;

            if (!ev.headers.empty() && (in_.u8() & 3) == 0) {
                name = ev.headers[in_.u8() % ev.headers.size()].first;
            } else {
                for (unsigned k = 1 + in_.u8() % 16; k > 0; k--) {
                    char  c = static_cast<char>(33 + in_.u8() % 94);

                    name += c == ':' ? '-' : c;
                }
            }
            value = text(24, (v & 0x40) != 0);

            block += name;
            block += ':';
            switch (in_.u8() % 4) {
            case 0: break;
            case 1: block += "  "; break;
            case 2: block += " \t"; break;
            default: block += ' '; break;
            }
            block += value;
            block += "\r\n";
            ev.headers.emplace_back(name,
                                    std::string(fuzz::trim_blanks(value)));
        }
        block += "\r\n";

        p = payload();
        ev.payload = p;

        op_name("hmsg");
        blanks();
        wire += ev.subject;
        blanks();
        wire += ev.sid_str;
        blanks();
        if (!ev.reply.empty()) {
            wire += ev.reply;
            blanks();
        }
        wire += fuzz::dec(block.size());
        blanks();
        wire += fuzz::dec(block.size() + p.size());
        trailing_blanks();
        line_end();
        wire += block;
        wire += p;
        wire += "\r\n";
        done(std::move(ev));
    }

    void simple(const char *name, int type)
    {
        fuzz::event_rec  ev;

        ev.type = type;
        op_name(name);
        trailing_blanks();
        line_end();
        done(std::move(ev));
    }

    void err()
    {
        fuzz::event_rec  ev;
        std::string      t = text(40, true);
        std::uint8_t     v = in_.u8();

        ev.type = RESTY_NATS_EV_ERR;
        op_name("-err");

        if (v & 1) {
            blanks();
            wire += '\'' + t + '\'';
            ev.payload = t;
        } else {
            /* no quotes: blanks around the text are trimmed, and one
               quote on each side stripped */
            std::string_view  s = fuzz::trim_blanks(t);

            if (!s.empty()) {
                blanks();
            }
            wire += t;
            if (!s.empty() && s.front() == '\'') {
                s.remove_prefix(1);
            }
            if (!s.empty() && s.back() == '\'') {
                s.remove_suffix(1);
            }
            ev.payload = std::string(s);
        }
        trailing_blanks();
        line_end();
        done(std::move(ev));
    }

    /* a JSON string holding s, with a few optional escapes */
    void json_string(std::string &out, std::string_view s)
    {
        static const char  hex[] = "0123456789abcdef";
        std::uint8_t       style = in_.u8();

        out += '"';
        for (unsigned char c : s) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += static_cast<char>(c);
            } else if (c == '\n' && (style & 1)) {
                out += "\\n";
            } else if (c < 0x20 || (c < 0x80 && (style & 2) && c % 5 == 0)) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else if (c == '/' && (style & 4)) {
                out += "\\/";
            } else {
                out += static_cast<char>(c);
            }
        }
        out += '"';
    }

    void info()
    {
        fuzz::event_rec  ev;
        std::string      js = "{";
        std::uint8_t     fields = in_.u8();
        bool             first = true;
        const char      *sep = (in_.u8() & 1) ? "," : " ,\t";

        ev.type = RESTY_NATS_EV_INFO;
        ev.info_ok = true;

        auto key = [&](const char *k) {
            if (!first) {
                js += sep;
            }
            first = false;
            js += '"';
            js += k;
            js += "\":";
        };

        if (fields & 1) {
            ev.info_server_id = text(30, false);
            key("server_id");
            json_string(js, ev.info_server_id);
        }
        if (fields & 2) {
            ev.info_version = text(12, true);
            key("version");
            json_string(js, ev.info_version);
        }
        if (fields & 4) {
            ev.info_max_payload = static_cast<std::int64_t>(in_.u64());
            key("max_payload");
            js += std::to_string(ev.info_max_payload);
        }
        if (fields & 8) {
            ev.info_proto = in_.u8() % 3;
            key("proto");
            js += std::to_string(ev.info_proto);
            ev.info_client_id = in_.u64();
            key("client_id");
            js += fuzz::dec(ev.info_client_id);
        }
        if (fields & 16) {
            ev.info_headers = in_.flag();
            key("headers");
            js += ev.info_headers ? "true" : "false";
            ev.info_ldm = in_.flag();
            key("ldm");
            js += ev.info_ldm ? "true" : "false";
        }
        if (fields & 32) {
            unsigned  n = in_.u8() % 4;

            key("connect_urls");
            js += '[';
            for (unsigned i = 0; i < n; i++) {
                std::string  u = text(20, true);

                if (i > 0) {
                    js += ',';
                }
                json_string(js, u);
                /* joined as the parser documents: "," between
                   non-empty parts so far */
                if (!ev.info_connect_urls.empty()) {
                    ev.info_connect_urls += ',';
                }
                ev.info_connect_urls += u;
            }
            if (fields & 64) {
                js += n > 0 ? ",5" : "5";  /* not a string: skipped */
            }
            js += ']';
        }
        if (fields & 128) {
            key("cluster");
            js += "{\"a\": [1, -2.5e3, null, {\"b\": \"\\ud83d\\ude00\"}]}";
        }
        js += '}';
        ev.payload = js;

        op_name("info");
        blanks();
        wire += js;
        trailing_blanks();
        line_end();
        done(std::move(ev), true);
    }
};


void
mutate(std::string &wire, std::uint16_t pos16, std::uint8_t action,
    std::uint8_t value, std::size_t &first_changed)
{
    std::size_t  pos;

    if (wire.empty()) {
        return;
    }
    pos = pos16 % wire.size();

    switch (action % 5) {
    case 0:
        wire[pos] = static_cast<char>(value);
        break;
    case 1:
        wire.insert(wire.begin() + static_cast<std::ptrdiff_t>(pos),
                    static_cast<char>(value));
        break;
    case 2:
        wire.erase(pos, 1);
        break;
    case 3:
        wire.insert(pos, wire.substr(pos, 1 + value % 16));
        break;
    default:
        /* a likely size digit or separator */
        wire[pos] = "0123456789 \t\r\n"[value % 14];
        break;
    }
    first_changed = std::min(first_changed, pos);
}


}  // namespace


extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    struct mutation {
        std::uint16_t  pos;
        std::uint8_t   action;
        std::uint8_t   value;
    };

    fuzz::byte_source         in(data, size);
    std::vector<mutation>     mutations;
    std::vector<std::size_t>  splits;
    fuzz::stream_options      opt;
    unsigned                  m = in.u8() % 8;
    std::size_t               k, first_changed = SIZE_MAX;

    m = m < 4 ? 0 : m - 3;
    for (unsigned i = 0; i < m; i++) {
        mutation  mu;

        mu.pos = in.u16();
        mu.action = in.u8();
        mu.value = in.u8();
        mutations.push_back(mu);
    }
    k = in.u8() % 17;
    for (std::size_t i = 0; i < k; i++) {
        std::uint8_t  b = in.u8();

        splits.push_back(b < 128 ? b + 1u : (b - 127u) * 32u);
    }

    generator  g(in);

    g.run();

    for (const mutation &mu : mutations) {
        mutate(g.wire, mu.pos, mu.action, mu.value, first_changed);
    }

    fuzz::stream_result  r = fuzz::run_stream(g.wire.data(), g.wire.size(),
                                              splits, opt);

    if (mutations.empty()) {
        FUZZ_CHECK_MSG(!r.failed && r.events.size() == g.ops.size(),
                       "generated " + std::to_string(g.ops.size())
                       + " ops, parser gave:\n" + fuzz::describe(r));
    }

    for (std::size_t i = 0; i < g.ops.size(); i++) {
        const expected_op  &want = g.ops[i];

        if (want.end > first_changed) {
            break;
        }
        FUZZ_CHECK_MSG(i < r.events.size(),
                       "op " + std::to_string(i) + " missing before the "
                       "first mutation; parser gave:\n"
                       + fuzz::describe(r));
        FUZZ_CHECK_MSG(r.events[i].same_event(want.ev),
                       "op " + std::to_string(i) + ": want "
                       + want.ev.str() + "\n got " + r.events[i].str());
        if (want.check_info) {
            FUZZ_CHECK_MSG(r.events[i].same_info(want.ev),
                           "INFO decode: want " + want.ev.str() + "\n got "
                           + r.events[i].str());
        }
    }

    if (!splits.empty()) {
        opt.check_reset = false;
        fuzz::stream_result  whole = fuzz::run_stream(g.wire.data(),
                                                      g.wire.size(), {},
                                                      opt);

        FUZZ_CHECK_MSG(fuzz::same_events(whole, r),
                       "one feed:\n" + fuzz::describe(whole)
                       + "in splits:\n" + fuzz::describe(r));
    }

    return 0;
}
