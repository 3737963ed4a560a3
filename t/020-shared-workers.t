# vim:set ft= ts=4 sw=4 et:
# The shared connection with a master and two workers: each worker has a
# connection of its own (the server sees two), and a reload (HUP) while
# publishing loses nothing: the old worker's connection drains what it
# queued before it exits (its server paused meanwhile, so that nothing can
# have arrived before the reload).

use lib 't/lib';
use TestNats;
use NatsServer;

my ($paused_port, $ctl_port) = NatsServer->controlled(name => 'paused');
$ENV{TEST_NGINX_PAUSED_PORT} = $paused_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

master_on();
workers(2);
repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t020 = {}

        -- the suite's connection, once connected
        function t020.conn()
            return require("t_shared").connected("w")
        end

        -- the server's connections named name
        function t020.connz(name)
            local z = assert(require("t_http").json(
                $TEST_NGINX_NATS_MONITOR_PORT, "/connz?limit=1024"))
            local n = 0
            for _, c in ipairs(z.connections or {}) do
                if c.name == name then n = n + 1 end
            end
            return n
        end

        -- through a connection of the request's own: the worker serving
        -- it may be an old one, whose shared connection is closing
        -- ctl("pause" | "resume" | ...): drives the control process
        function t020.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end

        function t020.sink(want)
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local count, idle = 0, 0
            while idle < 20 do
                local m = assert(n:request("interop.sinkstat", ""))
                local c = tonumber(m.payload:match("^(%d+)"))
                count = count + c
                if want and count >= want then break end
                idle = c == 0 and idle + 1 or 0
                ngx.sleep(0.1)
            end
            n:close()
            return count
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("w", { port = $TEST_NGINX_NATS_PORT,
                                  name = "t020-" .. ngx.worker.id() }))
        assert(nats.shared("p", { port = $TEST_NGINX_PAUSED_PORT,
                                  buffer_size = 32 * 1024 * 1024 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: two workers, two connections: one each
--- config
    location = /t {
        content_by_lua_block {
            local conn = t020.conn()
            local n0, n1
            for _ = 1, 100 do
                n0, n1 = t020.connz("t020-0"), t020.connz("t020-1")
                if n0 == 1 and n1 == 1 then break end
                ngx.sleep(0.05)
            end
            ngx.say("worker 0: ", n0, ", worker 1: ", n1)
            local m = assert(conn:request("interop.echo", "from " .. ngx.worker.id()))
            ngx.say(m.payload == "from " .. ngx.worker.id())
        }
    }
--- request
GET /t
--- response_body
worker 0: 1, worker 1: 1
true
--- no_error_log
[error]



=== TEST 2: nginx -s reload (HUP) with 20,000 messages unsent (the server paused): every message arrives; the old worker's connection drains and closes
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("p"))
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            -- an independent subscriber on the same server
            local n = assert(nats:new())
            n:set_timeouts(5000, 5000, 15000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_PAUSED_PORT))
            local got = 0
            assert(n:subscribe("reload.x", function() got = got + 1 end))
            assert(n:flush())

            ngx.say(t020.ctl("pause"))
            local payload = string.rep("r", 512)
            for i = 1, 20000 do
                assert(conn:publish("reload.x", payload))
            end
            ngx.sleep(0.2)   -- the writer sends until the kernel is full
            local master = require("ngx.process").get_master_pid()
            os.execute("kill -HUP " .. master)
            for _ = 1, 300 do
                if ngx.worker.exiting() then break end
                ngx.sleep(0.01)
            end
            ngx.say("worker exiting: ", ngx.worker.exiting())
            ngx.sleep(0.5)
            ngx.say(t020.ctl("resume"))
            local ok, err = n:wait(20000)
            ngx.say("received: ", got, " ", err)
            n:close()
        }
    }
--- request
GET /t
--- response_body
ok pause
worker exiting: true
ok resume
received: 20000 nil
--- error_log
shared connection 'p': worker exiting: draining
shared connection 'p': closed
--- no_error_log
[error]
