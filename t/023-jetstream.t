# vim:set ft= ts=4 sw=4 et:
# JetStream against a nats-server of the suite's own with JetStream on (a
# temporary store directory): streams (add, info, update, names, purge,
# delete), publish with acknowledgement (deduplication, expectations),
# get_msg, pull consumers (fetch, ack, nak with redelivery, ack_wait
# redelivery, term, in_progress), the API's errors and bad names, on
# per-request objects and shared connections, and a server without
# JetStream.

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'js', conf => NatsServer::js_conf());
$ENV{TEST_NGINX_JS_PORT} = $js->port;

# a JetStream server with file storage that the handlers stop and start
my ($restart_port, $ctl_port) = NatsServer->controlled(
    name => 'js-restart', conf => NatsServer::js_conf(memory => 0));
$ENV{TEST_NGINX_RESTART_PORT} = $restart_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t023 = {}
        -- a JetStream object on a per-request connection
        function t023.js(port)
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", port or $TEST_NGINX_JS_PORT))
            return assert(n:jetstream()), n
        end
        -- runs the libnats peer (JetStream commands), its output lines
        function t023.peer(...)
            local cmd = "$TEST_NGINX_NATS_PEER " .. table.concat({ ... }, " ")
            local f = assert(io.popen(cmd .. " 2>&1"))
            local out = {}
            for line in f:lines() do out[#out + 1] = line end
            f:close()
            return out
        end
        -- ctl("stop" | "start"): drives the control process
        function t023.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end
        -- a fresh stream named name on subjects name.>
        function t023.stream(js, name, extra)
            js:delete_stream(name)
            local cfg = { name = name, subjects = { name .. ".>" },
                          storage = "memory" }
            for k, v in pairs(extra or {}) do cfg[k] = v end
            return assert(js:add_stream(cfg))
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("js", { port = $TEST_NGINX_JS_PORT }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: streams: add, info, update, names, purge, delete, and their errors
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            local info = t023.stream(js, "ORDERS", { max_msgs = 100 })
            ngx.say("created: ", info.config.name, " ", info.config.max_msgs,
                    " ", info.state.messages)
            for i = 1, 5 do
                assert(js:publish("ORDERS.new", "o" .. i))
            end
            info = assert(js:stream_info("ORDERS"))
            ngx.say("messages: ", info.state.messages)
            info = assert(js:update_stream({ name = "ORDERS",
                subjects = { "ORDERS.>" }, storage = "memory",
                max_msgs = 3 }))
            ngx.say("updated: max_msgs ", info.config.max_msgs, ", now ",
                    info.state.messages)
            local names = assert(js:stream_names())
            local found = false
            for _, s in ipairs(names) do found = found or s == "ORDERS" end
            ngx.say("in names: ", found)
            names = assert(js:stream_names({ subject = "ORDERS.new" }))
            ngx.say("by subject: ", table.concat(names, ","))
            for i = 1, 4 do
                assert(js:publish("ORDERS.keep", "k" .. i))
            end
            ngx.say("purge a subject, keep 1: ",
                    js:purge_stream("ORDERS", { subject = "ORDERS.keep", keep = 1 }))
            ngx.say("left of it: ", js:get_msg("ORDERS", { last_by_subj = "ORDERS.keep" }).payload)
            ngx.say("purge: ", js:purge_stream("ORDERS"))
            ngx.say("after purge: ", js:stream_info("ORDERS").state.messages)
            ngx.say("delete: ", js:delete_stream("ORDERS"))
            ngx.say("info: ", js:stream_info("ORDERS"))
            ngx.say("delete again: ", js:delete_stream("ORDERS"))
            ngx.say("bad name: ", js:add_stream({ name = "a.b" }))
            ngx.say("bad name: ", js:stream_info("a b"))
            ngx.say("bad name: ", js:stream_info("x>"))
            n:close()
        }
    }
