# vim:set ft= ts=4 sw=4 et:
# The worker's shared connection (nats.shared), against the suite's
# nats-server and the libnats peer (t/run): defined in init_worker, used
# by every request of the worker. Request/reply (muxed inbox, many at
# once), publish reaching libnats (also 20,000 unflushed in one request),
# callbacks receiving every message in order (a failing callback stops
# nothing), sub:next order, max and timeout, request-scoped subscriptions
# removed when their request ends (also when the client goes away), one
# connection per worker at the server after hundreds of requests, bad
# input refused with the connection still usable, close.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t") unless defined $block->request
                                                 || defined $block->request_eval;
    # --- init_worker: more Lua for the one init_worker_by_lua_block
    my $init = $block->init_worker;
    $init = '' unless defined $init;
    my $conf = <<'CONF';
    lua_shared_dict t019 1m;
    init_by_lua_block {
        local cjson = require "cjson.safe"
        t019 = {}
        -- the suite's connection, once connected
        function t019.conn()
            return require("t_shared").connected("main")
        end

        -- GET of the nats-server's monitoring endpoint, decoded
        function t019.monitor(path)
            local s = ngx.socket.tcp()
            s:settimeout(3000)
            assert(s:connect("127.0.0.1", $TEST_NGINX_NATS_MONITOR_PORT))
            assert(s:send("GET " .. path .. " HTTP/1.0\r\nHost: x\r\n\r\n"))
            local body = assert(s:receive("*a"))
            s:close()
            return assert(cjson.decode(body:match("\r\n\r\n(.*)$")))
        end

        -- the server's connections named name: count, subscriptions
        function t019.connz(name)
            local z = t019.monitor("/connz?subs=1&limit=1024")
            local n, subs = 0, 0
            for _, c in ipairs(z.connections or {}) do
                if c.name == name then
                    n = n + 1
                    subs = subs + (c.subscriptions or 0)
                end
            end
            return n, subs
        end

        -- what the libnats sink counted since the last call, waiting until
        -- want arrived or nothing more came for 2 s
        function t019.sink(conn, want)
            local count, bytes, idle = 0, 0, 0
            while idle < 20 do
                local m = assert(conn:request("interop.sinkstat", ""))
                local c, b = m.payload:match("^(%d+) (%d+)")
                count, bytes = count + tonumber(c), bytes + tonumber(b)
                if want and count >= want then break end
                idle = tonumber(c) == 0 and idle + 1 or 0
                ngx.sleep(0.1)
            end
            return count, bytes
        end

        -- per worker: what the callbacks saw
        t019.seen = {}
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        local conn = assert(nats.shared("main", {
            port = $TEST_NGINX_NATS_PORT, name = "t019-main",
            reconnect_wait = 200,
        }))
        assert(conn:subscribe("t019.cb", function(msg)
            local seen = t019.seen
            seen[#seen + 1] = msg.payload
            ngx.shared.t019:incr("cb", 1, 0)
        end))
        assert(conn:subscribe("t019.bad", function(msg)
            if msg.payload == "boom" then
                error("boom")
            end
            ngx.shared.t019:incr("bad", 1, 0)
        end))
        assert(conn:subscribe("t019.slowcb", function(msg)
            ngx.sleep(0.05)
            ngx.shared.t019:incr("slowcb", 1, 0)
        end))
        -- INIT_WORKER
    }
CONF
    $conf =~ s/-- INIT_WORKER\n/$init/;
    $block->set_value("http_config", $conf);
});

run_tests();

__DATA__

=== TEST 1: request/reply with the libnats responder: payload, headers, no responders, timeout, a late reply dropped
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local msg, err = conn:request("interop.echo", "hello")
            ngx.say("echo: ", msg and msg.payload, " ", err)
            msg, err = conn:request("interop.echo", "with headers",
                                    { headers = { ["X-A"] = "1" } })
            ngx.say("headers: ", msg and msg.headers and msg.headers["X-A"])
            msg, err = conn:request("interop.headers", "x", { timeout = 2000 })
            ngx.say("multi: ", table.concat(msg.headers["X-Multi"], ","))
            msg, err = conn:request("t019.nobody", "x")
            ngx.say("nobody: ", msg, " ", err)
            msg, err = conn:request("interop.slow", "late", { timeout = 100 })
            ngx.say("slow: ", msg, " ", err)
            msg, err = conn:request("interop.echo", "after")
            ngx.say("after: ", msg and msg.payload, " ", err)
            ngx.sleep(0.4)   -- the late reply arrives and is dropped
            msg, err = conn:request("interop.echo", "still")
            ngx.say("still: ", msg and msg.payload, " ", err)
        }
    }
