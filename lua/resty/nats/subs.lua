-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.subs: the subscriptions of a connection, one shape for both
-- kinds of connection. The core's subscription table allocates sids and
-- counts deliveries against a max; c._subs maps the numeric sid to its
-- Sub: subject, queue, callback, and a queue of messages that wait for
-- sub:next() or for the callback's timer (a subscription whose callback
-- runs where the connection is read has none). The request inbox is one
-- wildcard subscription "_INBOX.<22 random characters>.*" that replies are
-- routed through by token (resty.nats.conn).
--
-- What a subscription needs of its connection's driver: c:_wait_sub(sub,
-- deadline) (true once a message is queued or the subscription ended, or
-- nil, err) and c:_unsubscribed(sub, frame) (sends UNSUB frame, if any).

local ffi = require "ffi"
local core = require "resty.nats.core"
local frame = require "resty.nats.frame"
local settings = require "resty.nats.settings"

local C = core.C
local OK = core.OK
local DONE = core.DONE
local ERRBUF_SIZE = core.ERRBUF_SIZE
local errbuf = core.errbuf
local sizes = core.sizes
local errlen = core.errlen
local last_error = core.last_error
local frame_call = frame.call
local get_buf = frame.get_buf
local token = frame.token
local now_ms = settings.now_ms

local ffi_gc = ffi.gc
local ffi_new = ffi.new
local ffi_string = ffi.string
local type = type
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local error = error
local setmetatable = setmetatable


local _M = {
    INBOX_TOKEN_LEN = 22,
    REPLY_TOKEN_LEN = 12,               -- [A-Za-z0-9]: 71 bits
    DEFAULT_PENDING_MSGS = 65536,
    DEFAULT_PENDING_BYTES = 64 * 1024 * 1024,
}

local INBOX_TOKEN_LEN = _M.INBOX_TOKEN_LEN

local Sub = {}
local sub_mt = { __index = Sub }
_M.Sub = Sub

local sidbuf = ffi_new("uint64_t[1]")


-- a fresh subscription table (sids from 1); true, or nil, "no memory"
function _M.new_table(c)
    local tp = ffi_new("resty_nats_subs_t *[1]")
    if C.resty_nats_subs_new(tp) ~= OK then
        return nil, "no memory"
    end
    c._subtab = ffi_gc(tp[0], C.resty_nats_subs_free)
    c._subs = {}
    c._nsubs = 0
    c._inbox_sid = nil
    c._inbox_prefix = nil
    c._inbox_plen = 0
    return true
end


