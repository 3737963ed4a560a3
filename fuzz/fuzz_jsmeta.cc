/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_jsmeta: resty_nats_js_meta, the JetStream acknowledgement subject
 * reader, against a model written differently (split on every dot into
 * strings, then decide): any bytes are accepted or declined exactly as
 * the model says, and an accepted subject gives the model's fields, its
 * strings pointing inside the input. Inputs starting with byte 0 get
 * "$JS.ACK." put in front, so most runs reach the token rules.
 */

#include "fuzz_common.h"


namespace {


bool
model_u64(const std::string &s, uint64_t *out)
{
    if (s.empty() || s.size() > 20) {
        return false;
    }
    unsigned __int128  v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > UINT64_MAX) {
        return false;
    }
    *out = static_cast<uint64_t>(v);
    return true;
}


}  // namespace


extern "C" int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    std::string  in;

    if (size > 0 && data[0] == 0) {
        in = "$JS.ACK.";
        in.append(reinterpret_cast<const char *>(data) + 1, size - 1);
    } else {
        in.assign(reinterpret_cast<const char *>(data), size);
    }

    /* the model */
    bool                      ok = false;
    std::vector<std::string>  tok;
    std::string               domain, stream, consumer;
    uint64_t                  num[5] = {0, 0, 0, 0, 0};

    if (in.size() > 8 && in.compare(0, 8, "$JS.ACK.") == 0) {
        size_t  start = 8;
        for (;;) {
            size_t  dot = in.find('.', start);
            tok.push_back(in.substr(start, dot == std::string::npos
                                           ? std::string::npos
                                           : dot - start));
            if (dot == std::string::npos) {
                break;
            }
            start = dot + 1;
        }
        bool    empty = false;
        size_t  upto = tok.size() < 16 ? tok.size() : 16;
        for (size_t i = 0; i < upto; i++) {
            empty = empty || tok[i].empty();
        }
        size_t  i = 0;
        bool    form = false;
        if (!empty && tok.size() == 7) {
            form = true;
        } else if (!empty && tok.size() >= 9) {
            form = true;
            i = 2;
            if (tok[0] != "_") {
                domain = tok[0];
            }
        }
        if (form) {
            ok = true;
            for (int k = 0; k < 5; k++) {
                ok = ok && model_u64(tok[i + 2 + k], &num[k]);
            }
            stream = tok[i];
            consumer = tok[i + 1];
        }
    }

    resty_nats_js_meta_t  m;
    int rc = resty_nats_js_meta(in.data(), in.size(), &m);

    FUZZ_CHECK(rc == RESTY_NATS_OK || rc == RESTY_NATS_DECLINED);
    FUZZ_CHECK_MSG((rc == RESTY_NATS_OK) == ok, in.c_str());
    if (rc == RESTY_NATS_OK) {
        auto inside = [&](const resty_nats_str_t &s) {
            return s.len == 0
                   || (s.data >= in.data()
                       && s.data + s.len <= in.data() + in.size());
        };
        FUZZ_CHECK(inside(m.domain) && inside(m.stream)
                   && inside(m.consumer));
        FUZZ_CHECK(std::string(m.stream.data, m.stream.len) == stream);
        FUZZ_CHECK(std::string(m.consumer.data, m.consumer.len) == consumer);
        FUZZ_CHECK(std::string(m.domain.len ? m.domain.data : "",
                               m.domain.len) == domain);
        FUZZ_CHECK(m.delivered == num[0] && m.stream_seq == num[1]
                   && m.consumer_seq == num[2] && m.timestamp == num[3]
                   && m.pending == num[4]);
    }
    return 0;
}
