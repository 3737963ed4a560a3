-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.objstore.put: the chunks of a put. The source (a string, or
-- a function giving pieces of any size) is cut into chunks of chunk_size
-- bytes, hashed (SHA-256) and published with acknowledgements to their
-- own subscription, at most MAX_UNACKED_BYTES (and at least 2 chunks)
-- unacknowledged at a time.

local decode = require("resty.nats.jetstream.json").decode
local sha256 = require "resty.nats.jetstream.sha256"

local type, tostring = type, tostring
local error = error
local str_sub = string.sub
local tab_concat = table.concat
local math_floor, math_max = math.floor, math.max


local _M = {}

local DEFAULT_CHUNK_SIZE = 128 * 1024
local MAX_UNACKED_BYTES = 2 * 1024 * 1024


-- the acknowledgements of a put's chunks: a subscription of its own
-- (replies to <inbox>.<n>), read when too many are in flight
local function await_acks(acks, until_left, timeout)
    while acks.pending > until_left do
        local m, err = acks.sub:next(timeout)
        if not m then
            if err == "timeout" then
                return nil, "timeout waiting for a chunk's acknowledgement"
            end
            return nil, err
        end
        if m.status == 503 then
            return nil, "no responders: is the bucket gone?"
        end
        local ack = decode(m.payload)
        if type(ack) ~= "table" then
            return nil, "bad acknowledgement: " .. str_sub(m.payload, 1, 200)
        end
        if ack.error then
            return nil, ack.error.description
                        or "error " .. tostring(ack.error.code)
        end
        acks.pending = acks.pending - 1
    end
    return true
end


-- a source (a string, or a function giving the pieces) as a function
local function pieces(source)
    if type(source) == "string" then
        local done = false
        return function()
            if done then
                return nil
            end
            done = true
            return source
        end
    end
    return source
end


local function check_put_opts(opts)
    if opts == nil then
        return DEFAULT_CHUNK_SIZE
    end
    if type(opts) ~= "table" then
        error("bad argument #3 to 'put' (table expected, got "
              .. type(opts) .. ")", 3)
    end
    local size = opts.chunk_size or DEFAULT_CHUNK_SIZE
    if type(size) ~= "number" or size < 1 or size % 1 ~= 0 then
        error("bad 'chunk_size' option to 'put' (a positive integer "
              .. "expected)", 3)
    end
    if opts.headers ~= nil and type(opts.headers) ~= "table" then
        error("bad 'headers' option to 'put' (table expected)", 3)
    end
    if opts.metadata ~= nil and type(opts.metadata) ~= "table" then
        error("bad 'metadata' option to 'put' (table expected)", 3)
    end
    return size
end


-- sends the chunks of source (on subject), at most window unacknowledged;
-- returns the hash's digest, the size and the chunk count, or nil, err
local function send_chunks(obs, subject, source, chunk_size, acks)
    local js = obs._js
    local conn = js._conn
    local h, err = sha256.new()
    if not h then
        return nil, err
    end
    local window = math_max(2, math_floor(MAX_UNACKED_BYTES / chunk_size))
    local size, nchunks = 0, 0
    local held, nheld = {}, 0       -- pieces not sent yet, their bytes

    local function send(chunk)
        h:update(chunk)
        nchunks = nchunks + 1
        size = size + #chunk
        local ok, e = conn:publish(subject, chunk,
                                   { reply_to = acks.inbox .. "." .. nchunks })
        if not ok then
            return nil, e
        end
        acks.pending = acks.pending + 1
        return await_acks(acks, window - 1, js._timeout)
    end

    local next_piece = pieces(source)
    while true do
        local piece, perr = next_piece()
        if piece == nil then
            if perr ~= nil then
                return nil, "source: " .. tostring(perr)
            end
            break
        end
        if type(piece) ~= "string" then
            return nil, "source returned a " .. type(piece)
                        .. ", not a string"
        end
        -- whole chunks out of what is held and this piece
        local pos, len = 1, #piece
        while nheld + len - pos + 1 >= chunk_size do
            local take = chunk_size - nheld
            local chunk = str_sub(piece, pos, pos + take - 1)
            pos = pos + take
            if nheld > 0 then
                held[#held + 1] = chunk
                chunk = tab_concat(held)
                held, nheld = {}, 0
            end
            local ok, e = send(chunk)
            if not ok then
                return nil, e
            end
        end
        if pos <= len then
            local rest = str_sub(piece, pos)
            held[#held + 1] = rest
            nheld = nheld + #rest
        end
    end
    if nheld > 0 then
        local ok, e = send(tab_concat(held))
        if not ok then
            return nil, e
        end
    end
    local ok, e = await_acks(acks, 0, js._timeout)
    if not ok then
        return nil, e
    end
    local digest
    digest, e = h:final()
    if not digest then
        return nil, e
    end
    return digest, size, nchunks
end


_M.check_opts = check_put_opts
_M.send_chunks = send_chunks


return _M
