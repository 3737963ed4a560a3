# vim:set ft= ts=4 sw=4 et:
# Ordered consumers (js:ordered_consumer) against nats-servers of the
# suite's own with JetStream on: every message once and in order from
# each start point, on both kinds of connection; a consumer deleted by
# another client in the middle, and a JetStream server restart in the
# middle (no gap, no repeat); the consumers of finished requests, pooled
# and closed per-request objects removed at the server; bad options.

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'ordered',
    conf => NatsServer::js_conf(file => '64MB'));
$ENV{TEST_NGINX_JS_PORT} = $js->port;

# a JetStream server with file storage that the handlers stop and start
my ($restart_port, $ctl_port) = NatsServer->controlled(
    name => 'ordered-restart',
        conf => NatsServer::js_conf(memory => 0, file => '64MB'));
$ENV{TEST_NGINX_RESTART_PORT} = $restart_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 40) unless defined $block->timeout;
    $block->set_value("request", "GET /t") unless defined $block->request;
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t030 = {}
        function t030.js(port)
            local n = assert(require("resty.nats"):new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", port or $TEST_NGINX_JS_PORT))
            return assert(n:jetstream()), n
        end
        function t030.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end
        -- waits up to 10 s for f() to be true
        function t030.wait_for(f)
            for _ = 1, 200 do
                if f() then return true end
                ngx.sleep(0.05)
            end
            return false
        end
        -- reads oc to its end (max messages, or nothing for wait ms, 300
        -- by default): "seq:payload ..."
        function t030.drain(oc, max, wait)
            local got = {}
            while not max or #got < max do
                local m, err = oc:next(wait or 300)
                if not m then
                    if err ~= "timeout" then got[#got + 1] = "ERR " .. err end
                    break
                end
                got[#got + 1] = m.metadata.sequence.stream .. ":" .. m.payload
            end
            return table.concat(got, " ")
        end
        -- seqs a..b of a drained "seq:payload" list in order, each once?
        function t030.contiguous(list, a, b)
            local want = a
            for seq in list:gmatch("(%d+):") do
                if tonumber(seq) ~= want then
                    return "at " .. want .. ": " .. seq
                end
                want = want + 1
            end
            return want == b + 1 or "ended at " .. (want - 1)
        end
        function t030.consumers(js, stream)
            local info = js:stream_info(stream)
            return info and info.state.consumer_count
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("oc", { port = $TEST_NGINX_JS_PORT }))
        assert(nats.shared("ocr", { port = $TEST_NGINX_RESTART_PORT,
                                    reconnect_wait = 200 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: every start point, on both kinds of connection: each message once, in stream order
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t030.js()
            js:delete_stream("OC")
            assert(js:add_stream({ name = "OC", subjects = { "oc.>" }, storage = "memory" }))
            for i = 1, 6 do
                assert(js:publish(i % 2 == 1 and "oc.a" or "oc.b", "m" .. i,
                                  { headers = { ["X-I"] = tostring(i) } }))
            end
            local t4 = js:get_msg("OC", { seq = 4 }).time
            local conn = require("resty.nats").shared("oc")
            local sjs = assert(conn:jetstream())
            for _, side in ipairs({ { "per-request", js }, { "shared", sjs } }) do
                local j = side[2]
                local function show(what, opts)
                    local oc = assert(j:ordered_consumer("OC", opts))
                    ngx.say(side[1], " ", what, ": ", t030.drain(oc))
                    ngx.say(side[1], " ", what, " close: ", oc:close(), " again: ", oc:close())
                end
                show("all", nil)
                show("last", { deliver_policy = "last" })
                show("by_start_sequence 3", { deliver_policy = "by_start_sequence", opt_start_seq = 3 })
                show("by_start_time", { deliver_policy = "by_start_time", opt_start_time = t4 })
                show("last_per_subject", { deliver_policy = "last_per_subject", filter_subject = "oc.>" })
                show("filter oc.a", { filter_subject = "oc.a" })
                -- new: only what comes after it was made
                local oc = assert(j:ordered_consumer("OC", { deliver_policy = "new" }))
                local m, err = oc:next(200)
                ngx.say(side[1], " new, before: ", m, " ", err)
                assert(js:publish("oc.c", "later"))
                m = assert(oc:next(2000))
                local md = m.metadata
                ngx.say(side[1], " new: ", m.subject, " ", m.payload, " ", md.stream, " ",
                        md.sequence.stream, " ", md.sequence.consumer, " ",
                        md.num_pending, " ", type(md.timestamp), " ", type(md.consumer))
                oc:close()
                -- headers_only: the headers and the size, no payload
                oc = assert(j:ordered_consumer("OC", { headers_only = true,
                                                       deliver_policy = "by_start_sequence",
                                                       opt_start_seq = 2 }))
                m = assert(oc:next(2000))
                ngx.say(side[1], " headers_only: '", m.payload, "' ", m.headers["X-I"], " ",
                        m.headers["Nats-Msg-Size"])
                oc:close()
                ngx.say(side[1], " next after close: ", oc:next(10))
            end
            -- (the deletes are sent without waiting for their answers)
            ngx.say("consumers all gone: ",
                    t030.wait_for(function() return t030.consumers(js, "OC") == 0 end))
            js:delete_stream("OC")
            n:close()
        }
    }
--- response_body
per-request all: 1:m1 2:m2 3:m3 4:m4 5:m5 6:m6
per-request all close: true again: nilclosed
per-request last: 6:m6
per-request last close: true again: nilclosed
per-request by_start_sequence 3: 3:m3 4:m4 5:m5 6:m6
per-request by_start_sequence 3 close: true again: nilclosed
per-request by_start_time: 4:m4 5:m5 6:m6
per-request by_start_time close: true again: nilclosed
per-request last_per_subject: 5:m5 6:m6
per-request last_per_subject close: true again: nilclosed
per-request filter oc.a: 1:m1 3:m3 5:m5
per-request filter oc.a close: true again: nilclosed
per-request new, before: nil timeout
per-request new: oc.c later OC 7 1 0 number string
per-request headers_only: '' 2 2
per-request next after close: nilclosed
shared all: 1:m1 2:m2 3:m3 4:m4 5:m5 6:m6 7:later
shared all close: true again: nilclosed
shared last: 7:later
shared last close: true again: nilclosed
shared by_start_sequence 3: 3:m3 4:m4 5:m5 6:m6 7:later
shared by_start_sequence 3 close: true again: nilclosed
shared by_start_time: 4:m4 5:m5 6:m6 7:later
shared by_start_time close: true again: nilclosed
shared last_per_subject: 5:m5 6:m6 7:later
shared last_per_subject close: true again: nilclosed
shared filter oc.a: 1:m1 3:m3 5:m5
shared filter oc.a close: true again: nilclosed
shared new, before: nil timeout
shared new: oc.c later OC 8 1 0 number string
shared headers_only: '' 2 2
shared next after close: nilclosed
consumers all gone: true



=== TEST 2: a consumer deleted by another client in the middle: made again from the next sequence, no gap, no repeat (both kinds of connection)
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t030.js()
            js:delete_stream("OD")
            assert(js:add_stream({ name = "OD", subjects = { "od.>" }, storage = "memory" }))
            -- (4 KiB each: more than a push consumer's flow control
            -- lets out at once, so the delete comes in the middle)
            local pad = string.rep("p", 4096)
            for i = 1, 3000 do
                assert(js:publish("od.x", "v" .. i .. pad))
            end
            local conn = require("resty.nats").shared("oc")
            for _, side in ipairs({ { "per-request", js }, { "shared", assert(conn:jetstream()) } }) do
                -- (its pull requests are answered in full before the
                -- delete: nothing tells it but the missing heartbeats)
                local oc = assert(side[2]:ordered_consumer("OD", { heartbeat = 500 }))
                local first = t030.drain(oc, 100)
                local st = oc:stats()
                local other, on = t030.js()
                ngx.say(side[1], " deleted by another client: ", other:delete_consumer("OD", st.consumer))
                on:close()
                local rest = t030.drain(oc, 2900, 5000)
                ngx.say(side[1], " in order, once: ", t030.contiguous(first .. " " .. rest, 1, 3000))
                ngx.say(side[1], " then: ", oc:next(100))
                local st2 = oc:stats()
                ngx.say(side[1], " made again: ", st2.restarts, " ", st2.consumer ~= st.consumer,
                        " last seq ", st2.stream_seq)
                oc:close()
            end
            js:delete_stream("OD")
            n:close()
        }
    }
--- response_body
per-request deleted by another client: true
per-request in order, once: true
per-request then: niltimeout
per-request made again: 1 true last seq 3000
shared deleted by another client: true
shared in order, once: true
shared then: niltimeout
shared made again: 1 true last seq 3000
--- no_error_log
stack traceback



=== TEST 3: a JetStream server restart in the middle (shared connection, file storage): the consumer is made again after the reconnect, no gap, no repeat
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("ocr")
            t030.wait_for(function() return conn:stats().state == "connected" end)
            local js = assert(conn:jetstream())
            js:delete_stream("OR")
            assert(js:add_stream({ name = "OR", subjects = { "or.>" }, storage = "file" }))
            for i = 1, 2000 do
                assert(js:publish("or.x", "v" .. i))
            end
            local oc = assert(js:ordered_consumer("OR"))
            local first = t030.drain(oc, 700)
            ngx.say(t030.ctl("stop"))
            ngx.say(t030.ctl("start"))
            t030.wait_for(function()
                local st = conn:stats()
                return st.state == "connected" and st.reconnects >= 1
            end)
            -- at once: JetStream is usually not back yet, the remake fails
            -- (an error for this call), and the next calls try again
            local early = t030.drain(oc, 1, 100)
            if early:match("^ERR ") then
                early = ""
            end
            first = first .. " " .. early
            -- more while it is made again (JetStream needs a moment)
            local n = 2000
            t030.wait_for(function()
                if js:publish("or.x", "v" .. (n + 1)) then n = n + 1 end
                return n >= 2100
            end)
            local rest, parts = "", {}
            -- (oc:next() keeps retrying while JetStream comes back)
            for _ = 1, 40 do
                local got = t030.drain(oc)
                if got ~= "" then parts[#parts + 1] = got end
                rest = table.concat(parts, " ")
                if rest:match(" 2100:v2100$") or rest:match("^2100:v2100$") then break end
            end
            ngx.say("in order, once: ", t030.contiguous(first .. " " .. rest, 1, 2100))
            ngx.say("made again: ", oc:stats().restarts >= 1)
            oc:close()
            js:delete_stream("OR")
        }
    }
