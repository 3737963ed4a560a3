-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats: a NATS client for lua-nginx-module on cosockets, with the
-- protocol (parser, framer, subscription table) in the C++ core of
-- ngx_http_lua_nats_module, called through LuaJIT's FFI.
--
-- This file is the per-request object: the original lua-resty-nats API
-- (its return values, sid numbers), over the connection engine
-- (resty.nats.conn) driven from the caller's coroutine
-- (resty.nats.direct), pooled through resty.nats.pool. nats.shared is the
-- worker's long-lived connection (resty.nats.shared). README's Layout
-- section draws the rest.

local VERSION = require("resty.nats.core").VERSION
local settings = require "resty.nats.settings"
local read_timeout = settings.read_timeout
local servers = require "resty.nats.servers"
-- the engine, and its per-request driver
local conn = require "resty.nats.conn"
local events = require "resty.nats.events"
local frame = require "resty.nats.frame"
local check_payload = frame.check_payload
local subs = require "resty.nats.subs"
local direct = require "resty.nats.direct"
local dpublish, send = direct.publish, direct.send
local write_flush = direct.write_flush
local pool = require "resty.nats.pool"

local ffi_string = require("ffi").string
local type = type


local _M = { _VERSION = VERSION }
local mt = { __index = _M }

-- nats.shared(name [, opts]): the worker's long-lived connection "name"
-- (resty/nats/shared.lua)
_M.shared = require("resty.nats.shared").shared

-- the test suites read nginx.conf's settings through these
_M._location_timeouts = settings.location_timeouts
_M._location_pool_size = settings.location_pool_size


-- a table with room for an object's fields (table.new: no rehash as
-- connect fills it in)
local new_tab = require "table.new"
local OBJECT_FIELDS = 48


function _M.new(self)
    local sock, err = ngx.socket.tcp()
    if not sock then
        return nil, err
    end

    self = new_tab(0, OBJECT_FIELDS)
    self._sock = sock
    conn.init(self, "nats: ")
    self._obuf = nil        -- the write buffer (see set_write_buffer)
    self._ocap = 0
    self._wmax = 0
    self._sent = 0          -- sends so far (see direct.settle)
    self._delivered = 0     -- messages that reached callbacks (wait)
    self._reading = false
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
_M.set_write_buffer = direct.set_write_buffer


---------------------------------------------------------------------------
-- connecting

-- a connect to server srv, for connect's round over the server list
local function attempt(self, srv, opts)
    local sock = self._sock
    pool.release(self)
    local name, reg, slot = pool.take(self, pool.name(srv, opts))
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
                lct, lst, lrt = settings.location_timeouts()
            end
            self:set_timeouts(ct or lct, st or lst, rt or lrt)
        end
    end

    local ok, err = conn.connect_socket(sock, srv, { pool = name })
    if not ok then
        pool.release(self)
        return nil, err
    end

    -- fresh request state for every connect
    conn.reset(self)
    self._olen = 0
    self._sent = 0
    self._delivered = 0
    self._reading = false

    local reused = sock:getreusedtimes()
    if reused and reused > 0 then
        -- the protocol state went into the pool with the connection
        ok, err = pool.restore(self, reg, slot)
    else
        pool.forget(reg, slot)
        ok, err = events.new_parser(self)
        if ok then
            ok, err = subs.new_table(self)
        end
        if ok then
            ok, err = conn.handshake(self, srv, opts)
        end
    end
    if not ok then
        sock:close()
        pool.release(self)
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

    local list, cluster_key = servers.server_list(opts, host, port)
    if not list then
        return false, cluster_key
    end
    self._cluster_key = cluster_key

    local srv, err = conn.connect(self, list, attempt, opts)
    if not srv then
        return false, err
    end
    self._connected = true
    return true
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

    return dpublish(self, subject, payload, reply, headers)
end


---------------------------------------------------------------------------
-- subscriptions

