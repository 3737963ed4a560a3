-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.queue: the write queue of a shared connection and its
-- writer. Requests never touch the socket: publish() frames into the
-- queue (an FFI byte buffer; large payloads and control frames are held
-- by reference in their places among the queued bytes) and wakes the
-- writer, a light thread of the connection that sends whatever was queued
-- since its last send in one send.

local ffi = require "ffi"
local ffi_new, ffi_string, ffi_copy = ffi.new, ffi.string, ffi.copy
local frame = require "resty.nats.frame"
local frame_msg, pub_room = frame.frame_msg, frame.pub_room
local settings = require "resty.nats.settings"
local location_timeouts, now_ms = settings.location_timeouts, settings.now_ms
local waiters = require "resty.nats.shared.waiters"
local can_yield = waiters.can_yield


local _M = {}

local QUEUE_MIN = 65536                 -- bytes the queue starts with
-- a caller that has queued this much for an idle writer lets it write
-- (yields once) where it can yield: a long burst then goes out in chunks
-- while the rest is framed, instead of all at once after the handler
local YIELD_BYTES = 262144
-- payloads of this size and more are not copied into the queue: the
-- writer sends them by reference among the queued bytes (a cosocket sends
-- a list of strings with no copy of its own, but each element costs about
-- as much as copying 1 KiB twice into a Lua string would). With the
-- patched lua module (sock:send_nats_buf sends the queue's memory as it
-- is) only payloads too large to be worth one more copy go by reference.
local SEG_MIN = 512
local SEG_MIN_SEND_BUF = 32768
local IDLE_WAIT = 30                    -- s the writer sleeps at most


-- the queue's fields of connection c, whose queue holds max bytes at most
function _M.init(c, max)
    local cap = max < QUEUE_MIN and max or QUEUE_MIN
    c._qmax = max
    c._qcap = cap
    c._qbuf = ffi_new("char[?]", cap)
    c._qlen = 0
    -- strings sent in their places: at[i] is the queue's length then
    c._ctl = {}
    c._ctl_at = {}
    c._ctl_keep = {}
    c._nctl = 0
    c._segbytes = 0
    c._seg_min = SEG_MIN
    c._wsema = waiters.new_sema()
    c._wsleep = false
    c._wbusy = false
    c._nroom = 0
    c._roomsema = waiters.new_sema()
    c._out_msgs = 0
    c._out_bytes = 0
end


-- a new socket: payloads by reference from which size on
function _M.use_socket(c, sock)
    c._seg_min = sock.send_nats_buf and SEG_MIN_SEND_BUF or SEG_MIN
end


-- bytes queued, those held by reference included
function _M.pending(c)
    return c._qlen + c._segbytes
end


-- makes room for n more bytes in the buffer (and extra more held by
-- reference); false when that would pass buffer_size
local function q_room(c, n, extra)
    local len = c._qlen
    local need = len + n
    if need + c._segbytes + (extra or 0) > c._qmax then
        return false
    end
    local cap = c._qcap
    if need <= cap then
        return true
    end
    repeat
        cap = cap * 2
    until cap >= need
    if cap > c._qmax then
        cap = c._qmax
    end
    local buf = ffi_new("char[?]", cap)
    ffi_copy(buf, c._qbuf, len)
    c._qbuf = buf
    c._qcap = cap
    return true
end


local function wake_writer(c)
    if c._wsleep then
        c._wsleep = false
        c._wsema:post(1)
    end
end
_M.wake_writer = wake_writer


-- a string sent in its place among the queued bytes (at the current end
-- of the buffer), without copying it into the buffer: a control frame
-- (keep false: dropped if the connection is lost first, as subscriptions
-- are made again at the next connect) or a large payload (keep true)
local function insert(c, s, keep)
    local n = c._nctl + 1
    c._nctl = n
    c._ctl[n] = s
    c._ctl_at[n] = c._qlen
    c._ctl_keep[n] = keep
end


-- a control frame (SUB, UNSUB, PING, PONG) for this connection only
function _M.ctl(c, f)
    insert(c, f, false)
    wake_writer(c)
end


-- the writer took the queue (or the connection is gone): callers waiting
-- for room look again
local function wake_room_waiters(c)
    waiters.wake_all(c, "_nroom", "_roomsema")
end


-- waits, where the caller can yield and the connection is up, until the
-- writer has taken the queue and there is room for n bytes
local function wait_room(c, n, extra)
    if c._state ~= "connected" or not can_yield() then
        return false
    end
    local _, st = location_timeouts()
    local deadline = now_ms() + st
    while true do
        local left = deadline - now_ms()
        if left <= 0 then
            return false
        end
        c._nroom = c._nroom + 1
        c._roomsema:wait(left / 1000)
        if q_room(c, n, extra) then
            return true
        end
        if c._state ~= "connected" then
            return false
        end
    end
