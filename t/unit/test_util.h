/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * test_util.h: helpers shared by the unit tests.
 */

#ifndef RESTY_NATS_TEST_UTIL_H
#define RESTY_NATS_TEST_UTIL_H

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "resty_nats.h"


namespace resty_nats {
namespace test {


inline std::string
vector_path(const std::string &name)
{
    return std::string(RESTY_NATS_VECTORS_DIR) + "/" + name;
}


/* the whole file; empty if it cannot be read (tests check the size) */
inline std::string
read_file(const std::string &path)
{
    std::ifstream       in(path, std::ios::binary);
    std::ostringstream  out;

    out << in.rdbuf();
    return out.str();
}


inline std::string_view
sv(const resty_nats_str_t &s)
{
    return s.len == 0 ? std::string_view()
                      : std::string_view(s.data, s.len);
}


/* "..." with \" \\ and \xNN, as in t/unit/vectors/README.md */
inline std::string
quote(std::string_view s)
{
    std::string  out = "\"";
    char         tmp[8];

    for (unsigned char c : s) {
        if (c == '"') {
            out += "\\\"";
        } else if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            std::snprintf(tmp, sizeof(tmp), "\\x%02x", c);
            out += tmp;
        }
    }

    return out + "\"";
}


/* one line of a .events file */
inline std::string
dump_event(const resty_nats_event_t &ev)
{
    std::string  s;

    switch (ev.type) {
    case RESTY_NATS_EV_INFO:
        return "INFO payload=" + quote(sv(ev.payload));
    case RESTY_NATS_EV_PING:
        return "PING";
    case RESTY_NATS_EV_PONG:
        return "PONG";
    case RESTY_NATS_EV_OK:
        return "OK";
    case RESTY_NATS_EV_ERR:
        return "ERR payload=" + quote(sv(ev.payload));
    case RESTY_NATS_EV_MSG:
        return "MSG subject=" + quote(sv(ev.subject))
               + " sid=" + quote(sv(ev.sid_str))
               + " reply=" + quote(sv(ev.reply))
               + " payload=" + quote(sv(ev.payload));
    case RESTY_NATS_EV_HMSG:
        s = "HMSG subject=" + quote(sv(ev.subject))
            + " sid=" + quote(sv(ev.sid_str))
            + " reply=" + quote(sv(ev.reply))
            + " status=" + std::to_string(ev.status)
            + " description=" + quote(sv(ev.description))
            + " headers={";
        for (std::size_t i = 0; i < ev.nheaders; i++) {
            if (i > 0) {
                s += ",";
            }
            s += quote(sv(ev.headers[i].name)) + "="
                 + quote(sv(ev.headers[i].value));
        }
        return s + "} payload=" + quote(sv(ev.payload));
    default:
        return "NONE type=" + std::to_string(ev.type);
    }
}


inline std::vector<std::string>
split_lines(const std::string &text)
{
    std::vector<std::string>  lines;
    std::istringstream        in(text);
    std::string               line;

    while (std::getline(in, line)) {
        lines.push_back(line);
    }

    return lines;
}


}  // namespace test
}  // namespace resty_nats

#endif  // RESTY_NATS_TEST_UTIL_H
