# vim:set ft= ts=4 sw=4 et:
# Rolling restarts (issue 21): a three-node cluster with JetStream
# (NatsServer->cluster), each node put in lame duck mode (SIGUSR2: the
# server sends INFO with "ldm": true, stops accepting, and closes its
# clients after lame_duck_grace_period), waited for until it exited, and
# started again (its store kept) until /healthz says it is current.
# Nothing may fail meanwhile:
#
#   1. 20 request loops on the worker's shared connection, answered by a
#      queue subscription of that same connection, while its server goes
#      lame duck and exits: no request fails, the connection is on another
#      node, its subscription answers there;
#   2. a full rolling restart (node1, node2, node3) under HTTP load on a
#      gateway served by both workers (a request through the worker's
#      shared connection each), while JetStream publishes with a msg_id
#      to an R3 stream, retried with the same msg_id until acknowledged;
#      then every acknowledged message is in the stream once, on every
#      node;
#   3. an ordered consumer and a key-value watcher on the shared
#      connection while its node goes lame duck: every message once, in
#      order, every key's last value;
#   4. the node that holds an ordered consumer's (R1) consumer goes lame
#      duck: the consumer is made again, every message once, in order.
#
# The figures are printed by the handlers (counts vary, failures must be
# 0; the error texts are printed when not).

use lib 't/lib';
use TestNats;
use NatsServer;

NatsServer->cluster(n => 3, js => 1, grace => '2s');
$ENV{TEST_NGINX_GW_PORT} = NatsServer::free_port();

