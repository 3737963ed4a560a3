# vim:set ft= ts=4 sw=4 et:
# NATS services hosted on a shared connection (conn:add_service, ADR-32)
# and scatter-gather requests (conn:request_many), against nats-servers of
# the suite's own: endpoints and groups answered, errors in the
# Nats-Service-Error(-Code) headers, a handler that raises answered with
# 500 and logged, $SRV.PING/INFO/STATS (alone, by name, by name and id)
# with the micro v1 JSON read raw, stats and reset, stop; bad names and
# versions refused; request_many's max, stall, timeout and no responders;
# a service that outlives a server restart.

use lib 't/lib';
use TestNats;
use NatsServer;

my ($restart_port, $ctl_port) = NatsServer->controlled(name => 'svc-restart');
$ENV{TEST_NGINX_RESTART_PORT} = $restart_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

our $Path = "$RepoRoot/examples/lua/?.lua;$LuaPackagePath";

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", "    lua_package_path \"$Path\";\n" . <<'CONF');
    init_by_lua_block {
        t033 = {}
        -- waits up to 10 s for f() to be true
        function t033.wait_for(f)
            for _ = 1, 200 do
                if f() then return true end
                ngx.sleep(0.05)
            end
            return false
        end
        function t033.decode(s)
            return require("cjson.safe").decode(s)
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("svc", { port = $TEST_NGINX_NATS_PORT }))
        assert(nats.shared("svcr", { port = $TEST_NGINX_RESTART_PORT,
                                     reconnect_wait = 200 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: endpoints and groups answer; errors in headers; a handler that raises is answered with 500 and logged; PING, INFO and STATS on every subject; stats, reset, stop
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("svc")
            local svc = assert(conn:add_service({ name = "calc", version = "1.2.3",
                description = "adds", metadata = { zone = "a" } }))
            assert(svc:add_endpoint("sum", function(req)
                local a, b = req.payload:match("^(%d+) (%d+)$")
                if not a then
                    return req:respond_error(400, "two numbers expected", "", { ["X-Why"] = "input" })
                end
                req:respond(tostring(a + b))
            end, { metadata = { unit = "n" } }))
            assert(svc:add_endpoint("boom", function() error("it broke", 0) end,
                                    { subject = "calc.boom" }))
            local grp = svc:add_group("math")
            assert(grp:add_endpoint("twice", function(req) req:respond(req.payload .. req.payload) end))
            assert(grp:add_group("deep", { queue_group = "other" }):add_endpoint("echo",
                function(req) req:respond(req.payload, { ["X-Echo"] = "1" }) end))

            local n = require("resty.nats"):new()
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local function req(subject, payload)
                local m, err = n:request(subject, payload, { timeout = 2000 })
                if not m then return "nil " .. err end
                local h = m.headers or {}
                return m.payload .. " [" .. tostring(h["Nats-Service-Error-Code"]) .. " "
                       .. tostring(h["Nats-Service-Error"]) .. " " .. tostring(h["X-Why"] or h["X-Echo"]) .. "]"
            end
            ngx.say("sum: ", req("sum", "2 3"))
            ngx.say("sum, bad: ", req("sum", "x"))
            ngx.say("boom: ", req("calc.boom", ""))
            ngx.say("group: ", req("math.twice", "ab"))
            ngx.say("nested group: ", req("math.deep.echo", "e"))

            -- discovery, through a client written by hand (t/lua/t_raw.lua)
            local raw = require "t_raw"
            for _, verb in ipairs({ "PING", "INFO", "STATS" }) do
                for _, subject in ipairs({ "$SRV." .. verb, "$SRV." .. verb .. ".calc",
                                           "$SRV." .. verb .. ".calc." .. svc.id }) do
                    local payload = assert(raw.request($TEST_NGINX_NATS_PORT, subject, ""))
                    local r = assert(t033.decode(payload))
                    local line = { subject:gsub(svc.id, "<id>"), r.type, r.name, r.version,
                                   r.id == svc.id, r.metadata.zone }
                    if verb == "INFO" then
                        line[#line + 1] = r.description
                        for _, ep in ipairs(r.endpoints) do
                            line[#line + 1] = ep.name .. "@" .. ep.subject .. "/" .. tostring(ep.queue_group)
                        end
                        line[#line + 1] = r.endpoints[1].metadata.unit
                    elseif verb == "STATS" then
                        line[#line + 1] = r.started:match("^%d+%-%d+%-%d+T[%d:.]+Z$") ~= nil
                        local ep = r.endpoints[1]
                        line[#line + 1] = ep.name .. " " .. ep.num_requests .. " " .. ep.num_errors
                                          .. " " .. ep.last_error .. " " .. tostring(ep.processing_time > 0)
                                          .. " " .. tostring(ep.average_processing_time == math.floor(ep.processing_time / 2))
                        line[#line + 1] = r.endpoints[2].last_error
                    end
                    for i = 1, #line do line[i] = tostring(line[i]) end
                    ngx.say(table.concat(line, " "))
                end
            end
            -- another service's name: no answer from this one
            ngx.say("other name: ", n:request("$SRV.PING.other", "", { timeout = 300 }))

            local st = svc:stats()
            ngx.say("stats: ", st.endpoints[1].num_requests, " ", st.endpoints[2].num_errors)
            svc:reset()
            st = svc:stats()
            ngx.say("after reset: ", st.endpoints[1].num_requests, " ", st.endpoints[1].num_errors,
                    " '", st.endpoints[1].last_error, "' ", st.endpoints[1].processing_time)
            ngx.say("stop: ", svc:stop(), " again: ", svc:stop())
            assert(conn:flush())    -- (the UNSUBs reached the server)
            ngx.say("after stop: ", n:request("sum", "1 1", { timeout = 300 }))
            ngx.say("add after stop: ", svc:add_endpoint("x", function() end))
            n:close()
        }
    }
--- response_body
sum: 5 [nil nil nil]
sum, bad:  [400 two numbers expected input]
boom:  [500 it broke nil]
group: abab [nil nil nil]
nested group: e [nil nil 1]
$SRV.PING io.nats.micro.v1.ping_response calc 1.2.3 true a
$SRV.PING.calc io.nats.micro.v1.ping_response calc 1.2.3 true a
$SRV.PING.calc.<id> io.nats.micro.v1.ping_response calc 1.2.3 true a
$SRV.INFO io.nats.micro.v1.info_response calc 1.2.3 true a adds sum@sum/q boom@calc.boom/q twice@math.twice/q echo@math.deep.echo/other n
$SRV.INFO.calc io.nats.micro.v1.info_response calc 1.2.3 true a adds sum@sum/q boom@calc.boom/q twice@math.twice/q echo@math.deep.echo/other n
$SRV.INFO.calc.<id> io.nats.micro.v1.info_response calc 1.2.3 true a adds sum@sum/q boom@calc.boom/q twice@math.twice/q echo@math.deep.echo/other n
$SRV.STATS io.nats.micro.v1.stats_response calc 1.2.3 true a true sum 2 1 400:two numbers expected true true 500:it broke
$SRV.STATS.calc io.nats.micro.v1.stats_response calc 1.2.3 true a true sum 2 1 400:two numbers expected true true 500:it broke
$SRV.STATS.calc.<id> io.nats.micro.v1.stats_response calc 1.2.3 true a true sum 2 1 400:two numbers expected true true 500:it broke
other name: nilno responders
stats: 2 1
after reset: 0 0 '' 0
stop: true again: nilstopped
after stop: nilno responders
add after stop: nilstopped
--- error_log
service calc endpoint boom: handler failed: it broke



=== TEST 2: names and versions: refused unless [A-Za-z0-9_-]+ and semver; a per-request object has no services; the queue group can be none
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("svc")
            for _, v in ipairs({ "1.2.3", "0.0.1", "1.2.3-alpha.1+build.5", "1.2.3+b", "10.20.30-rc.1",
                                 "1.2", "01.2.3", "1.2.3-01", "1.2.3-", "1.2.3+", "v1.2.3", "1.2.3-a..b" }) do
                local svc, err = conn:add_service({ name = "v", version = v })
                ngx.say(v, ": ", svc and "ok" or err)
                if svc then svc:stop() end
            end
            for _, name in ipairs({ "a b", "a.b", "", "ok_name-1" }) do
                local svc, err = conn:add_service({ name = name, version = "1.0.0" })
                ngx.say("'", name, "': ", svc and "ok" or err)
                if svc then svc:stop() end
            end
            local svc = assert(conn:add_service({ name = "noq", version = "1.0.0", queue_group = false }))
            ngx.say("bad endpoint name: ", svc:add_endpoint("a.b", function() end))
            assert(svc:add_endpoint("e", function(req) req:respond("x") end))
            ngx.say("no queue group: ", svc:info().endpoints[1].queue_group)
            svc:stop()
            local n = require("resty.nats"):new()
            ngx.say("per-request: ", n.add_service)
        }
    }
--- response_body
1.2.3: ok
0.0.1: ok
1.2.3-alpha.1+build.5: ok
1.2.3+b: ok
10.20.30-rc.1: ok
1.2: invalid version (semver expected): 1.2
01.2.3: invalid version (semver expected): 01.2.3
1.2.3-01: invalid version (semver expected): 1.2.3-01
1.2.3-: invalid version (semver expected): 1.2.3-
1.2.3+: invalid version (semver expected): 1.2.3+
v1.2.3: invalid version (semver expected): v1.2.3
1.2.3-a..b: invalid version (semver expected): 1.2.3-a..b
'a b': invalid service name: a b
'a.b': invalid service name: a.b
'': invalid service name: 
'ok_name-1': ok
bad endpoint name: nilinvalid endpoint name: a.b
no queue group: nil
per-request: nil



=== TEST 3: request_many: every reply within the timeout, max, stall after the last one, no responders
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("svc")
            local subs = {}
            for i = 1, 3 do
                subs[i] = assert(conn:subscribe("many.q", function(m)
                    ngx.sleep(0.1 * i)
                    conn:publish(m.reply_to, "r" .. i)
                end))
            end
            local function show(msgs, err)
                if not msgs then return "nil " .. err end
                local t = {}
                for i, m in ipairs(msgs) do t[i] = m.payload end
                return #msgs .. " [" .. table.concat(t, " ") .. "]"
            end
            ngx.say("all: ", show(conn:request_many("many.q", "", { timeout = 1500 })))
            ngx.say("max 2: ", show(conn:request_many("many.q", "", { timeout = 1000, max = 2 })))
            -- (each responder answers one request at a time: let the
            -- ones the last calls left behind finish first)
            ngx.sleep(0.5)
            ngx.update_time()
            local t0 = ngx.now()
            local msgs = conn:request_many("many.q", "", { timeout = 3000, stall = 50 })
            ngx.update_time()
            ngx.say("stall 50 ms: ", show(msgs), " ", ngx.now() - t0 < 1)
            ngx.sleep(0.5)
            ngx.say("timeout: ", show(conn:request_many("many.q", "", { timeout = 250 })))
            ngx.say("no responders: ", show(conn:request_many("many.nobody", "", { timeout = 500 })))
            for _, s in ipairs(subs) do s:unsubscribe() end
            local ok, err = pcall(conn.request_many, conn, "x", "", { max = 0 })
            ngx.say(ok, " ", (err:gsub("^.-: ", "")))
        }
    }
--- response_body
all: 3 [r1 r2 r3]
max 2: 2 [r1 r2]
stall 50 ms: 1 [r1] true
timeout: 2 [r1 r2]
no responders: nil no responders
false bad 'max' option to 'request_many' (a positive number expected)



=== TEST 4: a service outlives a server restart: answered again after the reconnect
--- timeout: 40
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("svcr")
            t033.wait_for(function() return conn:stats().state == "connected" end)
            local svc = assert(conn:add_service({ name = "durable", version = "2.0.0" }))
            assert(svc:add_endpoint("ping", function(req) req:respond("pong") end))
            local function ask()
                local m = conn:request("ping", "", { timeout = 500 })
                return m and m.payload
            end
            ngx.say("before: ", t033.wait_for(function() return ask() == "pong" end))
            ngx.say(require("t_ctl").send($TEST_NGINX_CTL_PORT, "stop"))
            ngx.say(require("t_ctl").send($TEST_NGINX_CTL_PORT, "start"))
            ngx.say("after: ", t033.wait_for(function() return ask() == "pong" end))
            local msgs = conn:request_many("$SRV.PING.durable", "", { timeout = 500 })
            ngx.say("ping after: ", msgs and #msgs)
            svc:stop()
        }
    }
--- response_body
before: true
ok stop
ok start
after: true
ping after: 1



=== TEST 5: the example (examples/lua/services.lua): the service hosted by the worker, /services lists it, /svc/ calls it and maps its error code to the HTTP status
--- config
    location = /services {
        content_by_lua_block {
            require("services").list("svc")
        }
    }
    location ~ ^/svc/(?<subject>[^/]+)$ {
        content_by_lua_block {
            require("services").call("svc", ngx.var.subject)
        }
    }
    location = /t {
        content_by_lua_block {
            package.loaded.services = nil
            local svc = require("services").start("svc")
            local function http(method, path, body)
                local code, h, res = require("t_http").request(
                    ngx.var.server_port, method, path, nil, body or "")
                assert(code, h)
                return code, res, h["x-service-error"]
            end
            local code, body = http("GET", "/services")
            local list = require("cjson").decode(body)
            local mine
            for _, s in ipairs(list) do
                if s.id == svc.id then mine = s end
            end
            ngx.say("services: ", code, " ", mine and mine.name .. " " .. mine.version)
            local function show(c, b, e) return c .. " '" .. b .. "' " .. tostring(e) end
            ngx.say("sum: ", show(http("POST", "/svc/demo.calc.sum", "2 3 4")))
            ngx.say("error: ", show(http("POST", "/svc/demo.calc.sum", "none")))
            ngx.say("nobody: ", (http("POST", "/svc/demo.nobody", "x")))
            svc:stop()
        }
    }
--- response_body
services: 200 demo-calc 1.0.0
sum: 200 '9' nil
error: 400 '' numbers expected
nobody: 503
