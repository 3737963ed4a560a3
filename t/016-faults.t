# vim:set ft= ts=4 sw=4 et:
# Faults against a real nats-server of the suite's own, stopped, killed
# and restarted from inside the handlers through a small control process:
# killed during a wait, restarted while connections sit in the pool,
# stopped for two seconds under a steady request load, and a slow
# consumer cut off by the server. Nothing hangs, every failure is
# reported, no request gets another request's reply, and service resumes
# on its own when the server is back.

use lib 't/lib';
use TestNats;
use NatsServer;

# the server that comes and goes (stop/kill/start through ctl())
my ($nats_port, $ctl_port) = NatsServer->controlled(name => 'faulty');

# a server with a small per-client pending limit, for the slow consumer
my $slow = NatsServer->start(name => 'slow', conf => <<'CONF');
listen: 127.0.0.1:$port
max_pending: 262144
max_payload: 65536
write_deadline: "2s"
CONF

$ENV{TEST_NGINX_FAULT_PORT} = $nats_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;
$ENV{TEST_NGINX_SLOW_PORT} = $slow->port;
$ENV{TEST_NGINX_SLOW_LOG} = $slow->log_file;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("http_config", <<'CONF');
    lua_package_path "$TEST_NGINX_LUA_PACKAGE_PATH";
    init_by_lua_block {
        -- ctl("stop" | "kill" | "start"): drives the control process
        function ctl(cmd)
            local s = ngx.socket.tcp()
            s:settimeout(10000)
            assert(s:connect("127.0.0.1", $TEST_NGINX_CTL_PORT))
            assert(s:send(cmd .. "\n"))
            local line = assert(s:receive("*l"))
            s:close()
            return line
        end
    }
CONF
});

repeat_each(1);
plan tests => plan_tests();
no_long_string();
run_tests();

__DATA__

=== TEST 1: the server is killed during a wait: wait returns "closed" at once; a new connection works once it is back
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeouts(1000, 1000, 5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_FAULT_PORT))
            local got = 0
            assert(n:subscribe("f.kill", function() got = got + 1 end))
            assert(n:publish("f.kill", "before"))
            ngx.timer.at(0.3, function() ctl("kill") end)
            ngx.update_time()
            local t0 = ngx.now()
            local ok, err = n:wait(2)
            ngx.update_time()
            ngx.say("wait: ", ok, " ", err, ", got ", got)
            ngx.say("well before the 5 s timeout: ", ngx.now() - t0 < 3)
            ngx.say("publish: ", n:publish("f.kill", "x"))
            ngx.say("pool: ", n:set_keepalive())
            ngx.say("while down: ", nats:new():connect("127.0.0.1", $TEST_NGINX_FAULT_PORT))
            ngx.say(ctl("start"))
            local m = assert(nats:new())
            assert(m:connect("127.0.0.1", $TEST_NGINX_FAULT_PORT))
            assert(m:subscribe("f.kill", function(msg) ngx.say("after: ", msg.payload) end))
            assert(m:publish("f.kill", "back"))
            ngx.say("wait after: ", m:wait(1))
            m:close()
        }
    }
--- request
GET /t
--- response_body_like
wait: false (closed|connection reset by peer), got 1
well before the 5 s timeout: true
publish: falsenot connected
pool: nilclosed
while down: false(connection refused|connection reset by peer)
ok start
after: back
wait after: true
--- no_error_log
[alert]
exited on signal



=== TEST 2: the server restarts while connections sit in the pool: the next checkout gets a fresh, working connection
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local function round(tag)
                local n = assert(nats:new())
                n:set_timeouts(1000, 1000, 2000)
                local ok, err = n:connect("127.0.0.1", $TEST_NGINX_FAULT_PORT)
                if not ok then return "connect: " .. err end
                local reused = n:get_reused_times()
                local got
                local sid = assert(n:subscribe("f.pool." .. tag, function(m) got = m.payload end))
                ok, err = n:publish("f.pool." .. tag, tag)
                if ok then ok, err = n:wait(1) end
                n:unsubscribe(sid)
                local pooled = n:set_keepalive()
                return string.format("reused %d, got %s, err %s, pooled %s",
                                     reused, tostring(got), tostring(err), tostring(pooled))
            end
            ngx.say("1: ", round("a"))
            ngx.say("2: ", round("b"))
            ngx.say(ctl("stop"))
            ngx.say(ctl("start"))
            ngx.sleep(0.2)
            ngx.say("3: ", round("c"))
            ngx.say("4: ", round("d"))
        }
    }
--- request
GET /t
--- response_body
1: reused 0, got a, err nil, pooled 1
2: reused 1, got b, err nil, pooled 1
ok stop
ok start
3: reused 0, got c, err nil, pooled 1
4: reused 1, got d, err nil, pooled 1
--- no_error_log
[alert]
[error]
exited on signal



