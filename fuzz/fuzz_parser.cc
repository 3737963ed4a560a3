/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * fuzz_parser: arbitrary server bytes through the C ABI parser.
 *
 * Input layout:
 *   byte 0       bits 0-2: max_payload (0 = default, 1, 11, 12, 13, 64,
 *                256, 4096)
 *   byte 1       number of split sizes k (0-16; 0: one feed)
 *   k bytes      split sizes: b < 128: b + 1 bytes; else (b - 127) * 32
 *   the rest     the bytes the "server" sends
 *
 * The bytes are parsed twice: in one feed, then in the given splits.
 * Each run checks the parser contract on every call (fuzz_common.h:
 * run_stream): event strings inside parser memory that holds exactly the
 * consumed input, field rules, sticky errors, buffered() accounting and
 * bounds, INFO decoding. Both runs must give the same events and the
 * same error: the result never depends on how TCP split the stream.
 */

#include "fuzz_common.h"


static const std::size_t  max_payloads[8] = {
    0, 1, 11, 12, 13, 64, 256, 4096
};


extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    fuzz::byte_source         in(data, size);
    fuzz::stream_options      opt;
    std::vector<std::size_t>  splits;
    std::size_t               k;
    std::string               wire;

    opt.max_payload = max_payloads[in.u8() & 7];
    k = in.u8() % 17;
    for (std::size_t i = 0; i < k; i++) {
        std::uint8_t  b = in.u8();

        splits.push_back(b < 128 ? b + 1u : (b - 127u) * 32u);
    }
    wire = in.rest();

    fuzz::stream_result  whole = fuzz::run_stream(wire.data(), wire.size(),
                                                  {}, opt);

    if (!splits.empty()) {
        opt.check_reset = false;
        fuzz::stream_result  split = fuzz::run_stream(wire.data(),
                                                      wire.size(), splits,
                                                      opt);

        FUZZ_CHECK_MSG(fuzz::same_events(whole, split),
                       "one feed:\n" + fuzz::describe(whole)
                       + "in splits:\n" + fuzz::describe(split));
    }

    return 0;
}
