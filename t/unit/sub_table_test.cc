/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 */

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "nats_sub_table.h"


namespace resty_nats {
namespace {


using result = sub_table::result;


std::uint64_t
add(sub_table &t, std::string_view subject, std::string_view queue = "")
{
    std::uint64_t  sid = 0;
    error_detail   err;

    EXPECT_EQ(t.add(subject, queue, sid, &err), errc::ok) << err.text();
    return sid;
}


TEST(SubTable, SidsStartAtOneAndAreNeverReused)
{
    sub_table  t;

    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(add(t, "a"), 1u);
    EXPECT_EQ(add(t, "b"), 2u);
    EXPECT_TRUE(t.remove(2));
    EXPECT_TRUE(t.remove(1));
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(add(t, "c"), 3u);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_FALSE(t.remove(1));
    EXPECT_FALSE(t.remove(0));
}


/*
 * A pooled connection's inbox: the next user's table takes it over under
 * its sid, and allocates above every sid the connection used before.
 */
TEST(SubTable, RestoreKeepsSidsUniqueOnTheConnection)
{
    sub_table      before, after;
    error_detail   err;
    std::uint64_t  user = add(before, "user.sub");
    std::uint64_t  inbox = add(before, "_INBOX.abc.*");

    EXPECT_TRUE(before.remove(user));
    EXPECT_EQ(add(before, "late"), 3u);
    EXPECT_TRUE(before.remove(3));
    ASSERT_EQ(before.next_sid(), 4u);

    after.reserve_sids(before.next_sid());
    ASSERT_EQ(after.restore("_INBOX.abc.*", inbox, &err), errc::ok)
        << err.text();
    ASSERT_NE(after.find(inbox), nullptr);
    EXPECT_EQ(after.find(inbox)->subject, "_INBOX.abc.*");
    EXPECT_EQ(after.size(), 1u);
    EXPECT_EQ(after.deliver(inbox), result::ok);
    EXPECT_EQ(add(after, "new"), 4u);   /* not 1, 2 or 3 */
    EXPECT_EQ(after.next_sid(), 5u);
}


TEST(SubTable, RestoreRefuses)
{
    sub_table     t;
    error_detail  err;

    /* nothing reserved yet: no sid below the next one (1) to restore */
    EXPECT_EQ(t.restore("a.*", 1, &err), errc::unknown_sid);

    t.reserve_sids(5);
    EXPECT_EQ(t.next_sid(), 5u);
    EXPECT_EQ(t.restore("a.*", 0, &err), errc::unknown_sid);
    EXPECT_EQ(t.restore("a.*", 5, &err), errc::unknown_sid);
    EXPECT_EQ(t.restore("a.*", 6, &err), errc::unknown_sid);
    EXPECT_EQ(t.restore("bad subject", 1, &err), errc::invalid_subject);
    EXPECT_EQ(t.restore("", 1, &err), errc::invalid_subject);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.next_sid(), 5u);        /* nothing changed by a refusal */

    ASSERT_EQ(t.restore("a.*", 2, &err), errc::ok);
    EXPECT_EQ(t.restore("b.*", 2, &err), errc::unknown_sid);  /* taken */
    ASSERT_EQ(t.restore("c.*", 1, &err), errc::ok);
    EXPECT_EQ(t.next_sid(), 5u);
    /* a lower value never moves the counter back */
    t.reserve_sids(2);
    EXPECT_EQ(t.next_sid(), 5u);
}


TEST(SubTable, StoresSubjectAndQueue)
{
    sub_table      t;
    std::uint64_t  a = add(t, "orders.*", "workers");
    std::uint64_t  b = add(t, "events.>");

    const sub_table::subscription  *s = t.find(a);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->subject, "orders.*");
    EXPECT_EQ(s->queue, "workers");

    /* addresses survive other inserts (the table is node based) */
    const std::string  *subject = &s->subject;
    for (int i = 0; i < 1000; i++) {
        add(t, "x." + std::to_string(i));
    }
    EXPECT_EQ(&t.find(a)->subject, subject);
    EXPECT_EQ(*subject, "orders.*");

    ASSERT_NE(t.find(b), nullptr);
    EXPECT_EQ(t.find(b)->queue, "");
    EXPECT_EQ(t.find(999999), nullptr);
}


