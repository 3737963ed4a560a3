# vim:set ft= ts=4 sw=4 et:
# The live-feed example (examples/lua/feed.lua, as examples/nginx.conf
# uses it): a client reads the text/event-stream of /events while messages
# are published to its topic (through /feed and straight to NATS); each
# message is one event, in order, multi-line payloads framed as SSE wants;
# the request-scoped subscription ends at the server when the client goes
# away; bad topics are refused.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

our $Path = "$RepoRoot/examples/lua/?.lua;$LuaPackagePath";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 20);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<CONF);
    lua_package_path "$Path";
    init_by_lua_block {
        t022 = {}

        -- an HTTP/1.0 client of this server: the response head, and a
        -- reader of the stream's lines
        function t022.open(path)
            local s = ngx.socket.tcp()
            s:settimeout(3000)
            assert(s:connect("127.0.0.1", ngx.var.server_port))
            assert(s:send("GET " .. path .. " HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n"))
            local head = {}
            while true do
                local line = assert(s:receive("*l"))
                if line == "" then break end
                head[#head + 1] = line
            end
            return s, head
        end

        -- the next event (its lines up to the blank one), comments skipped
        function t022.event(s)
            local lines = {}
            while true do
                local line, err = s:receive("*l")
                if not line then return nil, err end
                if line == "" then
                    if #lines > 0 then return table.concat(lines, "|") end
                elseif line:sub(1, 1) ~= ":" then
                    lines[#lines + 1] = line
                end
            end
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("demo", { port = \$TEST_NGINX_NATS_PORT }))
    }
CONF
    my $config = $block->config;
    $block->set_value("config", <<'CONF' . $config);
    location = /events {
        lua_check_client_abort on;
        lua_http10_buffering off;
        content_by_lua_block {
            require("feed").stream("demo", "feed.")
        }
    }
    location = /feed {
        content_by_lua_block {
            require("feed").publish("demo", "feed.")
        }
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: events arrive in order, one per message, multi-line payloads as several data lines; the subscription ends when the client goes away
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("demo")
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local base = conn:stats().subscriptions
            local s, head = t022.open("/events?topic=t022")
            ngx.say(head[1])
            for _, h in ipairs(head) do
                if h:lower():find("^content%-type") then ngx.say(h) end
            end
            ngx.say("subscribed: +", conn:stats().subscriptions - base)

            -- through the example's own publisher, and straight to NATS
            local p = ngx.socket.tcp()
            assert(p:connect("127.0.0.1", ngx.var.server_port))
            local body = "first"
            assert(p:send("POST /feed?topic=t022 HTTP/1.0\r\nHost: x\r\n"
                          .. "Content-Length: " .. #body .. "\r\n\r\n" .. body))
            ngx.say("publisher: ", p:receive("*l"))
            p:close()
            assert(conn:publish("feed.t022", "second\nline two"))
            assert(conn:publish("feed.t022", "third"))
            assert(conn:publish("feed.other", "not for us"))
            for _ = 1, 3 do
                ngx.say(t022.event(s))
            end
            s:close()
            local gone
            for _ = 1, 100 do
                if conn:stats().subscriptions == base then
                    gone = true
                    break
                end
                ngx.sleep(0.02)
            end
            ngx.say("unsubscribed after the client left: ", gone)
        }
    }
--- response_body
HTTP/1.1 200 OK
Content-Type: text/event-stream
subscribed: +1
publisher: HTTP/1.1 202 Accepted
id: 1|data: first
id: 2|data: second|data: line two
id: 3|data: third
unsubscribed after the client left: true
--- no_error_log
[error]



=== TEST 2: two clients of one topic each get every event; a bad topic is refused
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("demo")
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local a = t022.open("/events?topic=both")
            local b = t022.open("/events?topic=both")
            for i = 1, 3 do
                assert(conn:publish("feed.both", "m" .. i))
            end
            local ga, gb = {}, {}
            for i = 1, 3 do
                ga[i] = t022.event(a)
                gb[i] = t022.event(b)
            end
            ngx.say("a: ", table.concat(ga, " "))
            ngx.say("b: ", table.concat(gb, " "))
            a:close()
            b:close()
            local _, head = t022.open("/events?topic=a.b")
            ngx.say("bad topic: ", head[1])
        }
    }
--- response_body
a: id: 1|data: m1 id: 2|data: m2 id: 3|data: m3
b: id: 1|data: m1 id: 2|data: m2 id: 3|data: m3
bad topic: HTTP/1.1 400 Bad Request
--- no_error_log
[error]
