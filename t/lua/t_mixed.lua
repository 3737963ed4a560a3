-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- Messages of mixed sizes, published among SUB/UNSUB frames, arrive in
-- order and intact, whichever way the lua module under test sends them:
-- through send_nats_buf (t/025-send-buf.t) or the stock send
-- (t/026-send-stock.t). Each function publishes on subjects under prefix
-- ("t025", "t026": the suites run against the same nats-server) and
-- returns what the test prints: "in order, intact: true (N)", after
-- "message I differs" when one does. ready, when given, is called right
-- before the first publish (t/025 counts the calls of send_nats_buf from
-- there: not those of the CONNECT or the SUB).

local nats = require "resty.nats"
local t_shared = require "t_shared"

local _M = {}

-- the worker's shared connection that _M.shared publishes on, and what
-- its subscription has received
local SHARED = "main"
local shared_got = {}


local function verdict(got, want)
    for i = 1, #want do
        if got[i] ~= want[i] then
            return "message " .. i .. " differs\n"
                   .. "in order, intact: false (" .. #got .. ")"
        end
    end
    return "in order, intact: " .. tostring(#got == #want)
           .. " (" .. #got .. ")"
end


-- a per-request object on port (with a write buffer of wbuf bytes when
-- given) whose subscription to subject adds what fmt makes of each
-- message to got
local function open(port, subject, got, fmt, wbuf)
    local n = assert(nats:new())
    n:set_timeout(3000)
    assert(n:connect("127.0.0.1", port))
    if wbuf then
        assert(n:set_write_buffer(wbuf))
    end
    assert(n:subscribe(subject, function(m)
        got[#got + 1] = fmt(m)
    end))
    return n
end


-- flushes n and receives until got has as many messages as want (or
-- nothing comes for the timeout)
local function receive(n, got, want)
    assert(n:flush())
    while #got < #want do
        if not n:wait(1) then break end
    end
    n:close()
    return verdict(got, want)
end


-- in init_worker_by_lua: starts the shared connection to port that
-- _M.shared uses, subscribed to <prefix>.cb
function _M.start_shared(prefix, port)
    local conn = assert(nats.shared(SHARED, {
        port = port, name = prefix .. "-" .. SHARED,
    }))
    assert(conn:subscribe(prefix .. ".cb", function(msg)
        shared_got[#shared_got + 1] = msg.payload
    end))
end


-- the shared connection publishes on <prefix>.cb payloads of 1 B to
-- 70 KB, with a SUB and an UNSUB among them, then 2000 more of up to
-- 1.5 KB, received by its own subscription. Its writer sends a payload
-- by reference, among the queued bytes, from 512 bytes on with the stock
-- send (511 and 512 here), from 32 KiB on through send_nats_buf (70000).
-- Returns the connection too.
function _M.shared(prefix, ready)
    local conn = t_shared.connected(SHARED)
    local got = shared_got
    if ready then ready() end
    local subject = prefix .. ".cb"
    local want = {}
    local sizes = { 10, 600, 5000, 1, 511, 512, 70000 }
    for round = 1, 3 do
        for i, n in ipairs(sizes) do
            local p = string.rep(string.char(64 + i), n) .. round
            want[#want + 1] = p
            assert(conn:publish(subject, p))
            if i == 3 then
                local sub = assert(conn:subscribe(prefix .. ".between"))
                sub:unsubscribe()
            end
        end
    end
    for i = 1, 2000 do
        local p = string.rep(string.char(65 + i % 26), i % 1500) .. i
        want[#want + 1] = p
        assert(conn:publish(subject, p))
    end
    assert(conn:flush())
    -- the worker's subscription gets them: wait up to 2 s
    for _ = 1, 200 do
        if #got >= #want then break end
        ngx.sleep(0.01)
    end
    return verdict(got, want), conn
end


-- a per-request object with a 4 KiB write buffer publishes 500 messages
-- of up to 700 bytes on <prefix>.wb, to itself
function _M.write_buffer(prefix, port, ready)
    local got = {}
    local n = open(port, prefix .. ".wb", got, function(m)
        return m.payload
    end, 4096)
    if ready then ready() end
    local want = {}
    for i = 1, 500 do
        want[i] = string.rep("w", i % 700) .. i
        assert(n:publish(prefix .. ".wb", want[i]))
    end
    return receive(n, got, want)
end


-- a per-request object publishes unbuffered on <prefix>.ub, to itself,
-- 240 messages of 0 B to 70 KB, a third with a reply subject, a third
-- with a header, a SUB and an UNSUB after every 50th
function _M.unbuffered(prefix, port, ready)
    local got = {}
    local n = open(port, prefix .. ".ub", got, function(m)
        return m.payload .. "|" .. (m.reply_to or "") .. "|"
               .. (m.headers and m.headers["X-I"] or "")
    end)
    if ready then ready() end
    local want = {}
    -- 65000 fits the 64 KiB scratch with its control line, 65600
    -- does not (a list of strings then)
    local sizes = { 0, 1, 16, 1024, 65000, 65600, 70000, 3 }
    for i = 1, 240 do
        local p = string.rep(string.char(65 + i % 26),
                             sizes[i % #sizes + 1]) .. i
        local opts, reply, hdr = nil, "", ""
        if i % 3 == 1 then
            reply = prefix .. ".r" .. i
            opts = { reply_to = reply }
        elseif i % 3 == 2 then
            hdr = tostring(i)
            opts = { headers = { ["X-I"] = hdr } }
        end
        assert(n:publish(prefix .. ".ub", p, opts))
        want[#want + 1] = p .. "|" .. reply .. "|" .. hdr
        if i % 50 == 0 then
            -- a SUB and an UNSUB among the messages
            local sid = assert(n:subscribe(prefix .. ".other",
                                           function() end))
            assert(n:unsubscribe(sid))
        end
    end
    return receive(n, got, want)
end


return _M