-- the options of subscribe: queue, max; or nil, nil, err
local function sub_opts(opts)
    if opts == nil then
        return nil
    end
    if type(opts) ~= "table" then
        error("bad argument #3 to 'subscribe' (table expected, got "
              .. type(opts) .. ")", 3)
    end
    local queue, max = opts.queue, opts.max
    if queue ~= nil and type(queue) ~= "string" then
        return nil, nil, "queue is not a string"
    end
    if max ~= nil and (type(max) ~= "number" or max < 0 or max % 1 ~= 0) then
        return nil, nil, "max is not a non-negative integer"
    end
    return queue, max
end


-- a subscription (resty.nats.subs); its callback, if any, is called from
-- the reader (wait, request, ...), else sub:next() reads for it
local function subscribe(self, subject, callback, queue, max)
    local sub, frames = subs.add(self, subject, callback or false, queue, max)
    if not sub then
        return nil, frames
    end
    sub._inline = callback and true or false
    local ok, err = send(self, frames)
    if not ok then
        subs.drop(self, sub)
        return nil, err
    end
    return sub
end


-- subscribe(subject, callback [, { queue = "q", max = n }]): the sid
function _M.subscribe(self, subject, callback, opts)
    local bad = unusable(self, subject)
    if bad then
        return false, bad
    end

    if type(callback) ~= "function" then
        return false, "callback is not a function"
    end

    local queue, max, err = sub_opts(opts)
    if err then
        return false, err
    end

    local sub
    sub, err = subscribe(self, subject, callback, queue, max)
    if not sub then
        return false, err
    end
    return sub.sid
end


-- For resty.nats.jetstream, as conn:subscribe of a shared connection: the
-- subscription itself (sub:next(), sub:unsubscribe())
function _M._subscribe(self, subject, callback, opts)
    local bad = unusable(self, subject)
    if bad then
        return nil, bad
    end
    local queue, max, err = sub_opts(opts)
    if err then
        return nil, err
    end
    return subscribe(self, subject, callback, queue, max)
end


-- unsubscribe(sid [, max]): at once, or after max messages in all
function _M.unsubscribe(self, sid, max)
    if not self._connected then
        return false, "not connected"
    end

    local nsid = tonumber(sid)
    local sub = nsid and self._subs[nsid]
    if not sub or nsid == self._inbox_sid then
        return false, "unknown sid"
    end

    if max ~= nil and (type(max) ~= "number" or max < 0 or max % 1 ~= 0) then
        return false, "max is not a non-negative integer"
    end

    if max and max > 0 then
        local line, err = subs.set_max(self, sub, max)
        if not line then
            return false, err
        end
        local ok, serr = send(self, line)
        if not ok then
            return false, serr
        end
        return true
    end

    local ok, err = sub:unsubscribe()
    if not ok then
        return false, err
    end
    return true
end


-- the driver's part of sub:unsubscribe(): the UNSUB frame out
function _M._unsubscribed(self, _, line)
    if line and self._connected then
        local ok, err = send(self, line)
        if not ok then
            return nil, err
        end
    end
    return true
end


_M._wait_sub = direct.wait_sub
_M._flush = write_flush


-- sub:next()'s wait when it gives none: as a request's
function _M._default_timeout(self)
    return settings.explicit_read_timeout(self)
           or settings.request_timeout(read_timeout(self))
end


-- wait(n): processes server traffic until n messages were delivered to
-- this object's callbacks (n nil or 0: until an error or a timeout); the
-- read timeout counts from the last message delivered, not from the last
-- byte: server PINGs do not keep wait() from timing out
function _M.wait(self, quantity)
    if not self._connected then
        return false, "not connected"
    end
    return direct.wait(self, tonumber(quantity) or 0, read_timeout(self))
end


-- jetstream([opts]): JetStream over this connection (resty.nats.jetstream)
function _M.jetstream(self, opts)
    return require("resty.nats.jetstream").new(self, opts)
end


---------------------------------------------------------------------------
-- request/reply: one wildcard inbox subscription per connection