end


local function room(c, n, extra)
    return q_room(c, n, extra) or wait_room(c, n, extra)
end


-- one message into the queue; true, or nil, err (nothing queued)
function _M.enqueue(c, subject, payload, reply, headers)
    local plen = #payload
    -- a large payload is not copied but sent by reference
    local big = plen >= c._seg_min
    local inline = big and 0 or plen
    local extra = big and plen or 0
    if not room(c, pub_room(subject, reply) + inline + 2, extra) then
        return nil, "buffer full"
    end
    local pos, err, need = frame_msg(c, c._qbuf, c._qlen,
                                     c._qcap - inline - 2, subject, reply,
                                     headers, plen)
    if not pos then
        if err then
            return nil, err
        end
        -- a header block: room for it too
        if not room(c, need + inline + 2, extra) then
            return nil, "buffer full"
        end
        pos, err = frame_msg(c, c._qbuf, c._qlen, c._qcap - inline - 2,
                             subject, reply, headers, plen)
        if not pos then
            return nil, err or "framer size probe failed"
        end
    end
    local buf = c._qbuf
    if big then
        c._qlen = pos
        insert(c, payload, true)
        c._segbytes = c._segbytes + plen
    else
        ffi_copy(buf + pos, payload, plen)
        pos = pos + plen
    end
    buf[pos] = 13
    buf[pos + 1] = 10
    c._qlen = pos + 2

    c._out_msgs = c._out_msgs + 1
    c._out_bytes = c._out_bytes + plen
    wake_writer(c)
    if c._qlen + c._segbytes >= YIELD_BYTES and not c._wbusy
       and c._state == "connected" and can_yield()
    then
        -- back as soon as the writer has taken the queue (a semaphore
        -- post is seen in the same turn of the event loop)
        c._nroom = c._nroom + 1
        c._roomsema:wait(0.01)
    end
    return true
end


-- the connection is lost: control frames go, payloads held by reference
-- stay; writers waiting for room look again
function _M.lost(c)
    local frames, at, keep = c._ctl, c._ctl_at, c._ctl_keep
    local k = 0
    for i = 1, c._nctl do
        if keep[i] then
            k = k + 1
            frames[k], at[k], keep[k] = frames[i], at[i], true
        end
    end
    for i = k + 1, c._nctl do
        frames[i], at[i], keep[i] = nil, nil, nil
    end
    c._nctl = k
    wake_room_waiters(c)
end


-- The writer: whatever was queued since its last send, in one send, until
-- the connection is lost (c._lost, then lost(c, err) tells why). Each send
-- goes to the connection's socket of the moment (a move to another server
-- replaces it: resty.nats.shared.move); c._wsock is the one it is busy
-- with.
function _M.writer(c, lost)
    while not c._lost do
        local len, nctl = c._qlen, c._nctl
        if len == 0 and nctl == 0 then
            c._wsleep = true
            c._wsema:wait(IDLE_WAIT)
            c._wsleep = false

        else
            local sock = c._sock
            local buf = c._qbuf
            local data
            local send_buf = nctl == 0 and sock.send_nats_buf
            if send_buf then
                -- the patched lua module copies the bytes at the call,
                -- before it may yield: the queue is free again at once
                data = buf
            elseif nctl == 0 then
                data = ffi_string(buf, len)
            else
                -- control frames and large payloads in their places
                data = {}
                local frames, at, keep = c._ctl, c._ctl_at, c._ctl_keep
                local pos, k = 0, 0
                for i = 1, nctl do
                    local off = at[i]
                    if off > pos then
                        k = k + 1
                        data[k] = ffi_string(buf + pos, off - pos)
                        pos = off
                    end
                    k = k + 1
                    data[k] = frames[i]
                    frames[i] = nil
                    at[i] = nil
                    keep[i] = nil
                end
                if len > pos then
                    k = k + 1
                    data[k] = ffi_string(buf + pos, len - pos)
                end
                c._nctl = 0
                c._segbytes = 0
            end
            c._qlen = 0
            if c._qcap > QUEUE_MIN * 16 and len < c._qcap / 8 then
                -- after a burst: give the memory back
                c._qbuf = ffi_new("char[?]", QUEUE_MIN)
                c._qcap = QUEUE_MIN
            end
            wake_room_waiters(c)

            c._wbusy = true
            c._wsock = sock
            local _, err
            if send_buf then
                _, err = send_buf(sock, data, len)
            else
                _, err = sock:send(data)
            end
            c._wbusy = false
            c._wsock = nil
            if err and sock == c._sock then
                return lost(c, err)
            end
            -- (a send to the socket a move left: what it had is lost with
            -- it; its requests end at their timeouts)
        end
    end
end


return _M
