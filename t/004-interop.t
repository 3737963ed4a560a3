# vim:set ft= ts=4 sw=4 et:
# Interop both ways with an independent peer built on the official C client
# (t/helpers/nats_peer.c, "serve" mode started by t/run).

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: what resty.nats publishes, libnats receives byte for byte (length and CRC-32 checked by the peer)
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local t = {}
            for i = 0, 255 do t[#t + 1] = string.char(i) end
            local payloads = {
                "", "hello", table.concat(t) .. "\r\n\r\nMSG x 1 2\r\n",
                string.rep("\r\n", 40000), string.rep("z", 1048000),
            }
            for i, p in ipairs(payloads) do
                local reply
                assert(n:request("interop.inspect", p, function(m)
                    reply = m.payload
                end))
                assert(n:wait(1))
                local want = string.format("len=%d crc=%08x", #p,
                                           ngx.crc32_long(p))
                local got = reply:match("len=%d+ crc=%x+")
                ngx.say(i, ": ", got == want and "same" or
                        ("differs: " .. reply .. " want " .. want))
            end
            n:close()
        }
    }
--- request
GET /t
--- response_body
1: same
2: same
3: same
4: same
5: same
--- no_error_log
[error]



=== TEST 2: what libnats publishes, resty.nats receives in order and intact (1000 x 16 B)
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local count, bad, done = 0, 0, nil
            assert(n:subscribe("interop.out.small", function(m)
                local want = string.format("012345678901%04d", count)
                if m.payload ~= want or m.subject ~= "interop.out.small" then
                    bad = bad + 1
                end
                count = count + 1
            end))
            assert(n:request("interop.publish", "interop.out.small 1000 16",
                             function(m) done = m.payload end))
            assert(n:wait(1001))
            ngx.say("received ", count, " bad ", bad, " peer said ", done)
            n:close()
        }
    }
--- request
GET /t
--- response_body
received 1000 bad 0 peer said done 1000
--- no_error_log
[error]



=== TEST 3: large messages from libnats (4 x 1 MiB) arrive whole
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local sizes, ok_content = {}, 0
            local body = string.rep("0123456789", 104858):sub(1, 1048576 - 4)
            assert(n:subscribe("interop.out.big", function(m)
                sizes[#sizes + 1] = #m.payload
                if m.payload:sub(1, -5) == body then
                    ok_content = ok_content + 1
                end
            end))
            assert(n:request("interop.publish", "interop.out.big 4 1048576",
                             function() end))
            assert(n:wait(5))
            ngx.say(table.concat(sizes, ","), " intact ", ok_content)
            n:close()
        }
    }
--- request
GET /t
--- response_body
1048576,1048576,1048576,1048576 intact 4
--- no_error_log
[error]



=== TEST 4: a libnats requester gets the reply of a resty.nats responder
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local sid = assert(n:subscribe("resty.svc", function(m)
                assert(n:publish(m.reply_to, "resty says: " .. m.payload))
            end))
            -- the SUB is in place once a round trip through the server
            -- came back
            assert(n:request("interop.echo", "sync", function() end))
            assert(n:wait(1))

            local out = os.tmpname()
            os.execute("$TEST_NGINX_NATS_PEER request "
                       .. "nats://127.0.0.1:$TEST_NGINX_NATS_PORT "
                       .. "resty.svc hello 3000 > " .. out .. " 2>&1 &")
            assert(n:wait(1))
            local text
            for _ = 1, 50 do
                local f = io.open(out)
                text = f and f:read("*a")
                if f then f:close() end
                if text and text:find("\n") then break end
                ngx.sleep(0.1)
            end
            os.remove(out)
            ngx.print("peer got: ", text)
            n:unsubscribe(sid)
            n:close()
        }
    }
--- request
GET /t
--- response_body
peer got: resty says: hello
--- no_error_log
[error]



=== TEST 5: messages with headers from libnats (HMSG): repeated keys become lists
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local msg
            assert(n:request("interop.headers", "payload!", function(m)
                msg = m
            end))
            assert(n:wait(1))
            ngx.say("payload: ", msg.payload)
            ngx.say("X-One: ", msg.headers["X-One"])
            ngx.say("X-Multi: ", table.concat(msg.headers["X-Multi"], ","))
            ngx.say("x-one: ", tostring(msg.headers["x-one"]))
            ngx.say("status: ", tostring(msg.status))
            n:close()
        }
    }
--- request
GET /t
--- response_body
payload: payload!
X-One: 1
X-Multi: a,b
x-one: nil
status: nil
--- no_error_log
[error]
