# vim:set ft= ts=4 sw=4 et:
# Continuous pull (js:consume) on shared connections against nats-servers
# of the suite's own with JetStream on: messages to the callback in
# order with acks, pulls kept outstanding; 10,000 messages with acks
# across a server restart (every message processed, the consumer left
# with nothing pending); stop; bad arguments; per-request objects are
# refused.

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'consume',
    conf => NatsServer::js_conf(file => '64MB'));
$ENV{TEST_NGINX_JS_PORT} = $js->port;

my ($restart_port, $ctl_port) = NatsServer->controlled(
    name => 'consume-restart',
        conf => NatsServer::js_conf(memory => 0, file => '64MB'));
$ENV{TEST_NGINX_RESTART_PORT} = $restart_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 60);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t031 = {}
        function t031.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end
        -- waits up to s seconds (10) for f() to be true
        function t031.wait_for(f, s)
            for _ = 1, (s or 10) * 20 do
                if f() then return true end
                ngx.sleep(0.05)
            end
            return false
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("c", { port = $TEST_NGINX_JS_PORT }))
        assert(nats.shared("cr", { port = $TEST_NGINX_RESTART_PORT,
                                   reconnect_wait = 200 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: messages to the callback in order, acked; more published later come too; stop ends it
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("c")
            local js = assert(conn:jetstream())
            js:delete_stream("CS")
            assert(js:add_stream({ name = "CS", subjects = { "cs.>" }, storage = "memory" }))
            assert(js:add_consumer("CS", { durable_name = "work", ack_policy = "explicit" }))
            for i = 1, 1200 do assert(js:publish("cs.x", tostring(i))) end
            local got, in_order, last = 0, true, 0
            local c = assert(js:consume("CS", "work", function(msg)
                local seq = msg.metadata.stream_seq
                if seq ~= last + 1 or msg.payload ~= tostring(seq) then in_order = false end
                last = seq
                got = got + 1
                assert(msg:ack())
            end, { max_messages = 100, idle_heartbeat = 1000 }))
            ngx.say("first 1200: ", t031.wait_for(function() return got == 1200 end))
            for i = 1201, 1300 do assert(js:publish("cs.x", tostring(i))) end
            ngx.say("100 more: ", t031.wait_for(function() return got == 1300 end))
            ngx.say("in order: ", in_order, ", delivered ", c.delivered)
            local ok = t031.wait_for(function()
                local info = js:consumer_info("CS", "work")
                return info and info.num_ack_pending == 0 and info.num_pending == 0
            end)
            ngx.say("all acked: ", ok)
            ngx.say("stop: ", c:stop(), " again: ", c:stop())
            assert(js:publish("cs.x", "after"))
            ngx.sleep(0.5)
            ngx.say("after stop: ", got)
            js:delete_stream("CS")
        }
    }
--- response_body
first 1200: true
100 more: true
in order: true, delivered 1300
all acked: true
stop: true again: nilstopped
after stop: 1300
--- no_error_log
[error]



=== TEST 2: 10,000 messages with acks across a server restart: every one processed, nothing left pending
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("cr")
            t031.wait_for(function() return conn:stats().state == "connected" end)
            local js = assert(conn:jetstream())
            js:delete_stream("CR")
            assert(js:add_stream({ name = "CR", subjects = { "cr.>" }, storage = "file" }))
            assert(js:add_consumer("CR", { durable_name = "work", ack_policy = "explicit",
                                           ack_wait = 2e9 }))
            local n = 0
            for i = 1, 10000 do
                if js:publish("cr.x", tostring(i)) then n = n + 1 end
            end
            ngx.say("published: ", n)
            local seen, count, redelivered, stopped, stopped_at = {}, 0, 0, nil, nil
            local c = assert(js:consume("CR", "work", function(msg)
                local seq = msg.metadata.stream_seq
                if not seen[seq] then
                    seen[seq] = true
                    count = count + 1
                end
                if msg.metadata.num_delivered > 1 then redelivered = redelivered + 1 end
                msg:ack()
                if count == 3000 and not stopped then
                    -- the server goes away in the middle, from here
                    stopped = t031.ctl("stop")
                    stopped_at = count
                end
            end, { max_messages = 200, idle_heartbeat = 500 }))
            t031.wait_for(function() return stopped end)
            ngx.say(stopped, " at ", stopped_at)
            ngx.say(t031.ctl("start"))
            ngx.say("all processed: ", t031.wait_for(function() return count == 10000 end, 40))
            local info
            local done = t031.wait_for(function()
                info = js:consumer_info("CR", "work")
                return info and info.num_ack_pending == 0 and info.num_pending == 0
            end, 20)
            ngx.say("nothing pending: ", done)
            ngx.log(ngx.WARN, "t031: redelivered ", redelivered, ", restarts seen ",
                    conn:stats().reconnects)
            c:stop()
            js:delete_stream("CR")
        }
    }
--- response_body
published: 10000
ok stop at 3000
ok start
all processed: true
nothing pending: true
--- no_error_log
stack traceback
callback failed



=== TEST 3: bad arguments; an unknown consumer; a push consumer; a per-request object
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("c")
            local js = assert(conn:jetstream())
            js:delete_stream("CB")
            assert(js:add_stream({ name = "CB", subjects = { "cb.>" }, storage = "memory" }))
            assert(js:add_consumer("CB", { durable_name = "push", deliver_subject = "somewhere" }))
            local f = function() end
            for _, args in ipairs({
                { "CB", "x", "nope" }, { "CB", "x", f, "opts" },
                { "CB", "x", f, { max_messages = 0 } },
                { "CB", "x", f, { expires = 1000, idle_heartbeat = 1000 } },
            }) do
                local ok, err = pcall(js.consume, js, unpack(args))
                ngx.say(ok, " ", (err:gsub("^.-: ", "")))
            end
            ngx.say("bad name: ", js:consume("a.b", "x", f))
            ngx.say("unknown consumer: ", js:consume("CB", "nope", f))
            ngx.say("push consumer: ", js:consume("CB", "push", f))
            local n = require("resty.nats"):new()
            assert(n:connect("127.0.0.1", $TEST_NGINX_JS_PORT))
            ngx.say("per-request: ", n:jetstream():consume("CB", "push", f))
            n:close()
            js:delete_stream("CB")
        }
    }
--- response_body
false bad argument #3 to 'consume' (function expected, got string)
false bad argument #4 to 'consume' (table expected, got string)
false bad 'max_messages' option to 'consume' (a positive integer expected)
false bad 'idle_heartbeat' option to 'consume' (less than expires expected)
bad name: nilinvalid stream name: a.b
unknown consumer: nilconsumer not found10014
push consumer: nilnot a pull consumer: push
per-request: nilconsume needs a shared connection (nats.shared)
