-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.feed: the messages of a stream on a subject, in
-- stream order, each once, read at the reader's pace with a bounded
-- number of bytes in flight, on either kind of connection (the object
-- store reads its chunks and metas through it).
--
-- An ephemeral pull consumer (no acks, in memory) is asked for batches of
-- messages to the feed's inbox, two batches ahead: the next batch is
-- asked once the one before it is read. At most two batches are ever on
-- their way, whatever the object's size or the number of feeds on one
-- connection; a push consumer's flow control lets its window grow to
-- tens of MiB instead, which a server's 64 MiB budget for the client
-- cannot give to many readers at once. When the feed sees a message
-- skipped (a gap in the consumer's sequence), or its consumer is gone
-- (deleted, inactive too long, a server restart), it makes the consumer
-- again from the sequence after the last message read.

local metadata = require("resty.nats.jetstream.msg").metadata
local jetstream = require "resty.nats.jetstream"
local new_inbox = jetstream.new_inbox
local encode = require("resty.nats.jetstream.json").encode
local now_ms = require("resty.nats.settings").now_ms

local math_min, math_max, math_floor = math.min, math.max, math.floor
local setmetatable = setmetatable


local _M = {}

local Feed = {}
local feed_mt = { __index = Feed }

-- a pull consumer not asked for INACTIVE ms is deleted by the server (the
-- feed makes it again if it is read after that)
local INACTIVE = 30000


-- (re)makes the consumer of feed f, after the last message read
local function start(f)
    local js = f._js
    if f._sub then
        f._sub:unsubscribe()
        f._sub = nil
        f:_delete()
    end
    local inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    local sub
    sub, err = js._conn:_subscribe(inbox)
    if not sub then
        return nil, err
    end
    f._sub, f._inbox = sub, inbox
    local cfg = {
        ack_policy = "none", filter_subject = f._subject,
        deliver_policy = f._policy, mem_storage = true,
        inactive_threshold = INACTIVE * 1e6,
    }
    if f._sseq > 0 then
        cfg.deliver_policy = "by_start_sequence"
        cfg.opt_start_seq = f._sseq + 1
    end
    local ci, code
    ci, err, code = js:add_consumer(f._stream, cfg)
    if not ci then
        sub:unsubscribe()
        f._sub = nil
        return nil, err, code
    end
    f._consumer = ci.name
    f._next_subject = js._prefix .. ".CONSUMER.MSG.NEXT." .. f._stream
                      .. "." .. ci.name
    f._cseq = 0
    f._asked = 0
    if f._left == nil then
        f._left = ci.num_pending or 0
    end
    f.waiting = f._left
    return true
end


-- asks for batches until two are on their way (never more messages than
-- are left, when that is known)
local function ask(f)
    local conn = f._js._conn
    while f._asked <= f._batch and f._asked < f._left do
        local n = math_min(f._batch, f._left - f._asked)
        local body = encode({ batch = n, expires = f._timeout * 1e6 })
        local ok, err = conn:publish(f._next_subject, body,
                                     { reply_to = f._inbox })
        if not ok then
            return nil, err
        end
        f._asked = f._asked + n
    end
    return true
end


-- open(js, stream, subject, { policy = "all" | "last_per_subject",
-- count = messages to read (default: what is there at the start),
-- msg_size = bytes of a message, for the size of a batch, window = bytes
-- in flight at most, timeout = ms })
function _M.open(js, stream, subject, opts)
    local window = opts.window or 2 * 1024 * 1024
    local msg_size = math_max(opts.msg_size or 1024, 1)
    local f = setmetatable({
        _js = js, _stream = stream, _subject = subject,
        _policy = opts.policy or "all", _sseq = 0, _cseq = 0,
        _left = opts.count, _timeout = opts.timeout or js._timeout,
        _batch = math_max(1, math_floor(window / 2 / msg_size)),
    }, feed_mt)
    local ok, err, code = start(f)
    if not ok then
        return nil, err, code
    end
    return f
end


-- the next message and its metadata (m, md); nil, "end" when every
-- message was read; nil, err on failure ("timeout" when none came within
-- the feed's timeout)
function Feed.next(f)
    if f._left <= 0 then
        return nil, "end"
    end
    local ok, err, code = ask(f)
    if not ok then
        return nil, err, code
    end
    local deadline = now_ms() + f._timeout
    while true do
        local left = deadline - now_ms()
        if left <= 0 then
            return nil, "timeout"
        end
        local m
        m, err = f._sub:next(left)
        if not m then
            return nil, err
        end
        local md = not m.status and metadata(m.reply_to)
        if md and md.consumer_seq == f._cseq + 1 then
            f._cseq = md.consumer_seq
            f._sseq = md.stream_seq
            f._asked = f._asked - 1
            f._left = f._left - 1
            return m, md
        end
        if md or m.status ~= 408 then
            -- a message skipped, the consumer gone (409, 404, no
            -- responders: 503): again from after the last one read
            ok, err, code = start(f)
            if not ok then
                return nil, err, code
            end
        else
            -- a batch that expired before it was filled: ask again
            f._asked = 0
        end
        ok, err, code = ask(f)
        if not ok then
            return nil, err, code
        end
    end
end


-- the consumer is deleted without waiting for the answer (an inactive
-- one would be deleted by the server anyway)
function Feed._delete(f)
    if f._consumer then
        local js = f._js
        js._conn:publish(js._prefix .. ".CONSUMER.DELETE." .. f._stream
                         .. "." .. f._consumer, "",
                         { reply_to = f._inbox .. ".deleted" })
        f._consumer = nil
    end
end


-- close(): no more reading; the feed's subscription and consumer go
function Feed.close(f)
    if f._sub then
        f._sub:unsubscribe()
        f._sub = nil
        f:_delete()
    end
end


return _M
