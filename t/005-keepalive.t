# vim:set ft= ts=4 sw=4 et:
# set_keepalive / get_reused_times on the stock cosocket pool.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: a pooled connection is reused without a new handshake and works
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            for i = 1, 3 do
                local n = assert(nats:new())
                -- a handshake on a reused connection would wait for an
                -- INFO that never comes and time out
                n:set_timeout(1000)
                local ok, err = n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT)
                ngx.say(i, ": connect ", ok, " ", err, " reused ",
                        n:get_reused_times())
                local reply
                assert(n:request("interop.echo", "r" .. i, function(m)
                    reply = m.payload
                end))
                assert(n:wait(1))
                ngx.say(i, ": reply ", reply)
                ngx.say(i, ": keepalive ", n:set_keepalive(10000, 4))
                ngx.say(i, ": after ", n:publish("ka.x", "y"))
            end
        }
    }
--- request
GET /t
--- response_body
1: connect true nil reused 0
1: reply r1
1: keepalive 1
1: after falsenot connected
2: connect true nil reused 1
2: reply r2
2: keepalive 1
2: after falsenot connected
3: connect true nil reused 2
3: reply r3
3: keepalive 1
3: after falsenot connected
--- no_error_log
[error]



=== TEST 2: a connection with a live subscription is never pooled
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local sid = assert(n:subscribe("ka.sub", function() end))
            ngx.say("keepalive: ", n:set_keepalive(10000, 4))
            assert(n:unsubscribe(sid))
            ngx.say("after unsubscribe: ", n:set_keepalive(10000, 4))
        }
    }
--- request
GET /t
--- response_body
keepalive: nilsubscribed state
after unsubscribe: 1
--- no_error_log
[error]



=== TEST 3: a request whose reply never came leaves its inbox subscribed: not pooled
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(n:request("interop.echo", "x", function() end))
            ngx.say("keepalive: ", n:set_keepalive(10000, 4))
            assert(n:wait(1))
            ngx.say("after the reply: ", n:set_keepalive(10000, 4))
        }
    }
--- request
GET /t
--- response_body
keepalive: nilsubscribed state
after the reply: 1
--- no_error_log
[error]



=== TEST 4: close and keepalive on an object that never connected
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            ngx.say("keepalive: ", n:set_keepalive())
            ngx.say("reused: ", n:get_reused_times())
            ngx.say("close: ", n:close())
        }
    }
--- request
GET /t
--- response_body
keepalive: nilclosed
reused: nilclosed
close: nilclosed
--- no_error_log
[error]



=== TEST 5: the request inbox survives pooling: one subscription on the connection over three checkouts, one PUB per request
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local name = "inbox" .. ngx.worker.pid() .. math.random(1e6)
            local function subs_of(name)
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_NATS_MONITOR_PORT))
                assert(s:send("GET /connz?subs=1&limit=1024 HTTP/1.0\r\nHost: x\r\n\r\n"))
                local body = assert(s:receive("*a"))
                s:close()
                local conn = body:match('{[^{}]-"name":%s*"' .. name .. '"[^{}]-}')
                return conn and conn:match('"subscriptions":%s*(%d+)'),
                       conn and conn:match('"in_msgs":%s*(%d+)')
            end
            local prefixes = {}
            for i = 1, 3 do
                local n = assert(nats:new())
                n:set_timeout(2000)
                assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, { name = name }))
                local m = assert(n:request("interop.echo", "r" .. i))
                prefixes[i] = m.subject:match("^(_INBOX%.%w+)%.%w+$")
                ngx.say(i, ": reused ", n:get_reused_times(), ", reply ", m.payload)
                assert(n:set_keepalive(60000, 4))
            end
            ngx.say("one inbox: ", prefixes[1] ~= nil and prefixes[1] == prefixes[2]
                                   and prefixes[2] == prefixes[3])
            local nsubs, in_msgs = subs_of(name)
            ngx.say("subscriptions on the connection: ", nsubs)
            ngx.say("messages the server got from it: ", in_msgs)
        }
    }
--- request
GET /t
--- response_body
1: reused 0, reply r1
2: reused 1, reply r2
3: reused 2, reply r3
one inbox: true
subscriptions on the connection: 1
messages the server got from it: 3
--- no_error_log
[error]



=== TEST 6: a reply that comes after its request timed out reaches the idle pooled connection: the connection is dropped, never the reply handed to the next request
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local opts = { name = "late" .. ngx.worker.pid() .. math.random(1e6) }
            local n = assert(nats:new())
            n:set_timeout(2000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, opts))
            local m, err = n:request("interop.slow", "first", { timeout = 50 })
            ngx.say("first: ", m and m.payload, " ", err)
            ngx.say("pooled: ", n:set_keepalive(60000, 4))
            ngx.sleep(0.6)   -- "slow: first" arrives at the pooled connection
            n = assert(nats:new())
            n:set_timeout(2000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, opts))
            ngx.say("reused: ", n:get_reused_times())
            m, err = n:request("interop.echo", "second")
            ngx.say("second: ", m and m.payload, " ", err)
            n:close()
        }
    }
--- request
GET /t
--- response_body
first: nil timeout
pooled: 1
reused: 0
second: second nil
--- no_error_log
[alert]