--- response_body
created: ORDERS 100 0
messages: 5
updated: max_msgs 3, now 3
in names: true
by subject: ORDERS
purge a subject, keep 1: true2
left of it: k4
purge: true1
after purge: 0
delete: true
info: nilstream not found10059
delete again: nilstream not found10059
bad name: nilinvalid stream name: a.b
bad name: nilinvalid stream name: a b
bad name: nilinvalid stream name: x>
--- no_error_log
[error]



=== TEST 2: publish with acknowledgement: seq, msg_id deduplication, expectations, no stream, get_msg
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            t023.stream(js, "EV", { duplicate_window = 60 * 1e9 })
            local ack = assert(js:publish("EV.a", "one", { msg_id = "id-1" }))
            ngx.say("ack: ", ack.stream, " ", ack.seq, " ", tostring(ack.duplicate))
            ack = assert(js:publish("EV.a", "one again", { msg_id = "id-1" }))
            ngx.say("dup: ", ack.seq, " ", tostring(ack.duplicate))
            ack = assert(js:publish("EV.b", "two", { headers = { ["X-K"] = "v" } }))
            ngx.say("seq: ", ack.seq)
            ngx.say("expected last seq 2: ",
                    js:publish("EV.a", "x", { expected_last_seq = 2 }).seq)
            ngx.say("wrong last seq: ", js:publish("EV.a", "x", { expected_last_seq = 1 }))
            ngx.say("wrong stream: ", js:publish("EV.a", "x", { expected_stream = "NOPE" }))
            ngx.say("last subject seq: ",
                    js:publish("EV.b", "y", { expected_last_subject_seq = 2 }).seq)
            ngx.say("no stream: ", js:publish("nostream.x", "z"))
            local m = assert(js:get_msg("EV", { seq = 2 }))
            ngx.say("get seq 2: ", m.subject, " ", m.payload, " ", m.headers["X-K"], " ", type(m.time))
            m = assert(js:get_msg("EV", { last_by_subj = "EV.a" }))
            ngx.say("last EV.a: ", m.seq, " ", m.payload)
            ngx.say("missing: ", js:get_msg("EV", { seq = 99 }))
            n:close()
        }
    }
--- response_body
ack: EV 1 nil
dup: 1 true
seq: 2
expected last seq 2: 3
wrong last seq: nilwrong last sequence: 310071
wrong stream: nilexpected stream does not match10060
last subject seq: 4
no stream: nilno responders
get seq 2: EV.b two v string
last EV.a: 3 x
missing: nilno message found10037
--- no_error_log
[error]



