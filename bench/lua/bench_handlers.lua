-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- The nginx side of bench/run.sh: one content handler per scenario,
-- talking to the nats_bench peers (bench/nats_bench.c) through resty.nats.
-- Figures are printed as the response body; a failure answers 500 with
-- the reason.

local nats = require "resty.nats"
local ffi = require "ffi"

local ngx = ngx
local tonumber = tonumber
local tostring = tostring
local pairs = pairs
local string_rep = string.rep
local string_format = string.format

local _M = {}

local host = "127.0.0.1"
local port


function _M.init(nats_port)
    port = nats_port
end


-- init_worker: the worker's shared connection (a resty.nats without
-- nats.shared, from LUA_DIR, has none: its shared scenarios fail)
function _M.init_worker()
    if nats.shared then
        assert(nats.shared("bench", { port = port, name = "bench" }))
    end
end


local function shared()
    local conn, err = nats.shared and nats.shared("bench")
    if not conn then
        return nil, err or "no nats.shared in this resty.nats"
    end
    for _ = 1, 500 do
        if conn:stats().state == "connected" then
            return conn
        end
        ngx.sleep(0.01)
    end
    return nil, "not connected"
end


local function now()
    ngx.update_time()
    return ngx.now()
end


local function fail(...)
    ngx.status = 500
    ngx.say(...)
    return ngx.exit(500)
end


local function connect(timeout)
    local n, err = nats:new()
    if not n then
        return nil, err
    end
    n:set_timeout(timeout)
    local ok
    ok, err = n:connect(host, port)
    if not ok then
        return nil, err
    end
    return n
end


-- one request to a nats_bench control subject; returns the reply payload
local function ask(n, subject, body)
    local reply
    local ok, err = n:request(subject, body, function(m) reply = m.payload end)
    if ok then
        ok, err = n:wait(1)
    end
    if not ok then
        return nil, err
    end
    return reply
end


-- GET /pub?n=N&size=S[&wbuf=B]: N publishes of S bytes on one
-- connection (with wbuf: after set_write_buffer(B)); the rate until the C
-- sink has counted all N
function _M.publish()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local wbuf = tonumber(ngx.var.arg_wbuf)
    local n, err = connect(70000)
    if not n then
        return fail("connect: ", err)
    end
    if wbuf and wbuf > 0 then
        if not n.set_write_buffer then
            return fail("this resty.nats has no set_write_buffer")
        end
        n:set_write_buffer(wbuf)
    end

    local payload = string_rep("x", size)
    local r
    r, err = ask(n, "bench.sinkreset", "")
    if not r then
        return fail("sinkreset: ", err)
    end

    local t0 = now()
    for _ = 1, count do
        local ok
        ok, err = n:publish("bench.sink.lua", payload)
        if not ok then
            return fail("publish: ", err)
        end
    end
    r, err = ask(n, "bench.sinkwait", tostring(count))
    local t1 = now()
    if not r or r:find("^timeout") then
        return fail("sinkwait: ", r or err)
    end

    n:close()
    ngx.say(string_format("%.0f", count / (t1 - t0)))
end


local recv_seq = 0

