-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.objstore.read: reading an object's chunks (obs:open's
-- reader) and Direct Get for a bucket. A one-chunk object comes by Direct
-- Get where the bucket allows it; the others through an ephemeral pull
-- consumer asked for batches two ahead, the readers of a connection
-- sharing what is in flight. The SHA-256 of the bytes is checked before
-- the last piece of a whole read is returned. reader:seek(offset) starts
-- a read part-way: the consumer starts at the chunk holding that byte
-- (found by the stream sequence of the object's first chunk and the
-- consumer's count of what is pending) when the object's chunks are all
-- full (put by this library), else at the first; no digest then.

local sha256 = require "resty.nats.jetstream.sha256"
local feed_open = require("resty.nats.jetstream.feed").open
local get_msg = require("resty.nats.jetstream.get").get_msg
local payload_parts = require("resty.nats.events").payload_parts
local ffi_cast = require("ffi").cast

local ngx = ngx
local ngx_log, ngx_WARN = ngx.log, ngx.WARN
local ngx_now = ngx.now
local type, pairs = type, pairs
local setmetatable, error = setmetatable, error
local str_sub = string.sub
local math_floor, math_max, math_min = math.floor, math.max, math.min


local _M = {}

local ERR_NO_MESSAGE = 10037
-- reading: chunks are asked for a batch at a time, two batches ahead;
-- the readers of a connection share READ_BUDGET bytes in flight (the
-- more readers, the smaller each one's batches, as they come and go),
-- each batch between BATCH_MIN and BATCH_MAX bytes. One reader alone:
-- 4 MiB a batch, 10-20 % faster through nginx than 1 MiB
-- (bench/objstore.sh); sixteen: 512 KiB each. (What is in flight comes
-- through the connection's socket: too much of it, and a busy worker
-- that reads it slower than the server writes gets the connection cut
-- as a slow consumer.)
local READ_BUDGET = 16 * 1024 * 1024
local BATCH_MIN = 256 * 1024
local BATCH_MAX = 4 * 1024 * 1024
local WEAK_KEYS = { __mode = "k" }
-- a chunk over this many bytes is returned in parts: LuaJIT maps a string
-- of 128 KiB or more (the default chunk size) on its own pages, faulted
-- in and unmapped each time (page faults: 8.9 % of the worker's samples
-- on a GET of 128 KiB chunks, 1.6 % in parts of 64 KiB; bench/README.md)
local PIECE_MAX = 128 * 1024 - 64
_M.PIECE_MAX = PIECE_MAX
-- Direct Get (where the bucket allows it: ADR-20 buckets do) reads the
-- metas, and an object of one chunk: its chunk, the last on its subject,
-- in one request, no consumer made and deleted for it (most of what a
-- small object's read cost the server: 5 times the GETs per second of a
-- 1 KB object, bench/objsmall.sh). Larger objects come through a
-- consumer, their chunks streamed (Direct Get a chunk at a time, from the
-- first on the subject: no faster at 3 chunks, slower at 8)
local DIRECT = { direct = true }
local DIRECT_PAUSE = 60     -- s without Direct Get after it failed


-- whether obs's reads may use Direct Get now
local function direct_ok(obs)
    return obs._direct and ngx_now() >= obs._direct_off
end
_M.direct_ok = direct_ok


-- a Direct Get of obs's stream (query q): the message; nil, err, code
-- (10037: none); false when Direct Get failed otherwise (the stream no
-- longer allows it, a user not allowed it, a timeout...): the handle's
-- reads go through the JSON API and consumers for DIRECT_PAUSE seconds
local function direct_get(obs, q)
    local m, err, code = get_msg(obs._js, obs._stream, q, DIRECT)
    if m or code == ERR_NO_MESSAGE then
        return m, err, code
    end
    obs._direct_off = ngx_now() + DIRECT_PAUSE
    ngx_log(ngx_WARN, "nats: object store ", obs.bucket, ": Direct Get ",
            "failed (", err, "): reading through the JetStream API for ",
            DIRECT_PAUSE, " s")
    return false
end
_M.direct_get = direct_get


-- the count of connection conn's readers reading, after reader me came
-- (on) or went (not on); the set is weak: a reader its user dropped
-- without closing it leaves with the garbage
local function count_readers(conn, me, on)
    local active = conn._obs_reading
    if not active then
        if not on then
            return
        end
        active = setmetatable({}, WEAK_KEYS)
        conn._obs_reading = active
    end
    active[me] = on or nil
    local n = 0
    for _ in pairs(active) do
        n = n + 1
    end
    conn._obs_readers = n
end


-- chunks of csize bytes a batch, for a reader among n
local function batch_of(n, csize)
    local bytes = math_max(BATCH_MIN,
                           math_min(BATCH_MAX, READ_BUDGET / (2 * n)))
    return math_max(1, math_floor(bytes / math_max(csize, 1)))
end


-- a payload string as a list of parts of at most PIECE_MAX bytes (of
-- equal sizes but the last, as a subscription's _split makes them), or
-- the string itself when it is no longer
local function in_parts(p)
    if #p <= PIECE_MAX then
        return p
    end
    return payload_parts(ffi_cast("const char *", p), #p, PIECE_MAX)
end


-- a reader is called for the next piece; reader:seek(offset) before the
-- first call starts it at that byte; reader:close() ends it early
local reader_mt = {
    __call = function(r)
        return r._read()
    end,
    __index = {
        close = function(r)
            return r._close()
        end,
        seek = function(r, offset)
            return r._seek(offset)
        end,
    },
}


-- the reader of the object info (of bucket target, on subject) whose
-- digest is want (32 bytes; nil for an empty object); full: every chunk
-- but the last has max_chunk_size bytes (a seek may start at its chunk)
function _M.new(target, info, subject, want, full)
    local size = info.size
    local feed, h
    local got = 0         -- bytes of the object before the next chunk
    local failed          -- the error, once there was one
    local finished = size == 0
    local started = false
    local offset = 0      -- seek: the first byte to return
    local skip = 0        -- bytes still to drop before it
    local parts, nparts, ipart = nil, 0, 0  -- a chunk's parts to return
    local csize = info.options.max_chunk_size
                  or math_floor(size / math_max(info.chunks, 1))
    -- one chunk: by Direct Get (on a failure, through a consumer)
    local direct = info.chunks == 1 and direct_ok(target)

    local conn = target._js._conn
    local me = {}
    local readers = 0           -- the count the batch was sized for
    local function done_reading()
        if readers > 0 then
            readers = 0
            count_readers(conn, me, false)
        end
    end

    local function abort(e)
        failed = e
        parts = nil
        if feed then
            feed:close()
        end
        done_reading()
        return nil, e
    end

    -- the consumer of the object's chunks, from the first, or (a seek
    -- past the first chunk) from the one holding offset: got and skip set
    local function open_feed()
        count_readers(conn, me, true)
        readers = conn._obs_readers
        local opts = {
            filter_subject = subject,
            count = info.chunks,
            batch = batch_of(readers, csize),
            split = PIECE_MAX,
        }
        local k = math_floor(offset / math_max(csize, 1))
        if k > 0 and full and info.options.max_chunk_size then
            -- chunk k is at sequence first + k or later (a put's chunks
            -- are in order, maybe with other messages among them): the
            -- consumer starts there, and what it has pending says which
            -- chunk that is (k, or one before it when others came among)
            local q = { seq = 1, next_by_subj = subject }
            local m, e, c
            if direct_ok(target) then
                m, e, c = direct_get(target, q)
            end
            if not m then
                m, e, c = get_msg(target._js, target._stream, q)
            end
            if not m then
                return nil, c == ERR_NO_MESSAGE
                            and "the object has no chunks" or e
            end
            opts.count = true
            opts.deliver_policy = "by_start_sequence"
            opts.opt_start_seq = m.seq + k
        end
        local e, c
        feed, e, c = feed_open(target._js, target._stream, opts)
        if not feed then
            return nil, e or c
        end
        if opts.count == true then
            local j = info.chunks - (feed._left or 0)
            if j < 0 or j > k then
                return nil, "the object has more chunks than its meta says"
            end
            got = j * csize
        end
        skip = offset - got
        return true
    end

    -- the next chunk's payload (a string, or a list of parts), or nil, err
    local function next_chunk()
        if direct then
            direct = false
            local m = direct_get(target, { last_by_subj = subject })
            if m then
                skip = offset
                return in_parts(m.payload)
            end
            -- (not there: a replica behind the one that gave the meta)
        end
        if not feed then
            local ok, e = open_feed()
            if not ok then
                return nil, e
            end
        end
        if conn._obs_readers ~= readers then
            -- readers came or went: batches from now on sized for them
            readers = conn._obs_readers
            feed._batch = batch_of(readers, csize)
        end
        local m, e = feed:next()
        if not m then
            if e == "end" then
                return nil, "the object has fewer bytes than its meta says"
            end
            return nil, e == "timeout" and "timeout reading the object" or e
        end
        return m.payload
    end

    -- the next piece of the object (skip not applied), or nil, err
    local function next_piece()
        if failed then
            return nil, failed
        end
        if parts then
            ipart = ipart + 1
            local p = parts[ipart]
            if ipart >= nparts then
                parts = nil
            end
            return p
        end
        if finished then
            return nil
        end
        if not h and offset == 0 then
            local e
            h, e = sha256.new()
            if not h then
                return abort(e)
            end
        end
        started = true
        local piece, e = next_chunk()
        if not piece then
            return abort(e)
        end
        local split = type(piece) == "table"
        if split then
            -- the chunk in parts (PIECE_MAX): all hashed now, the first
            -- returned, the others by the next calls
            local n = #piece
            for i = 1, n do
                local p = piece[i]
                got = got + #p
                if h then
                    h:update(p)
                end
            end
            parts, nparts, ipart = piece, n, 1
            piece = piece[1]
        else
            got = got + #piece
            if h then
                h:update(piece)
            end
        end
        if got > size then
            return abort("the object has more bytes than its meta says")
        end
        if got == size then
            finished = true
            if feed then
                feed:close()
            end
            done_reading()
            if h and h:final() ~= want then
                return abort("digest does not match")
            end
        end
        return piece
    end

    local function reader()
        while true do
            local p, e = next_piece()
            if not p then
                if e then
                    return nil, e
                end
                return nil
            end
            if skip == 0 then
                return p
            end
            if #p > skip then
                p = str_sub(p, skip + 1)
                skip = 0
                return p
            end
            skip = skip - #p
        end
    end

    local function seek(off)
        if started then
            error("seek after the first read", 3)
        end
        if type(off) ~= "number" or off < 0 or off % 1 ~= 0 then
            error("bad argument #1 to 'seek' (a byte offset expected)", 3)
        end
        if off >= size then
            -- nothing left to read
            finished = true
            return true
        end
        offset = off
        h = nil
        return true
    end

    local function close()
        if not finished and not failed then
            failed = "closed"
        end
        parts = nil
        if feed then
            feed:close()
        end
        done_reading()
        return true
    end

    return setmetatable({ _read = reader, _close = close, _seek = seek },
                        reader_mt)
end


return _M
