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
local ffi = require "ffi"
local ffi_new, ffi_string = ffi.new, ffi.string
local core = require "resty.nats.core"
local C, OK = core.C, core.OK


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


-- the first value of header name in a message's headers (nil when none)
function _M.header(h, name)
    local v = h and h[name]
    if type(v) == "table" then
        return v[1]
    end
    return v
end


-- what a 409 says when a pull request ended before its batch was full
-- (the request is over, the consumer is fine)
local ENDED_409 = {
    ["Message Size Exceeds MaxBytes"] = true,
    ["Exceeded MaxRequestBatch"] = true,
    ["Exceeded MaxRequestMaxBytes"] = true,
    ["Exceeded MaxRequestExpires"] = true,
    ["Exceeded MaxWaiting"] = true,
}

-- status m (a status message of a pull request's inbox) ends that pull
-- request, with this many of its messages not sent (nil: not said)? Its
-- second value. 408: expired; such a 409: its max_bytes reached or a
-- limit of the consumer; 404: nothing there (no_wait)
function _M.pull_ended(m)
    local status = m.status
    if status == 404 or status == 408
       or (status == 409 and ENDED_409[m.description])
    then
        return true, tonumber(_M.header(m.headers, "Nats-Pending-Messages"))
    end
    return false
end


-- $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>,
-- or with <domain>.<account hash> after $JS.ACK (and a token at the end),
-- parsed by the C core (every message of a consumer has one: in Lua the
-- numbers were strings to make and collect first)
local meta = ffi_new("resty_nats_js_meta_t")

local function metadata(reply)
    if type(reply) ~= "string"
       or C.resty_nats_js_meta(reply, #reply, meta) ~= OK
    then
        return nil
    end
    local md = {
        stream = ffi_string(meta.stream.data, meta.stream.len),
        consumer = ffi_string(meta.consumer.data, meta.consumer.len),
        num_delivered = tonumber(meta.delivered),
        stream_seq = tonumber(meta.stream_seq),
        consumer_seq = tonumber(meta.consumer_seq),
        timestamp = tonumber(meta.timestamp),
        num_pending = tonumber(meta.pending),
    }
    if meta.domain.len > 0 then
        md.domain = ffi_string(meta.domain.data, meta.domain.len)
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
