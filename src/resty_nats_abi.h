/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * resty_nats_abi.h: C++ only, not part of the C ABI. The definitions of
 * the handles that resty_nats.h declares opaque, for the shims in
 * resty_nats_abi.cc and for C++ code that holds a handle made through the
 * ABI and needs a core function the ABI does not export (the fuzz targets
 * reset a parser, read a subscription's strings).
 */

#ifndef RESTY_NATS_ABI_H
#define RESTY_NATS_ABI_H

#include <cstddef>

#include "nats_parser.h"
#include "nats_sub_table.h"
#include "resty_nats.h"


struct resty_nats_parser_s {
    explicit resty_nats_parser_s(std::size_t max_payload)
        : impl(max_payload)
    {
    }

    resty_nats::parser  impl;
};


struct resty_nats_subs_s {
    resty_nats::sub_table  impl;
};


#endif  /* RESTY_NATS_ABI_H */