--- response_body
echo: hello nil
headers: 1
multi: a,b
nobody: nil no responders
slow: nil timeout
after: after nil
still: still nil
--- no_error_log
[error]



=== TEST 2: publish reaches a libnats subscriber, with headers too
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            t019.sink(conn, 0)   -- reset
            for i = 1, 100 do
                assert(conn:publish("interop.sink.t019", "message " .. i))
            end
            assert(conn:publish("interop.sink.t019", "h",
                                { headers = { ["X-Id"] = "7" } }))
            local m = assert(conn:request("interop.inspect", "p",
                                          { headers = { ["X-Id"] = "7" } }))
            ngx.say("inspect: ", m.payload:match("h:X%-Id=7") ~= nil)
            local n = t019.sink(conn, 101)
            ngx.say("sink: ", n)
        }
    }
--- response_body
inspect: true
sink: 101
--- no_error_log
[error]



=== TEST 3: 20,000 publishes in one request, never flushed: all delivered after the request ends
--- config
    location = /pub {
        content_by_lua_block {
            local conn = t019.conn()
            t019.sink(conn, 0)
            local payload = string.rep("x", 100)
            for i = 1, 20000 do
                assert(conn:publish("interop.sink.bulk", payload))
            end
            ngx.say("queued ", conn:stats().out_msgs > 0)
        }
    }
    location = /count {
        content_by_lua_block {
            local conn = t019.conn()
            local n, bytes = t019.sink(conn, 20000)
            ngx.say("sink: ", n, " messages, ", bytes, " bytes")
        }
    }
--- request eval
["GET /pub", "GET /count"]
--- response_body eval
["queued true\n", "sink: 20000 messages, 2000000 bytes\n"]
--- no_error_log
[error]



=== TEST 4: 300 concurrent requests over one connection: each gets its own reply; the server sees one connection of this worker
--- config
    location = /req {
        content_by_lua_block {
            local conn = t019.conn()
            local want = "req-" .. ngx.var.arg_i
            local msg, err = conn:request("interop.echo", want,
                                          { timeout = 5000 })
            if msg and msg.payload == want then
                ngx.print("ok")
            else
                ngx.print("bad: ", msg and msg.payload, " ", err)
            end
        }
    }
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local reqs = {}
            for i = 1, 300 do
                reqs[i] = { "/req", { args = { i = i } } }
            end
            local res = { ngx.location.capture_multi(reqs) }
            local ok, bad = 0, {}
            for i, r in ipairs(res) do
                if r.body == "ok" then
                    ok = ok + 1
                else
                    bad[#bad + 1] = i .. ": " .. r.body
                end
            end
            ngx.say("ok: ", ok, " ", table.concat(bad, "; "))
            local n = t019.connz("t019-main")
            ngx.say("connections named t019-main: ", n)
            ngx.say("reconnects: ", conn:stats().reconnects)
        }
    }
--- response_body
ok: 300 
connections named t019-main: 1
reconnects: 0
--- no_error_log
[error]



=== TEST 5: callbacks get every message, in order; a failing callback is logged and stops nothing
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            ngx.shared.t019:set("cb", 0)
            ngx.shared.t019:set("bad", 0)
            t019.seen = {}
            for i = 1, 1000 do
                assert(conn:publish("t019.cb", tostring(i)))
                if i % 100 == 0 then
                    assert(conn:publish("t019.bad", "boom"))
                else
                    assert(conn:publish("t019.bad", "fine"))
                end
            end
            for _ = 1, 100 do
                if ngx.shared.t019:get("cb") >= 1000
                   and ngx.shared.t019:get("bad") >= 990 then
                    break
                end
                ngx.sleep(0.05)
            end
            ngx.say("cb: ", ngx.shared.t019:get("cb"))
            ngx.say("bad survived: ", ngx.shared.t019:get("bad"))
            local inorder = #t019.seen == 1000
            for i, p in ipairs(t019.seen) do
                if p ~= tostring(i) then inorder = false break end
            end
            ngx.say("in order: ", inorder)
        }
    }