--- response_body
ok stop
ok start
in order, once: true
made again: true
--- no_error_log
stack traceback



=== TEST 4: ordered consumers end with what made them: the request (shared connection), the pool or close (per-request object); their consumers go at the server
--- config
    location = /make {
        content_by_lua_block {
            local conn = require("resty.nats").shared("oc")
            local js = assert(conn:jetstream())
            local oc = assert(js:ordered_consumer("OE"))
            ngx.say("made: ", oc:next(1000).payload)
            -- the request ends without oc:close()
        }
    }
    location = /t {
        content_by_lua_block {
            local js, n = t030.js()
            js:delete_stream("OE")
            assert(js:add_stream({ name = "OE", subjects = { "oe.>" }, storage = "memory" }))
            assert(js:publish("oe.x", "hello"))
            -- /make as a request of its own (a subrequest would end with
            -- this one: they share its pool)
            local sock = ngx.socket.tcp()
            assert(sock:connect("127.0.0.1", $TEST_NGINX_SERVER_PORT))
            assert(sock:send("GET /make HTTP/1.0\r\nHost: localhost\r\n\r\n"))
            local res = assert(sock:receive("*a"))
            sock:close()
            ngx.print("shared, ", res:match("\r\n\r\n(.*)$"))
            ngx.say("consumers while... after the request: ",
                    t030.wait_for(function() return t030.consumers(js, "OE") == 0 end))

            -- a per-request object back to the pool
            local js2, n2 = t030.js()
            local oc = assert(js2:ordered_consumer("OE"))
            oc:next(1000)
            ngx.say("per-request, consumers: ", t030.consumers(js, "OE"))
            ngx.say("set_keepalive: ", n2:set_keepalive())
            ngx.say("after set_keepalive: ",
                    t030.wait_for(function() return t030.consumers(js, "OE") == 0 end))
            ngx.say("next: ", oc:next(10))
            -- and one closed
            local js3, n3 = t030.js()
            oc = assert(js3:ordered_consumer("OE"))
            oc:next(1000)
            ngx.say("per-request, consumers: ", t030.consumers(js, "OE"))
            n3:close()
            ngx.say("after close: ",
                    t030.wait_for(function() return t030.consumers(js, "OE") == 0 end))
            js:delete_stream("OE")
            n:close()
        }
    }
