-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.direct: the per-request driver of the connection engine
-- (resty.nats.conn). The caller's coroutine does the I/O: frames go out at
-- once (or through the object's write buffer, set_write_buffer), and the
-- caller reads the socket itself until what it waits for has come (a
-- reply, a PONG, n messages, a message of a subscription); the connection
-- goes back to the pool afterwards. One light thread reads an object at a
-- time; a synchronous request of another one waits on a semaphore for its
-- reply or for the socket.

local ffi = require "ffi"
local ffi_new, ffi_string, ffi_copy = ffi.new, ffi.string, ffi.copy
local core = require "resty.nats.core"
local EV_MSG, EV_HMSG = core.EV_MSG, core.EV_HMSG
local MAX_CONTROL_LINE = core.MAX_CONTROL_LINE
local settings = require "resty.nats.settings"
local read_timeout, now_ms = settings.read_timeout, settings.now_ms
-- the engine: dispatch of what the server sends, requests in flight
local conn = require "resty.nats.conn"
local deliver, control = conn.deliver, conn.control
local ping, fail_inflight = conn.ping, conn.fail_inflight
local events = require "resty.nats.events"
local next_event, buffered = events.next_event, events.buffered
local parsed_event = events.parsed_event
local frame = require "resty.nats.frame"
local frame_msg, message, CRLF = frame.frame_msg, frame.message, frame.CRLF
local pool_release = require("resty.nats.pool").release
local new_sema = require("ngx.semaphore").new

local ngx_now = ngx.now
local ngx_log, ngx_ERR = ngx.log, ngx.ERR
local type, tonumber, pairs, error = type, tonumber, pairs, error


local _M = {}


-- closes the connection after a failure that leaves it unusable: its pool
-- slot goes back, the requests waiting on it get err
local function fail(self, err)
    local sock = self._sock
    if sock and self._connected then
        sock:close()
    end
    self._connected = false
    pool_release(self)
    fail_inflight(self, err)
    return false, err
end
_M.fail = fail


---------------------------------------------------------------------------
-- writing

-- sends n bytes of buf: with the patched lua module as they are (copied
-- at the call), else as a Lua string
local function send_buf(self, buf, n)
    self._sent = self._sent + 1
    local sock = self._sock
    local send_nats_buf = sock.send_nats_buf
    local _, err
    if send_nats_buf then
        _, err = send_nats_buf(sock, buf, n)
    else
        _, err = sock:send(ffi_string(buf, n))
    end
    if err then
        return fail(self, err)
    end
    return true
end


-- sends what the write buffer holds, if anything
local function write_flush(self)
    local olen = self._olen
    if olen == 0 then
        return true
    end
    self._olen = 0
    return send_buf(self, self._obuf, olen)
end
_M.write_flush = write_flush


-- appends s to the write buffer if it fits; true if it did
local function buffer_str(self, s)
    local olen = self._olen
    local len = #s
    if olen + len > self._ocap then
        return false
    end
    ffi_copy(self._obuf + olen, s, len)
    self._olen = olen + len
    return true
end


-- sends data (a string or a list of strings) after what the write buffer
-- holds, in one send when it fits; a failure closes the connection
local function send(self, data)
    if self._olen > 0 then
        if type(data) == "table" then
            local olen = self._olen
            local fits = true
            for i = 1, #data do
                if not buffer_str(self, data[i]) then
                    self._olen = olen
                    fits = false
                    break
                end
            end
            if fits then
                return write_flush(self)
            end
        elseif buffer_str(self, data) then
            return write_flush(self)
        end
        local ok, err = write_flush(self)
        if not ok then
            return nil, err
        end
    end

    self._sent = self._sent + 1
    local _, err = self._sock:send(data)
    if err then
        return fail(self, err)
    end
    return true
end
_M.send = send


-- sends n bytes of buf (the worker's scratch: copied at the call, before
-- anything may yield)
local function send_bytes(self, buf, n)
    if self._olen > 0 then
        -- after what the write buffer holds
        return send(self, ffi_string(buf, n))
    end
    return send_buf(self, buf, n)
end
_M.send_bytes = send_bytes


-- set_write_buffer(bytes): publish() buffers up to that many bytes and
-- sends them in one go (0: every publish is sent at once, the default)
function _M.set_write_buffer(self, size)
    if type(size) ~= "number" or size < 0 then
        error("bad argument #1 to 'set_write_buffer' (a size >= 0 "
              .. "expected)", 2)
    end
    local ok, err = true, nil
    if self._connected and self._olen > 0 then
        ok, err = write_flush(self)
    end
    self._wmax = size
    -- room for a full buffer plus the largest control line, so that a
    -- message that crosses the mark is framed in place before the flush
    local cap = size > 0 and size + MAX_CONTROL_LINE + 2 or 0
    if cap ~= self._ocap then
        self._obuf = cap > 0 and ffi_new("char[?]", cap) or nil
        self._ocap = cap
        self._olen = 0
    end
    if not ok then
        return false, err
    end
    return true
end


-- One message: framed into the write buffer when the object has one and
-- it fits, else sent at once (one send of the whole message when it fits
-- the scratch buffer). true, or false, err.
function _M.publish(self, subject, payload, reply, headers)
    local plen = #payload
    local wmax = self._wmax
    if wmax > 0 then
        local olen = self._olen
        local ocap = self._ocap
        if olen > 0 and olen + plen + MAX_CONTROL_LINE + 2 > ocap then
            local ok, err = write_flush(self)
            if not ok then
                return false, err
            end
            olen = 0
        end
        if plen + MAX_CONTROL_LINE + 2 <= ocap then
            local obuf = self._obuf
            local pos, err = frame_msg(self, obuf, olen, ocap - plen - 2,
                                       subject, reply, headers, plen)
            if pos then
                ffi_copy(obuf + pos, payload, plen)
                pos = pos + plen
                obuf[pos] = 13
                obuf[pos + 1] = 10
                self._olen = pos + 2
                if pos + 2 >= wmax then
                    return write_flush(self)
                end
                return true
            end
            if err then
                return false, err
            end
            -- a header block too large for the buffer: sent on its own
        end
    end

    local buf, n = message(self, subject, payload, reply, headers)
    if type(n) == "number" then
        return send_bytes(self, buf, n)
    end
    if not buf then
        return false, n
    end
    return send(self, { buf, payload, CRLF })
end


---------------------------------------------------------------------------
-- reading

-- stop conditions of the reader, stop(self, arg): plain functions, since a
-- closure per call is something LuaJIT does not compile (FNEW)
local function stop_done(_, entry)
    return entry.done
end

local function stop_delivered(self, target)
    return self._delivered >= target
end

local function stop_never()
    return false
end

local function stop_sub(_, sub)
    return sub._qh <= sub._qt or sub._closed or sub._done
end


-- The reader: reads and dispatches until stop(self, arg) is true, the
-- deadline passes (rt: the deadline moves on by rt ms with every message
-- that reaches a callback, for wait), or an error. Returns true, or
-- false, err. With keep_going, a -ERR the server lives with does not stop
-- it: the first one is returned at the end.
-- With drain, once stop() is true it goes on through the events the
-- parser holds complete (no more reads), so that a message reader gets
-- what one read brought in one call.
local function run(self, deadline, rt, stop, keep_going, arg, drain)
    local soft_err
    local reading = true
    while true do
        local ev, err, fatal
        if reading and stop(self, arg) then
            if not drain then
                break
            end
            reading = false
        end
        if reading then
            ev, err, fatal = next_event(self, deadline)
        else
            ev, err = parsed_event(self)
            if not ev and not err then
                break
            end
            if err then
                -- (next_event logs its protocol errors itself)
                ngx_log(ngx_ERR, self._log_prefix, err,
                        ", closing the connection")
                fatal = true
            end
        end
        if not ev then
            if fatal then
                return fail(self, err)
            end
            return false, err
        end

        local t = ev.type
        if t == EV_MSG or t == EV_HMSG then
            local n
            n, err = deliver(self, ev)
            if not n then
                return false, err
            end
            if n > 0 then
                self._delivered = self._delivered + n
                if rt then
                    deadline = ngx_now() * 1000 + rt
                end
            end
        else
            local out
            out, err, fatal = control(self, ev)
            if out then
                local ok
                ok, err = send(self, out)
                if not ok then
                    return false, err
                end
            elseif err then
                if fatal then
                    return fail(self, err)
                end
                if not keep_going then
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
    for _, entry in pairs(self._resp) do
        if entry.sema and not entry.done then
            entry.takeover = true
            entry.sema:post(1)
            return
        end
    end
end


-- runs the reader when no other light thread is reading this object
local function read_until(self, deadline, rt, stop, keep_going, arg, drain)
    if self._reading then
        return false, "busy: another light thread is reading this connection"
    end
    self._reading = true
    local ok, err = run(self, deadline, rt, stop, keep_going, arg, drain)
    self._reading = false
    handoff(self)
    if ok then
        return true
    end
    return false, err
end


-- wait(n): reads until n more messages reached callbacks (n nil or 0:
-- until an error or a timeout); rt: the read timeout, from the last one
function _M.wait(self, quantity, rt)
    local deadline
    if rt > 0 then
        deadline = now_ms() + rt
    else
        rt = nil
    end
    if quantity > 0 then
        return read_until(self, deadline, rt, stop_delivered, false,
                          self._delivered + quantity)
    end
    return read_until(self, deadline, rt, stop_never)
end


-- the reply of entry (its request sent), within deadline: msg, or nil, err
function _M.await(self, entry, deadline)
    if self._reading then
        -- another light thread reads this connection: it will hand us
        -- our reply, or the socket when it is done
        entry.sema = new_sema()
        while true do
            local left = deadline - now_ms()
            if (left <= 0 or not entry.sema:wait(left / 1000))
               and not entry.done
            then
                conn.forget(self, entry.token)
                return nil, "timeout"
            end
            if entry.done then
                break
            end
            if entry.takeover and not self._reading then
                entry.takeover = false
                break
            end
        end
    end

    local _, err
    if not entry.done then
        _, err = read_until(self, deadline, nil, stop_done, false, entry)
    end
    if entry.done then
        if entry.msg then
            return entry.msg
        end
        return nil, entry.err
    end
    conn.forget(self, entry.token)
    return nil, err or "timeout"
end


-- sub:next()'s wait: reads until a message of sub is queued
function _M.wait_sub(self, sub, deadline)
    if not self._connected then
        return nil, "not connected"
    end
    return read_until(self, deadline, nil, stop_sub, false, sub, true)
end


-- a PING and the reader up to its PONG, within deadline (nil: none);
-- true, or false, err
function _M.round_trip(self, deadline)
    local w = { done = false, sent = false }
    local ok, err = send(self, ping(self, w))
    if not ok then
        return false, err
    end
    w.sent = self._sent
    -- a -ERR the server lives with (a permissions violation) is reported
    -- after the PONG, so that the next round trip counts its own PONG
    return read_until(self, deadline, nil, stop_done, true, w)
end


-- Before a close: sends what is buffered and a PING, then reads up to
-- its PONG (answering PINGs, dropping messages), within the read timeout.
-- Closing a socket with unread input makes the kernel reset the
-- connection and drop what it has not sent yet: after a long burst of
-- publishes, the tail of the burst. Errors end it quietly: close()
-- closes anyway.
function _M.settle(self)
    local w = { done = false, sent = false }
    if not send(self, ping(self, w)) then
        return
    end
    w.sent = self._sent
    local deadline = now_ms() + read_timeout(self)
    while self._connected and not w.done do
        local ev = next_event(self, deadline)
        if not ev then
            return
        end
        local t = ev.type
        if t ~= EV_MSG and t ~= EV_HMSG then
            local out = control(self, ev)
            if out and not send(self, out) then
                return
            end
        end
    end
end


-- before pooling: answers every complete event the parser holds that
-- needs no caller; true when the parser is empty afterwards, false when
-- bytes of an incomplete one wait, nil, err when the connection must not
-- be pooled
function _M.drain_idle(self)
    while true do
        local ev, err = parsed_event(self)
        if not ev then
            if err then
                return nil, err
            end
            return buffered(self) == 0
        end
        local t = ev.type
        if t == EV_MSG or t == EV_HMSG then
            -- a message for a subscription that is gone is dropped; one
            -- for a live subscription means unread messages
            local nsid = tonumber(ev.sid)
            if self._subs[nsid] and nsid ~= self._inbox_sid then
                return nil, "unread messages"
            end
        else
            local out
            out, err = control(self, ev)
            if out then
                local ok
                ok, err = send(self, out)
                if not ok then
                    return nil, err
                end
            elseif err then
                return nil, err
            end
        end
    end
end


return _M
