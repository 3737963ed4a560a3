/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_headers: the HMSG header block parser.
 *
 * Input layout:
 *   byte 0    bit 0: prepend "NATS/1.0"; bit 1: append CRLF CRLF;
 *             bit 2: a reply subject; bits 3-4: payload size (0, 1, 5, 17)
 *   byte 1    split size for a second, split run (0: none; else b bytes)
 *   the rest  the header block (between the optional prefix and suffix)
 *
 * An HMSG frame is built around the block with correct sizes and fed to
 * the parser (checked on every call as in fuzz_parser). The frame is
 * always delivered as one HMSG; its headers must match an independent
 * model of ADR-4 header blocks, and a block the model refuses must come
 * with status RESTY_NATS_STATUS_INVALID_HEADERS and no headers:
 *   NATS/1.0[ <3-digit status>[ <description>]] CRLF
 *   (<name>: <value> CRLF)*
 *   CRLF
 * names are bytes 33-126 without ':', values have no CR or LF (blanks
 * around values and the description are trimmed), the status line has no
 * bare CR or LF either. Accepted headers therefore never carry a byte that
 * could split a header when an application copies them elsewhere.
 */

#include <optional>

#include "fuzz_common.h"


namespace {


struct model_block {
    int                                               status = 0;
    std::string                                       description;
    std::vector<std::pair<std::string, std::string>>  headers;
};


std::optional<model_block>
model_parse(std::string_view block)
{
    model_block       m;
    std::string_view  body, line, rest;
    std::size_t       pos = 0;
    bool              first = true;

    if (block.size() < 12 || block.substr(0, 8) != "NATS/1.0"
        || block.substr(block.size() - 4) != "\r\n\r\n")
    {
        return std::nullopt;
    }

    /* every line with its CRLF, the final empty line left out */
    body = block.substr(0, block.size() - 2);

    while (pos < body.size()) {
        std::size_t  crlf = body.find("\r\n", pos);

        line = body.substr(pos, crlf - pos);
        pos = crlf + 2;

        if (first) {
            first = false;
            rest = line.substr(8);

            if (!rest.empty() && !fuzz::is_blank(rest[0])) {
                return std::nullopt;
            }
            rest = fuzz::trim_blanks(rest);
            if (rest.empty()) {
                continue;
            }
            if (rest.size() < 3) {
                return std::nullopt;
            }
            for (int i = 0; i < 3; i++) {
                if (rest[i] < '0' || rest[i] > '9') {
                    return std::nullopt;
                }
            }
            if (rest.size() > 3 && !fuzz::is_blank(rest[3])) {
                return std::nullopt;
            }
            m.status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10
                       + (rest[2] - '0');
            rest = fuzz::trim_blanks(rest.substr(3));
            if (fuzz::detail::has_byte(rest, '\r', '\n')) {
                return std::nullopt;
            }
            m.description = std::string(rest);
            continue;
        }

        std::size_t  colon = line.find(':');

        if (colon == std::string_view::npos || colon == 0) {
            return std::nullopt;
        }
        for (unsigned char c : line.substr(0, colon)) {
            if (c < 33 || c > 126) {
                return std::nullopt;
            }
        }
        rest = line.substr(colon + 1);
        if (fuzz::detail::has_byte(rest, '\r', '\n')) {
            return std::nullopt;
        }
        m.headers.emplace_back(std::string(line.substr(0, colon)),
                               std::string(fuzz::trim_blanks(rest)));
    }

    return m;
}


}  // namespace


extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static const std::size_t  payload_sizes[4] = { 0, 1, 5, 17 };

    fuzz::byte_source     in(data, size);
    std::uint8_t          flags = in.u8();
    std::uint8_t          split = in.u8();
    std::string           block, payload, reply, wire;
    fuzz::stream_options  opt;

    if (flags & 1) {
        block = "NATS/1.0";
    }
    block += in.rest();
    if (flags & 2) {
        block += "\r\n\r\n";
    }
    if (flags & 4) {
        reply = "_INBOX.r";
    }
    payload.assign(payload_sizes[(flags >> 3) & 3], 'p');
    payload.replace(0, payload.size() < 2 ? payload.size() : 2,
                    payload.size() < 2 ? payload.size() : 2, '\r');

    wire = "HMSG s.x 7 " + (reply.empty() ? "" : reply + " ")
           + fuzz::dec(block.size()) + " "
           + fuzz::dec(block.size() + payload.size()) + "\r\n" + block
           + payload + "\r\n";

    opt.check_reset = false;
    fuzz::stream_result        r = fuzz::run_stream(wire.data(), wire.size(),
                                                    {}, opt);
    std::optional<model_block> m = model_parse(block);

    /* the frame is sound either way: one HMSG, the parser stays usable */
    FUZZ_CHECK_MSG(!r.failed && r.events.size() == 1,
                   "block " + fuzz::quote(block) + ", parser gave:\n"
                   + fuzz::describe(r));

    const fuzz::event_rec  &e = r.events[0];

    FUZZ_CHECK(e.type == RESTY_NATS_EV_HMSG);
    FUZZ_CHECK(e.subject == "s.x" && e.sid_str == "7" && e.sid == 7);
    FUZZ_CHECK(e.reply == reply);
    FUZZ_CHECK(e.payload == payload);

    if (!m) {
        /* refused: no headers, the reason instead */
        FUZZ_CHECK_MSG(e.status == RESTY_NATS_STATUS_INVALID_HEADERS
                       && e.headers.empty()
                       && e.description.rfind("invalid header block", 0)
                          == 0,
                       "model refuses " + fuzz::quote(block)
                       + ", parser gave " + e.str());

    } else {
        FUZZ_CHECK_MSG(e.status == m->status
                       && e.description == m->description
                       && e.headers == m->headers,
                       "block " + fuzz::quote(block) + " parsed as "
                       + e.str());
    }

    if (split > 0) {
        fuzz::stream_result  s = fuzz::run_stream(wire.data(), wire.size(),
                                                  { split }, opt);

        FUZZ_CHECK_MSG(fuzz::same_events(r, s),
                       "one feed:\n" + fuzz::describe(r) + "in splits:\n"
                       + fuzz::describe(s));
    }

    return 0;
}
