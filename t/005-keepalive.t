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
