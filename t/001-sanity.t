# vim:set ft= ts=4 sw=4 et:
# The module loads, the core resolves, and the seed API works against a
# real nats-server ($TEST_NGINX_NATS_PORT, started by t/run).

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: the module is loaded and every function of the C ABI resolves
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local ffi = require "ffi"
            local f = assert(io.open("$TEST_NGINX_REPO/src/resty_nats.h"))
            local h = f:read("*a")
            f:close()
            local n = 0
            -- declarations only: a line that starts with the return type
            for name in h:gmatch("\n%a[%w_ ]*[%s%*]+(resty_nats_[%w_]+)%(") do
                local ok, err = pcall(function() return ffi.C[name] end)
                if not ok then
                    ngx.say("unresolved: ", name, ": ", err)
                end
                n = n + 1
            end
            -- the ABI is what Lua calls: its size is pinned
            ngx.say(n == 21 and "ok" or (n .. " functions"))
            local v = ffi.C.resty_nats_version()
            ngx.say("version ", nats._VERSION == string.format("%d.%d.%d",
                    math.floor(v / 10000), math.floor(v / 100) % 100, v % 100))
        }
    }
--- request
GET /t
--- response_body
ok
version true
--- no_error_log
[error]



=== TEST 2: connect, publish, close
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT)
            ngx.say("connect: ", ok, " ", err)
            ngx.say("reused: ", n:get_reused_times())
            ok, err = n:publish("sanity.pub", "hello")
            ngx.say("publish: ", ok, " ", err)
            ok, err = n:publish("sanity.pub", "hello", "sanity.reply")
            ngx.say("publish with reply: ", ok, " ", err)
            ngx.say("close: ", n:close())
            ok, err = n:publish("sanity.pub", "hello")
            ngx.say("after close: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
connect: true nil
reused: 0
publish: true nil
publish with reply: true nil
close: 1
after close: false not connected
--- no_error_log
[error]



=== TEST 3: subscribe, publish to self, wait: the callback gets subject, sid, reply_to, payload
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            local sid, err = n:subscribe("sanity.self", function(msg)
                got[#got + 1] = msg
            end)
            ngx.say("sid type: ", type(sid), " ", err)
            assert(n:publish("sanity.self", "one"))
            assert(n:publish("sanity.self", "two", "sanity.answer"))
            local ok, err = n:wait(2)
            ngx.say("wait: ", ok, " ", err)
            for _, m in ipairs(got) do
                ngx.say(m.subject, " ", m.sid == sid, " ",
                        tostring(m.reply_to), " ", m.payload)
            end
            assert(n:unsubscribe(sid))
            n:close()
        }
    }
--- request
GET /t
--- response_body
sid type: string nil
wait: true nil
sanity.self true nil one
sanity.self true sanity.answer two
--- no_error_log
[error]



=== TEST 4: wildcard subscriptions: '*' matches one token, '>' one or more
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local star, gt = {}, {}
            assert(n:subscribe("wc.*.x", function(m)
                star[#star + 1] = m.subject
            end))
            assert(n:subscribe("wc.>", function(m)
                gt[#gt + 1] = m.subject
            end))
            for _, s in ipairs({ "wc.a.x", "wc.b.y", "wc.a.x.z", "wc" }) do
                assert(n:publish(s, "p"))
            end
            -- wc.a.x: 2 deliveries, wc.b.y: 1, wc.a.x.z: 1, wc: 0
            assert(n:wait(4))
            table.sort(gt)
            ngx.say("star: ", table.concat(star, ","))
            ngx.say("gt: ", table.concat(gt, ","))
            n:close()
        }
    }
--- request
GET /t
--- response_body
star: wc.a.x
gt: wc.a.x,wc.a.x.z,wc.b.y
--- no_error_log
[error]



=== TEST 5: unsubscribe stops delivery; an unknown sid is refused
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(500)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local a, b = 0, 0
            local sa = assert(n:subscribe("unsub.a", function() a = a + 1 end))
            local sb = assert(n:subscribe("unsub.b", function() b = b + 1 end))
            ngx.say("unsubscribe: ", n:unsubscribe(sa))
            ngx.say("again: ", n:unsubscribe(sa))
            assert(n:publish("unsub.a", "x"))
            assert(n:publish("unsub.b", "y"))
            assert(n:wait(1))
            -- nothing more may arrive: wait times out
            local ok, err = n:wait(1)
            ngx.say("a=", a, " b=", b, " wait: ", ok, " ", err)
            n:close()
        }
    }
--- request
GET /t
--- response_body
unsubscribe: true
again: falseunknown sid
a=0 b=1 wait: false timeout
--- error_log
lua tcp socket read timed out



=== TEST 6: binary, empty and large payloads round trip byte for byte
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("bin.>", function(m)
                got[m.subject] = m.payload
            end))
            local t = {}
            for i = 0, 255 do t[#t + 1] = string.char(i) end
            local all = table.concat(t) .. "\r\nPUB x 1\r\n\r\n"
            local big = string.rep("0123456789abcdef", 65536 - 16)
            assert(n:publish("bin.all", all))
            assert(n:publish("bin.empty", ""))
            assert(n:publish("bin.big", big))
            assert(n:wait(3))
            ngx.say("all: ", got["bin.all"] == all, " ", #got["bin.all"])
            ngx.say("empty: ", got["bin.empty"] == "")
            ngx.say("big: ", got["bin.big"] == big, " ", #got["bin.big"])
            n:close()
        }
    }
--- request
GET /t
--- response_body
all: true 269
empty: true
big: true 1048320
--- no_error_log
[error]



=== TEST 7: a payload over the server's max_payload fails before sending; the connection stays usable
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("maxp", function(m) got[#got + 1] = #m.payload end))
            local ok, err = n:publish("maxp", string.rep("x", 1048577))
            ngx.say("over: ", ok, " ", err)
            ok, err = n:publish("maxp", string.rep("x", 1048576))
            ngx.say("exact: ", ok, " ", err)
            assert(n:wait(1))
            ngx.say("received: ", table.concat(got, ","))
            n:close()
        }
    }
--- request
GET /t
--- response_body
over: false payload too large (1048577 > max_payload 1048576)
exact: true nil
received: 1048576
--- no_error_log
[error]



=== TEST 8: seed API argument errors are returned as false, err
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            ngx.say("before connect: ", n:publish("a", "b"))
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            ngx.say(n:subscribe(42, function() end))
            ngx.say(n:subscribe("a", "not a function"))
            ngx.say(n:publish(nil, "x"))
            ngx.say(n:request("a", "x", "not a function"))
            local ok, err = pcall(n.publish, n, "a", {})
            ngx.say("table payload raises: ", not ok)
            n:close()
        }
    }
--- request
GET /t
--- response_body
before connect: falsenot connected
falsesubject is not a string
falsecallback is not a function
falsesubject is not a string
falsecallback is not a function
table payload raises: true
--- no_error_log
[error]



=== TEST 9: wait answers the server's PINGs: 3.5 s of waiting on a server that PINGs every second leaves the connection alive
--- timeout: 10
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3500)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PING_PORT))
            local got
            assert(n:subscribe("pinged.quiet", function(m) got = m.payload end))
            local ok, err = n:wait(1)
            ngx.say("quiet wait: ", ok, " ", err)
            assert(n:publish("pinged.quiet", "alive"))
            ok, err = n:wait(1)
            ngx.say("then: ", ok, " ", err, " ", got)
            n:close()
        }
    }
--- request
GET /t
--- response_body
quiet wait: false timeout
then: true nil alive
--- error_log
lua tcp socket read timed out
