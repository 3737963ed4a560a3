-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats: a NATS client for lua-nginx-module on cosockets, with the
-- protocol (parser, framer, subscription table) in the C++ core of
-- ngx_http_lua_nats_module, called through LuaJIT's FFI.
--
-- This file is the per-request object (the public API). The rest, one
-- concern a file under resty/nats/: core (the FFI binding), settings
-- (nginx.conf's cosocket settings, the timeout rule), servers (URLs,
-- server lists), wire (the connection layer: frames out, events in),
-- handshake (INFO, TLS, CONNECT, auth), subs (subscriptions, the request
-- inbox), pool (pooled connections and their state), shared (the
-- worker's long-lived connections: nats.shared), nkeys.

local ffi = require "ffi"
local core = require "resty.nats.core"
local settings = require "resty.nats.settings"
local servers = require "resty.nats.servers"
local wire = require "resty.nats.wire"
local hs = require "resty.nats.handshake"
local subs_mod = require "resty.nats.subs"
local pool_mod = require "resty.nats.pool"

local C = core.C
local OK = core.OK
local AGAIN = core.AGAIN
local DONE = core.DONE
local EV_MSG = core.EV_MSG
local EV_HMSG = core.EV_HMSG
local EV_PING = core.EV_PING
local EV_INFO = core.EV_INFO
local EV_ERR = core.EV_ERR

local location_timeouts = settings.location_timeouts
local location_pool_size = settings.location_pool_size
local explicit_read_timeout = settings.explicit_read_timeout
local read_timeout = settings.read_timeout
local now_ms = settings.now_ms
local request_timeout = settings.request_timeout

local server_list = servers.server_list
local mark_up = servers.mark_up
local mark_down = servers.mark_down

local wire_init = wire.init
local wire_reset = wire.reset
local wire_token = wire.token
local check_payload = wire.check_payload
local last_error = wire.last_error
local reset_errlen = wire.reset_errlen
local frame_call = wire.frame_call
local fail = wire.fail
local write_flush = wire.write_flush
local buffer_str = wire.buffer_str
local send = wire.send
local apply_info = wire.apply_info
local next_event = wire.next_event
local build_msg = wire.build_msg
local handle_control = wire.handle_control
local message_frames = wire.message_frames
local send_ping = wire.send_ping
local settle = wire.settle
local FRAME_SIZE = wire.FRAME_SIZE
local ERRBUF_SIZE = wire.ERRBUF_SIZE
local READ_SIZE = wire.READ_SIZE
local PONG = wire.PONG
local CRLF = wire.CRLF

local handshake = hs.handshake

local add_sub = subs_mod.add
local drop_sub = subs_mod.drop
local inbox_frames = subs_mod.inbox_frames
local REPLY_TOKEN_LEN = subs_mod.REPLY_TOKEN_LEN

local pool_take = pool_mod.take
local pool_release = pool_mod.release
local pool_name = pool_mod.name
local pool_restore = pool_mod.restore
local pool_save = pool_mod.save

local ffi_string = ffi.string
local ffi_copy = ffi.copy
local tcp = ngx.socket.tcp
local ngx_now = ngx.now
local type = type
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local error = error
local pcall = pcall
local pairs = pairs
local ipairs = ipairs
local str_lower = string.lower
local str_find = string.find
local tab_concat = table.concat


local _M = { _VERSION = core.VERSION }
local mt = { __index = _M }

-- nats.shared(name [, opts]): the worker's long-lived connection "name"
-- (resty/nats/shared.lua)
_M.shared = require("resty.nats.shared").shared

-- the test suites read nginx.conf's settings through these
_M._location_timeouts = location_timeouts
_M._location_pool_size = location_pool_size


-- Per worker: "PUB <subject> " for subjects the framer accepted (a pure
-- function of the subject: a cache, never request state), so that an
-- unbuffered publish is one Lua string and one send. Bounded: emptied
-- when full.
local pub_prefixes = {}
local npub_prefixes = 0
local MAX_PUB_PREFIXES = 1024


-- optional: concurrent synchronous requests on one object (lua-resty-core)
local semaphore
do
    local ok, sema = pcall(require, "ngx.semaphore")
    if ok then
        semaphore = sema
    end
end


-- a table with room for an object's fields (table.new: no rehash as
-- connect fills it in), or a plain table without LuaJIT's extension
local new_tab
do
    local ok, tn = pcall(require, "table.new")
    new_tab = ok and tn or function() return {} end
