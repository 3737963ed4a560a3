-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.msg: messages of a stream as JetStream hands them
-- out: the metadata in the reply subject of a consumer's message, the
-- header block of a stored message, and the acknowledgements (ack,
-- ack_sync, nak, in_progress, term) of a consumer's message.

local encode = require("resty.nats.jetstream.json").encode
local add_header = require("resty.nats.events").add_header

local type = type
local tonumber = tonumber
local setmetatable = setmetatable
local error = error
local str_sub, str_find = string.sub, string.find


local _M = {}

local Msg = {}
local msg_mt = { __index = Msg }


-- a NATS/1.0 header block (as JetStream stores it) as a Lua table
function _M.parse_headers(block)
    if not block or block == "" then
        return nil
    end
    local headers
    local first = true
    for line in block:gmatch("([^\r\n]*)\r\n") do
        if first then
            first = false
        elseif line ~= "" then
            local k, v = line:match("^([^:]+):%s*(.*)$")
            if k then
                headers = headers or {}
                add_header(headers, k, v)
            end
        end
    end
    return headers
end


-- $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>,
-- or with <domain>.<account hash> after $JS.ACK (and a token at the end)
local function metadata(reply)
    if type(reply) ~= "string" or str_sub(reply, 1, 8) ~= "$JS.ACK." then
        return nil
    end
    -- the common form with plain finds (compiled by LuaJIT, unlike a
    -- pattern with captures: a consumer's every message has one)
    local a = str_find(reply, ".", 9, true)
    local b = a and str_find(reply, ".", a + 1, true)
    local c = b and str_find(reply, ".", b + 1, true)
    local d = c and str_find(reply, ".", c + 1, true)
    local e = d and str_find(reply, ".", d + 1, true)
    local f = e and str_find(reply, ".", e + 1, true)
    if f and not str_find(reply, ".", f + 1, true) then
        local md = {
            stream = str_sub(reply, 9, a - 1),
            consumer = str_sub(reply, a + 1, b - 1),
            num_delivered = tonumber(str_sub(reply, b + 1, c - 1)),
            stream_seq = tonumber(str_sub(reply, c + 1, d - 1)),
            consumer_seq = tonumber(str_sub(reply, d + 1, e - 1)),
            timestamp = tonumber(str_sub(reply, e + 1, f - 1)),
            num_pending = tonumber(str_sub(reply, f + 1)),
        }
        if md.num_pending and md.stream_seq and md.consumer_seq then
            return md
        end
        return nil
    end
    local t = {}
    for tok in reply:gmatch("[^.]+") do
        t[#t + 1] = tok
    end
    local i
    if #t == 9 then
        i = 3
    elseif #t >= 11 then
        i = 5
    else
        return nil
    end
    local md = {
        stream = t[i], consumer = t[i + 1],
        num_delivered = tonumber(t[i + 2]),
        stream_seq = tonumber(t[i + 3]),
        consumer_seq = tonumber(t[i + 4]),
        timestamp = tonumber(t[i + 5]),
        num_pending = tonumber(t[i + 6]),
    }
    if i == 5 and t[3] ~= "_" then
        md.domain = t[3]
    end
    return md
end
_M.metadata = metadata


-- a message of a pull consumer (m: as the engine delivers it), with its
-- metadata and the acknowledgements below, on js's connection
function _M.new(js, m)
    return setmetatable({
        subject = m.subject, payload = m.payload, headers = m.headers,
        reply = m.reply_to, metadata = metadata(m.reply_to), _js = js,
    }, msg_mt)
end


-- acknowledgements

local function ack_publish(msg, body)
    if not msg.reply then
        return nil, "not a JetStream message"
    end
    if msg._acked then
        return nil, "already acknowledged"
    end
    local ok, err = msg._js._conn:publish(msg.reply, body)
    if not ok then
        return nil, err
    end
    msg._acked = true
    return true
end


function Msg.ack(msg)
    return ack_publish(msg, "+ACK")
end


-- ack_sync([timeout]): true once the server confirmed the ack
function Msg.ack_sync(msg, timeout)
    if not msg.reply then
        return nil, "not a JetStream message"
    end
    if msg._acked then
        return nil, "already acknowledged"
    end
    local js = msg._js
    local r, err = js._conn:request(msg.reply, "+ACK",
                                    { timeout = timeout or js._timeout })
    if not r then
        return nil, err
    end
    msg._acked = true
    return true
end


-- nak([delay_ms]): redeliver, after delay_ms if given
function Msg.nak(msg, delay)
    if delay ~= nil then
        if type(delay) ~= "number" or delay < 0 then
            error("bad argument #1 to 'nak' (a delay in ms >= 0 expected)", 2)
        end
        return ack_publish(msg, "-NAK " .. encode({ delay = delay * 1e6 }))
    end
    return ack_publish(msg, "-NAK")
end


-- in_progress(): more time to process it (can be sent more than once)
function Msg.in_progress(msg)
    if not msg.reply then
        return nil, "not a JetStream message"
    end
    return msg._js._conn:publish(msg.reply, "+WPI")
end


function Msg.term(msg)
    return ack_publish(msg, "+TERM")
end


return _M
