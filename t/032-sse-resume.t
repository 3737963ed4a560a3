# vim:set ft= ts=4 sw=4 et:
# The resumable live feed of the example (examples/lua/feed.lua's
# stream_durable and publish_durable, as examples/nginx.conf uses them)
# against a nats-server of the suite's own with JetStream on: each event's
# id is its stream sequence; a raw HTTP client that goes away and comes
# back with Last-Event-ID: N gets N+1 onwards, nothing lost or repeated,
# also for events published while it was away; without Last-Event-ID it
# starts at the next event; the ordered consumer of a client that left is
# removed at the server.

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'sse',
    conf => NatsServer::js_conf(memory => 0, file => '64MB'));
$ENV{TEST_NGINX_JS_PORT} = $js->port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

our $Path = "$RepoRoot/examples/lua/?.lua;$LuaPackagePath";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<CONF);
    lua_package_path "$Path";
    init_by_lua_block {
        t032 = {}

        -- an HTTP/1.0 client of this server (headers: extra lines): the
        -- response head, and the socket to read the stream from
        function t032.open(path, headers)
            local s = ngx.socket.tcp()
            s:settimeout(5000)
            assert(s:connect("127.0.0.1", ngx.var.server_port))
            assert(s:send("GET " .. path .. " HTTP/1.0\\r\\nHost: x\\r\\n"
                          .. (headers or "") .. "\\r\\n"))
            local head = {}
            while true do
                local line = assert(s:receive("*l"))
                if line == "" then break end
                head[#head + 1] = line
            end
            return s, head
        end

        -- the next event as { id =, data = "line|line" }, comments and
        -- retry lines skipped
        function t032.event(s)
            local ev = {}
            while true do
                local line, err = s:receive("*l")
                if not line then return nil, err end
                if line == "" then
                    if ev.id or ev.data then return ev end
                elseif line:sub(1, 3) == "id:" then
                    ev.id = tonumber(line:match("^id: (%d+)\$"))
                elseif line:sub(1, 5) == "data:" then
                    local d = line:match("^data: ?(.*)\$")
                    ev.data = ev.data and ev.data .. "|" .. d or d
                end
            end
        end

        function t032.post(path, body)
            local s = ngx.socket.tcp()
            s:settimeout(5000)
            assert(s:connect("127.0.0.1", ngx.var.server_port))
            assert(s:send("POST " .. path .. " HTTP/1.0\\r\\nHost: x\\r\\n"
                          .. "Content-Length: " .. #body .. "\\r\\n\\r\\n" .. body))
            local res = assert(s:receive("*a"))
            s:close()
            return res:match("^HTTP/1%.%d (%d+)"), res:match("\\r\\n\\r\\n(.*)\\n\$")
        end

        function t032.consumers()
            local n = assert(require("resty.nats"):new())
            assert(n:connect("127.0.0.1", \$TEST_NGINX_JS_PORT))
            local info = n:jetstream():stream_info("FEED")
            n:close()
            return info and info.state.consumer_count
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("demo", { port = \$TEST_NGINX_JS_PORT }))
    }
CONF
    my $config = $block->config;
    $block->set_value("config", <<'CONF' . $config);
    location = /durable/events {
        lua_check_client_abort on;
        lua_http10_buffering off;
        content_by_lua_block {
            require("feed").stream_durable("demo", "FEED", "durable.")
        }
    }
    location = /durable/feed {
        content_by_lua_block {
            require("feed").publish_durable("demo", "FEED", "durable.")
        }
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: ids are stream sequences; a client that comes back with Last-Event-ID gets everything after it, also what came while it was away; the consumer of a client that left goes
--- config
    location = /t {
        content_by_lua_block {
            -- the first publish makes the stream
            ngx.say("first: ", t032.post("/durable/feed?topic=news", "zero"))
            local s, head = t032.open("/durable/events?topic=news")
            ngx.say(head[1], " ", table.concat(head, "\n"):match("text/event%-stream") ~= nil)
            local got = {}
            for i = 1, 3 do
                local code = t032.post("/durable/feed?topic=news", "e" .. i .. (i == 2 and "\nsecond line" or ""))
                assert(code == "201")
                local ev = assert(t032.event(s))
                got[#got + 1] = ev.id .. "=" .. ev.data
            end
            -- another topic is not in this feed
            t032.post("/durable/feed?topic=sports", "goal")
            ngx.say("live: ", table.concat(got, " "))
            local last = tonumber(got[#got]:match("^(%d+)"))
            s:close()
            ngx.say("its consumer gone: ", (function()
                for _ = 1, 100 do
                    if t032.consumers() == 0 then return true end
                    ngx.sleep(0.05)
                end
                return false
            end)())
            -- while it is away
            for i = 4, 6 do t032.post("/durable/feed?topic=news", "e" .. i) end
            -- back, with the id of the last event it got
            s = t032.open("/durable/events?topic=news", "Last-Event-ID: " .. last .. "\r\n")
            got = {}
            for _ = 1, 3 do
                local ev = assert(t032.event(s))
                got[#got + 1] = ev.id .. "=" .. ev.data
            end
            t032.post("/durable/feed?topic=news", "e7")
            local ev = assert(t032.event(s))
            got[#got + 1] = ev.id .. "=" .. ev.data
            ngx.say("resumed after ", last, ": ", table.concat(got, " "))
            s:close()
            -- from the start of the stream, and a bad id
            s = t032.open("/durable/events?topic=news&from=all")
            ngx.say("from all: ", t032.event(s).data, " ", t032.event(s).data)
            s:close()
            s, head = t032.open("/durable/events?topic=news", "Last-Event-ID: x\r\n")
            ngx.say("bad id: ", head[1])
            s:close()
        }
    }
--- response_body
first: 201stored in news as 1
HTTP/1.1 200 OK true
live: 2=e1 3=e2|second line 4=e3
its consumer gone: true
resumed after 4: 6=e4 7=e5 8=e6 9=e7
from all: zero e1
bad id: HTTP/1.1 400 Bad Request
--- no_error_log
[error]