--- response_body
cb: 1000
bad survived: 990
in order: true
--- error_log
callback for t019.bad failed
boom



=== TEST 6: a slow callback (50 ms a message) holds up neither the reader nor requests
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            ngx.shared.t019:set("slowcb", 0)
            for i = 1, 20 do
                assert(conn:publish("t019.slowcb", "s"))
            end
            ngx.update_time()
            local t0 = ngx.now()
            local msg = assert(conn:request("interop.echo", "quick"))
            ngx.update_time()
            ngx.say("reply while the callback works: ", msg.payload,
                    ", before it is done: ",
                    ngx.shared.t019:get("slowcb") < 20)
            for _ = 1, 100 do
                if ngx.shared.t019:get("slowcb") >= 20 then break end
                ngx.sleep(0.05)
            end
            ngx.say("slow callback done: ", ngx.shared.t019:get("slowcb"))
        }
    }
--- response_body
reply while the callback works: quick, before it is done: true
slow callback done: 20
--- no_error_log
[error]



=== TEST 7: sub:next: messages in order, max, timeout, closed
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local sub = assert(conn:subscribe("t019.next"))
            ngx.say("sid: ", type(sub.sid), " subject: ", sub.subject)
            for i = 1, 5 do
                assert(conn:publish("t019.next", "n" .. i))
            end
            local got = {}
            for i = 1, 5 do
                local m, err = sub:next(2000)
                got[#got + 1] = m and m.payload or err
            end
            ngx.say("got: ", table.concat(got, " "))
            ngx.update_time()
            local t0 = ngx.now()
            local m, err = sub:next(200)
            ngx.update_time()
            ngx.say("empty: ", m, " ", err, " ", ngx.now() - t0 >= 0.19)
            ngx.say("unsubscribe: ", sub:unsubscribe())
            ngx.say("next after: ", sub:next(10))
            ngx.say("unsubscribe again: ", sub:unsubscribe())

            local two = assert(conn:subscribe("t019.max", nil, { max = 2 }))
            for i = 1, 4 do
                assert(conn:publish("t019.max", "m" .. i))
            end
            got = {}
            for i = 1, 3 do
                local m, err = two:next(1000)
                got[#got + 1] = m and m.payload or err
            end
            ngx.say("max 2: ", table.concat(got, " "))
        }
    }
--- response_body
sid: string subject: t019.next
got: n1 n2 n3 n4 n5
empty: nil timeout true
unsubscribe: true
next after: nilclosed
unsubscribe again: nilclosed
max 2: m1 m2 closed
--- no_error_log
[error]



=== TEST 8: a request-scoped subscription ends at the server when its request ends, unsubscribed or not
--- config
    location = /scoped {
        content_by_lua_block {
            local conn = t019.conn()
            local _, subs = t019.connz("t019-main")
            ngx.shared.t019:set("base_subs", subs)
            ngx.shared.t019:set("base_local", conn:stats().subscriptions)
            for i = 1, 3 do
                assert(conn:subscribe("t019.scoped." .. i))
            end
            assert(conn:flush())
            local _, during = t019.connz("t019-main")
            ngx.say("during: +", during - subs)
            -- returns without unsubscribing
        }
    }
    location = /check {
        content_by_lua_block {
            local conn = t019.conn()
            ngx.sleep(0.5)
            assert(conn:flush())
            local _, subs = t019.connz("t019-main")
            ngx.say("after, at the server: +",
                    subs - ngx.shared.t019:get("base_subs"))
            ngx.say("after, here: +", conn:stats().subscriptions
                                      - ngx.shared.t019:get("base_local"))
        }
    }