TEST(SubTable, AddValidates)
{
    sub_table      t;
    std::uint64_t  sid = 77;
    error_detail   err;

    EXPECT_EQ(t.add("a b", "", sid, &err), errc::invalid_subject);
    EXPECT_EQ(err.text(),
              "invalid subject: contains whitespace or control character");
    EXPECT_EQ(t.add("a.>.b", "", sid, &err), errc::invalid_subject);
    EXPECT_EQ(t.add("", "", sid, &err), errc::invalid_subject);
    EXPECT_EQ(t.add("ok", "q\n", sid, &err), errc::invalid_queue);
    EXPECT_EQ(sid, 77u);
    EXPECT_EQ(t.size(), 0u);

    /* a failed add burns no sid */
    EXPECT_EQ(add(t, "ok"), 1u);
}


TEST(SubTable, SubscribeFramesAndStores)
{
    sub_table      t;
    char           buf[64];
    std::size_t    n = 0;
    std::uint64_t  sid = 0;
    error_detail   err;

    ASSERT_EQ(t.subscribe(buf, sizeof(buf), n, "orders.*", "workers", 2, sid,
                          &err),
              errc::ok) << err.text();
    EXPECT_EQ(std::string(buf, n), "SUB orders.* workers 1\r\nUNSUB 1 2\r\n");
    EXPECT_EQ(sid, 1u);

    const sub_table::subscription  *s = t.find(sid);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->subject, "orders.*");
    EXPECT_EQ(s->queue, "workers");
    EXPECT_EQ(s->max, 2u);
    EXPECT_EQ(s->delivered, 0u);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::done);

    /* again: the size, nothing stored, the sid kept for the retry */
    std::uint64_t  other = 0;

    EXPECT_EQ(t.subscribe(nullptr, 0, n, "b", "", 0, other, &err),
              errc::again);
    EXPECT_EQ(n, std::strlen("SUB b 2\r\n"));
    EXPECT_EQ(other, 0u);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.next_sid(), 2u);

    /* SUB fits, UNSUB does not: again with the size of both */
    EXPECT_EQ(t.subscribe(buf, std::strlen("SUB b 2\r\n") + 3, n, "b", "",
                          9, other, &err),
              errc::again);
    EXPECT_EQ(n, std::strlen("SUB b 2\r\nUNSUB 2 9\r\n"));
    EXPECT_EQ(t.size(), 0u);

    ASSERT_EQ(t.subscribe(buf, n, n, "b", "", 9, other, &err), errc::ok);
    EXPECT_EQ(std::string(buf, n), "SUB b 2\r\nUNSUB 2 9\r\n");
    EXPECT_EQ(other, 2u);
    EXPECT_EQ(t.size(), 1u);

    /* add() and subscribe() share the sid sequence */
    EXPECT_EQ(add(t, "c"), 3u);
}


TEST(SubTable, SubscribeRefusesAndStoresNothing)
{
    sub_table      t;
    char           buf[64];
    std::size_t    n = 0;
    std::uint64_t  sid = 77;
    error_detail   err;

    EXPECT_EQ(t.subscribe(buf, sizeof(buf), n, "a.>.b", "", 0, sid, &err),
              errc::invalid_subject);
    EXPECT_EQ(t.subscribe(buf, sizeof(buf), n, "a", "q\t", 0, sid, &err),
              errc::invalid_queue);
    EXPECT_EQ(t.subscribe(nullptr, 0, n, "", "", 3, sid, &err),
              errc::invalid_subject);
    EXPECT_EQ(sid, 77u);
    EXPECT_EQ(t.size(), 0u);
    EXPECT_EQ(t.next_sid(), 1u);

    /* no sid left: refused even for a size probe, after validation */
    t.reserve_sids(UINT64_MAX);
    EXPECT_EQ(t.subscribe(buf, sizeof(buf), n, "a", "", 0, sid, &err),
              errc::sids_exhausted);
    EXPECT_EQ(err.text(), "no sid left");
    EXPECT_EQ(t.subscribe(nullptr, 0, n, "a", "", 1, sid, &err),
              errc::sids_exhausted);
    EXPECT_EQ(t.subscribe(nullptr, 0, n, "a b", "", 1, sid, &err),
              errc::invalid_subject);
    EXPECT_EQ(sid, 77u);
    EXPECT_EQ(t.size(), 0u);
}


TEST(SubTable, DeliverWithoutLimit)
{
    sub_table      t;
    std::uint64_t  sid = add(t, "a");

    for (int i = 0; i < 100; i++) {
        EXPECT_EQ(t.deliver(sid), result::ok);
    }
    EXPECT_EQ(t.find(sid)->delivered, 100u);
    EXPECT_EQ(t.deliver(sid + 1), result::unknown);
}


