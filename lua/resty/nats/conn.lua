-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.conn: the connection engine under both kinds of connection
-- (the per-request object of resty.nats, the worker's shared connection
-- of resty.nats.shared). It owns the protocol state of a connection (the
-- parser, the subscription table, the request inbox), routes what the
-- server sends (messages to their subscriptions, replies to their
-- requests by token, PING/PONG/INFO/-ERR) and connects over a server list
-- (socket, TLS, handshake, the auth rule). It never writes to the socket
-- after the handshake: a frame the server needs (a PONG) is returned to
-- the driver, which writes it its own way (per request: at once, from the
-- caller's coroutine; shared: through the writer's queue).
--
-- Alongside: resty.nats.events (reads, INFO, messages as tables),
-- resty.nats.frame (frames out), resty.nats.subs (subscriptions),
-- resty.nats.handshake (INFO, TLS, CONNECT).

local core = require "resty.nats.core"
local events = require "resty.nats.events"
local frame = require "resty.nats.frame"
local subs = require "resty.nats.subs"
local servers = require "resty.nats.servers"
local handshake = require("resty.nats.handshake").handshake

local C = core.C
local OK = core.OK
local DONE = core.DONE
local EV_PING = core.EV_PING
local EV_PONG = core.EV_PONG
local EV_INFO = core.EV_INFO
local EV_ERR = core.EV_ERR
local DEFAULT_MAX_PAYLOAD = core.DEFAULT_MAX_PAYLOAD
local build_msg = events.build_msg
local apply_info = events.apply_info
local push = subs.push
local wake = subs.wake
local token = frame.token
local PING = frame.PING
local PONG = frame.PONG
local REPLY_TOKEN_LEN = subs.REPLY_TOKEN_LEN
local mark_up = servers.mark_up
local mark_down = servers.mark_down

local ffi_string = require("ffi").string
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local ipairs = ipairs
local str_lower = string.lower
local str_find = string.find
local tab_concat = table.concat


local _M = {}


-- the engine's fields of a connection state c (a per-request object or a
-- shared connection is its own state); log_prefix starts its log lines
function _M.init(c, log_prefix)
    c._log_prefix = log_prefix
    c._connected = false
    c._info = nil
    c._max_payload = DEFAULT_MAX_PAYLOAD
    c._olen = 0             -- output the driver holds (see events)
    c._in_msgs = 0
    c._in_bytes = 0
    _M.reset(c)
end


-- what is of one connection only: requests and PINGs in flight
function _M.reset(c)
    -- requests waiting for their reply, by token
    c._resp = {}
    c._nresp = 0
    -- PINGs in flight, oldest first: a waiter each (false: none)
    c._pq = {}
    c._pqh = 1
    c._pqt = 0
    c._pings_out = 0
    -- sends confirmed by a PONG (see resty.nats.direct)
    c._acked = 0
end


---------------------------------------------------------------------------
-- requests: replies come to the inbox, routed by token