--- request eval
["GET /scoped", "GET /check"]
--- response_body eval
["during: +3\n", "after, at the server: +0\nafter, here: +0\n"]
--- no_error_log
[error]



=== TEST 9: a request-scoped subscription ends when the client goes away while the handler waits in sub:next
--- config
    location = /hold {
        lua_check_client_abort on;
        content_by_lua_block {
            local conn = t019.conn()
            local sub = assert(conn:subscribe("t019.hold"))
            ngx.shared.t019:set("holding", 1)
            local m, err = sub:next(10000)
            ngx.shared.t019:set("hold_result", tostring(err))
        }
    }
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local base = conn:stats().subscriptions
            local _, base_srv = t019.connz("t019-main")
            ngx.shared.t019:set("holding", 0)
            local c = ngx.socket.tcp()
            assert(c:connect("127.0.0.1", ngx.var.server_port))
            assert(c:send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"))
            for _ = 1, 100 do
                if ngx.shared.t019:get("holding") == 1 then break end
                ngx.sleep(0.01)
            end
            ngx.say("holding: +", conn:stats().subscriptions - base)
            c:close()
            ngx.update_time()
            local t0 = ngx.now()
            local gone
            for _ = 1, 300 do
                if conn:stats().subscriptions == base then
                    gone = true
                    break
                end
                ngx.sleep(0.01)
            end
            ngx.update_time()
            ngx.say("gone within a second: ", gone and ngx.now() - t0 < 1)
            assert(conn:flush())
            local _, subs = t019.connz("t019-main")
            ngx.say("server agrees: ", subs == base_srv)
        }
    }
--- response_body
holding: +1
gone within a second: true
server agrees: true
--- no_error_log
[error]



=== TEST 10: bad input is refused before anything is queued; the connection stays usable
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local before = conn:stats().out_msgs
            local function try(...)
                local ok, err = conn:publish(...)
                ngx.say(tostring(ok), " ", err)
            end
            try("a b", "x")
            try("a\r\nPUB b 1", "x")
            try("", "x")
            try("ok.subject", string.rep("x", 1048577))
            try("ok.subject", "x", { reply_to = "bad reply" })
            try("ok.subject", "x", { headers = { ["Bad:Name"] = "v" } })
            try("ok.subject", "x", { headers = { ["X-A"] = "v\r\nX-B: w" } })
            ngx.say("subscribe: ", conn:subscribe("a b", function() end))
            ngx.say("subscribe: ", conn:subscribe("t019.q", nil, { queue = "a b" }))
            ngx.say("queued nothing: ", conn:stats().out_msgs == before)
            local m = assert(conn:request("interop.echo", "still fine"))
            ngx.say(m.payload)
        }
    }
--- response_body
nil invalid subject: contains whitespace or control character
nil invalid subject: contains whitespace or control character
nil invalid subject: empty
nil payload too large (1048577 > max_payload 1048576)
nil invalid reply subject: contains whitespace or control character
nil invalid header name: contains a byte outside 33-126 or ':'
nil invalid header value: contains CR or LF
subscribe: nilinvalid subject: contains whitespace or control character
subscribe: nilinvalid queue group: contains whitespace or control character
queued nothing: true
still fine
--- no_error_log
[error]



=== TEST 11: the handle: not defined, stats fields, server_info
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            ngx.say(nats.shared("nope"))
            local conn = t019.conn()
            local st = conn:stats()
            local keys = {}
            for k in pairs(st) do keys[#keys + 1] = k end
            table.sort(keys)
            ngx.say(table.concat(keys, " "))
            ngx.say(st.state, " ", st.server == "127.0.0.1:" .. $TEST_NGINX_NATS_PORT)
            ngx.say("server_info: ", conn:server_info().max_payload)
            ngx.say("same handle: ", nats.shared("main") == conn)
        }
    }
--- response_body
nilshared connection 'nope' is not defined
dropped in_bytes in_msgs moves out_bytes out_msgs pending_bytes reconnects server state subscriptions
connected true
server_info: 1048576
same handle: true
--- no_error_log
[error]



