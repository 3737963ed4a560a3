-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared: one long-lived NATS connection per worker and name,
-- shared by every request of the worker (nats.shared(name, opts)): the
-- public handle. The connection engine (resty.nats.conn) is driven by the
-- connection's own timer (resty.nats.shared.life: connect, reader,
-- reconnect, exit); requests never touch the socket: publish() frames
-- into the write queue (resty.nats.shared.queue), request() and
-- sub:next() wait on semaphores that the reader posts
-- (resty.nats.shared.waiters). Subscriptions with a callback get a timer
-- each that runs the callback for their messages in order; those without
-- one belong to the request that made them and end with it
-- (resty.nats.shared.scope).

local DEFAULT_MAX_PAYLOAD = require("resty.nats.core").DEFAULT_MAX_PAYLOAD
local settings = require "resty.nats.settings"
local location_timeouts, now_ms = settings.location_timeouts, settings.now_ms
local conn = require "resty.nats.conn"
local frame = require "resty.nats.frame"
local subs = require "resty.nats.subs"
-- the driver's parts
local queue = require "resty.nats.shared.queue"
local enqueue, ctl = queue.enqueue, queue.ctl
local waiters = require "resty.nats.shared.waiters"
local cannot_wait, new_sema = waiters.cannot_wait, waiters.new_sema
local scope = require "resty.nats.shared.scope"
local life = require "resty.nats.shared.life"

local timer_at = ngx.timer.at
local ngx_log, ngx_ERR = ngx.log, ngx.ERR
local type, setmetatable, error, pcall = type, setmetatable, error, pcall


local _M = {}

local Conn = {}
local conn_mt = { __index = Conn }

-- The worker's shared connections by name: per-worker state, explicit and
-- named (nats.shared), never request state.
local registry = {}

local DEFAULT_RECONNECT_WAIT = 2000     -- ms
local DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024
local DEFAULT_PING_INTERVAL = 120000    -- ms, as the official clients
local DEFAULT_MAX_PINGS_OUT = 2
local IDLE_WAIT = 30                    -- s a callback timer sleeps at most

-- subscriptions with a callback: it runs in a timer of its own
Conn._background = true


local function unusable(c)
    if c._state == "closed" or c._closing then
        return "closed"
    end
end


-- the caller's wait when it gives none (as request() of per-request
-- objects, from the caller's lua_socket_read_timeout)
function Conn._default_timeout()
    local _, _, rt = location_timeouts()
    return settings.request_timeout(rt)
end


-- the arguments common to publish and request: nil when they can go on
-- (payload as a string, the options table or nil), or an error string;
-- programmer errors raise at the caller of fname
local function message_args(c, subject, payload, opts, fname)
    local bad = unusable(c)
    if bad then
        return bad
    end
    if type(subject) ~= "string" then
        return "subject is not a string"
    end
    payload = frame.check_payload(payload, fname, 4)
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to '" .. fname .. "' (table expected, got "
                  .. type(opts) .. ")", 3)
        end
        local headers = opts.headers
        if headers ~= nil and type(headers) ~= "table" then
            error("bad argument #3 to '" .. fname .. "' (headers must be a "
                  .. "table)", 3)
        end
    end
    return nil, payload
end


-- publish(subject, payload [, { reply_to = ..., headers = { ... } }])
function Conn.publish(c, subject, payload, opts)
    local bad
    bad, payload = message_args(c, subject, payload, opts, "publish")
    if bad then
        return nil, bad
    end
    local reply, headers
    if opts then
        reply, headers = opts.reply_to, opts.headers
        if reply ~= nil and type(reply) ~= "string" then
            return nil, "reply_to is not a string"
        end
    end
    return enqueue(c, subject, payload, reply, headers)
end


-- request(subject, payload [, { timeout = ms, headers = { ... } }])
function Conn.request(c, subject, payload, opts)
    local bad
    bad, payload = message_args(c, subject, payload, opts, "request")
    if bad then
        return nil, bad
    end
    local timeout, headers
    if opts then
        timeout, headers = opts.timeout, opts.headers
        if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0)
        then
            error("bad timeout for 'request' (a positive number of ms "
                  .. "expected)", 2)
        end
    end

    bad = cannot_wait()
    if bad then
        return nil, bad
    end
    timeout = timeout or Conn._default_timeout()
    local t0 = now_ms()
    if not waiters.wait_up(c, timeout) then
        -- not connected within the timeout (or closed)
        return nil, c._state == "closed" and "closed" or "timeout"
    end
    -- (the wait for a reconnect is part of the timeout)
    timeout = timeout - (now_ms() - t0)
    if timeout <= 0 then
        return nil, "timeout"
    end

    local reply, token = conn.reply_subject(c)
    if not reply then
        return nil, token
    end

    -- in place before the PUB is queued: queueing may yield, and the
    -- reply may come before it returns
    local w = waiters.take(c)
    w.expires = now_ms() + timeout
    conn.expect(c, token, w)
    local ok, err = enqueue(c, subject, payload, reply, headers)
    if not ok then
        conn.forget(c, token)
        waiters.give(c, w)
        return nil, err
    end

    w.sema:wait(timeout / 1000)
    conn.forget(c, token)

    local msg
    msg, err = w.msg, w.err
    waiters.give(c, w)
    if msg then
        return msg
    end
    return nil, err or "timeout"
