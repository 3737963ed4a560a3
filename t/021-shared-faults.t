# vim:set ft= ts=4 sw=4 et:
# The shared connection when its server goes away: stopped for a second
# under a steady request load (the responder is a callback subscription
# of the same connection, so replies resume only once it is subscribed
# again), messages published during the outage delivered after the
# reconnect, requests waiting for it within their timeout, a subscription's
# remaining max kept across the reconnect, and a server killed outright.

use lib 't/lib';
use TestNats;
use NatsServer;

my ($port, $ctl_port) = NatsServer->controlled(name => 'shared-faults');
$ENV{TEST_NGINX_FAULT_PORT} = $port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 40);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    lua_shared_dict t021 1m;
    init_by_lua_block {
        t021 = {}

        -- ctl("stop" | "kill" | "start"): drives the control process
        function t021.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end

        function t021.connected(conn, secs)
            for _ = 1, secs * 100 do
                if conn:stats().state == "connected" then return true end
                ngx.sleep(0.01)
            end
            return false
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        local conn = assert(nats.shared("f", {
            port = $TEST_NGINX_FAULT_PORT, reconnect_wait = 100,
        }))
        -- the responder, on the same connection
        assert(conn:subscribe("f.echo", function(msg)
            conn:publish(msg.reply_to, msg.payload)
        end))
        assert(conn:subscribe("f.count", function(msg)
            ngx.shared.t021:incr("count", 1, 0)
        end))
        assert(conn:subscribe("f.max", function(msg)
            ngx.shared.t021:incr("max", 1, 0)
        end, { max = 5 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: stopped for a second under load: requests fail with a name while it is down, nothing crosses, service resumes with the subscriptions made again
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("f"))
            ngx.say("connected: ", t021.connected(conn, 5))
            local stop = false
            local stats = { ok = 0, crossed = 0, errors = {}, unnamed = 0 }
            local function load(id)
                local i = 0
                while not stop do
                    i = i + 1
                    local want = id .. ":" .. i
                    local msg, err = conn:request("f.echo", want,
                                                  { timeout = 500 })
                    if msg then
                        if msg.payload == want then
                            stats.ok = stats.ok + 1
                        else
                            stats.crossed = stats.crossed + 1
                        end
                    elseif err then
                        stats.errors[err] = (stats.errors[err] or 0) + 1
                        ngx.sleep(0.01)
                    else
                        stats.unnamed = stats.unnamed + 1
                    end
                end
            end
            local threads = {}
            for t = 1, 5 do
                threads[t] = ngx.thread.spawn(load, t)
            end
            ngx.sleep(0.5)
            local before = stats.ok
            ngx.say(t021.ctl("stop"))
            ngx.sleep(1)
            ngx.say(t021.ctl("start"))
            ngx.say("reconnected: ", t021.connected(conn, 5))
            local at = stats.ok
            ngx.sleep(1)
            stop = true
            for t = 1, 5 do
                ngx.thread.wait(threads[t])
            end
            ngx.say("answered before: ", before > 0)
            ngx.say("answered after the restart: ", stats.ok > at)
            ngx.say("crossed: ", stats.crossed, ", unnamed: ", stats.unnamed)
            local names = {}
            for e in pairs(stats.errors) do names[#names + 1] = e end
            table.sort(names)
            local known = { disconnected = true, timeout = true,
                            ["no responders"] = true }
            local odd = {}
            for _, e in ipairs(names) do
                if not known[e] then odd[#odd + 1] = e end
            end
            ngx.say("errors: only known ones: ", #odd == 0, " ",
                    table.concat(odd, ","))
            ngx.say("disconnected seen: ", stats.errors.disconnected ~= nil)
            local st = conn:stats()
            ngx.say("reconnects: ", st.reconnects, ", subscriptions: ",
                    st.subscriptions)
        }
    }
--- response_body
connected: true
ok stop
ok start
reconnected: true
answered before: true
answered after the restart: true
crossed: 0, unnamed: 0
errors: only known ones: true 
disconnected seen: true
reconnects: 1, subscriptions: 4
--- error_log
shared connection 'f': connection to
reconnected to



=== TEST 2: during an outage: a request waits for the reconnect within its timeout ("timeout" after it, its reply when the connection is back in time), flush fails at once, publishes are kept and delivered after the reconnect, a subscription keeps its remaining max
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("f"))
            ngx.say("connected: ", t021.connected(conn, 5))
            ngx.shared.t021:set("count", 0)
            ngx.shared.t021:set("max", 0)
            for i = 1, 3 do
                assert(conn:publish("f.max", "before"))
            end
            assert(conn:flush())
            ngx.sleep(0.1)
            ngx.say("max so far: ", ngx.shared.t021:get("max"))

            ngx.say(t021.ctl("kill"))
            for _ = 1, 300 do
                if conn:stats().state ~= "connected" then break end
                ngx.sleep(0.01)
            end
            ngx.say("state: ", conn:stats().state)
            ngx.update_time()
            local t0 = ngx.now()
            local msg, err = conn:request("f.echo", "x", { timeout = 300 })
            ngx.update_time()
            ngx.say("request: ", msg, " ", err, ", after its timeout: ",
                    ngx.now() - t0 >= 0.25)
            -- a request made now waits out the outage within its timeout
            local late = ngx.thread.spawn(function()
                return conn:request("f.echo", "across", { timeout = 8000 })
            end)
            ngx.say("flush: ", conn:flush(1000))
            for i = 1, 100 do
                -- every other one large enough to be held by reference
                local p = "during " .. i
                if i % 2 == 0 then p = p .. string.rep("x", 4096) end
                assert(conn:publish("f.count", p))
            end
            for i = 1, 5 do
                assert(conn:publish("f.max", "after"))
            end
            ngx.say("pending: ", conn:stats().pending_bytes > 0)

            ngx.say(t021.ctl("start"))
            ngx.say("reconnected: ", t021.connected(conn, 5))
            local _, lmsg, lerr = ngx.thread.wait(late)
            ngx.say("request across the outage: ", lmsg and lmsg.payload or lerr)
            assert(conn:flush())
            for _ = 1, 100 do
                if ngx.shared.t021:get("count") >= 100 then break end
                ngx.sleep(0.02)
            end
            ngx.sleep(0.1)
            ngx.say("delivered after the outage: ",
                    ngx.shared.t021:get("count"))
            ngx.say("max in all: ", ngx.shared.t021:get("max"))
            ngx.say("subscriptions: ", conn:stats().subscriptions)
        }
    }
--- response_body
connected: true
max so far: 3
ok kill
state: reconnecting
request: nil timeout, after its timeout: true
flush: nildisconnected
pending: true
ok start
reconnected: true
request across the outage: across
delivered after the outage: 100
max in all: 5
subscriptions: 3
