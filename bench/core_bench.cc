// Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
//
// core_bench: the protocol core alone (no socket, no Lua), through the
// same C ABI that lua/resty/nats.lua calls. Google Benchmark; run by
// bench/run.sh (scenario "core"), or by hand:
//
//   build/bench/core_bench --benchmark_filter=Parse
//
// Parse*: a stream of server MSG (or HMSG) frames, fed to the parser in
//   chunks of a realistic read size (what one receiveany() returns), each
//   chunk drained with resty_nats_parser_next() before the next is fed,
//   as wait() does. items/s = messages, bytes/s = wire bytes.
// Frame*: the client framers: the PUB control line, and the HPUB control
//   line + header block. items/s = frames, bytes/s = frame bytes written
//   (the payload is not part of a frame: the caller sends it).
// RequestCalls: every core call one request() makes today (subject check,
//   inbox token, subscription add + auto-unsubscribe, SUB, UNSUB and PUB
//   frames), and the delivery of its reply.

#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "resty_nats.h"
}

namespace {

const char kSubject[] = "bench.orders.eu-west.created";
const char kInbox[] = "_INBOX.AbCdEfGhIjKlMnOpQrStUv";

// a stream of at least min_bytes (and at least 16 messages) of MSG or
// HMSG frames carrying payload_len bytes each
std::string make_stream(size_t payload_len, bool with_reply,
                        bool with_headers, size_t min_bytes,
                        size_t *nmsgs) {
    static const char hdr[] =
        "NATS/1.0\r\nX-Trace-Id: 4bf92f3577b34da6\r\nX-Tenant: acme\r\n\r\n";
    const size_t hlen = sizeof(hdr) - 1;
    std::string payload(payload_len, 'x');
    std::string out;
    size_t n = 0;
    char line[512];

    while (out.size() < min_bytes || n < 16) {
        int len;
        if (with_headers) {
            len = std::snprintf(line, sizeof(line), "HMSG %s %zu%s%s %zu %zu\r\n",
                                kSubject, n % 7 + 1, with_reply ? " " : "",
                                with_reply ? kInbox : "", hlen,
                                hlen + payload_len);
        } else {
            len = std::snprintf(line, sizeof(line), "MSG %s %zu%s%s %zu\r\n",
                                kSubject, n % 7 + 1, with_reply ? " " : "",
                                with_reply ? kInbox : "", payload_len);
        }
        out.append(line, len);
        if (with_headers) {
            out.append(hdr, hlen);
        }
        out += payload;
        out += "\r\n";
        n++;
    }

    *nmsgs = n;
    return out;
}

void parse(benchmark::State &state, bool with_reply, bool with_headers) {
    const size_t payload_len = static_cast<size_t>(state.range(0));
    const size_t chunk = static_cast<size_t>(state.range(1));
    size_t nmsgs = 0;
    const std::string wire = make_stream(payload_len, with_reply,
                                         with_headers, 4u << 20, &nmsgs);

    resty_nats_parser_t *p = nullptr;
    if (resty_nats_parser_new(&p, 0) != RESTY_NATS_OK) {
        state.SkipWithError("parser_new failed");
        return;
    }

    char err[256];
    resty_nats_event_t ev;
    size_t total = 0;

    for (auto _ : state) {
        size_t got = 0, bytes = 0;
        for (size_t off = 0; off < wire.size(); off += chunk) {
            size_t len = std::min(chunk, wire.size() - off);
            size_t errlen = sizeof(err);
            if (resty_nats_parser_feed(p, wire.data() + off, len, err,
                                       &errlen) != RESTY_NATS_OK) {
                state.SkipWithError("feed failed");
                break;
            }
            for (;;) {
                errlen = sizeof(err);
                int rc = resty_nats_parser_next(p, &ev, err, &errlen);
                if (rc == RESTY_NATS_AGAIN) {
                    break;
                }
                if (rc != RESTY_NATS_OK) {
                    state.SkipWithError(std::string(err, errlen).c_str());
                    break;
                }
                got++;
                bytes += ev.payload.len + ev.subject.len + ev.reply.len
                         + ev.nheaders;
            }
        }
        benchmark::DoNotOptimize(bytes);
        if (got != nmsgs) {
            state.SkipWithError("message count mismatch");
            break;
        }
        total += got;
    }

    resty_nats_parser_free(p);
    state.SetItemsProcessed(static_cast<int64_t>(total));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations())
                            * static_cast<int64_t>(wire.size()));
    state.counters["msgs_per_stream"] = static_cast<double>(nmsgs);
}

void BM_ParseMsg(benchmark::State &state) { parse(state, false, false); }
void BM_ParseMsgReply(benchmark::State &state) { parse(state, true, false); }
void BM_ParseHmsg(benchmark::State &state) { parse(state, false, true); }

void parse_args(benchmark::internal::Benchmark *b) {
    b->ArgNames({"payload", "read"});
    for (int64_t payload : {16, 1024, 65536}) {
        for (int64_t chunk : {16384, 65536}) {
            b->Args({payload, chunk});
        }
    }
}

BENCHMARK(BM_ParseMsg)->Apply(parse_args);
BENCHMARK(BM_ParseMsgReply)->ArgNames({"payload", "read"})
    ->Args({16, 65536})->Args({1024, 65536});
BENCHMARK(BM_ParseHmsg)->ArgNames({"payload", "read"})
    ->Args({16, 65536})->Args({1024, 65536});