end
local OBJECT_FIELDS = 40


function _M.new(self)
    local sock, err = tcp()
    if not sock then
        return nil, err
    end

    self = new_tab(0, OBJECT_FIELDS)
    self._sock = sock
    wire_init(self)
    setmetatable(self, mt)  -- not a tail call: NYI for the JIT compiler
    return self
end


function _M.set_timeout(self, timeout)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    sock:settimeout(timeout)
    self._timeouts = { timeout, timeout, timeout }
    return true
end


function _M.set_timeouts(self, connect_timeout, send_timeout, read_timeout)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    sock:settimeouts(connect_timeout, send_timeout, read_timeout)
    self._timeouts = { connect_timeout, send_timeout, read_timeout }
    return true
end


-- set_write_buffer(bytes): publish() buffers up to that many bytes and
-- sends them in one go (0: every publish is sent at once, the default)
_M.set_write_buffer = wire.set_write_buffer


-- wakes every synchronous request still waiting, with err
local function fail_waiters(self, err)
    local resp = self._resp
    if not resp then
        return
    end
    for token, entry in pairs(resp) do
        if entry.sema then
            resp[token] = nil
            entry.done = true
            entry.err = err
            entry.sema:post(1)
        end
    end
end


-- wire.fail's hook: a failed connection gives its pool slot back and
-- wakes the requests waiting on it
function _M._on_fail(self, err)
    pool_release(self)
    fail_waiters(self, err)
end


---------------------------------------------------------------------------
-- connecting

local function connect_one(self, srv, opts)
    local sock = self._sock
    pool_release(self)
    local base = pool_name(srv, opts)
    local pool, reg, slot = pool_take(self, base)
    local copts = { pool = pool }
    self._pool_cap = opts and opts.pool_size

    if opts then
        local ct, st, rt = opts.connect_timeout, opts.send_timeout,
                           opts.read_timeout
        if ct or st or rt then
            -- an option left out keeps what was set, else nginx.conf's
            local to = self._timeouts
            local lct, lst, lrt
            if to then
                lct, lst, lrt = to[1], to[2], to[3]
            else
                lct, lst, lrt = location_timeouts()
            end
            self:set_timeouts(ct or lct, st or lst, rt or lrt)
        end
    end

    local ok, err
    if srv.unix then
        ok, err = sock:connect(srv.host, copts)
    else
        ok, err = sock:connect(srv.host, srv.port, copts)
    end
    if not ok then
        pool_release(self)
        return nil, err
    end

    -- fresh protocol state for every connect
    ok, err = wire_reset(self)
    if not ok then
        sock:close()
        pool_release(self)
        return nil, err
    end
    self._delivered = 0
    self._resp = {}
    self._nresp = 0
    self._reading = false
    self._pool = pool
    self._server = srv

    local reused = sock:getreusedtimes()
    if reused and reused > 0 then
        ok, err = pool_restore(self, reg, slot)
        if not ok then
            -- a pooled connection this module knows nothing about
            sock:close()
            pool_release(self)
            return nil, err
        end
        return true
    end
    reg.state[slot] = nil

    ok, err = handshake(self, srv, opts)
    if not ok then
        sock:close()
        pool_release(self)
        return nil, err
    end

    return true
end