master_on();
workers(2);
repeat_each(1);
no_shuffle();
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 150);
    $block->set_value("http_config", <<'CONF');
    lua_shared_dict t034 8m;
    init_by_lua_block {
        t034 = {}

        -- what a test handler printed, into the log at notice level
        function t034.report(chunk)
            if chunk and chunk ~= "" then
                ngx.log(ngx.NOTICE, "t034 figures: ", chunk)
            end
        end
        local cjson = require "cjson.safe"

        t034.nodes = {
            node1 = { port = $TEST_NGINX_NODE1_PORT,
                      mon = $TEST_NGINX_NODE1_MON_PORT,
                      ctl = $TEST_NGINX_NODE1_CTL_PORT },
            node2 = { port = $TEST_NGINX_NODE2_PORT,
                      mon = $TEST_NGINX_NODE2_MON_PORT,
                      ctl = $TEST_NGINX_NODE2_CTL_PORT },
            node3 = { port = $TEST_NGINX_NODE3_PORT,
                      mon = $TEST_NGINX_NODE3_MON_PORT,
                      ctl = $TEST_NGINX_NODE3_CTL_PORT },
        }
        t034.servers = {}
        for _, n in ipairs({ "node1", "node2", "node3" }) do
            t034.servers[#t034.servers + 1] =
                "nats://127.0.0.1:" .. t034.nodes[n].port
        end

        -- a command to node's control process ("ldm" is answered once
        -- the process exited, "healthy" once /healthz is ok with its
        -- routes up)
        function t034.ctl(node, cmd)
            return require("t_ctl").send(t034.nodes[node].ctl, cmd, 70000)
        end

        -- every node running and healthy (an earlier test may have left
        -- one stopped); what is not is printed
        function t034.all_up()
            for _, node in ipairs({ "node1", "node2", "node3" }) do
                if t034.ctl(node, "pid") == "ok pid 0" then
                    t034.ctl(node, "start")
                end
                local h = t034.ctl(node, "healthy")
                if h ~= "ok healthy" then ngx.say(node, ": ", h) end
            end
        end

        -- stream name (subjects "<prefix>.>") made anew, R3, file
        -- storage, with a leader and 2 current replicas
        function t034.fresh_r3(js, name, prefix)
            js:delete_stream(name)
            assert(js:add_stream({ name = name, subjects = { prefix .. ".>" },
                                   num_replicas = 3, storage = "file" }))
            assert(t034.r3(js, name))
        end

        -- a publisher to subject of js: pub.publish(i) publishes "m<i>"
        -- with msg_id "<subject>-<i>", retried until acknowledged;
        -- pub.published, pub.retries
        function t034.publisher(js, subject)
            local pub = { published = 0, retries = 0 }
            function pub.publish(i)
                while true do
                    local ack = js:publish(subject, "m" .. i,
                                           { msg_id = subject .. "-" .. i })
                    if ack then
                        pub.published = pub.published + 1
                        return
                    end
                    pub.retries = pub.retries + 1
                    ngx.sleep(0.05)
                end
            end
            return pub
        end

        -- a light thread reading n messages "m<i>" through ordered
        -- consumer oc (60 s at most; errors counted, 50 ms apart): r.got,
        -- r.dup (seen again), r.order (each the one after the last), r.errs
        function t034.read_ordered(oc, n)
            local r = { got = 0, dup = 0, order = true, last = 0, errs = {} }
            r.thread = ngx.thread.spawn(function()
                local deadline = ngx.now() + 60
                while r.got < n and ngx.now() < deadline do
                    local m, err = oc:next(2000)
                    if not m then
                        err = tostring(err)
                        r.errs[err] = (r.errs[err] or 0) + 1
                        -- (and the clock moves on)
                        ngx.sleep(0.05)
                    else
                        local i = tonumber(m.payload:sub(2))
                        if i <= r.last then r.dup = r.dup + 1 end
                        if i ~= r.last + 1 then r.order = false end
                        r.last = i
                        r.got = r.got + 1
                        if r.got % 20 == 0 then ngx.sleep(0.01) end
                    end
                end
            end)
            return r
        end

        -- the node a shared connection is on (its INFO's server_name)
        function t034.node_of(conn)
            local info = conn:server_info()
            return info and info.server_name
        end

        -- "" or " (text=count, ...)", sorted
        function t034.reasons(errs)
            local list = {}
            for e, n in pairs(errs) do
                list[#list + 1] = e .. "=" .. n
            end
            table.sort(list)
            if #list == 0 then return "" end
            return " (" .. table.concat(list, ", ") .. ")"
        end

        -- GET path on a monitor port, decoded
        function t034.monitor(node, path)
            return require("t_http").json(t034.nodes[node].mon, path)
        end

        -- the stream's state on node (its own copy, /jsz)
        function t034.jsz_state(node, stream)
            local z = t034.monitor(node, "/jsz?streams=true")
            for _, a in ipairs(z and z.account_details or {}) do
                for _, s in ipairs(a.stream_detail or {}) do
                    if s.name == stream then return s.state end
                end
            end
        end

        -- stream info once it has a leader and 2 current replicas (10 s)
        function t034.r3(js, stream)
            local info, err
            for _ = 1, 100 do
                info, err = js:stream_info(stream)
                local c = info and info.cluster
                if c and c.leader and c.replicas and #c.replicas == 2 then
                    local current = true
                    for _, r in ipairs(c.replicas) do
                        current = current and r.current and not r.offline
                    end
                    if current then return info end
                end
                ngx.sleep(0.1)
            end
            return nil, err or "not R3 and current: "
                             .. cjson.encode(info and info.cluster or {})
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        local wid = ngx.worker.id()
        local conn = assert(nats.shared("r", {
            servers = t034.servers, name = "t034-" .. wid,
            reconnect_wait = 250,
        }))
        -- TEST 1's responder: on this worker's connection only
        assert(conn:subscribe("roll.echo." .. wid, function(msg)
            conn:publish(msg.reply_to, msg.payload)
        end, { queue = "echo" }))
        -- the gateway's responder, in every worker
        assert(conn:subscribe("roll.gw", function(msg)
            conn:publish(msg.reply_to, msg.payload)
        end, { queue = "gw" }))
    }
    # the gateway: both workers accept (reuseport), each answers through
    # its own shared connection
    server {
        listen 127.0.0.1:$TEST_NGINX_GW_PORT reuseport;
        keepalive_requests 1000000;
        location = /gw {
            content_by_lua_block {
                local conn = require("resty.nats").shared("r")
                local m, err = conn:request("roll.gw", ngx.var.arg_id or "x",
                                            { timeout = 5000 })
                local body
                if m then
                    body = ngx.worker.id() .. " " .. m.payload
                else
                    ngx.status = 502
                    body = "nats: " .. tostring(err)
                end
                ngx.header["Content-Length"] = #body
                ngx.print(body)
            }
        }
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: 20 request loops on the shared connection, answered by its own queue subscription, while its server goes lame duck and exits: none fails, the connection is on another node, the subscription answers there; the node is started again
--- config
    location = /t {
        # the figures, in the log too (for the closing notes)
        body_filter_by_lua_block { t034.report(ngx.arg[1]) }
        content_by_lua_block {
            local conn = require("t_shared").connected("r")
            local wid = ngx.worker.id()
            local subject = "roll.echo." .. wid
            ngx.say("connected: ", conn:stats().state)
            local old = t034.node_of(conn)
            ngx.say("on a node: ", t034.nodes[old] ~= nil)
            -- the responder is there
            local m, err = conn:request(subject, "hello", { timeout = 3000 })
            ngx.say("answered: ", m and m.payload or err)

            local stop = false
            local made, failed, crossed = 0, 0, 0
            local errs = {}
            local function loop(id)
                local i = 0
                while not stop do
                    i = i + 1
                    local want = id .. ":" .. i
                    made = made + 1
                    local msg, e = conn:request(subject, want,
                                                { timeout = 5000 })
                    if not msg then
                        failed = failed + 1
                        e = tostring(e)
                        errs[e] = (errs[e] or 0) + 1
                    elseif msg.payload ~= want then
                        crossed = crossed + 1
                    end
                end
            end
            local threads = {}
            for t = 1, 20 do
                threads[t] = ngx.thread.spawn(loop, t)
            end
            ngx.sleep(1)
            local before = made
            local t0 = ngx.now()
            local r = t034.ctl(old, "ldm")
            local took = ngx.now() - t0
            ngx.sleep(1)
            stop = true
            for t = 1, 20 do
                ngx.thread.wait(threads[t])
            end
            -- with a client connected it waits lame_duck_grace_period (2 s)
            -- before closing it: it did go lame duck
            ngx.say("ldm: ", r, string.format(" (exited after %.1f s)", took),
                    ", after the grace period: ", took >= 1.9)
            ngx.say("requests: ", made, ", before the ldm: ", before,
                    ", enough: ", before >= 200 and made >= 2 * before)
            ngx.say("failed: ", failed, t034.reasons(errs))
            ngx.say("crossed: ", crossed)
            local now = t034.node_of(conn)
            ngx.say("now on another node: ", now ~= old and t034.nodes[now] ~= nil,
                    ", ", conn:stats().state)
            m, err = conn:request(subject, "after", { timeout = 3000 })
            ngx.say("its subscription answers: ", m and m.payload or err)
            ngx.say("start: ", t034.ctl(old, "start"))
            ngx.say("healthy: ", t034.ctl(old, "healthy"))
        }
    }
--- request
GET /t
--- response_body_like eval
qr/\Aconnected: connected
on a node: true
answered: hello
ldm: ok ldm \(exited after \d+\.\d s\), after the grace period: true
requests: \d+, before the ldm: \d+, enough: true
failed: 0
crossed: 0
now on another node: true, connected
its subscription answers: after
start: ok start
healthy: ok healthy
\z/
--- error_log
entered lame duck mode
--- no_error_log
[error]



=== TEST 2: a rolling restart of the 3 nodes under HTTP load on a gateway of both workers and JetStream publishes (msg_id, retried until acknowledged) to an R3 stream: no HTTP request fails; every acknowledged message is in the stream once, on every node
--- config
    location = /roll {
        # the figures, in the log too (for the closing notes)
        body_filter_by_lua_block { t034.report(ngx.arg[1]) }
        content_by_lua_block {
            -- every node up (whatever an earlier test left behind)
            t034.all_up()
            local conn = require("t_shared").connected("r")
            local js = conn:jetstream({ timeout = 2000 })
            local info, err = js:add_stream({
                name = "ROLL", subjects = { "roll.js.>" },
                num_replicas = 3, storage = "file",
            })
            ngx.say("stream: ", info and info.config.num_replicas or err)
            info, err = t034.r3(js, "ROLL")
            ngx.say("R3 and current: ", info ~= nil, " ", err or "")

            local stop = false

            -- HTTP load: keep-alive HTTP/1.1 over cosockets, a new
            -- connection every 50 requests (so both workers take some)
            local http = { total = 0, ok = 0, crossed = 0, fail = {},
                           failed = 0, by_worker = {} }
            local function fail(why)
                http.failed = http.failed + 1
                http.fail[why] = (http.fail[why] or 0) + 1
            end
            local function client(t)
                local sock, i, on = nil, 0, 0
                while not stop do
                    if not sock or on >= 50 then
                        if sock then sock:close() end
                        sock = ngx.socket.tcp()
                        sock:settimeout(10000)
                        local ok, e = sock:connect("127.0.0.1", $TEST_NGINX_GW_PORT)
                        if not ok then
                            fail("connect: " .. tostring(e))
                            sock = nil
                            ngx.sleep(0.1)
                        end
                        on = 0
                    end
                    if sock then
                        i = i + 1
                        on = on + 1
                        local id = t .. "-" .. i
                        http.total = http.total + 1
                        local ok, e = sock:send("GET /gw?id=" .. id
                            .. " HTTP/1.1\r\nHost: gw\r\n\r\n")
                        local status, len
                        if ok then
                            local line
                            line, e = sock:receive("*l")
                            status = line and tonumber(line:match("^HTTP/1%.1 (%d+)"))
                            while line and line ~= "" do
                                local n = line:match("^[Cc]ontent%-[Ll]ength: *(%d+)")
                                if n then len = tonumber(n) end
                                line, e = sock:receive("*l")
                            end
                        end
                        local body
                        if status and len then
                            body, e = sock:receive(len)
                        end
                        if not body then
                            fail("socket: " .. tostring(e))
                            sock:close()
                            sock = nil
                        elseif status ~= 200 then
                            fail(status .. " " .. body)
                        else
                            local w, p = body:match("^(%d+) (.*)$")
                            if p ~= id then
                                http.crossed = http.crossed + 1
                            else
                                http.ok = http.ok + 1
                                http.by_worker[w] = (http.by_worker[w] or 0) + 1
                            end
                        end
                    end
                end
                if sock then sock:close() end
            end

            -- JetStream: each message published with its msg_id, again
            -- with the same one until acknowledged
            local pub = { acked = 0, dup_acks = 0, retries = 0, errs = {},
                          unnamed = 0, gave_up = 0 }
            local acked = {}
            local function publisher(k)
                local i = 0
                while not stop do
                    i = i + 1
                    local id = "p" .. k .. "-" .. i
                    local deadline = ngx.now() + 30
                    while true do
                        local ack, e = js:publish("roll.js." .. k, id,
                                                  { msg_id = id })
                        if ack then
                            pub.acked = pub.acked + 1
                            if ack.duplicate then
                                pub.dup_acks = pub.dup_acks + 1
                            end
                            acked[#acked + 1] = id
                            break
                        end
                        pub.retries = pub.retries + 1
                        if type(e) ~= "string" or e == "" then
                            pub.unnamed = pub.unnamed + 1
                        end
                        e = tostring(e)
                        pub.errs[e] = (pub.errs[e] or 0) + 1
                        if ngx.now() > deadline then
                            pub.gave_up = pub.gave_up + 1
                            break
                        end
                        ngx.sleep(0.05)
                    end
                    ngx.sleep(0.01)
                end
            end

            local threads = {}
            for t = 1, 10 do
                threads[#threads + 1] = ngx.thread.spawn(client, t)
            end
            for k = 1, 4 do
                threads[#threads + 1] = ngx.thread.spawn(publisher, k)
            end

            ngx.sleep(1)
            local t0 = ngx.now()
            local steps, path = {}, { tostring(t034.node_of(conn)) }
            for _, node in ipairs({ "node1", "node2", "node3" }) do
                local t1 = ngx.now()
                local a = t034.ctl(node, "ldm")
                local t2 = ngx.now()
                local b = t034.ctl(node, "start")
                local c = t034.ctl(node, "healthy")
                local t3 = ngx.now()
                local r3, e3 = t034.r3(js, "ROLL")
                steps[#steps + 1] = string.format(
                    "%s: %s, %s, %s, stream R3 and current: %s%s "
                    .. "(exited after %.1f s, healthy %.1f s later)",
                    node, a, b, c, tostring(r3 ~= nil), e3 and (" " .. e3) or "",
                    t2 - t1, t3 - t2)
                path[#path + 1] = tostring(t034.node_of(conn))
            end
            local rolling = ngx.now() - t0
            ngx.sleep(1)
            stop = true
            for _, th in ipairs(threads) do
                ngx.thread.wait(th)
            end

            for _, s in ipairs(steps) do ngx.say(s) end
            ngx.say(string.format("rolling restart: %.0f s", rolling))
            ngx.say("this worker's connection, before and after each step: ",
                    table.concat(path, " "))
            ngx.say("http requests: ", http.total, ", enough: ",
                    http.total >= 1000)
            ngx.say("http failed: ", http.failed, t034.reasons(http.fail))
            ngx.say("http crossed: ", http.crossed)
            local w0, w1 = http.by_worker["0"] or 0, http.by_worker["1"] or 0
            ngx.say("served by both workers: ", w0 > 0 and w1 > 0,
                    " (", w0, " + ", w1, ")")
            ngx.say("js acknowledged: ", pub.acked, " (", pub.dup_acks,
                    " as duplicates), enough: ", pub.acked >= 100)
            ngx.say("js retries: ", pub.retries, t034.reasons(pub.errs))
            ngx.say("js unnamed errors: ", pub.unnamed, ", gave up: ", pub.gave_up)
            ngx.shared.t034:set("acked", table.concat(acked, ","))
        }
    }
    location = /check {
        # the figures, in the log too (for the closing notes)
        body_filter_by_lua_block { t034.report(ngx.arg[1]) }
        content_by_lua_block {
            local conn = require("t_shared").connected("r")
            local js = conn:jetstream({ timeout = 5000 })
            local list = ngx.shared.t034:get("acked") or ""
            local acked, nacked = {}, 0
            for id in list:gmatch("[^,]+") do
                nacked = nacked + (acked[id] and 0 or 1)
                acked[id] = true
            end
            local info, err = t034.r3(js, "ROLL")
            ngx.say("R3 and current: ", info ~= nil, " ", err or "")
            info = info or assert(js:stream_info("ROLL"))
            local st = info.state
            ngx.say("stored: ", st.messages, ", acknowledged: ", nacked,
                    ", equal: ", st.messages == nacked)

            -- every stored message, by sequence, 8 readers
            local seen, bad, next_seq = {}, {}, st.first_seq
            local function reader()
                while next_seq <= st.last_seq do
                    local seq = next_seq
                    next_seq = next_seq + 1
                    local m, e
                    for _ = 1, 5 do
                        m, e = js:get_msg("ROLL", { seq = seq })
                        if m or e == "no message found" then break end
                        ngx.sleep(0.1)
                    end
                    if m then
                        local id = m.headers and m.headers["Nats-Msg-Id"]
                        if id ~= m.payload then
                            bad[#bad + 1] = seq .. ": " .. tostring(id)
                                            .. " ~= " .. m.payload
                        end
                        seen[m.payload] = (seen[m.payload] or 0) + 1
                    elseif e ~= "no message found" then
                        bad[#bad + 1] = seq .. ": " .. tostring(e)
                    end
                end
            end
            local threads = {}
            for t = 1, 8 do threads[t] = ngx.thread.spawn(reader) end
            for t = 1, 8 do ngx.thread.wait(threads[t]) end

            local lost, dups, extra = 0, 0, 0
            for id in pairs(acked) do
                if not seen[id] then lost = lost + 1 end
            end
            for id, n in pairs(seen) do
                if n > 1 then dups = dups + 1 end
                if not acked[id] then extra = extra + 1 end
            end
            ngx.say("read back: unreadable or mismatched: ", #bad, " ",
                    table.concat(bad, "; ", 1, math.min(#bad, 5)))
            ngx.say("lost: ", lost)
            ngx.say("duplicates: ", dups)
            ngx.say("stored, not acknowledged: ", extra)

            -- each node's own copy (converges within a few seconds)
            local same, states
            for _ = 1, 50 do
                same, states = true, {}
                for _, node in ipairs({ "node1", "node2", "node3" }) do
                    local s = t034.jsz_state(node, "ROLL")
                    states[#states + 1] = node .. "=" .. (s and (s.messages
                        .. "/" .. s.last_seq) or "none")
                    same = same and s ~= nil and s.messages == st.messages
                           and s.last_seq == st.last_seq
                end
                if same then break end
                ngx.sleep(0.2)
            end
            ngx.say("every node holds them: ", same,
                    same and "" or (" " .. table.concat(states, " ")))
        }
    }
--- request eval
["GET /roll", "GET /check"]
--- response_body_like eval
[qr/\Astream: 3
R3 and current: true 
node1: ok ldm, ok start, ok healthy, stream R3 and current: true \(exited after \d+\.\d s, healthy \d+\.\d s later\)
node2: ok ldm, ok start, ok healthy, stream R3 and current: true \(exited after \d+\.\d s, healthy \d+\.\d s later\)
node3: ok ldm, ok start, ok healthy, stream R3 and current: true \(exited after \d+\.\d s, healthy \d+\.\d s later\)
rolling restart: \d+ s
this worker's connection, before and after each step: node\d node\d node\d node\d
http requests: \d+, enough: true
http failed: 0
http crossed: 0
served by both workers: true \(\d+ \+ \d+\)
js acknowledged: \d+ \(\d+ as duplicates\), enough: true
js retries: \d+.*
js unnamed errors: 0, gave up: 0
\z/,
qr/\AR3 and current: true 
stored: \d+, acknowledged: \d+, equal: true
read back: unreadable or mismatched: 0 
lost: 0
duplicates: 0
stored, not acknowledged: 0
every node holds them: true
\z/]
--- no_error_log
[error]



=== TEST 3: JetStream reads on the shared connection through a move: an ordered consumer reading a stream while more is published and its connection's node goes lame duck gets every message once, in order; a key-value watcher sees every key's last value
--- config
    location = /t {
        body_filter_by_lua_block { t034.report(ngx.arg[1]) }
        content_by_lua_block {
            t034.all_up()
            local conn = require("t_shared").connected("r")
            local js = conn:jetstream({ timeout = 2000 })
            t034.fresh_r3(js, "ROLLOC", "roll.oc")
            js:delete_key_value("rollkv")
            local kv = assert(js:create_key_value({ bucket = "rollkv", replicas = 3 }))
            assert(t034.r3(js, "KV_rollkv"))

            -- publishes retried with their msg_id until acknowledged
            local pub = t034.publisher(js, "roll.oc.x")
            local FIRST, MORE = 1000, 1000
            for i = 1, FIRST do pub.publish(i) end

            local oc = assert(js:ordered_consumer("ROLLOC"))
            local r = t034.read_ordered(oc, FIRST + MORE)
            local final = {}
            local seen = {}
            local watcher = assert(kv:watch(">", function(e)
                if e.operation == "PUT" then seen[e.key] = e.value end
            end))
            local writer = ngx.thread.spawn(function()
                for i = FIRST + 1, FIRST + MORE do
                    pub.publish(i)
                    local key = "k" .. (i % 50)
                    while not kv:put(key, tostring(i)) do
                        pub.retries = pub.retries + 1
                        ngx.sleep(0.05)
                    end
                    final[key] = tostring(i)
                    if i % 10 == 0 then ngx.sleep(0.01) end
                end
            end)

            ngx.sleep(0.5)
            local old = t034.node_of(conn)
            local answer = t034.ctl(old, "ldm")
            ngx.say("ldm: ", answer, ", moved: ", t034.node_of(conn) ~= old)
            ngx.thread.wait(writer)
            ngx.thread.wait(r.thread)
            ngx.say("published: ", pub.published == FIRST + MORE)
            ngx.say("ordered consumer: ", r.got, " of ", FIRST + MORE,
                    ", in order: ", r.order, ", duplicates: ", r.dup)
            ngx.say("its errors:", t034.reasons(r.errs))
            -- (a watcher whose consumer went with the node makes it again
            -- after two missed heartbeats: 11 s)
            local wait_until = ngx.now() + 30
            local missing
            repeat
                missing = 0
                for k, v in pairs(final) do
                    if seen[k] ~= v then missing = missing + 1 end
                end
                if missing > 0 then ngx.sleep(0.1) end
            until missing == 0 or ngx.now() > wait_until
            ngx.say("watcher: last values of 50 keys seen, missing: ", missing)
            local st = oc:stats()
            ngx.say("figures: retries ", pub.retries, ", consumer restarts ",
                    st.restarts)
            watcher:stop()
            oc:close()
            ngx.say("start: ", t034.ctl(old, "start"))
            ngx.say("healthy: ", t034.ctl(old, "healthy"))
        }
    }
--- request
GET /t
--- response_body_like eval
qr/\Aldm: ok ldm, moved: true
published: true
ordered consumer: 2000 of 2000, in order: true, duplicates: 0
its errors:.*
watcher: last values of 50 keys seen, missing: 0
figures: retries \d+, consumer restarts \d+
start: ok start
healthy: ok healthy
\z/
--- no_error_log
[error]



=== TEST 4: the node that holds an ordered consumer's consumer goes lame duck while it reads: the consumer is made again elsewhere (a remake that fails during the election is retried by the next call), every message once, in order
--- config
    location = /t {
        body_filter_by_lua_block { t034.report(ngx.arg[1]) }
        content_by_lua_block {
            t034.all_up()
            local conn = require("t_shared").connected("r")
            local js = conn:jetstream({ timeout = 2000 })
            t034.fresh_r3(js, "ROLLOC4", "roll.oc4")
            local pub = t034.publisher(js, "roll.oc4.x")
            local FIRST, MORE = 1000, 1000
            for i = 1, FIRST do pub.publish(i) end

            local oc = assert(js:ordered_consumer("ROLLOC4"))
            local ci = assert(js:consumer_info("ROLLOC4", oc:stats().consumer))
            local host = ci.cluster and ci.cluster.leader
            ngx.say("consumer on a node: ", t034.nodes[host] ~= nil)

            local r = t034.read_ordered(oc, FIRST + MORE)
            -- (for 5 s or more: past the node's exit, its JetStream
            -- serves until then)
            local writer = ngx.thread.spawn(function()
                for i = FIRST + 1, FIRST + MORE do
                    pub.publish(i)
                    if i % 10 == 0 then ngx.sleep(0.05) end
                end
            end)
            ngx.sleep(0.5)
            ngx.say("ldm of its node: ", t034.ctl(host, "ldm"))
            ngx.thread.wait(writer)
            ngx.thread.wait(r.thread)
            ngx.say("published: ", pub.published == FIRST + MORE)
            ngx.say("ordered consumer: ", r.got, " of ", FIRST + MORE,
                    ", in order: ", r.order, ", duplicates: ", r.dup,
                    ", made again: ", oc:stats().restarts >= 1)
            ngx.say("its errors:", t034.reasons(r.errs), "; publish retries: ",
                    pub.retries)
            oc:close()
            ngx.say("start: ", t034.ctl(host, "start"))
            ngx.say("healthy: ", t034.ctl(host, "healthy"))
        }
    }
--- request
GET /t
--- response_body_like eval
qr/\Aconsumer on a node: true
ldm of its node: ok ldm
published: true
ordered consumer: 2000 of 2000, in order: true, duplicates: 0, made again: true
its errors:.*
start: ok start
healthy: ok healthy
\z/
--- no_error_log
[error]