void BM_FramePub(benchmark::State &state) {
    const size_t payload_len = static_cast<size_t>(state.range(0));
    const bool reply = state.range(1) != 0;
    char buf[RESTY_NATS_MAX_CONTROL_LINE];
    char err[256];
    size_t n = 0, bytes = 0;

    for (auto _ : state) {
        size_t errlen = sizeof(err);
        int rc = resty_nats_frame_pub(buf, sizeof(buf), &n, kSubject,
                                      sizeof(kSubject) - 1,
                                      reply ? kInbox : nullptr,
                                      reply ? sizeof(kInbox) - 1 : 0,
                                      payload_len,
                                      RESTY_NATS_DEFAULT_MAX_PAYLOAD, err,
                                      &errlen);
        if (rc != RESTY_NATS_OK) {
            state.SkipWithError("frame_pub failed");
            break;
        }
        benchmark::DoNotOptimize(buf);
        bytes += n;
    }

    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

BENCHMARK(BM_FramePub)->ArgNames({"payload", "reply"})
    ->Args({16, 0})->Args({1024, 0})->Args({65536, 0})->Args({16, 1});

void BM_FrameHpub(benchmark::State &state) {
    const size_t payload_len = static_cast<size_t>(state.range(0));
    const size_t nheaders = static_cast<size_t>(state.range(1));
    static const char *names[] = {"X-Trace-Id", "X-Tenant", "Content-Type",
                                  "X-Request-Id"};
    static const char *values[] = {"4bf92f3577b34da6", "acme",
                                   "application/json",
                                   "0b6c2f6e-1d1a-4a5e-9e55-3f4d3c2b1a09"};
    std::vector<resty_nats_header_t> h(nheaders);
    for (size_t i = 0; i < nheaders; i++) {
        h[i].name.data = names[i % 4];
        h[i].name.len = std::strlen(names[i % 4]);
        h[i].value.data = values[i % 4];
        h[i].value.len = std::strlen(values[i % 4]);
    }
    char buf[RESTY_NATS_MAX_CONTROL_LINE * 4];
    char err[256];
    size_t n = 0, bytes = 0;

    for (auto _ : state) {
        size_t errlen = sizeof(err);
        int rc = resty_nats_frame_hpub(buf, sizeof(buf), &n, kSubject,
                                       sizeof(kSubject) - 1, nullptr, 0,
                                       h.data(), h.size(), payload_len,
                                       RESTY_NATS_DEFAULT_MAX_PAYLOAD, err,
                                       &errlen);
        if (rc != RESTY_NATS_OK) {
            state.SkipWithError("frame_hpub failed");
            break;
        }
        benchmark::DoNotOptimize(buf);
        bytes += n;
    }

    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

BENCHMARK(BM_FrameHpub)->ArgNames({"payload", "headers"})
    ->Args({16, 2})->Args({1024, 2})->Args({16, 4});

// the C side of one request(): frame_pub (subject check), random inbox
// token, subs_subscribe with max 1 (registers it and frames SUB + UNSUB),
// the PUB frame, then the reply's subs_deliver (DONE: the subscription
// ends)
void BM_RequestCalls(benchmark::State &state) {
    resty_nats_subs_t *t = nullptr;
    if (resty_nats_subs_new(&t) != RESTY_NATS_OK) {
        state.SkipWithError("subs_new failed");
        return;
    }
    char buf[RESTY_NATS_MAX_CONTROL_LINE];
    char inbox[64] = "_INBOX.";
    const size_t inbox_len = 7 + 22;
    char err[256];
    size_t n = 0;

    for (auto _ : state) {
        size_t errlen = sizeof(err);
        bool ok =
            resty_nats_frame_pub(buf, sizeof(buf), &n, kSubject,
                                 sizeof(kSubject) - 1, nullptr, 0, 4,
                                 RESTY_NATS_DEFAULT_MAX_PAYLOAD, err,
                                 &errlen) == RESTY_NATS_OK
            && resty_nats_random_token(inbox + 7, 22) == RESTY_NATS_OK;
        uint64_t sid = 0;
        ok = ok && resty_nats_subs_subscribe(t, buf, sizeof(buf), &n, inbox,
                                             inbox_len, nullptr, 0, 1, &sid,
                                             err, &errlen) == RESTY_NATS_OK;
        ok = ok && resty_nats_frame_pub(buf, sizeof(buf), &n, kSubject,
                                        sizeof(kSubject) - 1, inbox,
                                        inbox_len, 4,
                                        RESTY_NATS_DEFAULT_MAX_PAYLOAD, err,
                                        &errlen) == RESTY_NATS_OK;
        ok = ok && resty_nats_subs_deliver(t, sid) == RESTY_NATS_DONE;
        if (!ok) {
            state.SkipWithError("a request call failed");
            break;
        }
        benchmark::DoNotOptimize(buf);
    }

    resty_nats_subs_free(t);
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_RequestCalls);

void BM_RandomToken(benchmark::State &state) {
    char buf[22];
    for (auto _ : state) {
        if (resty_nats_random_token(buf, sizeof(buf)) != RESTY_NATS_OK) {
            state.SkipWithError("random_token failed");
            break;
        }
        benchmark::DoNotOptimize(buf);
    }
    state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_RandomToken);

}  // namespace

BENCHMARK_MAIN();
