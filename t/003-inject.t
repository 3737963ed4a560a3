# vim:set ft= ts=4 sw=4 et:
# Protocol injection: subjects, replies and sids with spaces, tabs, CR/LF,
# empty tokens or misplaced wildcards are refused before anything is
# written, and a subscriber to every subject ('>') proves that nothing of
# them reached the server.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: bad subjects and replies are refused by publish, subscribe and request; nothing reaches the wire
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local spy = assert(nats:new())
            assert(spy:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local seen = {}
            assert(spy:subscribe(">", function(m)
                seen[#seen + 1] = m.subject .. "=" .. m.payload
            end))
            -- the server handles a connection's ops in order: once the spy
            -- sees its own message, its SUB is in place
            assert(spy:publish("inj.sync", "s"))
            assert(spy:wait(1))
            seen = {}

            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local bad = {
                "foo bar", "foo\tbar", "foo\r\nPUB evil 4\r\nevil",
                "foo\nbar", "foo\rbar", "", "foo..bar", ".foo", "foo.",
                "a\0b", "*", ">", "foo.*", "foo.>",
            }
            local refused = 0
            for _, s in ipairs(bad) do
                local ok, err = n:publish(s, "evil")
                if ok == false and type(err) == "string" then
                    refused = refused + 1
                else
                    ngx.say("publish accepted: ", s)
                end
                -- (an empty reply means "no reply", as it always did)
                if s ~= "" then
                    ok, err = n:publish("inj.ok", "evil", s)
                    if ok == false and type(err) == "string" then
                        refused = refused + 1
                    else
                        ngx.say("reply accepted: ", s)
                    end
                end
                ok, err = n:request(s, "evil", function() end)
                if ok == false and type(err) == "string" then
                    refused = refused + 1
                else
                    ngx.say("request accepted: ", s)
                end
            end
            ngx.say("refused ", refused, " of ", 3 * #bad - 1)

            local bad_sub = { "foo bar", "foo\r\nSUB > 99", "", "foo..bar",
                              "foo.>.bar", ">.foo", "foo\t>" }
            refused = 0
            for _, s in ipairs(bad_sub) do
                local sid, err = n:subscribe(s, function() end)
                if sid == false and type(err) == "string" then
                    refused = refused + 1
                else
                    ngx.say("subscribe accepted: ", s)
                end
            end
            ngx.say("subscribe refused ", refused, " of ", #bad_sub)

            local ok, err = n:publish("foo bar", "x")
            ngx.say("message: ", err)

            -- the connection is intact: a good publish arrives, alone
            assert(n:publish("inj.done", "good"))
            assert(spy:wait(1))
            ngx.say("spy saw: ", table.concat(seen, " | "))
            n:close()
            spy:close()
        }
    }
--- request
GET /t
--- response_body
refused 41 of 41
subscribe refused 7 of 7
message: invalid subject: contains whitespace or control character
spy saw: inj.done=good
--- no_error_log
[error]



=== TEST 2: literal subjects with '*' or '>' inside a token are allowed (as the server treats them)
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("lit.foo*", function(m) got[#got + 1] = m.subject end))
            assert(n:subscribe("lit.f>o", function(m) got[#got + 1] = m.subject end))
            assert(n:publish("lit.foo*", "1"))
            assert(n:publish("lit.f>o", "2"))
            assert(n:publish("lit.fooX", "3"))
            assert(n:wait(2))
            ngx.say(table.concat(got, " "))
            n:close()
        }
    }
--- request
GET /t
--- response_body
lit.foo* lit.f>o
--- no_error_log
[error]
