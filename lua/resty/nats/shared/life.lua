-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.life: the life of a shared connection. A cosocket
-- belongs to the request or timer that made it, so the connection lives in
-- a timer of its own: its main thread connects over the server list (the
-- engine's connect, as per-request objects do), resubscribes, and runs two
-- light threads, the reader (events in, dispatched by the engine) and the
-- writer (resty.nats.shared.queue), until the connection is lost (then it
-- reconnects with backoff) or closed (it drains first); at worker exit it
-- drains and closes.

local core = require "resty.nats.core"
local EV_MSG, EV_HMSG, EV_INFO = core.EV_MSG, core.EV_HMSG, core.EV_INFO
local settings = require "resty.nats.settings"
local servers = require "resty.nats.servers"
local conn = require "resty.nats.conn"
local deliver, control = conn.deliver, conn.control
local events = require "resty.nats.events"
local next_event = events.next_event
local subs = require "resty.nats.subs"
local queue = require "resty.nats.shared.queue"
local ctl = queue.ctl
local waiters = require "resty.nats.shared.waiters"
local move = require "resty.nats.shared.move"

local tcp = ngx.socket.tcp
local timer_at = ngx.timer.at
local spawn, kill = ngx.thread.spawn, ngx.thread.kill
local ngx_log = ngx.log
local ngx_ERR, ngx_WARN, ngx_NOTICE = ngx.ERR, ngx.WARN, ngx.NOTICE
local pairs, tostring = pairs, tostring
local random = require("resty.nats.frame").random


local _M = {}

local RECONNECT_JITTER = 100            -- ms at most, added at random
local IDLE_WAIT = 30                    -- s the main thread sleeps at most
local EXIT_TIMER = 100000000            -- s: fires only at worker exit


-- the connection failed: the main thread reconnects
local function lost(c, err)
    if not c._lost then
        c._lost = err
        c._main_sema:post(1)
    end
end


-- everything in flight on a connection that is gone gets err
local function fail_all(c, err)
    conn.fail_inflight(c, err)
    queue.lost(c)
end


local function reader(c)
    local sock = c._sock
    while true do
        local ev, err, fatal = next_event(c, nil)
        if c._sock ~= sock then
            -- the connection moved to another server while this read
            -- waited: this is the old one's reader now
            return move.finish_old(c, c._olds[sock], ev, err)
        end
        if not ev then
            if err ~= "timeout" then
                return lost(c, err)
            end
            -- nothing for a ping interval: is the server still there?
            if c._pings_out >= c._max_pings_out then
                return lost(c, "stale connection")
            end
            c._pings_out = c._pings_out + 1
            ctl(c, conn.ping(c, false))

        else
            local t = ev.type
            if t == EV_MSG or t == EV_HMSG then
                deliver(c, ev)
            else
                local out
                out, err, fatal = control(c, ev)
                if out then
                    ctl(c, out)
                elseif fatal then
                    return lost(c, err)
                elseif err then
                    ngx_log(ngx_WARN, c._log_prefix, "server error: ", err)
                elseif t == EV_INFO and c._info.ldm and not c._ldm then
                    -- lame duck mode: the main thread moves the connection
                    c._ldm = true
                    c._main_sema:post(1)
                end
            end
        end
    end
end


local function timeouts(c)
    local o = c._opts
    local ct, st, rt = settings.location_timeouts()
    return o.connect_timeout or ct, o.send_timeout or st,
           o.read_timeout or rt
end


-- a connect to server srv, for the engine's round over the server list:
-- true once connected and subscribed
local function attempt(c, srv)
    if c._closing or c._exiting then
        return nil, "closed", true
    end
    local sock, err = tcp()
    if not sock then
        return nil, err, true
    end
    local ct, st, rt = timeouts(c)
    sock:settimeouts(ct, st, rt)
    c._timeouts = { ct, st, rt }

    local ok
    ok, err = conn.connect_socket(sock, srv)
    if not ok then
        return nil, err
    end
    c._sock = sock
    queue.use_socket(c, sock)
    c._connected = true
    ok, err = events.new_parser(c)
    if ok then
        ok, err = conn.handshake(c, srv, c._opts)
    end
    local frames
    if ok then
        -- the request inbox, once for the connection's life, and every
        -- live subscription, again
        frames, err = subs.inbox(c)
        ok = err == nil
    end
    if ok then
        frames, err = subs.resub_frames(c)
        ok = frames ~= nil
    end
    if ok then
        -- from here on, new subscriptions go through the writer
        c._state = "connected"
        -- requests that waited out the outage go on
        waiters.wake_all(c, "_nup", "_up_sema")
        if #frames > 0 then
            local _
            _, err = sock:send(frames)
            ok = err == nil
        end
    end
    if ok then
        sock:settimeouts(ct, st, c._ping_interval)
        return true
    end
    c._state = "reconnecting"
    c._connected = false
    sock:close()
    fail_all(c, "disconnected")
    return nil, err
end


-- one round over the server list; true once connected and subscribed
local function connect_once(c)
    local opts = c._opts
    local list, key = servers.server_list(opts, opts.host or "127.0.0.1", opts.port)
    if not list then
        return nil, key
    end
    c._cluster_key = key
    return conn.connect(c, list, attempt)
end


-- close or worker exit over a live connection: every subscription ends at
-- the server, what was queued goes out, and a PING/PONG confirms it
local function drain(c)
    for _, line in pairs(subs.unsub_all_frames(c)) do
        ctl(c, line)
    end
    local w = { sema = waiters.new_sema(), done = false }
    ctl(c, conn.ping(c, w))
    w.sema:wait(settings.read_timeout(c) / 1000)
    if not w.done then
        return nil, w.err or "timeout"
    end
    return true
end


-- one connected period: until the connection is lost or closed
local function run_connected(c)
    c._lost = nil
    c._ldm = false
    c._ldm_tries = nil
    c._pings_out = 0
    if c._ever then
        c._reconnects = c._reconnects + 1
        ngx_log(ngx_NOTICE, c._log_prefix, "reconnected to ",
                c._server.key)
    end
    c._ever = true

    local rt = spawn(reader, c)
    local wt = spawn(queue.writer, c, lost)

    local wait = IDLE_WAIT
    while not c._lost and not c._closing and not c._exiting do
        c._main_sema:wait(wait)
        wait = IDLE_WAIT
        if c._ldm and not c._lost and not c._closing and not c._exiting then
            local moved, why
            rt, moved, why = move.move(c, rt, reader)
            if moved then
                c._ldm = false
                c._ldm_tries = nil
            else
                -- again after reconnect_wait, until the server closes it
                local n = (c._ldm_tries or 0) + 1
                c._ldm_tries = n
                ngx_log(n == 1 and ngx_WARN or ngx_NOTICE, c._log_prefix,
                        "cannot leave ", c._server.key,
                        " (lame duck mode): ", why)
                wait = c._reconnect_wait / 1000
            end
        end
        -- requests whose handler was aborted while waiting (the client
        -- went away) never remove their entry: drop the expired ones
        local now = settings.now_ms()
        for token, w in pairs(c._resp) do
            if w.expires < now then
                conn.forget(c, token)
            end
        end
    end

    local ok, err = true, nil
    if not c._lost then
        ok, err = drain(c)
    end
    local why = c._lost
    c._lost = c._lost or "closed"
    kill(rt)
    kill(wt)
    c._sock:close()
    c._connected = false
    c._state = "reconnecting"
    fail_all(c, "disconnected")
    if why then
        ngx_log(ngx_WARN, c._log_prefix, "connection to ", c._server.key,
                " lost: ", why)
    end
    return ok, err
end


-- after close or at worker exit: nothing waits any more
local function finish(c, ok, err)
    if ok then
        ngx_log(ngx_NOTICE, c._log_prefix, "closed")
    else
        ngx_log(ngx_WARN, c._log_prefix, "closed: ", err)
    end
    c._state = "closed"
    c._connected = false
    c._unregister(c)
    fail_all(c, "closed")
    for nsid, sub in pairs(c._subs) do
        if nsid ~= c._inbox_sid then
            sub._closed = true
            subs.wake(sub)
        end
    end
    c._subs = {}
    c._nsubs = 0
    c._close_ok, c._close_err = ok, err
    c._closed_sema:post(64)
    waiters.first_over(c)
end


local function main(premature, c)
    if premature then
        return finish(c, nil, "worker exiting")
    end

    local ok, err
    local failures = 0
    while not c._closing and not c._exiting do
        ok, err = connect_once(c)
        if c._first then
            waiters.first_over(c)
        end
        if ok then
            failures = 0
            ok, err = run_connected(c)
            if c._closing or c._exiting then
                break
            end
            -- lost: the first attempt at once, then every reconnect_wait
            ok = true
        else
            failures = failures + 1
            ngx_log(failures == 1 and ngx_WARN or ngx_NOTICE, c._log_prefix,
                    "connect failed (attempt ", failures, "): ", err)
            if c._max_reconnects and failures > c._max_reconnects then
                ngx_log(ngx_ERR, c._log_prefix, "giving up after ",
                        failures, " attempts")
                break
            end
        end

        if not ok and not c._closing and not c._exiting then
            local wait = c._reconnect_wait + random() * RECONNECT_JITTER
            c._main_sema:wait(wait / 1000)
        end
    end

    local pending = queue.pending(c)
    if not ok and c._closing and pending > 0 then
        err = "not connected: " .. pending .. " bytes not sent"
    end
    finish(c, ok, err)
end


local function wake_for_exit(_, c)
    c._main_sema:post(1)
    queue.wake_writer(c)
end


-- worker exit (reload, quit): a pending timer fires early, "premature".
-- It runs outside nginx's event loop, where a semaphore post would wait
-- for the loop's next timer to be seen: the wake-up goes through a timer
-- of 0 ms, which nginx still allows then.
local function on_exit(premature, c)
    if not premature or c._state == "closed" then
        return
    end
    ngx_log(ngx_NOTICE, c._log_prefix, "worker exiting: draining")
    c._exiting = true
    if not timer_at(0, wake_for_exit, c) then
        wake_for_exit(nil, c)
    end
end


-- starts connection c (its main timer, and the one that tells it the
-- worker exits); true, or nil, err
function _M.start(c)
    c._olds = {}            -- connections left by a move, by socket
    local ok, err = timer_at(0, main, c)
    if not ok then
        return nil, "cannot start the connection: " .. tostring(err)
    end
    -- its premature run tells the connection that the worker exits
    timer_at(EXIT_TIMER, on_exit, c)
    return true
end


-- close(): the main thread drains and finishes
function _M.stop(c)
    c._closing = true
    c._main_sema:post(1)
    queue.wake_writer(c)
end


return _M
