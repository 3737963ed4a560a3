/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include "nats_sub_table.h"

#include "nats_framer.h"


namespace resty_nats {


errc
sub_table::add(std::string_view subject, std::string_view queue,
    std::uint64_t &sid, error_detail *err)
{
    errc  rc;

    rc = validate_subject(subject, subject_kind::subscribe, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (!queue.empty()) {
        rc = validate_queue(queue, err);
        if (rc != errc::ok) {
            return rc;
        }
    }

    /* UINT64_MAX stands for "not a number" in parser events */
    if (next_sid_ == UINT64_MAX) {
        return set_error(err, errc::sids_exhausted, "no sid left");
    }

    sid = insert(subject, queue, 0);
    return errc::ok;
}


errc
sub_table::subscribe(char *buf, std::size_t size, std::size_t &n,
    std::string_view subject, std::string_view queue, std::uint64_t max,
    std::uint64_t &sid, error_detail *err)
{
    std::size_t  sub_n = 0, unsub_n = 0;
    errc         rc;

    /* validates subject and queue, and the line with the sid it will get */
    rc = frame_sub(buf, size, sub_n, subject, queue, next_sid_, err);
    if (rc != errc::ok && rc != errc::again) {
        return rc;
    }

    if (next_sid_ == UINT64_MAX) {
        return set_error(err, errc::sids_exhausted, "no sid left");
    }

    if (max > 0) {
        if (rc == errc::ok) {
            /* right after the SUB line (sub_n <= size, so buf is set) */
            rc = frame_unsub(buf + sub_n, size - sub_n, unsub_n, next_sid_,
                             max);
        } else {
            /* only measured */
            frame_unsub(nullptr, 0, unsub_n, next_sid_, max);
        }
    }

    /* both lines are short: the SUB line is at most the control line */
    n = sub_n + unsub_n;
    if (rc != errc::ok) {
        return errc::again;
    }

    sid = insert(subject, queue, max);
    return errc::ok;
}


errc
sub_table::restore(std::string_view subject, std::uint64_t sid,
    error_detail *err)
{
    errc  rc;

    rc = validate_subject(subject, subject_kind::subscribe, err);
    if (rc != errc::ok) {
        return rc;
    }

    if (sid == 0 || sid >= next_sid_ || subs_.count(sid) != 0) {
        return set_error(err, errc::unknown_sid,
                         "sid cannot be restored (zero, not below the next "
                         "sid, or taken)");
    }

    subscription  s;

    s.subject.assign(subject.data(), subject.size());
    subs_.emplace(sid, std::move(s));
    return errc::ok;
}


std::uint64_t
sub_table::insert(std::string_view subject, std::string_view queue,
    std::uint64_t max)
{
    subscription  s;

    s.subject.assign(subject.data(), subject.size());
    s.queue.assign(queue.data(), queue.size());
    s.max = max;
    subs_.emplace(next_sid_, std::move(s));

    return next_sid_++;
}


sub_table::result
sub_table::set_max(std::uint64_t sid, std::uint64_t max)
{
    auto  it = subs_.find(sid);

    if (it == subs_.end()) {
        return result::unknown;
    }

    if (max > 0 && it->second.delivered >= max) {
        subs_.erase(it);
        return result::done;
    }

    it->second.max = max;
    return result::ok;
}


sub_table::result
sub_table::deliver(std::uint64_t sid)
{
    auto  it = subs_.find(sid);

    if (it == subs_.end()) {
        return result::unknown;
    }

    subscription  &s = it->second;

    s.delivered++;
    if (s.max > 0 && s.delivered >= s.max) {
        subs_.erase(it);
        return result::done;
    }

    return result::ok;
}


bool
sub_table::remove(std::uint64_t sid) noexcept
{
    return subs_.erase(sid) > 0;
}


const sub_table::subscription *
sub_table::find(std::uint64_t sid) const noexcept
{
    auto  it = subs_.find(sid);

    return it == subs_.end() ? nullptr : &it->second;
}


/* splits off the next token; false at the end */
static bool
next_token(std::string_view &rest, std::string_view &tok, bool &done)
    noexcept
{
    std::size_t  dot;

    if (done) {
        return false;
    }

    dot = rest.find('.');
    if (dot == std::string_view::npos) {
        tok = rest;
        done = true;
    } else {
        tok = rest.substr(0, dot);
        rest.remove_prefix(dot + 1);
    }

    return true;
}


bool
subject_matches(std::string_view pattern, std::string_view subject)
    noexcept
{
    std::string_view  ptok, stok;
    bool              pdone = false, sdone = false;

    if (pattern.empty() || subject.empty()) {
        return false;
    }

    for ( ;; ) {
        bool  have_p = next_token(pattern, ptok, pdone);
        bool  have_s = next_token(subject, stok, sdone);

        if (!have_p || !have_s) {
            /* both must end together */
            return !have_p && !have_s;
        }

        if (ptok.empty() || stok.empty()) {
            return false;
        }

        if (ptok == ">" && pdone) {
            /* one or more tokens: this one plus any non-empty rest */
            while (next_token(subject, stok, sdone)) {
                if (stok.empty()) {
                    return false;
                }
            }
            return true;
        }

        if (ptok != "*" && ptok != stok) {
            return false;
        }
    }
}


}  // namespace resty_nats
