-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.move: when the server of a shared connection enters
-- lame duck mode (an INFO with "ldm": true; it closes its clients after
-- its grace period), the connection moves to another server of the
-- cluster before that, and no request fails:
--
--   1. a second connection is made to another server of the list (the
--      learnt members included; shuffled, after a random pause so that
--      the workers of a host do not all move at the same moment), and
--      every subscription, the request inbox included, is made there; its
--      PONG confirms them;
--   2. the switch (no yield): the writer sends what comes next there, a
--      new reader reads it;
--   3. the old connection ends its subscriptions (the inbox stays) and
--      its reader, once it sees the switch, finishes what is in flight
--      there: replies of requests sent before the switch (they come over
--      either connection, the first one wins), PONGs; it is closed when
--      none is left, when their timeouts pass, or when the server closes
--      it. (The old reader is not killed: a light thread killed while it
--      waits on a cosocket closes that socket.)
--
-- A message of a plain subscription published in the moment both
-- connections are subscribed may come twice (once over each); members of
-- a queue group get each message once.

local core = require "resty.nats.core"
local EV_MSG, EV_HMSG = core.EV_MSG, core.EV_HMSG
local conn = require "resty.nats.conn"
local deliver, control = conn.deliver, conn.control
local events = require "resty.nats.events"
local next_event = events.next_event
local frame = require "resty.nats.frame"
local PING = frame.PING
local servers = require "resty.nats.servers"
local settings = require "resty.nats.settings"
local now_ms = settings.now_ms
local subs = require "resty.nats.subs"
local unsub_frame = subs.unsub_frame
local queue = require "resty.nats.shared.queue"
local ctl = queue.ctl

local tcp = ngx.socket.tcp
local spawn = ngx.thread.spawn
local ngx_sleep = ngx.sleep
local ngx_log = ngx.log
local ngx_WARN, ngx_NOTICE = ngx.WARN, ngx.NOTICE
local pairs, ipairs, tostring = pairs, ipairs, tostring
local random = require("resty.nats.frame").random


local _M = {}

local MOVE_JITTER = 250         -- ms at most before a move starts
local OLD_MIN_LINGER = 500      -- ms the old connection stays at least
local OLD_MAX_LINGER = 60000    -- ms at most
local PEEK_INTERVAL = 100       -- ms between looks at what is in flight


-- an event of the connection on side state link (new or old): a message
-- to connection c's subscriptions and requests, the rest to link's state;
-- as conn.control
local function dispatch(c, link, ev)
    local t = ev.type
    if t == EV_MSG or t == EV_HMSG then
        deliver(c, ev)
        return nil
    end
    return control(link, ev)
end


-- a connect to srv for the move, on side state n; true once connected
local function attempt(n, srv, c)
    if c._lost or c._closing or c._exiting then
        return nil, "connection lost or closed meanwhile", true
    end
    local sock, err = tcp()
    if not sock then
        return nil, err, true
    end
    local to = c._timeouts
    sock:settimeouts(to[1], to[2], to[3])
    n._timeouts = to
    local ok
    ok, err = conn.connect_socket(sock, srv)
    if not ok then
        return nil, err
    end
    n._sock = sock
    ok, err = events.new_parser(n)
    if ok then
        ok, err = conn.handshake(n, srv, c._opts)
    end
    if ok and n._info.ldm then
        ok, err = nil, "in lame duck mode too"
    end
    if not ok then
        sock:close()
        return nil, err
    end
    return true
end