=== TEST 3: the server stops for two seconds under a steady request load: failures reported, no reply crosses, service resumes
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local port = $TEST_NGINX_FAULT_PORT
            local done = false

            -- the responder: reconnects on its own
            local function responder()
                while not done do
                    local r = nats:new()
                    r:set_timeouts(500, 500, 300)
                    if r:connect("127.0.0.1", port) then
                        r:subscribe("f.svc", function(m)
                            r:publish(m.reply_to, "re:" .. m.payload)
                        end)
                        while not done do
                            local ok, err = r:wait(1000000)
                            if not ok and err ~= "timeout" then break end
                        end
                        r:close()
                    else
                        ngx.sleep(0.05)
                    end
                end
            end
            local rt = ngx.thread.spawn(responder)
            ngx.sleep(0.3)

            ngx.update_time()
            local t0 = ngx.now()
            local stats = { ok = 0, failed = 0, unreported = 0, crossed = 0,
                            ok_before = 0, ok_after = 0, errs = {} }
            local function client(id)
                local i = 0
                while true do
                    ngx.update_time()
                    local t = ngx.now() - t0
                    if t > 6 then return end
                    i = i + 1
                    local payload = id .. ":" .. i
                    local n = nats:new()
                    n:set_timeouts(500, 500, 1000)
                    local ok, err = n:connect("127.0.0.1", port)
                    local msg
                    if ok then
                        msg, err = n:request("f.svc", payload, { timeout = 1000 })
                    end
                    if msg then
                        if msg.payload ~= "re:" .. payload then
                            stats.crossed = stats.crossed + 1
                        end
                        stats.ok = stats.ok + 1
                        if t < 1 then stats.ok_before = stats.ok_before + 1 end
                        if t > 5 then stats.ok_after = stats.ok_after + 1 end
                        n:set_keepalive()
                    else
                        stats.failed = stats.failed + 1
                        if type(err) ~= "string" or err == "" then
                            stats.unreported = stats.unreported + 1
                        else
                            stats.errs[err] = true
                        end
                        n:close()
                        ngx.sleep(0.02)
                    end
                end
            end
            local threads = {}
            for id = 1, 10 do threads[id] = ngx.thread.spawn(client, id) end
            ngx.timer.at(1.5, function()
                ctl("stop")
                ngx.sleep(2)
                ctl("start")
            end)
            for id = 1, 10 do ngx.thread.wait(threads[id]) end
            done = true
            ngx.thread.wait(rt)
            ngx.update_time()

            ngx.log(ngx.WARN, "load: ok ", stats.ok, " (", stats.ok_before, " before, ",
                    stats.ok_after, " after), failed ", stats.failed)
            ngx.say("requests answered before the outage: ", stats.ok_before > 10)
            ngx.say("requests failed during it: ", stats.failed > 0)
            ngx.say("answered after it: ", stats.ok_after > 10)
            ngx.say("failures without an error: ", stats.unreported)
            ngx.say("replies to another request: ", stats.crossed)
            local kinds = {}
            for e in pairs(stats.errs) do
                if not (e == "closed" or e == "timeout" or e == "no responders"
                        or e:find("connection refused", 1, true)
                        or e:find("connection reset", 1, true)
                        or e:find("broken pipe", 1, true)) then
                    kinds[#kinds + 1] = e
                end
            end
            ngx.say("unexpected errors: ", table.concat(kinds, "; "))
            ngx.say("finished in time: ", ngx.now() - t0 < 12)
        }
    }
--- request
GET /t
--- response_body
requests answered before the outage: true
requests failed during it: true
answered after it: true
failures without an error: 0
replies to another request: 0
unexpected errors: 
finished in time: true
--- no_error_log
[alert]
exited on signal



=== TEST 4: a subscriber that does not read is cut off by the server as a slow consumer: it gets what was sent, then an error; a new connection works
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local sub = assert(nats:new())
            sub:set_timeouts(1000, 1000, 3000)
            assert(sub:connect("127.0.0.1", $TEST_NGINX_SLOW_PORT))
            local got = 0
            assert(sub:subscribe("f.slow", function() got = got + 1 end))
            assert(sub:flush())

            local pub = assert(nats:new())
            assert(pub:connect("127.0.0.1", $TEST_NGINX_SLOW_PORT))
            pub:set_write_buffer(65536)
            local payload = string.rep("s", 1024)
            for i = 1, 20000 do
                assert(pub:publish("f.slow", payload))
            end
            assert(pub:flush(5000))
            pub:close()

            -- only now does the subscriber read
            local ok, err = sub:wait(20000)
            ngx.log(ngx.WARN, "slow consumer: got ", got, ", wait: ", err)
            ngx.say("wait: ", ok, " ", err)
            ngx.say("got some, not all: ", got > 0 and got < 20000)
            ngx.say("pool: ", sub:set_keepalive())

            local f = io.open("$TEST_NGINX_SLOW_LOG")
            local log = f:read("*a")
            f:close()
            ngx.say("server saw a slow consumer: ",
                    log:find("Slow Consumer", 1, true) ~= nil)

            local again = assert(nats:new())
            assert(again:connect("127.0.0.1", $TEST_NGINX_SLOW_PORT))
            ngx.say("new connection: ", again:flush())
            again:close()
        }
    }
--- request
GET /t
--- response_body_like
wait: false (closed|connection reset by peer|Slow Consumer)
got some, not all: true
pool: nilclosed
server saw a slow consumer: true
new connection: true
--- no_error_log
[alert]
exited on signal
