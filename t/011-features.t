# vim:set ft= ts=4 sw=4 et:
# Headers (HPUB/HMSG), queue groups, auto-unsubscribe, the synchronous
# request with its timeout, concurrent requests from light threads,
# flush and drain: against the suite's nats-server and the libnats peer.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: publish with headers: libnats sees them, repeated keys in order; the echo comes back with them
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local hdrs = { ["X-One"] = "1", ["X-Multi"] = { "a", "b" },
                           ["Content-Type"] = "text/plain; charset=utf-8" }
            local msg, err = n:request("interop.inspect", "body",
                                       { headers = hdrs, timeout = 2000 })
            ngx.say("inspect: ", msg and msg.payload:match("h:.*") or err)
            msg, err = n:request("interop.echo", "body", { headers = hdrs })
            ngx.say("echo payload: ", msg and msg.payload or err)
            ngx.say("echo X-Multi: ", table.concat(msg.headers["X-Multi"], ","))
            ngx.say("echo X-One: ", msg.headers["X-One"])
            -- the callback form of publish's third argument still works
            assert(n:publish("hdr.x", "p", { reply_to = "hdr.reply", headers = { A = "b" } }))
            n:close()
        }
    }
--- request
GET /t
--- response_body_like
inspect: h:(Content-Type=text/plain; charset=utf-8 h:X-Multi=a,b h:X-One=1|.*)
echo payload: body
echo X-Multi: a,b
echo X-One: 1
--- no_error_log
[error]



=== TEST 2: headers that would break the block are refused before sending
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local bad = {
                { ["X-Bad"] = "a\r\nInjected: yes" },
                { ["X Bad"] = "v" },
                { ["X:Bad"] = "v" },
                { [""] = "v" },
                { ["X-Bad"] = "line\nfeed" },
            }
            for i, h in ipairs(bad) do
                local ok, err = n:publish("hdr.bad", "p", { headers = h })
                ngx.say(i, ": ", ok, " ", err ~= nil)
            end
            ngx.say("still usable: ", n:flush())
            n:close()
        }
    }
--- request
GET /t
--- response_body
1: false true
2: false true
3: false true
4: false true
5: false true
still usable: true
--- no_error_log
[error]



=== TEST 3: a queue group spreads messages over its members, each message to exactly one
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local a = assert(nats:new())
            local b = assert(nats:new())
            assert(a:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(b:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local ca, cb = 0, 0
            assert(a:subscribe("q.work", function() ca = ca + 1 end, { queue = "workers" }))
            assert(b:subscribe("q.work", function() cb = cb + 1 end, { queue = "workers" }))
            assert(a:flush())
            assert(b:flush())
            local p = assert(nats:new())
            assert(p:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            for i = 1, 200 do assert(p:publish("q.work", tostring(i))) end
            assert(p:flush())
            a:set_timeout(300)
            b:set_timeout(300)
            a:wait(0)
            b:wait(0)
            ngx.say("total ", ca + cb, ", both got some: ", ca > 20 and cb > 20)
            local ok, err = a:subscribe("q.x", function() end, { queue = "bad queue" })
            ngx.say("bad queue: ", ok, " ", err ~= nil)
            a:close() b:close() p:close()
        }
    }
--- request
GET /t
--- response_body
total 200, both got some: true
bad queue: false true
--- error_log
lua tcp socket read timed out



=== TEST 4: max on subscribe and on unsubscribe ends a subscription after that many messages in all
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(300)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local c1, c2 = 0, 0
            assert(n:subscribe("max.a", function() c1 = c1 + 1 end, { max = 3 }))
            local sid = assert(n:subscribe("max.b", function() c2 = c2 + 1 end))
            assert(n:publish("max.b", "1"))
            assert(n:wait(1))
            assert(n:unsubscribe(sid, 2))
            for i = 1, 5 do
                assert(n:publish("max.a", "x"))
                assert(n:publish("max.b", "y"))
            end
            n:wait(0)
            ngx.say("max.a got ", c1, ", max.b got ", c2)
            ngx.say("no subscription left: ", n:set_keepalive(1000, 4))
        }
    }
--- request
GET /t
--- response_body
max.a got 3, max.b got 2
no subscription left: 1
--- error_log
lua tcp socket read timed out