-- the subscriptions made on the new connection (n's socket), confirmed
-- by its PONG; messages that come meanwhile are delivered. A table of
-- the sids sent, or nil, err
local function subscribe_there(c, n)
    local frames, err = subs.resub_frames(c)
    if not frames then
        return nil, err
    end
    local sent = {}
    for nsid in pairs(c._subs) do
        sent[nsid] = true
    end
    local w = { done = false }
    frames[#frames + 1] = conn.ping(n, w)
    local sock = n._sock
    local _
    _, err = sock:send(frames)
    if err then
        return nil, err
    end
    local deadline = now_ms() + settings.read_timeout(c)
    while not w.done do
        local ev, out, fatal
        ev, err = next_event(n, deadline)
        if not ev then
            return nil, err
        end
        out, err, fatal = dispatch(c, n, ev)
        if out then
            _, err = sock:send(out)
            if err then
                return nil, err
            end
        elseif fatal then
            return nil, err
        end
    end
    return sent
end


-- true while a request of tokens still waits for its reply (the answered
-- ones are dropped from the list)
local function waiting(c, tokens)
    local resp = c._resp
    local k = 0
    for i = 1, #tokens do
        local t = tokens[i]
        if resp[t] then
            k = k + 1
            tokens[k] = t
        end
    end
    for i = k + 1, #tokens do
        tokens[i] = nil
    end
    return k > 0
end


-- one send at a time on a socket: until the queue's writer is done with
-- its last send to the old one (5 s at most)
local function writer_off(c, sock)
    local t0 = now_ms()
    while c._wsock == sock and now_ms() - t0 < 5000 do
        ngx_sleep(0.001)
    end
end


-- The old connection o after the switch, in its reader, from the event
-- (or read error) that reader got when it saw the switch: what is in
-- flight there finishes, then it is closed
function _M.finish_old(c, o, ev, err)
    local sock = o._sock
    local why, _
    while true do
        if ev then
            -- replies, the last messages of subscriptions, PONGs
            local out, fatal
            out, err, fatal = dispatch(c, o, ev)
            if out then
                sock:send(out)
            elseif fatal then
                why = err
                break
            end
        elseif err ~= "timeout" then
            why = err
            break
        end

        if c._state ~= "connected" or c._closing or c._exiting then
            why = "connection " .. (c._closing and "closing" or c._state)
            break
        end
        local now = now_ms()
        local pinged = o._pqh <= o._pqt
        if not pinged then
            if now >= o._early and not waiting(c, o._tokens) then
                why = "nothing in flight"
                break
            end
            if now >= o._until then
                why = "in-flight timeouts passed"
                break
            end
            -- a reply may come over the new connection instead: a PING
            -- now and then wakes this reader to look (a read that times
            -- out would be logged as an error)
            ngx_sleep(PEEK_INTERVAL / 1000)
            writer_off(c, sock)
            _, err = sock:send(conn.ping(o, false))
            if err then
                why = err
                break
            end
        end
        ev, err = next_event(o, o._until + 1000)
    end

    writer_off(c, sock)
    sock:close()
    c._olds[sock] = nil
    -- a flush that waited for a PONG there
    conn.fail_inflight(o, "disconnected")
    ngx_log(ngx_NOTICE, c._log_prefix, "old connection to ", o._server.key,
            " closed: ", why)
end


-- the old connection's subscriptions end there (the inbox stays), and a
-- PING makes its reader see the switch
local function leave(c, o)
    local sock = o._sock
    writer_off(c, sock)
    local frames = subs.unsub_all_frames(c, c._inbox_sid)
    frames[#frames + 1] = conn.ping(o, false)
    sock:send(frames)
end


-- the switch to the new connection n: no yield in here
local function switch(c, n, reader)
    local now = now_ms()
    local o = {
        _log_prefix = c._log_prefix, _cluster_key = c._cluster_key,
        _opts = c._opts, _olen = 0, _resp = {}, _nresp = 0,
        _sock = c._sock, _parser = c._parser, _timeouts = c._timeouts,
        _info = c._info, _server = c._server, _tls = c._tls,
        _pq = {}, _pqh = c._pqh, _pqt = c._pqt, _pings_out = 0,
        _acked = 0, _tokens = {}, _early = now + OLD_MIN_LINGER,
    }
    -- PINGs in flight: those sent there get their PONG there (nothing to
    -- wake), the waiters stay here, and as many PINGs go out on the new
    -- connection, so that each waiter gets a PONG from it
    local npings = c._pqt - c._pqh + 1
    for i = c._pqh, c._pqt do
        o._pq[i] = false
    end

    -- the requests in flight, answered over either connection
    local tokens = o._tokens
    local until_ms = o._early
    for t, w in pairs(c._resp) do
        tokens[#tokens + 1] = t
        local e = w.expires
        if e and e > until_ms then
            until_ms = e
        end
    end
    if until_ms > now + OLD_MAX_LINGER then
        until_ms = now + OLD_MAX_LINGER
    end
    o._until = until_ms
    c._olds[o._sock] = o

    c._sock, c._parser, c._timeouts = n._sock, n._parser, n._timeouts
    c._info, c._max_payload, c._tls = n._info, n._max_payload, n._tls
    c._server = n._server
    c._pings_out = 0
    queue.use_socket(c, n._sock)
    local to = n._timeouts
    n._sock:settimeouts(to[1], to[2], c._ping_interval)

    for _ = 1, npings do
        ctl(c, PING)
    end
    queue.wake_writer(c)
    return spawn(reader, c), o
end


-- what changed in the subscriptions while the new connection was being
-- subscribed (its frames went to the old one): made there too
local function catch_up(c, sent)
    for nsid, sub in pairs(c._subs) do
        if not sent[nsid] then
            local frames = subs.sub_frames({}, nsid, sub)
            for _, f in ipairs(frames or {}) do
                ctl(c, f)
            end
        end
    end
    for nsid in pairs(sent) do
        if not c._subs[nsid] then
            ctl(c, unsub_frame(nsid, 0))
        end
    end
end


-- Moves connection c (its reader rt) to another server; returns the
-- reader then (a new one after a move) and true, or rt, false, why not.
function _M.move(c, rt, reader)
    local old = c._server
    local opts = c._opts
    local list = servers.server_list(opts, opts.host or "127.0.0.1",
                                     opts.port)
    local others = {}
    for _, srv in ipairs(list or {}) do
        if srv.key ~= old.key then
            others[#others + 1] = srv
        end
    end
    -- not that one again soon
    servers.mark_down(old.key)
    if #others == 0 then
        return rt, false, "no other server known"
    end

    ngx_sleep(random() * MOVE_JITTER / 1000)

    local n = { _log_prefix = c._log_prefix, _cluster_key = c._cluster_key,
                _opts = opts, _olen = 0 }
    conn.reset(n)
    local srv, err = conn.connect(n, others, attempt, c)
    if not srv then
        return rt, false, err
    end
    local sent
    sent, err = subscribe_there(c, n)
    if not sent or c._lost or c._closing or c._exiting
       or c._state ~= "connected"
    then
        n._sock:close()
        return rt, false, tostring(err or "connection lost meanwhile")
    end

    local new_rt, o = switch(c, n, reader)
    catch_up(c, sent)
    leave(c, o)
    c._moves = (c._moves or 0) + 1
    ngx_log(ngx_NOTICE, c._log_prefix, "moved from ", old.key, " to ",
            srv.key, ": the server entered lame duck mode")
    return new_rt, true
end


return _M
