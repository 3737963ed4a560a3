-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream: JetStream over a per-request object
-- (n:jetstream()) or a shared connection (conn:jetstream()): the JSON API
-- under $JS.API (streams, consumers, messages), publish with an
-- acknowledgement, pull consumers (fetch) and the acknowledgement of
-- their messages. Key-value buckets are in resty.nats.kv.
--
-- Configurations and results are the JetStream API's own JSON, as Lua
-- tables (lua-cjson): the server's documentation applies as is.

local jsjson = require "resty.nats.jetstream.json"
local encode, decode = jsjson.encode, jsjson.decode
local jsmsg = require "resty.nats.jetstream.msg"
local new_msg = jsmsg.new
local token = require("resty.nats.frame").token
local now_ms = require("resty.nats.settings").now_ms

local type = type
local tostring = tostring
local pairs = pairs
local ipairs = ipairs
local error = error
local setmetatable = setmetatable
local str_find, str_sub = string.find, string.sub
local str_format = string.format


local _M = {}

local JS = {}
local js_mt = { __index = JS }

local DEFAULT_TIMEOUT = 5000            -- ms, each API request
local DEFAULT_PREFIX = "$JS.API"
local DEFAULT_BATCH = 10
local DEFAULT_EXPIRES = 5000            -- ms, a pull request
local FETCH_SLACK = 1000                -- ms beyond expires before giving up
local INBOX_LEN = 22
local ERR_STREAM_NOT_FOUND = 10059


---------------------------------------------------------------------------
-- names

-- stream and consumer names: no ".", "*", ">", whitespace, control
-- characters or path separators
local function check_name(name, what)
    if type(name) ~= "string" or name == "" then
        return nil, what .. " name must be a non-empty string"
    end
    if str_find(name, "[%.%*>/\\%s%c]") then
        return nil, "invalid " .. what .. " name: " .. name
    end
    return true
end
_M.check_name = check_name


-- bucket names (key-value buckets, object stores): [A-Za-z0-9_-]+
function _M.check_bucket(bucket)
    if type(bucket) ~= "string" or bucket == ""
       or str_find(bucket, "[^%w_%-]")
    then
        return nil, "invalid bucket name: " .. tostring(bucket)
    end
    return true
end


local function new_inbox()
    local t = token(INBOX_LEN)
    if not t then
        return nil, "no randomness for the inbox"
    end
    return "_INBOX." .. t
end


---------------------------------------------------------------------------
-- the API

-- conn:jetstream(opts), for either kind of connection
function _M.new(conn, opts)
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #1 to 'jetstream' (table expected, got "
              .. type(opts) .. ")", 3)
    end
    opts = opts or {}
    local timeout = opts.timeout or DEFAULT_TIMEOUT
    if type(timeout) ~= "number" or timeout <= 0 then
        error("bad 'timeout' option to 'jetstream' (a positive number of "
              .. "ms expected)", 3)
    end
    local prefix = opts.prefix
    if opts.domain ~= nil then
        if type(opts.domain) ~= "string" or opts.domain == ""
           or str_find(opts.domain, "[%.%*>%s%c]")
        then
            return nil, "invalid domain"
        end
        prefix = prefix or ("$JS." .. opts.domain .. ".API")
    end
    prefix = prefix or DEFAULT_PREFIX
    if type(prefix) ~= "string" or prefix == "" or str_find(prefix, "[%s%c]")
    then
        return nil, "invalid prefix"
    end
    return setmetatable({ _conn = conn, _prefix = prefix,
                          _timeout = timeout }, js_mt)
end


-- one request of the JSON API: the decoded response, or nil, err, code
local function api(js, subject, body)
    local payload = ""
    if body ~= nil then
        local err
        payload, err = encode(body)
        if not payload then
            return nil, "cannot encode the request: " .. tostring(err)
        end
    end
    local msg, err = js._conn:request(js._prefix .. "." .. subject, payload,
                                      { timeout = js._timeout })
    if not msg then
        if err == "no responders" then
            return nil, "jetstream not enabled"
        end
        return nil, err
    end
    local resp = decode(msg.payload)
    if type(resp) ~= "table" then
        return nil, "bad response from the server: " .. str_sub(msg.payload,
                                                               1, 200)
    end
    local e = resp.error
    if e then
        return nil, e.description or "error " .. tostring(e.code),
               e.err_code or e.code
    end
    return resp
end
_M.api = api


-- the API request "<what>.<stream>" about a bucket's stream: the response;
-- nil, missing (and the code) when there is no such stream; nil, err, code
function _M.bucket_api(js, what, stream, missing)
    local resp, err, code = api(js, what .. "." .. stream)
    if not resp and code == ERR_STREAM_NOT_FOUND then
        return nil, missing, code
    end
    return resp, err, code
end


local function with_name(name, what)
    local ok, err = check_name(name, what)
    if not ok then
        return nil, err
    end
    return name
end


local function stream_cfg(cfg, verb)
    if type(cfg) ~= "table" then
        error("bad argument #1 to '" .. verb .. "' (table expected, got "
              .. type(cfg) .. ")", 3)
    end
    return with_name(cfg.name, "stream")