-- connect(host, port [, opts]), connect("unix:/path" [, opts]),
-- connect(opts) with opts.servers
function _M.connect(self, host, port, opts)
    local sock = self._sock
    if not sock then
        return false, "not initialized"
    end

    if type(host) == "table" then
        opts, host, port = host, nil, nil
    elseif type(port) == "table" then
        opts, port = port, nil
    end

    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument to 'connect' (options table expected, got "
              .. type(opts) .. ")", 2)
    end

    local wb = opts and opts.write_buffer
    if wb ~= nil then
        if type(wb) ~= "number" or wb < 0 then
            error("bad 'write_buffer' option to 'connect' (a size >= 0 "
                  .. "expected)", 2)
        end
        -- on a reconnect, what the old connection buffered goes out first
        -- (its failure is no reason not to connect)
        _M.set_write_buffer(self, wb)
    end

    local list, cluster_key = server_list(opts, host, port)
    if not list then
        return false, cluster_key
    end
    self._cluster_key = cluster_key

    local errs = {}
    for _, srv in ipairs(list) do
        local ok, err = connect_one(self, srv, opts)
        if ok then
            mark_up(srv.key)
            self._connected = true
            return true
        end

        -- an authentication failure is the answer, not a dead server
        if err == "authorization violation"
           or str_find(str_lower(err), "authentication", 1, true)
        then
            return false, err
        end

        mark_down(srv.key)
        errs[#errs + 1] = srv.key .. ": " .. tostring(err)
        if #list == 1 then
            return false, err
        end
    end

    return false, "no server available (" .. tab_concat(errs, "; ") .. ")"
end


---------------------------------------------------------------------------
-- publishing

-- why publish, subscribe or request cannot go on, or nil
local function unusable(self, subject)
    if not self._connected then
        return "not connected"
    end
    if type(subject) ~= "string" then
        return "subject is not a string"
    end
end


-- publish(subject, payload, reply_to) or
-- publish(subject, payload, { reply_to = ..., headers = { ... } })
function _M.publish(self, subject, payload, opts)
    local bad = unusable(self, subject)
    if bad then
        return false, bad
    end

    payload = check_payload(payload, "publish")

    local reply, headers
    if type(opts) == "table" then
        reply, headers = opts.reply_to, opts.headers
        if headers ~= nil and type(headers) ~= "table" then
            error("bad argument #3 to 'publish' (headers must be a table)",
                  2)
        end
    else
        reply = opts
    end

    if reply ~= nil and type(reply) ~= "string" then
        return false, "reply_to is not a string"
    end

    local wmax = self._wmax
    if wmax == 0 and headers == nil and reply == nil then
        -- unbuffered, the common case: one string and one send, as the
        -- original library did, once the framer has accepted the subject
        local prefix = pub_prefixes[subject]
        local plen = #payload
        if prefix and plen <= self._max_payload then
            return send(self, prefix .. plen .. CRLF .. payload .. CRLF)
        end
    end

    if wmax > 0 and headers == nil then
        -- buffered: framed in place, out when the buffer passes wmax,
        -- before any read, at flush, close or set_keepalive
        local plen = #payload
        local olen = self._olen
        local ocap = self._ocap
        if olen + plen + FRAME_SIZE + 2 > ocap and olen > 0 then
            local ok, err = write_flush(self)
            if not ok then
                return false, err
            end
            olen = 0
        end
        if plen + FRAME_SIZE + 2 <= ocap then
            local sizes = self._sizes
            sizes[1] = ERRBUF_SIZE
            local obuf = self._obuf
            local rc = C.resty_nats_frame_pub(obuf + olen, ocap - olen, sizes,
                                              subject, #subject, reply,
                                              reply and #reply or 0, plen,
                                              self._max_payload,
                                              self._errbuf, self._errlen)
            if rc ~= OK then
                -- the room covers any control line: a refusal
                return false, last_error(self)
            end
            olen = olen + tonumber(sizes[0])
            ffi_copy(obuf + olen, payload, plen)
            olen = olen + plen
            obuf[olen] = 13
            obuf[olen + 1] = 10
            olen = olen + 2
            self._olen = olen
            if olen >= wmax then
                return write_flush(self)
            end
            return true
        end
        -- larger than the buffer: sent on its own below
    end

    local line, err = message_frames(self, subject, payload, reply, headers)
    if not line then
        return false, err
    end

    if reply == nil and headers == nil and not pub_prefixes[subject] then
        -- the framer accepted it: "PUB <subject> " is the same next time
        if npub_prefixes >= MAX_PUB_PREFIXES then
            pub_prefixes = {}
            npub_prefixes = 0
        end
        pub_prefixes[subject] = "PUB " .. subject .. " "
        npub_prefixes = npub_prefixes + 1
    end

    if wmax > 0 and self._olen + #line + #payload + 2 <= self._ocap then
        -- buffered, with headers
        buffer_str(self, line)
        buffer_str(self, payload)
        buffer_str(self, CRLF)
        if self._olen >= wmax then
            return write_flush(self)
        end
        return true
    end

    return send(self, { line, payload, CRLF })
end


---------------------------------------------------------------------------
-- subscriptions

-- subscribe(subject, callback [, { queue = "q", max = n }])
function _M.subscribe(self, subject, callback, opts)
    local bad = unusable(self, subject)
    if bad then
        return false, bad
    end

    if type(callback) ~= "function" then
        return false, "callback is not a function"
    end

    local queue, max
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'subscribe' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        queue = opts.queue
        if queue ~= nil and type(queue) ~= "string" then
            return false, "queue is not a string"
        end
        max = opts.max
        if max ~= nil and (type(max) ~= "number" or max < 0
                           or max % 1 ~= 0)
        then
            return false, "max is not a non-negative integer"
        end
    end

    local nsid, frames = add_sub(self, subject, callback, queue, max)
    if not nsid then
        return false, frames
    end

    local sid = self._subs[nsid].sid
    local ok, err = send(self, frames)
    if not ok then
        drop_sub(self, nsid)
        return false, err
    end

    return sid
end


-- unsubscribe(sid [, max]): at once, or after max messages in all
function _M.unsubscribe(self, sid, max)
    if not self._connected then
        return false, "not connected"
    end

    local nsid = tonumber(sid)
    if not nsid or not self._subs[nsid] or nsid == self._inbox_sid then
        return false, "unknown sid"
    end

    if max ~= nil and (type(max) ~= "number" or max < 0 or max % 1 ~= 0) then
        return false, "max is not a non-negative integer"
    end
    max = max or 0

    local line, err = frame_call(self, C.resty_nats_frame_unsub, nsid, max,
                                 self._errbuf, self._errlen)
    if not line then
        return false, err
    end

    if max > 0 then
        if C.resty_nats_subs_set_max(self._subtab, nsid, max) == DONE then
            self._subs[nsid] = nil
            self._nsubs = self._nsubs - 1
        end
    else
        drop_sub(self, nsid)
    end

    local ok
    ok, err = send(self, line)
    if not ok then
        return false, err
    end

    return true
end


---------------------------------------------------------------------------
-- reading

-- a reply on the muxed inbox: returns the number of messages it counts
-- for wait() (1 for a callback request), or nil, err to stop the reader
local function deliver_reply(self, ev, nsid, sub)
    local plen = #self._inbox_prefix
    if ev.subject.len <= plen then
        return 0
    end
    local token = ffi_string(ev.subject.data + plen, ev.subject.len - plen)
    local entry = self._resp[token]
    if not entry then
        -- a late reply (the request timed out) or a second responder
        return 0
    end

    self._resp[token] = nil
    self._nresp = self._nresp - 1

    local msg = build_msg(ev, sub.sid)
    local no_responders = msg.status == 503 and msg.payload == ""

    if entry.callback then
        if no_responders then
            return nil, "no responders"
        end
        entry.callback(msg)
        return 1
    end

    entry.done = true
    if no_responders then
        entry.err = "no responders"
    else
        entry.msg = msg
    end
    if entry.sema then
        entry.sema:post(1)
    end
    return 0
end


-- stop conditions of the reader, stop(self, arg): plain functions, since a
-- closure per call is something LuaJIT does not compile (FNEW)
local function stop_entry_done(_, entry)
    return entry.done
end

local function stop_delivered(self, target)
    return self._delivered >= target
end

local function stop_never()
    return false
end

local function stop_pongs(self, mine)
    return self._pongs >= mine
end


-- The reader: reads and dispatches until stop(self, arg) is true, the deadline
-- passes (rt: the deadline moves on by rt ms with every message counted
-- for wait), or an error. Returns true, or false, err. With keep_going, a
-- non-fatal -ERR does not stop it: the first one is returned at the end.
local function run(self, deadline, rt, stop, keep_going, arg)
    local subs = self._subs
    local subtab = self._subtab
    local soft_err

    while not stop(self, arg) do
        local ev, err, fatal = next_event(self, deadline)
        if not ev then
            if fatal then
                return fail(self, err)
            end
            return false, err
        end

        local t = ev.type
        if t == EV_MSG or t == EV_HMSG then
            local nsid = tonumber(ev.sid)
            local sub = subs[nsid]
            local counted = 0
            if sub and nsid == self._inbox_sid then
                counted, err = deliver_reply(self, ev, nsid, sub)
                if not counted then
                    return false, err
                end

            elseif sub then
                local rc = C.resty_nats_subs_deliver(subtab, ev.sid)
                if rc == OK or rc == DONE then
                    local msg = build_msg(ev, sub.sid)
                    if rc == DONE then
                        subs[nsid] = nil
                        self._nsubs = self._nsubs - 1
                    end
                    sub.callback(msg)
                    counted = 1
                end
            end
            -- (a message for a subscription that ended is dropped)

            if counted > 0 then
                self._delivered = self._delivered + counted
                if rt then
                    deadline = ngx_now() * 1000 + rt
                end
            end

        else
            local ok
            ok, err = handle_control(self, ev)
            if not ok then
                if not keep_going or not self._connected then
                    return false, err
                end
                soft_err = soft_err or err
            end
        end
    end

    if soft_err then
        return false, soft_err
    end
    return true
end


-- hands the socket over to a synchronous request waiting for it
local function handoff(self)
    local resp = self._resp
    if not resp then
        return
    end
    for _, entry in pairs(resp) do
        if entry.sema and not entry.done then
            entry.takeover = true
            entry.sema:post(1)
            return
        end
    end
end


-- runs the reader when no other light thread is reading this object
local function read_until(self, deadline, rt, stop, keep_going, arg)
    if self._reading then
        return false, "busy: another light thread is reading this connection"
    end

    self._reading = true
    local ok, err = run(self, deadline, rt, stop, keep_going, arg)
    self._reading = false
    handoff(self)
    if ok then
        return true
    end
    return false, err
end


-- wait(n): processes server traffic until n messages were delivered to
-- this object's callbacks (n nil or 0: until an error or a timeout)
-- _wait_for(n, ms): like wait(n), within ms (for resty.nats.jetstream)
function _M._wait_for(self, quantity, timeout)
    if not self._connected then
        return false, "not connected"
    end
    return read_until(self, now_ms() + timeout, nil, stop_delivered, false,
                      self._delivered + quantity)
end


-- jetstream([opts]): JetStream over this connection (resty.nats.jetstream)
function _M.jetstream(self, opts)
    return require("resty.nats.jetstream").new(self, opts, false)
end


function _M.wait(self, quantity)
    if not self._connected then
        return false, "not connected"
    end

    quantity = tonumber(quantity) or 0
    local target = self._delivered + quantity

    -- the read timeout counts from the last message delivered, not from
    -- the last byte: server PINGs do not keep wait() from timing out
    local rt = read_timeout(self)
    local deadline
    if rt > 0 then
        deadline = now_ms() + rt
    else
        rt = nil
    end

    if quantity > 0 then
        return read_until(self, deadline, rt, stop_delivered, false, target)
    end
    return read_until(self, deadline, rt, stop_never)
end


---------------------------------------------------------------------------
-- request/reply: one wildcard inbox subscription per connection

-- sends the request; returns the response entry, or nil, err
local function send_request(self, subject, payload, headers, entry)
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end

    local frames, err = inbox_frames(self)
    if err then
        return nil, err
    end
    frames = frames or {}

    -- unpredictable: the inbox outlives a checkout, and a responder of an
    -- earlier user must not be able to answer a later user's request
    local token = wire_token(REPLY_TOKEN_LEN)
    if not token then
        return nil, "no randomness for the reply token"
    end
    local reply = self._inbox_prefix .. token

    local line
    line, err = message_frames(self, subject, payload, reply, headers)
    if not line then
        return nil, err
    end

    local n = #frames
    frames[n + 1] = line
    frames[n + 2] = payload
    frames[n + 3] = CRLF

    local ok
    ok, err = send(self, frames)
    if not ok then
        return nil, err
    end

    self._resp[token] = entry
    self._nresp = self._nresp + 1
    entry.token = token
    return entry
end


-- request(subject, payload, callback): the reply goes to callback from
-- wait(); returns true or false, err.
-- request(subject, payload [, { timeout = ms, headers = {...} }]):
-- waits for the reply; returns msg, or nil, err ("timeout",
-- "no responders", ...)
function _M.request(self, subject, payload, opts)
    if type(opts) == "function" then
        local bad = unusable(self, subject)
        if bad then
            return false, bad
        end
        payload = check_payload(payload, "request")
        local entry, err = send_request(self, subject, payload, nil,
                                        { callback = opts })
        if not entry then
            return false, err
        end
        return true
    end

    if opts ~= nil and type(opts) ~= "table" then
        -- the seed API's callback form with a non-function
        if not self._connected then
            return false, "not connected"
        end
        return false, "callback is not a function"
    end

    if not self._connected then
        return nil, "not connected"
    end

    payload = check_payload(payload, "request")
    -- default: the read timeout set on the object, else 5 s but never
    -- longer than nginx.conf's lua_socket_read_timeout
    local timeout = opts and opts.timeout or explicit_read_timeout(self)
                    or request_timeout(read_timeout(self))
    if type(timeout) ~= "number" or timeout <= 0 then
        error("bad timeout for 'request' (a positive number of ms expected)",
              2)
    end

    local entry, err = send_request(self, subject, payload,
                                    opts and opts.headers, {})
    if not entry then
        return nil, err
    end

    local deadline = now_ms() + timeout

    if self._reading then
        -- another light thread reads this connection: it will hand us
        -- our reply, or the socket when it is done
        if not semaphore then
            self._resp[entry.token] = nil
            self._nresp = self._nresp - 1
            return nil, "busy: another light thread is reading this "
                        .. "connection"
        end
        entry.sema = semaphore.new()
        while true do
            local left = deadline - now_ms()
            if left <= 0 or not entry.sema:wait(left / 1000) then
                if not entry.done then
                    self._resp[entry.token] = nil
                    self._nresp = self._nresp - 1
                    return nil, "timeout"
                end
            end
            if entry.done then
                if entry.msg then
                    return entry.msg
                end
                return nil, entry.err
            end
            if entry.takeover and not self._reading then
                entry.takeover = false
                break
            end
        end
    end

    local ok
    ok, err = read_until(self, deadline, nil, stop_entry_done, false, entry)
    if entry.done then
        if entry.msg then
            return entry.msg
        end
        return nil, entry.err
    end

    if self._resp[entry.token] then
        self._resp[entry.token] = nil
        self._nresp = self._nresp - 1
    end
    return nil, err or "timeout"
end


-- flush([timeout]): a PING/PONG round trip: everything sent before was
-- processed by the server; messages arriving meanwhile are dispatched
function _M.flush(self, timeout)
    if not self._connected then
        return false, "not connected"
    end

    local mine, err = send_ping(self)
    if not mine then
        return false, err
    end
    timeout = timeout or read_timeout(self)
    local deadline
    if timeout > 0 then
        deadline = now_ms() + timeout
    end

    -- a non-fatal -ERR (a permissions violation) is reported after the
    -- PONG, so that the next flush counts its own PONG
    local ok
    ok, err = read_until(self, deadline, nil, stop_pongs, true, mine)
    if not ok then
        return false, err
    end
    return true
end


-- drain([timeout]): unsubscribes everything, processes what is still in
-- flight (a flush round trip), then closes the connection
function _M.drain(self, timeout)
    if not self._connected then
        return false, "not connected"
    end

    local frames = {}
    for nsid in pairs(self._subs) do
        local line = frame_call(self, C.resty_nats_frame_unsub, nsid, 0,
                                self._errbuf, self._errlen)
        frames[#frames + 1] = line
    end

    if #frames > 0 then
        local ok, err = send(self, frames)
        if not ok then
            return false, err
        end
    end

    local ok, err = self:flush(timeout)
    for nsid in pairs(self._subs) do
        drop_sub(self, nsid)
    end
    self._inbox_sid = nil
    self:close()
    if not ok then
        return false, err
    end
    return true
end


---------------------------------------------------------------------------
-- the connection's life

-- answers every complete event in the parser that needs no caller: used
-- before pooling; returns true when the parser is empty afterwards
local function drain_idle(self)
    local p = self._parser
    local ev = self._ev
    while true do
        reset_errlen(self)
        local rc = C.resty_nats_parser_next(p, ev, self._errbuf,
                                            self._errlen)
        if rc == AGAIN then
            return C.resty_nats_parser_buffered(p) == 0
        end

        if rc ~= OK then
            return nil, "protocol error: " .. last_error(self)
        end

        local t = ev.type
        if t == EV_PING then
            local ok, err = send(self, PONG)
            if not ok then
                return nil, err
            end

        elseif t == EV_MSG or t == EV_HMSG then
            -- a message for a subscription that is gone is dropped; one
            -- for a live subscription means unread messages
            local nsid = tonumber(ev.sid)
            if self._subs[nsid] and nsid ~= self._inbox_sid then
                return nil, "unread messages"
            end

        elseif t == EV_ERR then
            return nil, ffi_string(ev.payload.data, ev.payload.len)

        elseif t == EV_INFO then
            local ok, err = apply_info(self, ev)
            if not ok then
                return nil, err
            end
        end
        -- PONG, +OK: nothing to do
    end
end


function _M.set_keepalive(self, timeout, size)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    if not self._connected then
        return nil, "closed"
    end

    if self._reading then
        return nil, "busy: another light thread is reading this connection"
    end

    local inbox_only = self._inbox_sid and self._nsubs == 1
    if (self._nsubs > 0 and not inbox_only) or self._nresp > 0 then
        return nil, "subscribed state"
    end

    if self._info and self._info.ldm then
        -- the server is shutting down: don't keep its connections
        self:close()
        return nil, "server in lame duck mode"
    end

    -- the inbox stays subscribed: the slot hands it to the next checkout
    -- (its replies are routed by unpredictable tokens, and a late reply
    -- reaching the idle pooled connection gets it closed, not answered)

    local reg, slot = self._slot_reg, self._slot
    local cap = size or self._pool_cap or location_pool_size()
    if not reg or slot > cap then
        -- more connections idle than the pool holds: as a full cosocket
        -- pool does with its oldest one, close it
        self:close()
        return 1
    end

    local ok, err = write_flush(self)
    if ok then
        ok, err = drain_idle(self)
    end
    if not ok then
        self:close()
        return nil, err or "unread data"
    end

    -- a lua-nginx-module patched with patches/ answers server PINGs on
    -- idle pooled connections; the stock pool closes them at the first
    -- byte (see README: set_keepalive)
    local keepalive = sock.setkeepalive_nats or sock.setkeepalive

    -- one connection per slot pool (see slots_by_pool)
    ok, err = keepalive(sock, timeout, 1)
    if not ok and err == "connection in dubious state" then
        -- bytes arrived after the last read (a server PING, say): take
        -- them in, answer them and try once more
        local data
        data, err = sock:receiveany(READ_SIZE)
        if data then
            reset_errlen(self)
            if C.resty_nats_parser_feed(self._parser, data, #data,
                                        self._errbuf, self._errlen) ~= OK
            then
                self:close()
                return nil, "protocol error: " .. last_error(self)
            end
            ok, err = drain_idle(self)
            if ok then
                ok, err = keepalive(sock, timeout, 1)
            end
        end
        if not ok then
            self:close()
            return nil, err or "unread data"
        end
    end

    if ok then
        pool_save(self)
    end
    pool_release(self)

    self._connected = false
    self._parser = nil
    self._subtab = nil
    if not ok then
        return nil, err
    end
    return ok
end


function _M.get_reused_times(self)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    return sock:getreusedtimes()
end


function _M.close(self)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    local was = self._connected
    if was and self._reading then
        -- another light thread is reading: no round trip from here
        write_flush(self)
    elseif was and (self._olen > 0 or self._sent ~= self._acked) then
        -- what publish() buffered still goes out, and the server confirms
        -- it took everything in (see settle)
        settle(self)
    end
    self._connected = false
    if was then
        fail_waiters(self, "closed")
    end
    self._parser = nil
    self._subtab = nil
    pool_release(self)
    return sock:close()
end


-- what the server said in INFO (a table: server_id, version,
-- max_payload, headers, proto, connect_urls, ldm, ...), or nil
function _M.server_info(self)
    return self._info
end


return _M
