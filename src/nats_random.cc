// Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
//
// Unpredictable tokens for inbox subjects, straight from the kernel's
// CSPRNG on every call, so forked nginx workers never share a sequence.

#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "resty_nats.h"

#define RESTY_NATS_EXPORT __attribute__((visibility("default")))

namespace {

constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr unsigned kAlphabetSize = sizeof(kAlphabet) - 1;  // 62

bool fill_random(unsigned char *p, size_t len) {
    while (len > 0) {
        ssize_t r = getrandom(p, len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += r;
        len -= static_cast<size_t>(r);
    }
    return true;
}

}  // namespace

extern "C" RESTY_NATS_EXPORT int resty_nats_random_token(char *buf,
                                                         size_t len) {
    if (len == 0) return RESTY_NATS_OK;
    if (buf == nullptr) return RESTY_NATS_ERROR;

    unsigned char pool[64];
    size_t avail = 0, pos = 0, out = 0;
    while (out < len) {
        if (pos == avail) {
            if (!fill_random(pool, sizeof(pool))) return RESTY_NATS_ERROR;
            avail = sizeof(pool);
            pos = 0;
        }
        unsigned char b = pool[pos++];
        // rejection sampling: 248 = 4 * 62 keeps the draw unbiased
        if (b >= 4 * kAlphabetSize) continue;
        buf[out++] = kAlphabet[b % kAlphabetSize];
    }
    return RESTY_NATS_OK;
}
