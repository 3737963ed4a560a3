// Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
//
// The metadata a JetStream consumer's message carries in its reply
// subject (the acknowledgement subject), parsed without allocating:
//
//   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
//   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>
//          .<cseq>.<ts>.<pending>[.<more tokens>]
//
// (the second form: servers 2.9 and later may send it; domain "_" means
// none). Every consumer message is parsed once, so this is a hot path of
// every JetStream read; in Lua the same work made seven strings.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "resty_nats.h"

#define RESTY_NATS_EXPORT __attribute__((visibility("default")))

namespace {

constexpr size_t kMaxTokens = 16;   // tokens looked at (more are ignored)

struct token {
    const char *p;
    size_t n;
};

// a decimal number of 1 to 20 digits that fits in 64 bits
bool to_u64(const token &t, uint64_t *out) {
    if (t.n == 0 || t.n > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < t.n; i++) {
        unsigned d = static_cast<unsigned char>(t.p[i]) - '0';
        if (d > 9) {
            return false;
        }
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

}  // namespace


extern "C" RESTY_NATS_EXPORT int resty_nats_js_meta(const char *s,
    size_t len, resty_nats_js_meta_t *out) {
    static const char kPrefix[] = "$JS.ACK.";
    constexpr size_t kPrefixLen = sizeof(kPrefix) - 1;

    if (out == nullptr || (s == nullptr && len > 0)) {
        return RESTY_NATS_ERROR;
    }
    if (len <= kPrefixLen || std::memcmp(s, kPrefix, kPrefixLen) != 0) {
        return RESTY_NATS_DECLINED;
    }

    token t[kMaxTokens];
    size_t nt = 0;
    size_t start = kPrefixLen;
    for (size_t i = kPrefixLen; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (nt == kMaxTokens) {
                break;
            }
            if (i == start) {
                return RESTY_NATS_DECLINED;     // an empty token
            }
            t[nt].p = s + start;
            t[nt].n = i - start;
            nt++;
            start = i + 1;
        }
    }

    size_t i;
    token domain = {nullptr, 0};
    if (nt == 7) {
        i = 0;
    } else if (nt >= 9) {
        i = 2;
        if (!(t[0].n == 1 && t[0].p[0] == '_')) {
            domain = t[0];
        }
    } else {
        return RESTY_NATS_DECLINED;
    }

    resty_nats_js_meta_t m;
    if (!to_u64(t[i + 2], &m.delivered) || !to_u64(t[i + 3], &m.stream_seq)
        || !to_u64(t[i + 4], &m.consumer_seq)
        || !to_u64(t[i + 5], &m.timestamp) || !to_u64(t[i + 6], &m.pending))
    {
        return RESTY_NATS_DECLINED;
    }
    m.domain.data = domain.p;
    m.domain.len = domain.n;
    m.stream.data = t[i].p;
    m.stream.len = t[i].n;
    m.consumer.data = t[i + 1].p;
    m.consumer.len = t[i + 1].n;
    *out = m;
    return RESTY_NATS_OK;
}