end


-- the callbacks of one subscription, in order, in a timer of its own
local function run_callbacks(premature, sub)
    local cb = sub.callback
    local c = sub._conn
    local pop = subs.pop
    while not sub._closed do
        local msg = pop(sub)
        if msg then
            local ok, err = pcall(cb, msg)
            if not ok then
                ngx_log(ngx_ERR, c._log_prefix, "callback for ",
                        sub.subject, " failed: ", err)
            end
        elseif sub._done or premature then
            return
        else
            sub._waiting = true
            sub._sema:wait(IDLE_WAIT)
            sub._waiting = false
        end
    end
end


-- subscribe(subject, callback [, { queue =, max = }]): for the worker's
-- life; subscribe(subject, nil [, opts]): for the calling request's
function Conn.subscribe(c, subject, callback, opts)
    local bad = unusable(c)
    if bad then
        return nil, bad
    end
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end
    if callback ~= nil and type(callback) ~= "function" then
        return nil, "callback is not a function"
    end

    local queue_name, max
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'subscribe' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        queue_name, max = opts.queue, opts.max
        if queue_name ~= nil and type(queue_name) ~= "string" then
            return nil, "queue is not a string"
        end
        if max ~= nil and (type(max) ~= "number" or max < 0
                           or max % 1 ~= 0)
        then
            return nil, "max is not a non-negative integer"
        end
    end

    local id, err
    if not callback then
        id, err = scope.new_id()
        if not id then
            return nil, err
        end
    end

    local sub, frames = subs.add(c, subject, callback or false, queue_name,
                                 max)
    if not sub then
        return nil, frames
    end
    sub._sema = new_sema()

    local ok
    if callback then
        ok, err = timer_at(0, run_callbacks, sub)
        if not ok then
            err = "cannot start the subscription's timer: " .. err
        end
    else
        ok, err = scope.add(id, sub)
    end
    if not ok then
        subs.drop(c, sub)
        return nil, err
    end

    if c._state == "connected" then
        ctl(c, frames)
    end
    -- (not connected: made at the next connect, with every live one)
    return sub
end
Conn._subscribe = Conn.subscribe


-- sub:next()'s wait: on the subscription's semaphore, which the reader
-- posts
function Conn._wait_sub(_, sub, deadline)
    local bad = cannot_wait()
    if bad then
        return nil, bad
    end
    local left = deadline - now_ms()
    if left <= 0 then
        return nil, "timeout"
    end
    sub._waiting = true
    sub._sema:wait(left / 1000)
    sub._waiting = false
    return true
end


-- the driver's part of sub:unsubscribe()
function Conn._unsubscribed(c, sub, line)
    if line and c._state == "connected" then
        ctl(c, line)
    end
    scope.forget(sub)
    return true
end


-- flush([timeout]): everything queued before has reached the server
function Conn.flush(c, timeout)
    local bad = unusable(c) or cannot_wait()
    if bad then
        return nil, bad
    end
    if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
        error("bad timeout for 'flush' (a positive number of ms expected)",
              2)
    end
    if not timeout then
        local _, _, rt = location_timeouts()
        timeout = rt
    end
    if not waiters.wait_first(c, timeout) then
        return nil, "disconnected"
    end

    local w = { sema = new_sema(), done = false }
    ctl(c, conn.ping(c, w))
    w.sema:wait(timeout / 1000)
    if w.done then
        return true
    end
    return nil, w.err or "timeout"
end


function Conn.stats(c)
    local srv = c._server
    return {
        state = c._state,
        server = srv and srv.key or nil,
        in_msgs = c._in_msgs,
        out_msgs = c._out_msgs,
        in_bytes = c._in_bytes,
        out_bytes = c._out_bytes,
        reconnects = c._reconnects,
        moves = c._moves or 0,
        subscriptions = c._nsubs,
        pending_bytes = queue.pending(c),
        dropped = c._dropped,
    }
end