-- sends the request; returns the entry waiting for its reply, or nil, err
local function send_request(self, subject, payload, headers, entry)
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end

    local sub_frame, err = subs.inbox(self)
    if err then
        return nil, err
    end

    local reply, token = conn.reply_subject(self)
    local buf, n
    if reply then
        buf, n = frame.message(self, subject, payload, reply, headers)
    else
        n = token
    end
    if not buf then
        if sub_frame then
            -- the inbox never reached the server: made again next time
            subs.drop(self, self._subs[self._inbox_sid])
            self._inbox_sid = nil
        end
        return nil, n
    end

    -- in place before the send: another light thread may read the reply
    -- while this one sends
    entry.token = token
    conn.expect(self, token, entry)

    local ok
    if type(n) == "number" then
        if sub_frame then
            ok, err = send(self, { sub_frame, ffi_string(buf, n) })
        else
            ok, err = direct.send_bytes(self, buf, n)
        end
    else
        ok, err = send(self, { sub_frame or "", buf, payload, frame.CRLF })
    end
    if not ok then
        conn.forget(self, token)
        return nil, err
    end
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
    local timeout = opts and opts.timeout or _M._default_timeout(self)
    if type(timeout) ~= "number" or timeout <= 0 then
        error("bad timeout for 'request' (a positive number of ms expected)",
              2)
    end

    local entry, err = send_request(self, subject, payload,
                                    opts and opts.headers, {})
    if not entry then
        return nil, err
    end
    return direct.await(self, entry, settings.now_ms() + timeout)
end


-- flush([timeout]): a PING/PONG round trip: everything sent before was
-- processed by the server; messages arriving meanwhile are dispatched
function _M.flush(self, timeout)
    if not self._connected then
        return false, "not connected"
    end
    timeout = timeout or read_timeout(self)
    local deadline
    if timeout > 0 then
        deadline = settings.now_ms() + timeout
    end
    local ok, err = direct.round_trip(self, deadline)
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

    local frames = subs.unsub_all_frames(self)
    if #frames > 0 then
        local ok, err = send(self, frames)
        if not ok then
            return false, err
        end
    end

    local ok, err = self:flush(timeout)
    self._subs = {}
    self._nsubs = 0
    self._inbox_sid = nil
    self:close()
    if not ok then
        return false, err
    end
    return true
end


---------------------------------------------------------------------------
-- the connection's life

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

    subs.close_owned(self)
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
    local cap = size or self._pool_cap or settings.location_pool_size()
    if not reg or slot > cap then
        -- more connections idle than the pool holds: as a full cosocket
        -- pool does with its oldest one, close it
        self:close()
        return 1
    end

    local ok, err = write_flush(self)
    if ok then
        ok, err = direct.drain_idle(self)
    end
    if not ok then
        self:close()
        return nil, err or "unread data"
    end

    -- a lua-nginx-module patched with patches/ answers server PINGs on
    -- idle pooled connections; the stock pool closes them at the first
    -- byte (see README: set_keepalive)
    local keepalive = sock.setkeepalive_nats or sock.setkeepalive

    -- one connection per slot pool (see resty.nats.pool)
    ok, err = keepalive(sock, timeout, 1)
    if not ok and err == "connection in dubious state" then
        -- bytes arrived after the last read (a server PING, say): take
        -- them in, answer them and try once more
        local data
        data, err = sock:receiveany(events.READ_SIZE)
        if data then
            ok, err = events.feed(self, data)
            if ok then
                ok, err = direct.drain_idle(self)
            end
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
        pool.save(self)
    end
    pool.release(self)

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
    if was and self._subs then
        subs.close_owned(self)
    end
    if was and self._reading then
        -- another light thread is reading: no round trip from here
        write_flush(self)
    elseif was and (self._olen > 0 or self._sent ~= self._acked) then
        -- what publish() buffered still goes out, and the server confirms
        -- it took everything in (see direct.settle)
        direct.settle(self)
    end
    self._connected = false
    if was then
        conn.fail_inflight(self, "closed")
    end
    self._parser = nil
    self._subtab = nil
    pool.release(self)
    return sock:close()
end


-- what the server said in INFO (a table: server_id, version,
-- max_payload, headers, proto, connect_urls, ldm, ...), or nil
function _M.server_info(self)
    return self._info
end


return _M