=== TEST 3: pull consumers: fetch in batches with metadata, ack, an empty fetch, nak redelivers, term stops it
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            t023.stream(js, "WQ")
            for i = 1, 7 do
                assert(js:publish("WQ.job", "job" .. i))
            end
            local info = assert(js:add_consumer("WQ", {
                durable_name = "workers", ack_policy = "explicit",
                ack_wait = 30 * 1e9,
            }))
            ngx.say("consumer: ", info.name, " pending ", info.num_pending)
            local msgs = assert(js:fetch("WQ", "workers", { batch = 5, expires = 2000 }))
            local got = {}
            for _, m in ipairs(msgs) do
                got[#got + 1] = m.payload
                assert(m:ack())
            end
            ngx.say("batch 1: ", table.concat(got, " "))
            local md = msgs[1].metadata
            ngx.say("metadata: ", md.stream, " ", md.consumer, " ",
                    md.stream_seq, " ", md.consumer_seq, " ",
                    md.num_delivered, " ", md.num_pending, " ",
                    md.timestamp > 1e18)
            msgs = assert(js:fetch("WQ", "workers", { batch = 5, expires = 1000 }))
            ngx.say("batch 2: ", #msgs, " ", msgs[1].payload, " ", msgs[2].payload)
            assert(msgs[1]:nak())
            assert(msgs[2]:term())
            ngx.say("ack twice: ", msgs[2]:ack())
            local again = assert(js:fetch("WQ", "workers", { batch = 5, expires = 1000 }))
            ngx.say("redelivered: ", #again, " ", again[1].payload, " delivered ",
                    again[1].metadata.num_delivered)
            assert(again[1]:ack_sync())
            ngx.update_time()
            local t0 = ngx.now()
            local none = assert(js:fetch("WQ", "workers", { batch = 5, expires = 500 }))
            ngx.update_time()
            ngx.say("empty: ", #none, " after about the expiry: ",
                    ngx.now() - t0 >= 0.4 and ngx.now() - t0 < 2)
            none = assert(js:fetch("WQ", "workers", { batch = 5, no_wait = true }))
            ngx.say("no_wait: ", #none)
            info = assert(js:consumer_info("WQ", "workers"))
            ngx.say("ack floor: ", info.ack_floor.stream_seq, " pending ", info.num_pending)
            ngx.say("unknown consumer: ", js:consumer_info("WQ", "nobody"))
            ngx.say("fetch unknown: ", js:fetch("WQ", "nobody", { batch = 1, expires = 500 }))
            ngx.say("delete: ", js:delete_consumer("WQ", "workers"))
            ngx.say("bad consumer name: ", js:add_consumer("WQ", { durable_name = "a.b" }))
            n:close()
        }
    }
--- response_body
consumer: workers pending 7
batch 1: job1 job2 job3 job4 job5
metadata: WQ workers 1 1 1 6 true
batch 2: 2 job6 job7
ack twice: nilalready acknowledged
redelivered: 1 job6 delivered 2
empty: 0 after about the expiry: true
no_wait: 0
ack floor: 7 pending 0
unknown consumer: nilconsumer not found10014
fetch unknown: nilconsumer not found10014
delete: true
bad consumer name: nilinvalid consumer name: a.b
--- no_error_log
[alert]
aborted



=== TEST 4: ack_wait: an unacknowledged message comes again; in_progress holds it off
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            t023.stream(js, "AW")
            assert(js:publish("AW.x", "late"))
            assert(js:add_consumer("AW", { durable_name = "c",
                ack_policy = "explicit", ack_wait = 1e9 }))
            local m = assert(js:fetch("AW", "c", { batch = 1 }))[1]
            ngx.say("first: ", m.payload, " ", m.metadata.num_delivered)
            ngx.sleep(0.6)
            assert(m:in_progress())
            ngx.sleep(0.6)
            local none = assert(js:fetch("AW", "c", { batch = 1, no_wait = true }))
            ngx.say("held off by in_progress: ", #none)
            local again = assert(js:fetch("AW", "c", { batch = 1, expires = 3000 }))
            ngx.say("again: ", again[1].payload, " ", again[1].metadata.num_delivered)
            assert(again[1]:ack())
            n:close()
        }
    }
--- response_body
first: late 1
held off by in_progress: 0
again: late 2
--- no_error_log
[error]



=== TEST 5: the same through a shared connection: publish, fetch, ack
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("js")
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local js = assert(conn:jetstream({ timeout = 3000 }))
            t023.stream(js, "SH")
            for i = 1, 3 do
                local ack = assert(js:publish("SH.e", "s" .. i, { msg_id = "m" .. i }))
                ngx.say("ack ", ack.seq)
            end
            assert(js:add_consumer("SH", { durable_name = "d", ack_policy = "explicit" }))
            local msgs = assert(js:fetch("SH", "d", { batch = 10, expires = 500 }))
            local got = {}
            for _, m in ipairs(msgs) do
                got[#got + 1] = m.payload
                assert(m:ack())
            end
            ngx.say("fetched: ", table.concat(got, " "))
            ngx.say("subscriptions back to the inbox: ", conn:stats().subscriptions)
        }
    }