-- request_many(subject, payload [, opts]): every reply
-- (resty.nats.shared.many; loaded on first use)
function Conn.request_many(c, subject, payload, opts)
    Conn.request_many = require("resty.nats.shared.many").request_many
    return Conn.request_many(c, subject, payload, opts)
end


-- add_service(cfg): a NATS service hosted here (resty.nats.service)
function Conn.add_service(c, cfg)
    return require("resty.nats.service").add_service(c, cfg)
end


-- jetstream([opts]): JetStream over this connection (resty.nats.jetstream)
function Conn.jetstream(c, opts)
    return require("resty.nats.jetstream").new(c, opts)
end


-- the server's INFO of the current (or last) connection, or nil
function Conn.server_info(c)
    local si = c._info
    if si and not si.assumed then
        return si
    end
    return nil
end


local function unregister(c)
    if registry[c._name] == c then
        registry[c._name] = nil
    end
end


-- close(): drains (what was queued goes out, every subscription ends at
-- the server, a PING/PONG confirms it) and closes for good
function Conn.close(c)
    if c._state == "closed" or c._closing then
        return nil, "closed"
    end
    unregister(c)
    life.stop(c)
    if cannot_wait() then
        return true
    end
    local _, _, rt = location_timeouts()
    c._closed_sema:wait((rt + 1000) / 1000)
    if c._state ~= "closed" then
        return nil, "timeout"
    end
    if c._close_ok then
        return true
    end
    return nil, c._close_err
end


local function check_number(opts, name, min)
    local v = opts[name]
    if v ~= nil and (type(v) ~= "number" or v < min) then
        error("bad '" .. name .. "' option to 'shared' (a number >= " .. min
              .. " expected)", 3)
    end
    return v
end


-- nats.shared(name, opts): defines the worker's connection "name" (in
-- init_worker_by_lua*, or lazily) and returns its handle; nats.shared(name):
-- the handle, or nil, err when it is not defined
function _M.shared(name, opts)
    if type(name) ~= "string" then
        error("bad argument #1 to 'shared' (string expected, got "
              .. type(name) .. ")", 2)
    end
    local c = registry[name]
    if c then
        return c
    end
    if opts == nil then
        return nil, "shared connection '" .. name .. "' is not defined"
    end
    if type(opts) ~= "table" then
        error("bad argument #2 to 'shared' (table expected, got "
              .. type(opts) .. ")", 2)
    end

    local limits = opts.pending_limits
    if limits ~= nil and type(limits) ~= "table" then
        error("bad 'pending_limits' option to 'shared' (table expected)", 2)
    end
    limits = limits or {}
    local reconnect_wait = check_number(opts, "reconnect_wait", 0)
    local max_reconnects = check_number(opts, "max_reconnects", 0)
    local buffer_size = check_number(opts, "buffer_size", 1024)
    local ping_interval = check_number(opts, "ping_interval", 1)
    local max_pings_out = check_number(opts, "max_pings_out", 1)
    check_number(opts, "connect_timeout", 0)
    check_number(opts, "send_timeout", 0)
    check_number(opts, "read_timeout", 0)
    check_number(limits, "msgs", 1)
    check_number(limits, "bytes", 1)

    c = {
        _name = name,
        _opts = opts,
        _state = "reconnecting",
        _closing = false,
        _exiting = false,
        _ever = false,
        _lost = nil,
        _reconnect_wait = reconnect_wait or DEFAULT_RECONNECT_WAIT,
        _max_reconnects = max_reconnects,
        _ping_interval = ping_interval or DEFAULT_PING_INTERVAL,
        _max_pings_out = max_pings_out or DEFAULT_MAX_PINGS_OUT,
        _lim_msgs = limits.msgs or subs.DEFAULT_PENDING_MSGS,
        _lim_bytes = limits.bytes or subs.DEFAULT_PENDING_BYTES,
        _main_sema = new_sema(),
        _closed_sema = new_sema(),
        _unregister = unregister,
        _reconnects = 0,
        _dropped = 0,
    }
    conn.init(c, "nats: shared connection '" .. name .. "': ")
    -- until the first INFO
    c._info = { headers = true, max_payload = DEFAULT_MAX_PAYLOAD,
                assumed = true }
    queue.init(c, buffer_size or DEFAULT_BUFFER_SIZE)
    waiters.init(c)
    -- the subscription table, for good: sids survive reconnects
    local ok, err = subs.new_table(c)
    if not ok then
        return nil, err
    end
    setmetatable(c, conn_mt)

    ok, err = life.start(c)
    if not ok then
        return nil, err
    end
    registry[name] = c
    return c
end


return _M