-- a reply subject for a new request: the subject and its token (an
-- unpredictable one: a responder of an earlier user of a pooled connection
-- must not be able to answer a later user's request), or nil, err
function _M.reply_subject(c)
    local t = token(REPLY_TOKEN_LEN)
    if not t then
        return nil, "no randomness for the reply token"
    end
    return c._inbox_prefix .. t, t
end


-- entry waits for the reply of token: entry.done, entry.msg or entry.err
-- are set when it comes (entry.sema posted if it has one); an entry with a
-- callback gets the message instead
function _M.expect(c, t, entry)
    c._resp[t] = entry
    c._nresp = c._nresp + 1
end


function _M.forget(c, t)
    if c._resp[t] then
        c._resp[t] = nil
        c._nresp = c._nresp - 1
    end
end


local function deliver_reply(c, ev)
    local plen = c._inbox_plen
    local slen = ev.subject.len
    if slen <= plen then
        return 0
    end
    local t = ffi_string(ev.subject.data + plen, slen - plen)
    local entry = c._resp[t]
    if not entry then
        -- a late reply (the request timed out) or a second responder
        return 0
    end
    c._resp[t] = nil
    c._nresp = c._nresp - 1

    local msg = build_msg(ev, c._subs[c._inbox_sid].sid)
    local no_responders = msg.status == 503 and msg.payload == ""
    local cb = entry.callback
    if cb then
        if no_responders then
            return nil, "no responders"
        end
        cb(msg)
        return 1
    end
    entry.done = true
    if no_responders then
        entry.err = "no responders"
    else
        entry.msg = msg
    end
    local sema = entry.sema
    if sema then
        sema:post(1)
    end
    return 0
end


-- A MSG or HMSG event: to the request waiting for it, or to its
-- subscription (a callback called here, or its queue). Returns how many
-- messages reached a callback here (0 or 1), or nil, err.
function _M.deliver(c, ev)
    local len = tonumber(ev.payload.len)
    c._in_msgs = c._in_msgs + 1
    c._in_bytes = c._in_bytes + len

    local nsid = tonumber(ev.sid)
    if nsid == c._inbox_sid then
        return deliver_reply(c, ev)
    end
    local sub = c._subs[nsid]
    if not sub then
        return 0        -- a subscription that ended: dropped
    end
    local rc = C.resty_nats_subs_deliver(c._subtab, ev.sid)
    if rc ~= OK and rc ~= DONE then
        return 0
    end
    sub._delivered = sub._delivered + 1
    if rc == DONE then
        -- its max reached: no more messages, none to subscribe again
        c._subs[nsid] = nil
        c._nsubs = c._nsubs - 1
        sub._done = true
    end

    local msg = build_msg(ev, sub.sid, sub._split)
    if sub._inline then
        sub.callback(msg)
        return 1
    end
    if not push(sub, msg, len) then
        c._dropped = (c._dropped or 0) + 1
        if sub.dropped == 1 then
            ngx_log(ngx_WARN, c._log_prefix, "slow consumer on ",
                    sub.subject, ": pending limits reached (",
                    sub._lim_msgs, " messages, ", sub._lim_bytes,
                    " bytes), dropping messages")
        end
    end
    wake(sub)
    return 0
end


---------------------------------------------------------------------------
-- PING/PONG

-- the PING frame for the driver to send, its PONG to mark waiter (a
-- table, or false) done (and post waiter.sema); PONGs come in order
function _M.ping(c, waiter)
    local t = c._pqt + 1
    c._pqt = t
    c._pq[t] = waiter
    return PING
end


local function pong(c)
    c._pings_out = 0
    local h = c._pqh
    if h > c._pqt then
        return
    end
    local w = c._pq[h]
    c._pq[h] = nil
    if h == c._pqt then
        c._pqh, c._pqt = 1, 0
    else
        c._pqh = h + 1
    end
    if w then
        w.done = true
        if w.sent then
            -- everything sent up to that PING reached the server
            c._acked = w.sent
        end
        local sema = w.sema
        if sema then
            sema:post(1)
        end
    end
end


-- -ERR texts after which the server keeps the connection open
-- (nats-server client.go; matched case-insensitively)
local function err_is_fatal(text)
    local t = str_lower(text)
    if str_find(t, "permissions violation", 1, true)
       or str_find(t, "invalid subject", 1, true)
       or str_find(t, "invalid publish subject", 1, true)
       or str_find(t, "maximum subscriptions exceeded", 1, true)
    then
        return false
    end
    return true
end


-- An event that is not a message. Returns a frame the driver must send
-- (PONG), or nil; nil, err, fatal on an error (fatal: the connection is
-- unusable, the driver closes it; else a -ERR the server lives with).
function _M.control(c, ev)
    local t = ev.type
    if t == EV_PING then
        return PONG

    elseif t == EV_PONG then
        pong(c)

    elseif t == EV_INFO then
        local ok, err = apply_info(c, ev)
        if not ok then
            return nil, err, true
        end

    elseif t == EV_ERR then
        local text = ffi_string(ev.payload.data, ev.payload.len)
        if err_is_fatal(text) then
            ngx_log(ngx_ERR, c._log_prefix, "server error: ", text,
                    ", closing the connection")
            return nil, text, true
        end
        return nil, text, false
    end
    return nil
end


-- the connection is gone: what waits on a semaphore for it gets err
-- (requests and PINGs in flight); true if anything was waiting
function _M.fail_inflight(c, err)
    local resp = c._resp
    for t, entry in pairs(resp) do
        local sema = entry.sema
        if sema then
            resp[t] = nil
            c._nresp = c._nresp - 1
            entry.done = true
            entry.err = err
            sema:post(1)
        end
    end
    local pq = c._pq
    for i = c._pqh, c._pqt do
        local w = pq[i]
        pq[i] = nil
        if w then
            w.err = err
            if w.sema then
                w.sema:post(1)
            end
        end
    end
    c._pqh, c._pqt = 1, 0
end


---------------------------------------------------------------------------
-- connecting

-- the NATS part of a connect over a connected socket: the server's INFO,
-- TLS, CONNECT and its PONG; true, or nil, err
function _M.handshake(c, srv, opts)
    c._tls = false
    c._pqh, c._pqt = 1, 0
    c._pings_out = 0
    return handshake(c, srv, opts)
end


local function auth_failure(err)
    return err == "authorization violation"
           or str_find(str_lower(err), "authentication", 1, true) ~= nil
end


-- One round over the server list: attempt(c, srv, arg) for each until one
-- connects (true), or returns nil, err, true (stop: err is the answer).
-- An authentication failure is the answer, not a dead server. Returns
-- the server, or nil, err.
function _M.connect(c, list, attempt, arg)
    local errs = {}
    local err
    for _, srv in ipairs(list) do
        local ok, stop
        ok, err, stop = attempt(c, srv, arg)
        if ok then
            mark_up(srv.key)
            c._server = srv
            return srv
        end
        err = tostring(err)
        if stop or auth_failure(err) then
            return nil, err
        end
        mark_down(srv.key)
        errs[#errs + 1] = srv.key .. ": " .. err
    end
    if #list == 1 then
        return nil, err
    end
    return nil, "no server available (" .. tab_concat(errs, "; ") .. ")"
end


-- connects sock to server srv (copts: the cosocket's options, or nil)
function _M.connect_socket(sock, srv, copts)
    if copts then
        if srv.unix then
            return sock:connect(srv.host, copts)
        end
        return sock:connect(srv.host, srv.port, copts)
    end
    if srv.unix then
        return sock:connect(srv.host)
    end
    return sock:connect(srv.host, srv.port)
end


return _M