-- GET /recv?n=N&size=S: subscribes, asks the C publisher (bench.trigger,
-- on the same connection, so the SUB is in place) for N messages of S
-- bytes, wait(N + 1) (N messages + the trigger's "ok"); the rate until
-- the handler has seen all N
function _M.receive()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local n, err = connect(30000)
    if not n then
        return fail("connect: ", err)
    end

    recv_seq = recv_seq + 1
    local subject = "bench.recv.lua." .. ngx.worker.pid() .. "." .. recv_seq
    local got, bytes = 0, 0
    local sid
    sid, err = n:subscribe(subject, function(m)
        got = got + 1
        bytes = bytes + #m.payload
    end)
    if not sid then
        return fail("subscribe: ", err)
    end

    local answer
    local t0 = now()
    local ok
    ok, err = n:request("bench.trigger", subject .. " " .. count .. " " .. size,
                        function(m) answer = m.payload end)
    if ok then
        ok, err = n:wait(count + 1)
    end
    local t1 = now()
    n:close()
    if not ok then
        return fail("wait: ", err, " after ", got, " messages")
    end
    if answer ~= "ok" or got ~= count or bytes ~= count * size then
        return fail("got ", got, " messages, ", bytes, " bytes, trigger: ",
                    answer)
    end

    ngx.say(string_format("%.0f", count / (t1 - t0)))
end


-- GET /gw: the gateway: connect (pooled), request() with a callback,
-- wait(1), set_keepalive, as the README's synopsis
function _M.gateway()
    local n, err = connect(5000)
    if not n then
        ngx.log(ngx.ERR, "gw: connect: ", err)
        return ngx.exit(502)
    end

    local reply
    local ok
    ok, err = n:request("bench.echo", "ping", function(m) reply = m.payload end)
    if ok then
        ok, err = n:wait(1)
    end
    if not ok then
        n:close()
        ngx.log(ngx.ERR, "gw: request: ", err)
        return ngx.exit(502)
    end

    ok, err = n:set_keepalive(60000, 256)
    if not ok then
        ngx.log(ngx.ERR, "gw: set_keepalive: ", err)
    end
    ngx.print(reply)
end


local sync_opts = { timeout = 5000 }

-- GET /sync: the same with the synchronous form of request() (returns
-- the reply message)
function _M.sync()
    local n, err = connect(5000)
    if not n then
        ngx.log(ngx.ERR, "sync: connect: ", err)
        return ngx.exit(502)
    end

    local msg
    msg, err = n:request("bench.echo", "ping", sync_opts)
    if not msg then
        n:close()
        ngx.log(ngx.ERR, "sync: request: ", err)
        return ngx.exit(502)
    end

    local ok
    ok, err = n:set_keepalive(60000, 256)
    if not ok then
        ngx.log(ngx.ERR, "sync: set_keepalive: ", err)
    end
    ngx.print(msg.payload)
end


local token = ffi.new("char[22]")

-- GET /orig: the original pure-Lua library's request pattern, spelled out
-- with this library's primitives so that it stays fixed whatever
-- request() becomes: SUB <fresh inbox>, PUB with that reply subject,
-- wait(1), UNSUB: three sends per request
function _M.original()
    local n, err = connect(5000)
    if not n then
        ngx.log(ngx.ERR, "orig: connect: ", err)
        return ngx.exit(502)
    end

    if ffi.C.resty_nats_random_token(token, 22) ~= 0 then
        return ngx.exit(500)
    end
    local inbox = "_INBOX." .. ffi.string(token, 22)

    local reply
    local sid, ok
    sid, err = n:subscribe(inbox, function(m) reply = m.payload end)
    if sid then
        ok, err = n:publish("bench.echo", "ping", inbox)
        if ok then
            ok, err = n:wait(1)
        end
        if ok then
            ok, err = n:unsubscribe(sid)
        end
    end
    if not sid or not ok then
        n:close()
        ngx.log(ngx.ERR, "orig: request: ", err)
        return ngx.exit(502)
    end

    ok, err = n:set_keepalive(60000, 256)
    if not ok then
        ngx.log(ngx.ERR, "orig: set_keepalive: ", err)
    end
    ngx.print(reply)
end



-- one request over a bare cosocket subscribed to inbox .. "*": PUB to
-- bench.echo with the reply subject inbox .. "r", then the MSG line
-- (answering the server's PINGs) and the payload; returns the payload or
-- nil, err
local function raw_exchange(sock, inbox)
    local ok, err = sock:send("PUB bench.echo " .. inbox .. "r 4\r\nping\r\n")
    if not ok then
        return nil, err
    end
    local line
    line, err = sock:receive("*l")
    while line == "PING" do
        sock:send("PONG\r\n")
        line, err = sock:receive("*l")
    end
    if not line or line:sub(1, 4) ~= "MSG " then
        return nil, err or line
    end
    return sock:receive("*l")
end


-- GET /cpu?n=N: the worker's CPU time (os.clock: user + system of the
-- process) per request over N sequential requests to bench.echo on one
-- connection: with a raw cosocket (PUB with a reply subject, then read
-- the MSG line and the payload: the least any Lua client can do), and
-- with resty.nats' synchronous request. Prints "<raw> <resty.nats>" in
-- microseconds. (Connecting per request is left out on purpose: 20,000
-- cosocket objects in one request grow that request's memory pool, which
-- an HTTP request per connection never does; the gateway rows measure
-- that cycle per HTTP request instead.)
function _M.cpu()
    local N = tonumber(ngx.var.arg_n) or 20000
    local opts = { timeout = 5000 }

    local function measure(f)
        collectgarbage()
        local c0 = os.clock()
        for _ = 1, N do
            local ok, err = f()
            if not ok then
                return nil, err
            end
        end
        collectgarbage()
        return (os.clock() - c0) / N * 1e6
    end

    local sock = ngx.socket.tcp()
    sock:settimeout(5000)
    local ok, err = sock:connect(host, port)
    if not ok then
        return fail("cpu: raw connect: ", err)
    end
    sock:receive("*l")  -- INFO
    sock:send('CONNECT {"verbose":false}\r\nSUB _INBOX.cpuraw.* 1\r\n'
              .. "PING\r\n")
    local line = sock:receive("*l")
    if line ~= "PONG" then
        return fail("cpu: raw handshake: ", tostring(line))
    end
    local raw
    raw, err = measure(function()
        return raw_exchange(sock, "_INBOX.cpuraw.")
    end)
    sock:close()
    if not raw then
        return fail("cpu: raw: ", err)
    end

    local one = connect(5000)
    if not one then
        return fail("cpu: connect failed")
    end
    local lib
    lib, err = measure(function()
        return one:request("bench.echo", "ping", opts)
    end)
    one:close()
    if not lib then
        return fail("cpu: request: ", err)
    end

    ngx.say(string_format("%.1f %.1f", raw, lib))
end


-- GET /raw: the least a gateway in Lua can do, without this library: a
-- pooled cosocket per HTTP request; on a new connection, read INFO and
-- send CONNECT and the SUB of the connection's own inbox wildcard; then
-- PUB bench.echo with a reply subject in that inbox, read the MSG line
-- (answering the server's PINGs) and the payload, setkeepalive. Each
-- pooled connection needs an inbox of its own, so connections live in
-- pools of one ("bench-raw#k", k from a per-worker free list), as in
-- resty.nats. No error handling beyond giving up: a yardstick, not a
-- client.
local raw_free, raw_nfree, raw_n = {}, 0, 0

function _M.raw()
    local k
    if raw_nfree > 0 then
        k = raw_free[raw_nfree]
        raw_free[raw_nfree] = nil
        raw_nfree = raw_nfree - 1
    else
        raw_n = raw_n + 1
        k = raw_n
    end

    local sock = ngx.socket.tcp()
    sock:settimeout(5000)
    local ok, err = sock:connect(host, port, { pool = "bench-raw#" .. k })
    if not ok then
        raw_nfree = raw_nfree + 1
        raw_free[raw_nfree] = k
        ngx.log(ngx.ERR, "raw: connect: ", err)
        return ngx.exit(502)
    end

    local inbox = "_INBOX.raw" .. ngx.worker.pid() .. "." .. k .. "."
    if sock:getreusedtimes() == 0 then
        sock:receive("*l")  -- INFO
        sock:send('CONNECT {"verbose":false,"pedantic":false}\r\nSUB '
                  .. inbox .. "* 1\r\n")
    end

    local payload
    payload, err = raw_exchange(sock, inbox)
    if not payload then
        sock:close()
        raw_nfree = raw_nfree + 1
        raw_free[raw_nfree] = k
        ngx.log(ngx.ERR, "raw: request: ", err)
        return ngx.exit(502)
    end

    sock:setkeepalive(60000, 1)
    raw_nfree = raw_nfree + 1
    raw_free[raw_nfree] = k
    ngx.print(payload)
end


-- JetStream ------------------------------------------------------------------

-- a stream of memory storage on subjects "<prefix>.>", empty
local function fresh_stream(js, name, prefix, extra)
    js:delete_stream(name)
    local cfg = { name = name, subjects = { prefix .. ".>" },
                  storage = "memory" }
    for k, v in pairs(extra or {}) do
        cfg[k] = v
    end
    return js:add_stream(cfg)
end


-- GET /jspub?n=N&size=S: N js:publish (each waits for its ack) of S bytes
-- on a per-request connection (stream BENCHJS, as nats_bench jspub)
function _M.js_publish()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local n, err = connect(30000)
    if not n then
        return fail("connect: ", err)
    end
    local js = n:jetstream({ timeout = 10000 })
    local ok
    ok, err = fresh_stream(js, "BENCHJS", "bench.js")
    if not ok then
        return fail("stream: ", err)
    end
    local payload = string_rep("x", size)
    local t0 = now()
    for _ = 1, count do
        local ack
        ack, err = js:publish("bench.js.lua", payload)
        if not ack then
            return fail("js:publish: ", err)
        end
    end
    local t1 = now()
    n:close()
    ngx.say(string_format("%.0f", count / (t1 - t0)))
end


-- GET /jsfetch?n=N&batch=B: N messages stored in BENCHFETCH, then read
-- by a durable pull consumer, B at a time, each acked (as nats_bench
-- jsfetch); the rate of the reading
function _M.js_fetch()
    local count = tonumber(ngx.var.arg_n)
    local batch = tonumber(ngx.var.arg_batch)
    local n, err = connect(30000)
    if not n then
        return fail("connect: ", err)
    end
    local js = n:jetstream({ timeout = 10000 })
    local ok
    ok, err = fresh_stream(js, "BENCHFETCH", "bench.fetch")
    if not ok then
        return fail("stream: ", err)
    end
    n:set_write_buffer(65536)
    for _ = 1, count do
        n:publish("bench.fetch.x", "0123456789abcdef")
    end
    n:set_write_buffer(0)
    assert(n:flush())
    local info = js:stream_info("BENCHFETCH")
    if not info or info.state.messages ~= count then
        return fail("stored: ", info and info.state.messages)
    end
    ok, err = js:add_consumer("BENCHFETCH", { durable_name = "lfetch",
                                              ack_policy = "explicit" })
    if not ok then
        return fail("consumer: ", err)
    end
    local got = 0
    local t0 = now()
    while got < count do
        local msgs
        msgs, err = js:fetch("BENCHFETCH", "lfetch", { batch = batch })
        if not msgs or #msgs == 0 then
            return fail("fetch: ", err or "nothing after " .. got)
        end
        for i = 1, #msgs do
            msgs[i]:ack()
        end
        got = got + #msgs
    end
    local t1 = now()
    n:close()
    ngx.say(string_format("%.0f", got / (t1 - t0)))
end


-- GET /jssetup: the stream of /ingest and the bucket of /kvget
function _M.js_setup()
    local conn, err = shared()
    if not conn then
        return fail("shared: ", err)
    end
    local js = conn:jetstream()
    local ok
    ok, err = fresh_stream(js, "BENCHINGEST", "bench.ingest",
                           { max_msgs = 100000, discard = "old",
                             duplicate_window = 10 * 1e9 })
    if not ok then
        return fail("stream: ", err)
    end
    js:delete_key_value("bench")
    local kv
    kv, err = js:create_key_value({ bucket = "bench", storage = "memory" })
    if not kv then
        return fail("kv: ", err)
    end
    ok, err = kv:put("flag", "on")
    if not ok then
        return fail("kv put: ", err)
    end
    ngx.say("ok")
end


local ingest_seq = 0
local ingest_opts = { msg_id = "" }
local bench_js, bench_kv      -- per worker, made at the first use

-- GET /ingest: the HTTP ingestion gateway on the shared connection:
-- js:publish with a msg_id, 202 after the stream's ack
function _M.ingest()
    local js = bench_js
    if not js then
        js = nats.shared("bench"):jetstream()
        bench_js = js
    end
    ingest_seq = ingest_seq + 1
    ingest_opts.msg_id = ngx.worker.pid() .. "-" .. ingest_seq
    local ack, err = js:publish("bench.ingest.x", "event", ingest_opts)
    if not ack then
        ngx.log(ngx.ERR, "ingest: ", err)
        return ngx.exit(503)
    end
    ngx.status = 202
    ngx.print(ack.seq)
end


-- GET /kvget: one kv:get per HTTP request on the shared connection
function _M.kv_get()
    local kv = bench_kv
    if not kv then
        kv = assert(nats.shared("bench"):jetstream():key_value("bench"))
        bench_kv = kv
    end
    local e, err = kv:get("flag")
    if not e then
        ngx.log(ngx.ERR, "kvget: ", err)
        return ngx.exit(502)
    end
    ngx.print(e.value)
end


-- a plain cosocket speaking NATS as the original library did: INFO read,
-- CONNECT sent, no checks
local function bare_connect()
    local sock = ngx.socket.tcp()
    sock:settimeout(70000)
    local ok, err = sock:connect(host, port)
    if not ok then
        return nil, err
    end
    sock:receive("*l")  -- INFO
    sock:send('CONNECT {"verbose":false,"pedantic":false}\r\n')
    return sock
end


-- count publishes the original library's way: one string built in Lua and
-- one send each; nil, or the send's error
local function bare_publish_loop(sock, subject, payload, count)
    for _ = 1, count do
        local _, err = sock:send("PUB " .. subject .. " " .. #payload
                                 .. "\r\n" .. payload .. "\r\n")
        if err then
            return err
        end
    end
end


-- GET /bpub?n=N&size=S: what the original pure-Lua library does per
-- publish, on a bare cosocket: one string built in Lua ("PUB <subject>
-- <len>\r\n<payload>\r\n") and one send per message. A yardstick for the
-- unbuffered publish of per-request objects, not a client (no checks).
function _M.bare_publish()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local n, err = connect(70000)
    if not n then
        return fail("connect: ", err)
    end
    local r
    r, err = ask(n, "bench.sinkreset", "")
    if not r then
        return fail("sinkreset: ", err)
    end

    local sock
    sock, err = bare_connect()
    if not sock then
        return fail("bare connect: ", err)
    end

    local payload = string_rep("x", size)
    local t0 = now()
    local serr = bare_publish_loop(sock, "bench.sink.lua", payload, count)
    if serr then
        return fail("bare send: ", serr)
    end
    r, err = ask(n, "bench.sinkwait", tostring(count))
    local t1 = now()
    sock:close()
    n:close()
    if not r or r:find("^timeout") then
        return fail("sinkwait: ", r or err)
    end
    ngx.say(string_format("%.0f", count / (t1 - t0)))
end


-- GET /pubcmp?n=N&size=S&rounds=R: the unbuffered publish of a per-request
-- object and the bare cosocket way (/bpub) interleaved in one handler: R
-- rounds of N messages each, the two taking turns going first, so that a
-- drift of the machine weighs on both; the worker's CPU (os.clock: user +
-- system) and the wall time per message of each, summed over the rounds,
-- once the sink counted all 2 x R x N: "cpu_lib cpu_bare wall_lib
-- wall_bare" in us
function _M.publish_compare()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local rounds = tonumber(ngx.var.arg_rounds) or 10
    local n, err = connect(70000)
    if not n then
        return fail("connect: ", err)
    end
    local r
    r, err = ask(n, "bench.sinkreset", "")
    if not r then
        return fail("sinkreset: ", err)
    end
    local sock
    sock, err = bare_connect()
    if not sock then
        return fail("bare connect: ", err)
    end

    local payload = string_rep("x", size)
    local function lib()
        for _ = 1, count do
            local sent, perr = n:publish("bench.sink.lua", payload)
            if not sent then
                return perr
            end
        end
    end
    local function bare()
        return bare_publish_loop(sock, "bench.sink.bare", payload, count)
    end
    local cpu = { lib = 0, bare = 0 }
    local wall = { lib = 0, bare = 0 }
    local order = { { "lib", lib, "bare", bare }, { "bare", bare, "lib", lib } }
    for i = 1, rounds do
        local o = order[i % 2 + 1]
        for k = 1, 3, 2 do
            local name, f = o[k], o[k + 1]
            local t0, c0 = now(), os.clock()
            local ferr = f()
            local c1, t1 = os.clock(), now()
            if ferr then
                return fail(name, ": ", ferr)
            end
            cpu[name] = cpu[name] + (c1 - c0)
            wall[name] = wall[name] + (t1 - t0)
        end
    end
    r, err = ask(n, "bench.sinkwait", tostring(2 * rounds * count))
    sock:close()
    n:close()
    if not r or r:find("^timeout") then
        return fail("sinkwait: ", r or err)
    end
    local per = 1e6 / (rounds * count)
    ngx.say(string_format("%.3f %.3f %.3f %.3f", cpu.lib * per,
                          cpu.bare * per, wall.lib * per, wall.bare * per))
end


-- GET /spub?n=N&size=S: N publishes of S bytes from one handler through
-- the worker's shared connection; the rate until the C sink has counted
-- all N (the handler never flushes: the connection writes in batches)
function _M.shared_publish()
    local count = tonumber(ngx.var.arg_n)
    local size = tonumber(ngx.var.arg_size)
    local conn, err = shared()
    if not conn then
        return fail("shared: ", err)
    end
    local payload = string_rep("x", size)
    local r
    r, err = conn:request("bench.sinkreset", "")
    if not r then
        return fail("sinkreset: ", err)
    end

    local t0 = now()
    for _ = 1, count do
        local ok
        ok, err = conn:publish("bench.sink.lua", payload)
        if not ok then
            return fail("publish: ", err)
        end
    end
    r, err = conn:request("bench.sinkwait", tostring(count),
                          { timeout = 60000 })
    local t1 = now()
    if not r or r.payload:find("^timeout") then
        return fail("sinkwait: ", r and r.payload or err)
    end
    ngx.say(string_format("%.0f", count / (t1 - t0)))
end


-- GET /sgw: the gateway on the worker's shared connection: one request
function _M.shared_gateway()
    local conn, err = nats.shared("bench")
    if not conn then
        ngx.log(ngx.ERR, "sgw: ", err)
        return ngx.exit(502)
    end
    local msg
    msg, err = conn:request("bench.echo", "ping", sync_opts)
    if not msg then
        ngx.log(ngx.ERR, "sgw: request: ", err)
        return ngx.exit(502)
    end
    ngx.print(msg.payload)
end


-- GET /spubgw: an HTTP publish gateway on the shared connection: one
-- message per HTTP request, answered once queued
function _M.shared_publish_gateway()
    local conn, err = nats.shared("bench")
    local ok
    if conn then
        ok, err = conn:publish("bench.sink.gw", "ping")
    end
    if not ok then
        ngx.log(ngx.ERR, "spubgw: ", err)
        return ngx.exit(502)
    end
    ngx.print("ok")
end


-- GET /ppubgw: the same with a pooled connection per HTTP request
function _M.pooled_publish_gateway()
    local n, err = connect(5000)
    local ok
    if n then
        ok, err = n:publish("bench.sink.gw", "ping")
    end
    if not ok then
        ngx.log(ngx.ERR, "ppubgw: ", err)
        return ngx.exit(502)
    end
    n:set_keepalive(60000, 256)
    ngx.print("ok")
end


local function rss_kib()
    local f = io.open("/proc/self/status")
    local text = f:read("*a")
    f:close()
    return tonumber(text:match("VmRSS:%s*(%d+)"))
end


-- GET /fanout?w=W&n=M&size=S: W light threads, each with a request-scoped
-- subscription of its own on one subject, wait in sub:next for M messages
-- that the C peer publishes; prints "<deliveries/s> <lost> <KiB of worker
-- RSS per waiter>"
function _M.fanout()
    local W = tonumber(ngx.var.arg_w) or 1000
    local M = tonumber(ngx.var.arg_n) or 100
    local size = tonumber(ngx.var.arg_size) or 16
    local conn, err = shared()
    if not conn then
        return fail("shared: ", err)
    end
    collectgarbage()
    local rss0 = rss_kib()
    local subject = "bench.fan." .. ngx.worker.pid() .. "." .. now()
    local subs = {}
    for i = 1, W do
        local sub
        sub, err = conn:subscribe(subject)
        if not sub then
            return fail("subscribe: ", err)
        end
        subs[i] = sub
    end
    local got = 0
    local function waiter(sub)
        for _ = 1, M do
            local msg = sub:next(10000)
            if not msg then
                return
            end
            got = got + 1
        end
    end
    local threads = {}
    for i = 1, W do
        threads[i] = ngx.thread.spawn(waiter, subs[i])
    end
    local ok
    ok, err = conn:flush(5000)        -- every SUB is at the server
    if not ok then
        return fail("flush: ", err)
    end
    local t0 = now()
    local r
    r, err = conn:request("bench.trigger", subject .. " " .. M .. " " .. size,
                          { timeout = 60000 })
    if not r then
        return fail("trigger: ", err)
    end
    for i = 1, W do
        ngx.thread.wait(threads[i])
    end
    local t1 = now()
    local rss1 = rss_kib()
    for i = 1, W do
        subs[i]:unsubscribe()
    end
    ngx.say(string_format("%.0f %d %.2f", got / (t1 - t0), W * M - got,
                          (rss1 - rss0) / W))
end

return _M