-- registers a subscription on c: the Sub and its frames (SUB, and UNSUB
-- with max), to be sent by the driver; or nil, err (nothing registered).
-- callback: a function, or false (messages queue for sub:next()).
function _M.add(c, subject, callback, queue, max)
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end
    local qlen = queue and #queue or 0
    local buf, cap = get_buf(#subject + qlen + 96)
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_subs_subscribe(c._subtab, buf, cap, sizes,
                                           subject, #subject, queue, qlen,
                                           max or 0, sidbuf, errbuf, errlen)
    if rc ~= OK then
        if rc == core.AGAIN then
            return nil, "framer size probe failed"
        end
        return nil, last_error()
    end
    local frames = ffi_string(buf, sizes[0])

    local nsid = tonumber(sidbuf[0])
    local sub = setmetatable({
        _conn = c,
        _nsid = nsid,
        sid = tostring(nsid),
        subject = subject,
        queue = queue,
        callback = callback,
        _max = max,
        _delivered = 0,
        -- payloads over this many bytes come as lists of strings
        -- (events.build_msg; set by resty.nats.jetstream.feed)
        _split = false,
        -- the messages waiting to be taken
        _q = {},
        _qh = 1,
        _qt = 0,
        _pmsgs = 0,
        _pbytes = 0,
        _lim_msgs = c._lim_msgs or _M.DEFAULT_PENDING_MSGS,
        _lim_bytes = c._lim_bytes or _M.DEFAULT_PENDING_BYTES,
        _sema = false,          -- made by a driver that waits on one
        _waiting = false,
        _closed = false,
        _done = false,
        dropped = 0,
    }, sub_mt)
    c._subs[nsid] = sub
    c._nsubs = c._nsubs + 1
    return sub, frames
end


-- forgets a subscription (the table's count, the core's entry)
local function drop(c, sub)
    local nsid = sub._nsid
    if c._subs[nsid] == sub then
        c._subs[nsid] = nil
        c._nsubs = c._nsubs - 1
        C.resty_nats_subs_remove(c._subtab, nsid)
        return true
    end
    return false
end
_M.drop = drop


-- "UNSUB <sid> [max]", or nil, err
local function unsub_frame(nsid, max)
    return frame_call(C.resty_nats_frame_unsub, nsid, max or 0, errbuf,
                      errlen)
end
_M.unsub_frame = unsub_frame


-- the subscription ends after max messages in all: the UNSUB frame (the
-- subscription may be gone at once: max delivered already), or nil, err
function _M.set_max(c, sub, max)
    local line, err = unsub_frame(sub._nsid, max)
    if not line then
        return nil, err
    end
    sub._max = max
    if C.resty_nats_subs_set_max(c._subtab, sub._nsid, max) == DONE then
        sub._done = true
        drop(c, sub)
    end
    return line
end


-- the frames that make subscription sub (sid nsid) at a server, with
-- what remains of its max, added to frames; or nil, err
local function sub_frames(frames, nsid, sub)
    local subject, queue = sub.subject, sub.queue
    local line, err = frame_call(C.resty_nats_frame_sub, subject,
                                 #subject, queue, queue and #queue or 0,
                                 nsid, errbuf, errlen)
    if not line then
        return nil, err
    end
    frames[#frames + 1] = line
    local max = sub._max
    if max and max > 0 then
        line, err = unsub_frame(nsid, max - sub._delivered)
        if not line then
            return nil, err
        end
        frames[#frames + 1] = line
    end
    return frames
end
_M.sub_frames = sub_frames


-- the frames that make every live subscription again on a new connection
-- (with what remains of its max); or nil, err
function _M.resub_frames(c)
    local frames = {}
    for nsid, sub in pairs(c._subs) do
        local ok, err = sub_frames(frames, nsid, sub)
        if not ok then
            return nil, err
        end
    end
    return frames
end


-- the UNSUB frames of every subscription (for a drain), but the one with
-- sid except (if given)
function _M.unsub_all_frames(c, except)
    local frames = {}
    for nsid in pairs(c._subs) do
        if nsid ~= except then
            frames[#frames + 1] = unsub_frame(nsid, 0)
        end
    end
    return frames
end


-- library objects that read through subscriptions of connection c
-- (ordered consumers) end with its use (a per-request object pooled or
-- closed): their subscriptions go and their consumers are deleted
function _M.close_owned(c)
    for _, sub in pairs(c._subs) do
        if sub._owner then
            sub:unsubscribe()
        end
    end
end


-- the request inbox: its SUB frame when it is made now, nil when it
-- exists; nil, err
function _M.inbox(c)
    if c._inbox_sid then
        return nil
    end
    local t = token(INBOX_TOKEN_LEN)
    if not t then
        return nil, "no randomness for the inbox"
    end
    local prefix = "_INBOX." .. t .. "."
    local sub, frames = _M.add(c, prefix .. "*", false)
    if not sub then
        return nil, frames
    end
    c._inbox_sid = sub._nsid
    c._inbox_prefix = prefix
    c._inbox_plen = #prefix
    return frames
end


---------------------------------------------------------------------------
-- the messages of a subscription

-- a message for sub, counted; false when its pending limits are reached
-- (a slow consumer: the message is dropped)
function _M.push(sub, msg, len)
    if sub._pmsgs >= sub._lim_msgs or sub._pbytes + len > sub._lim_bytes then
        sub.dropped = sub.dropped + 1
        return false
    end
    local t = sub._qt + 1
    sub._qt = t
    sub._q[t] = msg
    sub._pmsgs = sub._pmsgs + 1
    sub._pbytes = sub._pbytes + len
    return true
end


local function pop(sub)
    local h = sub._qh
    if h > sub._qt then
        return nil
    end
    local msg = sub._q[h]
    sub._q[h] = nil
    if h == sub._qt then
        sub._qh, sub._qt = 1, 0
    else
        sub._qh = h + 1
    end
    sub._pmsgs = sub._pmsgs - 1
    sub._pbytes = sub._pbytes - #msg.payload
    return msg
end
_M.pop = pop


local function wake(sub)
    if sub._waiting then
        sub._waiting = false
        sub._sema:post(1)
    end
end
_M.wake = wake


-- sub:next()'s wait for a message
local function next_wait(sub, timeout)
    local deadline, err
    while true do
        local msg = pop(sub)
        if msg then
            return msg
        end
        if sub._closed or sub._done then
            return nil, "closed"
        end
        if err then
            return nil, err
        end
        if deadline then
            if deadline - now_ms() <= 0 then
                return nil, "timeout"
            end
        else
            if timeout ~= nil
               and (type(timeout) ~= "number" or timeout < 0)
            then
                error("bad timeout for 'next' (a number of ms >= 0 "
                      .. "expected)", 3)
            end
            if timeout == 0 then
                return nil, "timeout"
            end
            deadline = now_ms() + (timeout or sub._conn:_default_timeout())
        end
        -- the driver's wait: true once something happened, or nil, err
        local ok
        ok, err = sub._conn:_wait_sub(sub, deadline)
        if ok then
            err = nil
        end
    end
end


-- sub:next([timeout]): the next message of a subscription without a
-- callback; nil, "timeout" or nil, "closed". A message queued already is
-- returned without a loop (LuaJIT compiles that into the caller's loop).
function Sub.next(sub, timeout)
    if sub.callback then
        error("next() on a subscription with a callback", 2)
    end
    local msg = pop(sub)
    if msg then
        return msg
    end
    local err
    msg, err = next_wait(sub, timeout)     -- (no tail call: error levels)
    return msg, err
end


-- sub:unsubscribe(): true, or nil, "closed" when it ended before
function Sub.unsubscribe(sub)
    if sub._closed then
        return nil, "closed"
    end
    sub._closed = true
    local c = sub._conn
    local line
    if drop(c, sub) then
        line = unsub_frame(sub._nsid, 0)
    end
    wake(sub)
    local ok, err = c:_unsubscribed(sub, line)
    -- a library object that reads through this subscription (an ordered
    -- consumer's feed) ends with it: its server-side part goes too
    local owner = sub._owner
    if owner then
        sub._owner = nil
        owner:_end()
    end
    if err ~= nil then
        return ok, err
    end
    return ok
end


return _M