TEST(SubTable, MaxCountsTotalDeliveries)
{
    sub_table      t;
    std::uint64_t  sid = add(t, "a");

    EXPECT_EQ(t.set_max(sid, 3), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::done);
    EXPECT_EQ(t.find(sid), nullptr);
    EXPECT_EQ(t.size(), 0u);

    /* a late message for the sid is dropped quietly */
    EXPECT_EQ(t.deliver(sid), result::unknown);
    EXPECT_EQ(t.set_max(sid, 1), result::unknown);
    EXPECT_FALSE(t.remove(sid));
}


TEST(SubTable, MaxOneForRequests)
{
    sub_table      t;
    std::uint64_t  sid = add(t, "_INBOX.x");

    EXPECT_EQ(t.set_max(sid, 1), result::ok);
    EXPECT_EQ(t.deliver(sid), result::done);
    EXPECT_EQ(t.deliver(sid), result::unknown);
}


TEST(SubTable, MaxAfterDeliveriesCountsFromTheStart)
{
    /* like the server: UNSUB <sid> 5 after 2 deliveries allows 3 more */
    sub_table      t;
    std::uint64_t  sid = add(t, "a");

    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.set_max(sid, 5), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::done);
}


TEST(SubTable, MaxAlreadyReachedRemovesAtOnce)
{
    sub_table      t;
    std::uint64_t  sid = add(t, "a");

    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.set_max(sid, 2), result::done);
    EXPECT_EQ(t.find(sid), nullptr);

    sid = add(t, "b");
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.set_max(sid, 1), result::done);
}


TEST(SubTable, MaxZeroRemovesTheLimit)
{
    sub_table      t;
    std::uint64_t  sid = add(t, "a");

    EXPECT_EQ(t.set_max(sid, 2), result::ok);
    EXPECT_EQ(t.deliver(sid), result::ok);
    EXPECT_EQ(t.set_max(sid, 0), result::ok);
    for (int i = 0; i < 10; i++) {
        EXPECT_EQ(t.deliver(sid), result::ok);
    }

    /* lowering or raising the limit later applies to the total */
    EXPECT_EQ(t.set_max(sid, 20), result::ok);
    for (int i = 0; i < 8; i++) {
        EXPECT_EQ(t.deliver(sid), result::ok);
    }
    EXPECT_EQ(t.deliver(sid), result::done);
}


TEST(SubTable, SubjectMatches)
{
    struct {
        const char  *pattern;
        const char  *subject;
        bool         match;
    } cases[] = {
        { "foo", "foo", true },
        { "foo", "bar", false },
        { "foo", "Foo", false },
        { "foo.bar", "foo.bar", true },
        { "foo.bar", "foo", false },
        { "foo", "foo.bar", false },
        { "*", "foo", true },
        { "*", "foo.bar", false },
        { "foo.*", "foo.bar", true },
        { "foo.*", "foo", false },
        { "foo.*", "foo.bar.baz", false },
        { "*.bar", "foo.bar", true },
        { "*.*", "a.b", true },
        { "foo.*.baz", "foo.bar.baz", true },
        { "foo.*.baz", "foo.bar.qux", false },
        { ">", "foo", true },
        { ">", "foo.bar.baz", true },
        { "foo.>", "foo.bar", true },
        { "foo.>", "foo.bar.baz", true },
        { "foo.>", "foo", false },
        { "foo.>", "bar.baz", false },
        { "*.>", "a", false },
        { "*.>", "a.b", true },
        { "foo.*.>", "foo.a.b.c", true },
        { "foo.*.>", "foo.a", false },
        { "foo*", "foo*", true },
        { "foo*", "fooX", false },
        { "f>o", "f>o", true },
        { "a.>.b", "a.x.b", false },
        { "", "", false },
        { "foo", "", false },
        { "", "foo", false },
        { "foo.>", "foo.", false },
        { "foo.>", "foo..bar", false },
        { "foo..bar", "foo..bar", false },
        { "*", ".", false },
        { "_INBOX.abc.*", "_INBOX.abc.17", true },
    };

    for (const auto &c : cases) {
        EXPECT_EQ(subject_matches(c.pattern, c.subject), c.match)
            << "'" << c.pattern << "' vs '" << c.subject << "'";
    }
}


}  // namespace
}  // namespace resty_nats
