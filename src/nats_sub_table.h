/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * nats_sub_table.h: the subscriptions of one connection and NATS subject
 * wildcard matching.
 *
 * sids are allocated from 1 upwards and never reused by one table, so a
 * late MSG for a removed subscription can never reach a new one.
 *
 * Auto-unsubscribe counts follow the server (and nats.go / nats.c):
 * "UNSUB <sid> <max>" makes the server stop after <max> deliveries in
 * total on that subscription, counted from the SUB, not from the UNSUB.
 * The table does the same, so both sides agree even when messages were
 * delivered before set_max():
 * - set_max(sid, max) stores max as the total number of deliveries
 *   allowed (0 removes the limit);
 * - deliver() counts one delivery; when max > 0 and the count reaches max
 *   the subscription is removed and deliver() says it was the last one;
 * - if the count already reached max when set_max() is called, the
 *   subscription is removed at once and set_max() returns done: the
 *   caller then sends a plain "UNSUB <sid>".
 */

#ifndef RESTY_NATS_SUB_TABLE_H
#define RESTY_NATS_SUB_TABLE_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nats_errc.h"


namespace resty_nats {


class sub_table {
public:
    struct subscription {
        std::string    subject;
        std::string    queue;
        std::uint64_t  max = 0;         /* total deliveries, 0: no limit */
        std::uint64_t  delivered = 0;
    };

    enum class result {
        ok,         /* done, the subscription stays */
        done,       /* the subscription reached its count and is gone */
        unknown     /* no such sid */
    };

    /*
     * Validates subject as a SUB subject and queue (when not empty) as a
     * queue group, then stores them under a new sid. May throw
     * std::bad_alloc.
     */
    errc add(std::string_view subject, std::string_view queue,
        std::uint64_t &sid, error_detail *err);
    /*
     * add() and its frames in one step: "SUB <subject> [queue] <sid>\r\n"
     * and, when max > 0, "UNSUB <sid> <max>\r\n" into buf, as the framers
     * write (errc::ok with n = bytes written, errc::again with n = the
     * size needed for both lines, or the framer's refusal). Only on
     * errc::ok is the subscription stored, with max set as set_max()
     * does, and sid set; otherwise no sid is used, so a call with a larger
     * buffer gets the same sid. May throw std::bad_alloc (then nothing is
     * stored either).
     */
    errc subscribe(char *buf, std::size_t size, std::size_t &n,
        std::string_view subject, std::string_view queue, std::uint64_t max,
        std::uint64_t &sid, error_detail *err);
    /*
     * For a connection taken from the pool. reserve_sids() makes new sids
     * start at next_sid at least, so that no sid the connection used
     * before is handed out again; restore() registers subject under a
     * sid the connection already uses (its request inbox): unknown_sid
     * if sid is 0, not below the next sid, or taken. May throw
     * std::bad_alloc.
     */
    void reserve_sids(std::uint64_t next_sid) noexcept
    {
        if (next_sid > next_sid_) {
            next_sid_ = next_sid;
        }
    }
    errc restore(std::string_view subject, std::uint64_t sid,
        error_detail *err);
    /* the sid add() would allocate next */
    std::uint64_t next_sid() const noexcept { return next_sid_; }
    result set_max(std::uint64_t sid, std::uint64_t max);
    result deliver(std::uint64_t sid);
    bool remove(std::uint64_t sid) noexcept;

    /* nullptr if unknown; valid until the sid is removed */
    const subscription *find(std::uint64_t sid) const noexcept;
    std::size_t size() const noexcept { return subs_.size(); }

private:
    /* stores a validated subscription under a new sid, returned */
    std::uint64_t insert(std::string_view subject, std::string_view queue,
        std::uint64_t max);

    /* node-based: entries keep their address while others come and go */
    std::unordered_map<std::uint64_t, subscription>  subs_;
    std::uint64_t                                    next_sid_ = 1;
};


/*
 * true when subject matches the SUB pattern: "*" matches one token, ">"
 * (last) matches one or more tokens, so "foo.>" does not match "foo".
 * A subject or pattern with an empty token matches nothing.
 */
bool subject_matches(std::string_view pattern, std::string_view subject)
    noexcept;


}  // namespace resty_nats

#endif  // RESTY_NATS_SUB_TABLE_H