end


function JS.add_stream(js, cfg)
    local name, err = stream_cfg(cfg, "add_stream")
    if not name then
        return nil, err
    end
    return api(js, "STREAM.CREATE." .. name, cfg)
end


function JS.update_stream(js, cfg)
    local name, err = stream_cfg(cfg, "update_stream")
    if not name then
        return nil, err
    end
    return api(js, "STREAM.UPDATE." .. name, cfg)
end


function JS.stream_info(js, name)
    local err
    name, err = with_name(name, "stream")
    if not name then
        return nil, err
    end
    return api(js, "STREAM.INFO." .. name)
end


function JS.delete_stream(js, name)
    local err, code
    name, err = with_name(name, "stream")
    if not name then
        return nil, err
    end
    local resp
    resp, err, code = api(js, "STREAM.DELETE." .. name)
    if not resp then
        return nil, err, code
    end
    return resp.success == true
end


-- purge_stream(name [, { subject =, seq =, keep = }])
function JS.purge_stream(js, name, opts)
    local err, code
    name, err = with_name(name, "stream")
    if not name then
        return nil, err
    end
    local body
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #2 to 'purge_stream' (table expected)", 2)
        end
        body = { filter = opts.subject, seq = opts.seq, keep = opts.keep }
    end
    local resp
    resp, err, code = api(js, "STREAM.PURGE." .. name, body)
    if not resp then
        return nil, err, code
    end
    return resp.success == true, resp.purged
end


