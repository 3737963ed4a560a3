// Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
//
// Unpredictable tokens for inbox subjects, from the kernel's CSPRNG.
//
// getrandom(2) costs a system call (1.3 to 1.6 us on a virtual machine),
// and a request takes one token, so bytes are drawn a page at a time into
// a per-thread buffer. That buffer lives in its own page marked
// MADV_WIPEONFORK: a forked child (every nginx worker is one) finds it
// zeroed and draws fresh bytes, so no two processes ever hand out the same
// sequence, whatever was buffered before the fork. Where the page cannot
// be had (no mmap, a kernel before 4.14), every call reads the kernel
// directly, as before.

#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

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

constexpr size_t kPageSize = 4096;

// one page; all zero (empty) in a forked child
struct Pool {
    uint32_t pos;   // next unused byte in bytes[]
    uint32_t end;   // bytes[] holds fresh bytes up to here
    unsigned char bytes[kPageSize - 2 * sizeof(uint32_t)];
};
static_assert(sizeof(Pool) == kPageSize, "one page");

class ThreadPool {
  public:
    ~ThreadPool() {
        if (pool_ != nullptr) munmap(pool_, kPageSize);
    }

    // the next random byte; false if the kernel gives none
    bool next(unsigned char *b) {
        Pool *p = get();
        if (p == nullptr) return fill_random(b, 1);
        if (p->pos >= p->end || p->end > sizeof(p->bytes)) {
            if (!fill_random(p->bytes, sizeof(p->bytes))) {
                p->pos = p->end = 0;
                return false;
            }
            p->pos = 0;
            p->end = sizeof(p->bytes);
        }
        *b = p->bytes[p->pos];
        p->bytes[p->pos++] = 0;  // a byte handed out is not kept
        return true;
    }

  private:
    Pool *get() {
        if (pool_ != nullptr || unbuffered_) return pool_;
        void *m = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            unbuffered_ = true;
            return nullptr;
        }
        if (madvise(m, kPageSize, MADV_WIPEONFORK) != 0) {
            munmap(m, kPageSize);
            unbuffered_ = true;
            return nullptr;
        }
        pool_ = static_cast<Pool *>(m);  // zeroed: empty
        return pool_;
    }

    Pool *pool_ = nullptr;
    bool unbuffered_ = false;
};

thread_local ThreadPool tls_pool;

}  // namespace

extern "C" RESTY_NATS_EXPORT int resty_nats_random_token(char *buf,
                                                         size_t len) {
    if (len == 0) return RESTY_NATS_OK;
    if (buf == nullptr) return RESTY_NATS_ERROR;

    size_t out = 0;
    while (out < len) {
        unsigned char b;
        if (!tls_pool.next(&b)) return RESTY_NATS_ERROR;
        // rejection sampling: 248 = 4 * 62 keeps the draw unbiased
        if (b >= 4 * kAlphabetSize) continue;
        buf[out++] = kAlphabet[b % kAlphabetSize];
    }
    return RESTY_NATS_OK;
}