=== TEST 12: pending limits: beyond them messages are dropped, counted and logged once
--- init_worker
        local lim = assert(nats.shared("limited", {
            port = $TEST_NGINX_NATS_PORT, name = "t019-limited",
            pending_limits = { msgs = 10, bytes = 1000000 },
        }))
        assert(lim:subscribe("t019.limited", function() ngx.sleep(0.2) end))
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local lim = assert(nats.shared("limited"))
            for _ = 1, 200 do
                if lim:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            for i = 1, 100 do
                assert(lim:publish("t019.limited", "m"))
            end
            assert(lim:flush())
            ngx.sleep(0.1)
            local d = lim:stats().dropped
            ngx.say("dropped some: ", d > 50 and d < 100, " in: ", lim:stats().in_msgs)
        }
    }
--- response_body
dropped some: true in: 100
--- grep_error_log: slow consumer on t019.limited
--- grep_error_log_out
slow consumer on t019.limited



=== TEST 13: close drains: what was queued arrives, later calls say closed
--- init_worker
        assert(nats.shared("closing", {
            port = $TEST_NGINX_NATS_PORT, name = "t019-closing",
        }))
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = t019.conn()
            t019.sink(conn, 0)
            local c2 = assert(nats.shared("closing"))
            for _ = 1, 200 do
                if c2:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local sub = assert(c2:subscribe("t019.closing", function() end))
            for i = 1, 5000 do
                assert(c2:publish("interop.sink.closing", "c" .. i))
            end
            ngx.say("close: ", c2:close())
            ngx.say("sink: ", (t019.sink(conn, 5000)))
            ngx.say("publish after: ", c2:publish("x", "y"))
            ngx.say("request after: ", c2:request("x", "y"))
            ngx.say("close again: ", c2:close())
            ngx.say("state: ", c2:stats().state)
            ngx.say("defined after close: ", nats.shared("closing"))
            ngx.say("at the server: ", (t019.connz("t019-closing")))
        }
    }
--- response_body
close: true
sink: 5000
publish after: nilclosed
request after: nilclosed
close again: nilclosed
state: closed
defined after close: nilshared connection 'closing' is not defined
at the server: 0
--- no_error_log
[error]



=== TEST 14: programmer errors raise at the caller's line
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            local _, err = pcall(function() conn:publish("x", {}) end)
            ngx.say(err)
            _, err = pcall(function() conn:request("x", "y", 5) end)
            ngx.say(err)
            _, err = pcall(function() conn:subscribe("x", nil, 5) end)
            ngx.say(err)
        }
    }
--- response_body_like
^content_by_lua\(nginx.conf:\d+\):\d+: bad argument #2 to 'publish' \(string expected, got table\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #3 to 'request' \(table expected, got number\)
content_by_lua\(nginx.conf:\d+\):\d+: bad argument #3 to 'subscribe' \(table expected, got number\)
--- no_error_log
[error]



=== TEST 15: small and large payloads (large ones go by reference) and control frames keep their order
--- config
    location = /t {
        content_by_lua_block {
            local conn = t019.conn()
            t019.seen = {}
            ngx.shared.t019:set("cb", 0)
            local sizes = { 10, 600, 5000, 1, 511, 512, 70000 }
            local want = {}
            for round = 1, 3 do
                for i, n in ipairs(sizes) do
                    local p = string.rep(string.char(64 + i), n) .. round
                    want[#want + 1] = p
                    assert(conn:publish("t019.cb", p))
                    if i == 3 then
                        -- a SUB/UNSUB among the messages
                        local sub = assert(conn:subscribe("t019.between"))
                        sub:unsubscribe()
                    end
                end
            end
            assert(conn:flush())
            for _ = 1, 100 do
                if ngx.shared.t019:get("cb") >= #want then break end
                ngx.sleep(0.02)
            end
            local same = #t019.seen == #want
            for i = 1, #want do
                if t019.seen[i] ~= want[i] then same = false break end
            end
            ngx.say("received in order, intact: ", same, " (", #t019.seen, ")")
            ngx.say("pending after: ", conn:stats().pending_bytes)
        }
    }
--- response_body
received in order, intact: true (21)
pending after: 0
--- no_error_log
[error]