-- stream_names([{ subject = }]): every page of the server's list
function JS.stream_names(js, opts)
    local names = {}
    local offset = 0
    while true do
        local body = { offset = offset }
        if opts and opts.subject then
            body.subject = opts.subject
        end
        local resp, err, code = api(js, "STREAM.NAMES", body)
        if not resp then
            return nil, err, code
        end
        local page = resp.streams
        if type(page) ~= "table" or #page == 0 then
            break
        end
        for _, n in ipairs(page) do
            names[#names + 1] = n
        end
        offset = offset + #page
        if not resp.total or offset >= resp.total then
            break
        end
    end
    return names
end


local PUB_HEADERS = {
    msg_id = "Nats-Msg-Id",
    expected_stream = "Nats-Expected-Stream",
    expected_last_seq = "Nats-Expected-Last-Sequence",
    expected_last_subject_seq = "Nats-Expected-Last-Subject-Sequence",
    expected_last_msg_id = "Nats-Expected-Last-Msg-Id",
}


-- publish(subject, payload [, opts]): the stream's acknowledgement,
-- { stream =, seq =, duplicate = true|nil, domain = }, or nil, err, code
function JS.publish(js, subject, payload, opts)
    local headers, timeout
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'publish' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        if opts.headers ~= nil then
            if type(opts.headers) ~= "table" then
                error("bad argument #3 to 'publish' (headers must be a "
                      .. "table)", 2)
            end
            headers = {}
            for k, v in pairs(opts.headers) do
                headers[k] = v
            end
        end
        for field, name in pairs(PUB_HEADERS) do
            local v = opts[field]
            if v ~= nil then
                headers = headers or {}
                if type(v) == "number" then
                    v = str_format("%.0f", v)
                end
                headers[name] = tostring(v)
            end
        end
        timeout = opts.timeout
    end

    local msg, err = js._conn:request(subject, payload, {
        timeout = timeout or js._timeout, headers = headers,
    })
    if not msg then
        return nil, err
    end
    local ack = decode(msg.payload)
    if type(ack) ~= "table" then
        return nil, "bad acknowledgement: " .. str_sub(msg.payload, 1, 200)
    end
    local e = ack.error
    if e then
        return nil, e.description or "error " .. tostring(e.code),
               e.err_code or e.code
    end
    if ack.duplicate ~= true then
        ack.duplicate = nil
    end
    return ack
end


-- get_msg(stream, { seq = n } | { last_by_subj = s } | { next_by_subj = s,
-- seq = n } [, { direct = true }]): resty.nats.jetstream.get
local get_msg
function JS.get_msg(js, stream, q, opts)
    local err
    stream, err = with_name(stream, "stream")
    if not stream then
        return nil, err
    end
    -- (loaded on first use: it requires this module)
    get_msg = get_msg or require("resty.nats.jetstream.get").get_msg
    local m, code
    m, err, code = get_msg(js, stream, q, opts)    -- (no tail call: error
    return m, err, code                             -- levels count this)
end


---------------------------------------------------------------------------
-- consumers

function JS.add_consumer(js, stream, cfg)
    local err
    stream, err = with_name(stream, "stream")
    if not stream then
        return nil, err
    end
    if type(cfg) ~= "table" then
        error("bad argument #2 to 'add_consumer' (table expected, got "
              .. type(cfg) .. ")", 2)
    end
    local subject
    if cfg.durable_name ~= nil then
        local name
        name, err = with_name(cfg.durable_name, "consumer")
        if not name then
            return nil, err
        end
        subject = "CONSUMER.DURABLE.CREATE." .. stream .. "." .. name
    elseif cfg.name ~= nil then
        local name
        name, err = with_name(cfg.name, "consumer")
        if not name then
            return nil, err
        end
        subject = "CONSUMER.CREATE." .. stream .. "." .. name
    else
        subject = "CONSUMER.CREATE." .. stream
    end
    return api(js, subject, { stream_name = stream, config = cfg })
end


local function stream_and_consumer(stream, consumer)
    local ok, err = check_name(stream, "stream")
    if ok then
        ok, err = check_name(consumer, "consumer")
    end
    return ok, err
end
_M.stream_and_consumer = stream_and_consumer


function JS.consumer_info(js, stream, consumer)
    local ok, err = stream_and_consumer(stream, consumer)
    if not ok then
        return nil, err
    end
    return api(js, "CONSUMER.INFO." .. stream .. "." .. consumer)
end


function JS.delete_consumer(js, stream, consumer)
    local ok, err = stream_and_consumer(stream, consumer)
    if not ok then
        return nil, err
    end
    local resp, code
    resp, err, code = api(js, "CONSUMER.DELETE." .. stream .. "." .. consumer)
    if not resp then
        return nil, err, code
    end
    return resp.success == true
end


-- the consumer deleted without waiting for the answer (a feed or a
-- watcher that made it and moves on; an inactive one would be deleted by
-- the server anyway); the answer goes to reply_to, a subject nobody needs
-- to read (a request without a reply subject may be ignored)
function JS._delete_consumer_nowait(js, stream, consumer, reply_to)
    return js._conn:publish(js._prefix .. ".CONSUMER.DELETE." .. stream
                            .. "." .. consumer, "", { reply_to = reply_to })
end


-- fetch(stream, consumer [, { batch =, expires = ms, no_wait = }]): an
-- array of messages (empty when none came before expires)
function JS.fetch(js, stream, consumer, opts)
    local ok, err = stream_and_consumer(stream, consumer)
    if not ok then
        return nil, err
    end
    local batch, expires, no_wait = DEFAULT_BATCH, DEFAULT_EXPIRES, false
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'fetch' (table expected)", 2)
        end
        batch = opts.batch or batch
        expires = opts.expires or expires
        no_wait = opts.no_wait and true or false
        if type(batch) ~= "number" or batch < 1 or batch % 1 ~= 0 then
            error("bad 'batch' option to 'fetch' (a positive integer "
                  .. "expected)", 2)
        end
        if type(expires) ~= "number" or expires <= 0 then
            error("bad 'expires' option to 'fetch' (a positive number of "
                  .. "ms expected)", 2)
        end
    end

    local inbox
    inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    -- the messages come to a subscription of its own (sub:next())
    local conn = js._conn
    local col
    col, err = conn:_subscribe(inbox)
    if not col then
        return nil, err
    end

    local body = { batch = batch, no_wait = no_wait or nil }
    if not no_wait then
        body.expires = expires * 1e6    -- ns
    end
    local payload = encode(body)
    ok, err = conn:publish(js._prefix .. ".CONSUMER.MSG.NEXT." .. stream
                           .. "." .. consumer, payload, { reply_to = inbox })
    if not ok then
        col:unsubscribe()
        return nil, err
    end

    local msgs = {}
    local ended = false
    local deadline = now_ms() + expires + FETCH_SLACK
    while #msgs < batch do
        local left = deadline - now_ms()
        if left <= 0 then
            break
        end
        local m
        m, err = col:next(left)
        if not m then
            if err ~= "timeout" then
                col:unsubscribe()
                if #msgs > 0 then
                    return msgs
                end
                return nil, err
            end
            break
        end
        local status = m.status
        if status then
            if status ~= 100 then
                -- 404 no messages, 408 expired, 409 and others: the end
                ended = true
                break
            end
            -- 100: a heartbeat
        elseif m.payload == "" and not m.reply_to then
            -- nothing: not a stream message
            m = nil
        end
        if m and not status then
            msgs[#msgs + 1] = new_msg(js, m)
        end
    end
    col:unsubscribe()
    if #msgs == 0 and not ended then
        -- silence, not even a 408: is there such a consumer at all?
        local info, e, code = JS.consumer_info(js, stream, consumer)
        if not info and code then
            return nil, e, code
        end
    end
    return msgs
end


-- ordered consumers (resty.nats.jetstream.ordered), continuous pull
-- (resty.nats.jetstream.consume), key-value buckets
-- (resty.nats.kv) and object stores (resty.nats.objstore) hang off the
-- same object; their modules are loaded on first use
for method, where in pairs({
    ordered_consumer = { "jetstream.ordered", "open" },
    consume = { "jetstream.consume", "start" },
    create_key_value = { "kv", "create" },
    key_value = { "kv", "open" },
    delete_key_value = { "kv", "delete" },
    create_object_store = { "objstore", "create" },
    object_store = { "objstore", "open" },
    delete_object_store = { "objstore", "delete" },
}) do
    local module, fn = "resty.nats." .. where[1], where[2]
    JS[method] = function(js, ...)
        return require(module)[fn](js, ...)
    end
end


_M.new_inbox = new_inbox

return _M