--- response_body
shared, made: hello
consumers while... after the request: true
per-request, consumers: 1
set_keepalive: 1
after set_keepalive: true
next: nilclosed
per-request, consumers: 1
after close: true
--- no_error_log
[error]



=== TEST 5: bad arguments are programmer errors; a missing stream is an error
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t030.js()
            for _, opts in ipairs({
                "x", { deliver_policy = "oldest" },
                { deliver_policy = "by_start_sequence" },
                { deliver_policy = "by_start_sequence", opt_start_seq = 0 },
                { opt_start_seq = 3 }, { deliver_policy = "by_start_time" },
                { opt_start_time = "2020-01-01T00:00:00Z" },
                { filter_subject = "a b" }, { heartbeat = 10 },
            }) do
                local ok, err = pcall(js.ordered_consumer, js, "S", opts)
                ngx.say(ok, " ", (err:gsub("^.-: ", "")))
            end
            ngx.say("bad stream: ", js:ordered_consumer("a.b"))
            ngx.say("missing stream: ", js:ordered_consumer("NOPE"))
            n:close()
        }
    }
--- response_body
false bad argument #2 to 'ordered_consumer' (table expected, got string)
false bad 'deliver_policy' option to 'ordered_consumer' (all, last, new, by_start_sequence, by_start_time or last_per_subject expected)
false bad 'opt_start_seq' option to 'ordered_consumer' (a sequence number >= 1 expected)
false bad 'opt_start_seq' option to 'ordered_consumer' (a sequence number >= 1 expected)
false bad 'opt_start_seq' option to 'ordered_consumer' (only with by_start_sequence)
false bad 'opt_start_time' option to 'ordered_consumer' (an RFC 3339 time expected)
false bad 'opt_start_time' option to 'ordered_consumer' (only with by_start_time)
false bad 'filter_subject' option to 'ordered_consumer' (a subject expected)
false bad 'heartbeat' option to 'ordered_consumer' (a number of ms >= 100 expected)
bad stream: nilinvalid stream name: a.b
missing stream: nilstream not found10059



