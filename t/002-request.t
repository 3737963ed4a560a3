# vim:set ft= ts=4 sw=4 et:
# Request/reply against a responder built on the official C client
# (nats_peer serve, started by t/run), and the original README's example.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: the original README usage example, unchanged but for the port
--- config
    location = /t {
        content_by_lua_block {
    local nats = require "resty.nats"
    local internal_error = '{"code": 500, "msg": "Service is temporarily unavailable. Please try again later"}'
    local n = nats:new()
    local ok, err = n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT)
    if not ok then
        ngx.say(internal_error)
        ngx.exit(200)
    end

    ngx.req.read_body()
    local data = ngx.req.get_body_data()

    local function request_callback(msg)
        ngx.say(msg.payload)
    end
    ok, err = n:request('rpc', data, request_callback)
    if not ok then
        ngx.say(internal_error)
        ngx.exit(200)
    else
        ok,err = n:wait(1)
        if not ok and err then
            ngx.say(internal_error)
            ngx.exit(200)
        end
    end
    ok, err = n:set_keepalive(0, 1024)
        }
    }
--- request
POST /t
{"method": "add", "params": [1, 2]}
--- response_body
{"method": "add", "params": [1, 2]}
--- no_error_log
[error]



=== TEST 2: request with a callback: the reply comes through wait() with its subject and sid
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local reply
            local ok, err = n:request("interop.echo", "ping?", function(msg)
                reply = msg
            end)
            ngx.say("request: ", ok, " ", err)
            ok, err = n:wait(1)
            ngx.say("wait: ", ok, " ", err)
            ngx.say("payload: ", reply.payload)
            ngx.say("inbox: ", reply.subject:match("^_INBOX%.%w+%.%w+$") ~= nil)
            ngx.say("sid: ", type(reply.sid))
            -- the inbox subscription ended with its reply: poolable
            ngx.say("keepalive: ", n:set_keepalive(10000, 10))
        }
    }
--- request
GET /t
--- response_body
request: true nil
wait: true nil
payload: ping?
inbox: true
sid: string
keepalive: 1
--- no_error_log
[error]



=== TEST 3: several requests in flight on one connection each get their own reply
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            for i = 1, 20 do
                assert(n:request("interop.echo", "req-" .. i, function(msg)
                    got[i] = msg.payload
                end))
            end
            assert(n:wait(20))
            local bad = 0
            for i = 1, 20 do
                if got[i] ~= "req-" .. i then bad = bad + 1 end
            end
            ngx.say("mismatched: ", bad)
            n:close()
        }
    }
--- request
GET /t
--- response_body
mismatched: 0
--- no_error_log
[error]



=== TEST 4: inbox names are unpredictable: 200 requests, 200 distinct inboxes
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local seen, count = {}, 0
            for i = 1, 200 do
                assert(n:request("interop.echo", "x", function(msg)
                    if not seen[msg.subject] then
                        seen[msg.subject] = true
                        count = count + 1
                    end
                end))
            end
            assert(n:wait(200))
            ngx.say("distinct: ", count)
            n:close()
        }
    }
--- request
GET /t
--- response_body
distinct: 200
--- no_error_log
[error]



=== TEST 5: no responder: the server's 503 ends the request at once with false, "no responders"
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local called = false
            assert(n:request("nobody.listens.here", "x", function()
                called = true
            end))
            local t0 = ngx.now()
            local ok, err = n:wait(1)
            ngx.update_time()
            ngx.say("wait: ", ok, " ", err, " called: ", called)
            ngx.say("fast: ", ngx.now() - t0 < 1)
            -- the connection is still usable and holds no subscription
            ngx.say("keepalive: ", n:set_keepalive(10000, 10))
        }
    }
--- request
GET /t
--- response_body
wait: false no responders called: false
fast: true
keepalive: 1
--- no_error_log
[error]



=== TEST 6: nothing arrives: wait honours the socket read timeout and returns false, "timeout"
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(300)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(n:subscribe("quiet.subject", function() end))
            local t0 = ngx.now()
            local ok, err = n:wait(1)
            ngx.update_time()
            ngx.say("wait: ", ok, " ", err)
            ngx.say("returned in time: ", ngx.now() - t0 < 2)
            -- still connected after a timeout
            ngx.say("publish: ", n:publish("quiet.other", "x"))
            n:close()
        }
    }
--- request
GET /t
--- response_body
wait: false timeout
returned in time: true
publish: true
--- error_log
lua tcp socket read timed out