=== TEST 5: the synchronous request: a reply, a timeout, no responders, and a late reply never reaches another request
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local msg, err = n:request("interop.echo", "hi", { timeout = 1000 })
            ngx.say("reply: ", msg and msg.payload, " ", err)

            ngx.update_time()
            local t0 = ngx.now()
            msg, err = n:request("interop.slow", "late", { timeout = 100 })
            ngx.update_time()
            local dt = ngx.now() - t0
            ngx.say("slow: ", msg, " ", err, " after ~100 ms: ", dt >= 0.09 and dt < 0.5)

            t0 = ngx.now()
            msg, err = n:request("nobody.here", "x", { timeout = 2000 })
            ngx.update_time()
            ngx.say("nobody: ", msg, " ", err, " at once: ", ngx.now() - t0 < 0.5)

            -- the slow reply arrives meanwhile and must be dropped
            ngx.sleep(0.4)
            msg, err = n:request("interop.echo", "mine", { timeout = 1000 })
            ngx.say("next: ", msg and msg.payload, " ", err)
            ngx.say("pool: ", n:set_keepalive(1000, 4))
        }
    }
--- request
GET /t
--- response_body
reply: hi nil
slow: nil timeout after ~100 ms: true
nobody: nil no responders at once: true
next: mine nil
pool: 1
--- error_log
lua tcp socket read timed out



=== TEST 6: concurrent synchronous requests from light threads on one connection each get their own reply
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local threads = {}
            for i = 1, 10 do
                threads[i] = ngx.thread.spawn(function()
                    local subj = (i % 3 == 0) and "interop.slow" or "interop.echo"
                    local msg, err = n:request(subj, "r" .. i, { timeout = 3000 })
                    return msg and msg.payload or err
                end)
            end
            local bad = 0
            for i = 1, 10 do
                local ok, res = ngx.thread.wait(threads[i])
                local want = (i % 3 == 0) and ("slow: r" .. i) or ("r" .. i)
                if res ~= want then
                    bad = bad + 1
                    ngx.say("thread ", i, ": ", res)
                end
            end
            ngx.say("wrong replies: ", bad)
            n:close()
        }
    }
--- request
GET /t
--- response_body
wrong replies: 0
--- no_error_log
[error]



=== TEST 7: flush is a round trip; drain unsubscribes, delivers what is in flight, and closes
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = 0
            assert(n:subscribe("drain.x", function() got = got + 1 end))
            ngx.say("flush: ", n:flush(1000))
            for i = 1, 50 do assert(n:publish("drain.x", "m")) end
            ngx.say("drain: ", n:drain(1000))
            ngx.say("delivered during drain: ", got)
            ngx.say("after: ", n:publish("drain.x", "m"))
        }
    }
--- request
GET /t
--- response_body
flush: true
drain: true
delivered during drain: 50
after: falsenot connected
--- no_error_log
[error]



=== TEST 8: a write buffer: publishes go out together, before reads, at flush and at close, none lost
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            -- what the libnats peer counted (it resets on every ask), summed
            -- until want messages arrived or 3 s passed
            local function sink(want)
                local c = assert(nats:new())
                assert(c:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
                local count, bytes = 0, 0
                for _ = 1, 30 do
                    local msg = assert(c:request("interop.sinkstat", ""))
                    local a, b = msg.payload:match("^(%d+) (%d+)$")
                    count, bytes = count + tonumber(a), bytes + tonumber(b)
                    if count >= want then break end
                    ngx.sleep(0.1)
                end
                c:close()
                return count .. " " .. bytes
            end
            sink(0)
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(n:set_write_buffer(16384))
            for i = 1, 1000 do
                assert(n:publish("interop.sink.buf", string.rep("x", 100)))
            end
            ngx.say("flush: ", n:flush())
            ngx.say("after flush: ", sink(1000))
            for i = 1, 10 do
                assert(n:publish("interop.sink.buf", "y"))
            end
            ngx.say("close: ", n:close())
            ngx.sleep(0.2)
            ngx.say("after close: ", sink(10))
        }
    }
--- request
GET /t
--- response_body
flush: true
after flush: 1000 100000
close: 1
after close: 10 10
--- no_error_log
[error]



