-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.get: one stored message of a stream, by sequence,
-- as the last on a subject, or as the next on a subject from a sequence.
-- Two ways to ask: the JSON API ($JS.API.STREAM.MSG.GET.<stream>, answered
-- by the stream's leader, the message base64 in JSON) and Direct Get
-- (ADR-31: $JS.API.DIRECT.GET.<stream>, answered by any server holding
-- the stream when it has allow_direct, the message as it was stored with
-- Nats-Stream, Nats-Subject, Nats-Sequence and Nats-Time-Stamp headers
-- added). Both give the same table: { subject, seq, payload, headers,
-- time }, or nil, "no message found", 10037.

local api = require("resty.nats.jetstream").api
local jsjson = require "resty.nats.jetstream.json"
local encode, decode = jsjson.encode, jsjson.decode
local jsmsg = require "resty.nats.jetstream.msg"
local parse_headers, header = jsmsg.parse_headers, jsmsg.header

local decode_base64 = ngx.decode_base64
local type, tostring, tonumber, next = type, tostring, tonumber, next
local error = error
local str_find = string.find


local _M = {}

local ERR_NO_MESSAGE = 10037

-- the headers Direct Get adds to a stored message's own
local DIRECT_HEADERS = {
    ["Nats-Stream"] = true, ["Nats-Subject"] = true,
    ["Nats-Sequence"] = true, ["Nats-Time-Stamp"] = true,
    ["Nats-Last-Sequence"] = true, ["Nats-Num-Pending"] = true,
}


local function bad_subject(s)
    return type(s) ~= "string" or s == "" or str_find(s, "[%s%c]") ~= nil
end


-- the query's JSON body (a table), after checking it: programmer errors
-- raise (level: of get_msg's caller)
local function query_body(q, level)
    if type(q) ~= "table" then
        error("bad argument #2 to 'get_msg' (table expected, got "
              .. type(q) .. ")", level)
    end
    local seq = q.seq
    if seq ~= nil and (type(seq) ~= "number" or seq < 0 or seq % 1 ~= 0)
    then
        error("bad 'seq' to 'get_msg' (a sequence number expected)", level)
    end
    local last, nxt = q.last_by_subj, q.next_by_subj
    if last ~= nil and bad_subject(last) then
        error("bad 'last_by_subj' to 'get_msg' (a subject expected)", level)
    end
    if nxt ~= nil and bad_subject(nxt) then
        error("bad 'next_by_subj' to 'get_msg' (a subject expected)", level)
    end
    if last and (seq or nxt) then
        error("bad argument #2 to 'get_msg' (last_by_subj goes alone)",
              level)
    end
    if not seq and not last then
        error("bad argument #2 to 'get_msg' (seq, last_by_subj or "
              .. "next_by_subj with seq expected)", level)
    end
    return { seq = seq, last_by_subj = last, next_by_subj = nxt }
end


local function direct(js, stream, body)
    local subject = js._prefix .. ".DIRECT.GET." .. stream
    local payload = ""
    if body.last_by_subj then
        -- the subject form of "last by subject": no JSON to write
        subject = subject .. "." .. body.last_by_subj
    else
        payload = encode(body)
    end
    local msg, err = js._conn:request(subject, payload,
                                      { timeout = js._timeout })
    if not msg then
        return nil, err
    end
    local status = msg.status
    if status == 404 then
        return nil, "no message found", ERR_NO_MESSAGE
    end
    local h = msg.headers
    local seq = h and tonumber(header(h, "Nats-Sequence"))
    if status or not seq then
        return nil, "bad direct get response: " .. tostring(status or "")
                    .. " " .. tostring(msg.description or "no sequence")
    end
    local subject_of = header(h, "Nats-Subject")
    local time = header(h, "Nats-Time-Stamp")
    for k in next, DIRECT_HEADERS do
        h[k] = nil
    end
    return {
        subject = subject_of, seq = seq, payload = msg.payload,
        headers = next(h) and h or nil, time = time,
    }
end


-- get_msg(stream, query [, { direct = true }]); stream: a checked name
function _M.get_msg(js, stream, q, opts)
    local body = query_body(q, 4)
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #3 to 'get_msg' (table expected, got "
              .. type(opts) .. ")", 3)
    end
    if opts and opts.direct then
        return direct(js, stream, body)
    end
    local resp, err, code = api(js, "STREAM.MSG.GET." .. stream, body)
    if not resp then
        return nil, err, code
    end
    local m = resp.message
    if type(m) ~= "table" then
        return nil, "bad response from the server"
    end
    return {
        subject = m.subject,
        seq = m.seq,
        payload = m.data and decode_base64(m.data) or "",
        headers = m.hdrs and parse_headers(decode_base64(m.hdrs)) or nil,
        time = m.time,
    }
end


return _M