--- response_body
ack 1
ack 2
ack 3
fetched: s1 s2 s3
subscriptions back to the inbox: 1
--- no_error_log
[error]



=== TEST 6: a server without JetStream: a clear error
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js($TEST_NGINX_NATS_PORT)
            ngx.say(js:stream_info("X"))
            ngx.say(js:add_stream({ name = "X", subjects = { "x.>" } }))
            n:close()
        }
    }
--- response_body
niljetstream not enabled
niljetstream not enabled
--- no_error_log
[error]



=== TEST 7: large durations reach the server as integers
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            local year = 365 * 24 * 3600 * 1e9
            local info = t023.stream(js, "LONG", { max_age = year })
            ngx.say("max_age: ", string.format("%.0f", info.config.max_age))
            js:delete_stream("LONG")
            n:close()
        }
    }
--- response_body
max_age: 31536000000000000
--- no_error_log
[error]



=== TEST 8: interop with libnats' JetStream API: libnats fetches what js:publish stored, js:fetch reads what libnats published
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js()
            t023.stream(js, "IOP")
            for i = 1, 3 do
                assert(js:publish("IOP.lua", "from-lua " .. i))
            end
            assert(js:add_consumer("IOP", { durable_name = "c",
                ack_policy = "explicit", filter_subject = "IOP.lua" }))
            local out = t023.peer("jsfetch", "nats://127.0.0.1:$TEST_NGINX_JS_PORT",
                                  "IOP", "c", 3)
            ngx.say("libnats fetched: ", table.concat(out, ", "))
            ngx.say("acked by libnats: ",
                    js:consumer_info("IOP", "c").ack_floor.stream_seq)
            out = t023.peer("jspub", "nats://127.0.0.1:$TEST_NGINX_JS_PORT",
                            "IOP.c", "from-c", 3)
            ngx.say("libnats published: ", out[1])
            assert(js:add_consumer("IOP", { durable_name = "l",
                ack_policy = "explicit", filter_subject = "IOP.c" }))
            local msgs = assert(js:fetch("IOP", "l", { batch = 3 }))
            local got = {}
            for _, m in ipairs(msgs) do
                got[#got + 1] = m.payload
                assert(m:ack())
            end
            ngx.say("js:fetch read: ", table.concat(got, ", "))
            n:close()
        }
    }
--- response_body
libnats fetched: from-lua 1, from-lua 2, from-lua 3
acked by libnats: 3
libnats published: IOP 6
js:fetch read: from-c 1, from-c 2, from-c 3
--- no_error_log
[error]



=== TEST 9: a server restart between publish and fetch loses nothing (file storage)
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t023.js($TEST_NGINX_RESTART_PORT)
            js:delete_stream("DUR")
            assert(js:add_stream({ name = "DUR", subjects = { "DUR.>" },
                                   storage = "file" }))
            assert(js:add_consumer("DUR", { durable_name = "d",
                                            ack_policy = "explicit" }))
            for i = 1, 100 do
                assert(js:publish("DUR.x", "m" .. i))
            end
            n:close()
            ngx.say(t023.ctl("stop"))
            ngx.say(t023.ctl("start"))
            js, n = t023.js($TEST_NGINX_RESTART_PORT)
            local info
            for _ = 1, 50 do
                info = js:stream_info("DUR")
                if info then break end
                ngx.sleep(0.1)
            end
            ngx.say("stored after the restart: ", info.state.messages)
            local got, last = 0, nil
            while got < 100 do
                local msgs = assert(js:fetch("DUR", "d", { batch = 50 }))
                if #msgs == 0 then break end
                for _, m in ipairs(msgs) do
                    got = got + 1
                    last = m.payload
                    assert(m:ack())
                end
            end
            ngx.say("fetched: ", got, ", last ", last)
            n:close()
        }
    }
--- response_body
ok stop
ok start
stored after the restart: 100
fetched: 100, last m100
--- no_error_log
[error]