=== TEST 9: verbose mode: the server's +OK acknowledgements are consumed
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, { verbose = true, pedantic = true, name = "verbose-client" }))
            local got
            assert(n:subscribe("verbose.x", function(m) got = m.payload end))
            assert(n:publish("verbose.x", "acked"))
            ngx.say("wait: ", n:wait(1), " ", got)
            ngx.say("flush: ", n:flush())
            local msg = n:request("interop.echo", "v", { timeout = 1000 })
            ngx.say("request: ", msg and msg.payload)
            n:close()
        }
    }
--- request
GET /t
--- response_body
wait: true acked
flush: true
request: v
--- no_error_log
[error]



=== TEST 10: echo = false: no delivery of the connection's own messages; timeouts and pool options are taken
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, {
                echo = false, connect_timeout = 1000, send_timeout = 1000,
                read_timeout = 300, pool = "no-echo", pool_size = 2 }))
            local other = assert(nats:new())
            assert(other:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local mine, theirs = 0, 0
            assert(n:subscribe("echo.x", function() mine = mine + 1 end))
            assert(other:subscribe("echo.x", function() theirs = theirs + 1 end))
            assert(n:flush())
            assert(other:flush())
            assert(n:publish("echo.x", "1"))
            assert(other:wait(1))
            local ok, err = n:wait(1)
            ngx.say("own message delivered: ", mine, ", other got: ", theirs, ", wait: ", err)
            n:close()
            other:close()
        }
    }
--- request
GET /t
--- response_body
own message delivered: 0, other got: 1, wait: timeout
--- error_log
lua tcp socket read timed out



=== TEST 11: a publisher's malformed header block costs that message its headers, not the subscriber its connection
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("hdr.evil", function(m) got[#got + 1] = m end))
            assert(n:flush())

            -- a raw publisher (not this library: it refuses such headers)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(sock:receive("*l"))  -- INFO
            local function hpub(block, payload)
                return "HPUB hdr.evil " .. #block .. " " .. #block + #payload
                       .. "\r\n" .. block .. payload .. "\r\n"
            end
            assert(sock:send('CONNECT {"headers":true,"verbose":false}\r\n'
                .. hpub("NATS/1.0\r\nBad Key: v\r\n\r\n", "one")
                .. hpub("NATS/1.0\r\nX-Tag: a\nInjected: b\r\n\r\n", "two")
                .. hpub("HTTP/1.1 200\r\n\r\n", "three")
                .. hpub("NATS/1.0\r\nGood: yes\r\n\r\n", "four")
                .. "PUB hdr.evil 4\r\nfive\r\nPING\r\n"))
            ngx.say("raw publisher: ", sock:receive("*l"))
            sock:close()

            n:set_timeout(2000)
            assert(n:wait(5))
            for _, m in ipairs(got) do
                ngx.say(m.payload, " headers=", m.headers and m.headers.Good or tostring(m.headers),
                        " error=", tostring(m.header_error))
            end
            ngx.say("still connected: ", n:flush())
            n:close()
        }
    }
--- request
GET /t
--- response_body
raw publisher: PONG
one headers=nil error=invalid header block: bad header name
two headers=nil error=invalid header block: bad header value
three headers=nil error=invalid header block
four headers=yes error=nil
five headers=nil error=nil
still connected: true
--- no_error_log
[error]



=== TEST 12: the write_buffer connect option buffers publishes until flush
--- http_config
    lua_socket_log_errors off;
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local sub = assert(nats:new())
            assert(sub:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(sub:subscribe("wbopt.x", function(m) got[#got + 1] = m.payload end))
            assert(sub:flush())

            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, { write_buffer = 4096 }))
            for i = 1, 10 do
                assert(n:publish("wbopt.x", "m" .. i))
            end
            sub:set_timeout(300)
            local ok, err = sub:wait(1)
            ngx.say("before flush: ", #got, " ", tostring(ok), " ", tostring(err))
            ngx.say("flush: ", n:flush())
            sub:set_timeout(2000)
            assert(sub:wait(10))
            ngx.say("after flush: ", table.concat(got, ","))

            local ok2, e = pcall(n.connect, n, "127.0.0.1", $TEST_NGINX_NATS_PORT, { write_buffer = -1 })
            ngx.say(ok2, " ", e)
            n:close()
            sub:close()
        }
    }
--- request
GET /t
--- response_body
before flush: 0 false timeout
flush: true
after flush: m1,m2,m3,m4,m5,m6,m7,m8,m9,m10
false bad 'write_buffer' option to 'connect' (a size >= 0 expected)
--- no_error_log
[error]
