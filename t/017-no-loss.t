# vim:set ft= ts=4 sw=4 et:
# No message lost: a publisher that closes or pools its connection right
# after a long burst (1,000,000 x 1 KiB) delivers every message to an
# independent subscriber (the libnats peer's counting sink), also when the
# server's traffic to the publisher (a message of its own subscription)
# sits unread at close time.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 120);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    lua_package_path "$TEST_NGINX_LUA_PACKAGE_PATH";
    init_by_lua_block {
        local nats = require "resty.nats"
        -- counts what the libnats sink saw since the last call, polling
        -- until want arrived or nothing more comes for 3 s
        function sink_count(want)
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local count, bytes, idle = 0, 0, 0
            while idle < 30 do
                local m = assert(n:request("interop.sinkstat", ""))
                local c, b = m.payload:match("^(%d+) (%d+)")
                c, b = tonumber(c), tonumber(b)
                count, bytes = count + c, bytes + b
                if want and count >= want then break end
                idle = c == 0 and idle + 1 or 0
                ngx.sleep(0.1)
            end
            n:close()
            return count, bytes
        end
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: 1,000,000 x 1 KiB buffered, unread input at the end, then close: every message arrives
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            sink_count(0)  -- reset
            local n = assert(nats:new())
            n:set_timeout(30000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            -- the server will have something for us at close time
            assert(n:subscribe("burst.mine", function() end))
            assert(n:set_write_buffer(65536))
            local payload = string.rep("x", 1024)
            local N = 1000000
            for i = 1, N do
                local ok, err = n:publish("interop.sink.burst", payload)
                if not ok then ngx.say("publish ", i, ": ", err) return end
                if i % 200000 == 0 then
                    assert(n:publish("burst.mine", "unread"))
                end
            end
            ngx.say("close: ", n:close())
            local count, bytes = sink_count(N)
            ngx.say("sink: ", count, " messages, ", bytes, " bytes")
        }
    }
--- response_body
close: 1
sink: 1000000 messages, 1024000000 bytes
--- no_error_log
[error]



=== TEST 2: 1,000,000 x 1 KiB buffered, then set_keepalive: every message arrives, the connection is reused
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            sink_count(0)
            local n = assert(nats:new())
            n:set_timeout(30000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, { pool = "burst" }))
            assert(n:set_write_buffer(65536))
            local payload = string.rep("y", 1024)
            local N = 1000000
            for i = 1, N do
                local ok, err = n:publish("interop.sink.burst", payload)
                if not ok then ngx.say("publish ", i, ": ", err) return end
            end
            ngx.say("set_keepalive: ", n:set_keepalive())
            local count, bytes = sink_count(N)
            ngx.say("sink: ", count, " messages, ", bytes, " bytes")
            local again = assert(nats:new())
            assert(again:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, { pool = "burst" }))
            ngx.say("reused: ", again:get_reused_times())
            ngx.say("flush: ", again:flush())
            again:close()
        }
    }
--- response_body
set_keepalive: 1
sink: 1000000 messages, 1024000000 bytes
reused: 1
flush: true
--- no_error_log
[error]