=== TEST 6: a message with Nats-Rollup stored in the middle of a read (nats-server 2.9 then moves the consumer past what it had not delivered): made again, no gap, no repeat (both kinds of connection)
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t030.js()
            local conn = require("resty.nats").shared("oc")
            for _, side in ipairs({ { "per-request", js }, { "shared", assert(conn:jetstream()) } }) do
                js:delete_stream("OU")
                assert(js:add_stream({ name = "OU", subjects = { "ou.>" }, storage = "memory",
                                       allow_rollup_hdrs = true }))
                local pad = string.rep("p", 4096)
                for i = 1, 3000 do
                    assert(js:publish("ou.x", "v" .. i .. pad))
                end
                local oc = assert(side[2]:ordered_consumer("OU", { filter_subject = "ou.>" }))
                local first = t030.drain(oc, 100)
                local other, on = t030.js()
                assert(other:publish("ou.y", "v3001", { headers = { ["Nats-Rollup"] = "sub" } }))
                on:close()
                local rest = t030.drain(oc, 2901, 5000)
                ngx.say(side[1], " in order, once: ", t030.contiguous(first .. " " .. rest, 1, 3001))
                ngx.say(side[1], " made again: ", oc:stats().restarts >= 1)
                oc:close()
            end
            js:delete_stream("OU")
            n:close()
        }
    }
--- response_body
per-request in order, once: true
per-request made again: true
shared in order, once: true
shared made again: true
--- no_error_log
stack traceback
