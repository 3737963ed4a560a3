-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.kv: JetStream key-value buckets (ADR-8) over a JetStream
-- object (resty.nats.jetstream). Bucket B is the stream KV_B with the
-- subjects $KV.B.>, key k the subject $KV.B.k; a put is a publish with an
-- acknowledgement (its sequence is the revision), a delete or purge a
-- message with the header KV-Operation: DEL / PURGE.

local jetstream = require "resty.nats.jetstream"
local api, check_bucket = jetstream.api, jetstream.check_bucket
local bucket_api = jetstream.bucket_api
local watch = require "resty.nats.jetstream.watch"
local feed_open = require("resty.nats.jetstream.feed").open
local header = require("resty.nats.jetstream.msg").header

local type = type
local tostring = tostring
local error = error
local setmetatable = setmetatable
local str_find = string.find
local str_sub = string.sub


local _M = {}

local KV = {}
local kv_mt = { __index = KV }

local ERR_WRONG_LAST_SEQ = 10071
local ERR_NO_MESSAGE = 10037


-- keys: [-/_=.a-zA-Z0-9]+, neither starting nor ending with "."
local function check_key(key)
    if type(key) ~= "string" or key == "" or str_find(key, "[^%w%-/_=%.]")
       or str_sub(key, 1, 1) == "." or str_sub(key, -1) == "."
    then
        return nil, "invalid key: " .. tostring(key)
    end
    return true
end


-- watch patterns: keys, with the wildcards "*" and ">" as tokens
local function check_pattern(p)
    if type(p) ~= "string" or p == "" then
        return nil, "invalid key pattern"
    end
    for tok in (p .. "."):gmatch("([^.]*)%.") do
        if tok ~= "*" and tok ~= ">" and (tok == "" or str_find(tok,
                                                     "[^%w%-/_=]"))
        then
            return nil, "invalid key pattern: " .. p
        end
    end
    return true
end


-- direct: the bucket's stream has allow_direct (reads go through Direct
-- Get, answered by any server of the stream, without JSON or base64)
local DIRECT = { direct = true }
local function new_kv(js, bucket, direct)
    return setmetatable({ _js = js, bucket = bucket,
                          _stream = "KV_" .. bucket,
                          _prefix = "$KV." .. bucket .. ".",
                          _get_opts = direct and DIRECT or nil }, kv_mt)
end


local function allows_direct(info)
    return type(info.config) == "table" and info.config.allow_direct == true
end


-- js:create_key_value({ bucket =, history =, ttl = ms, max_value_size =,
-- storage =, max_bytes =, replicas =, description = })
function _M.create(js, cfg)
    if type(cfg) ~= "table" then
        error("bad argument #1 to 'create_key_value' (table expected, got "
              .. type(cfg) .. ")", 3)
    end
    local ok, err = check_bucket(cfg.bucket)
    if not ok then
        return nil, err
    end
    local history = cfg.history or 1
    if type(history) ~= "number" or history < 1 or history > 64
       or history % 1 ~= 0
    then
        return nil, "history must be an integer from 1 to 64"
    end
    local stream = {
        name = "KV_" .. cfg.bucket,
        subjects = { "$KV." .. cfg.bucket .. ".>" },
        description = cfg.description,
        max_msgs_per_subject = history,
        max_bytes = cfg.max_bytes or -1,
        max_age = cfg.ttl and cfg.ttl * 1e6 or 0,
        max_msg_size = cfg.max_value_size or -1,
        storage = cfg.storage or "file",
        num_replicas = cfg.replicas or 1,
        discard = "new",
        allow_rollup_hdrs = true,
        deny_delete = true,
        allow_direct = true,
        duplicate_window = cfg.ttl and cfg.ttl < 120000 and cfg.ttl * 1e6
                           or nil,
    }
    local info, code
    info, err, code = api(js, "STREAM.CREATE." .. stream.name, stream)
    if not info then
        return nil, err, code
    end
    return new_kv(js, cfg.bucket, allows_direct(info))
end


function _M.open(js, bucket)
    local ok, err = check_bucket(bucket)
    if not ok then
        return nil, err
    end
    local info, code
    info, err, code = bucket_api(js, "STREAM.INFO", "KV_" .. bucket,
                                 "bucket not found")
    if not info then
        return nil, err, code
    end
    return new_kv(js, bucket, allows_direct(info))
end


function _M.delete(js, bucket)
    local ok, err = check_bucket(bucket)
    if not ok then
        return nil, err
    end
    local resp, code
    resp, err, code = bucket_api(js, "STREAM.DELETE", "KV_" .. bucket,
                                 "bucket not found")
    if not resp then
        return nil, err, code
    end
    return resp.success == true
end


local function operation(h)
    local op = header(h, "KV-Operation")
    if op == "DEL" or op == "PURGE" then
        return op
    end
    return "PUT"
end


-- an entry from a stored message (get_msg) or a delivered one (fetch)
local function entry(kv, key, value, revision, created, op, delta)
    return { bucket = kv.bucket, key = key, value = value,
             revision = revision, created = created, delta = delta or 0,
             operation = op }
end


local function put(kv, key, value, opts)
    local ok, err = check_key(key)
    if not ok then
        return nil, err
    end
    if type(value) ~= "string" then
        if type(value) == "number" then
            value = tostring(value)
        else
            error("bad argument #2 (string expected, got " .. type(value)
                  .. ")", 3)
        end
    end
    local ack, code
    ack, err, code = kv._js:publish(kv._prefix .. key, value, opts)
    if not ack then
        return nil, err, code
    end
    return ack.seq
end


-- put(key, value): the new revision
function KV.put(kv, key, value)
    return put(kv, key, value)
end


-- update(key, value, last_revision): only if the key's latest revision
-- is last_revision
function KV.update(kv, key, value, last)
    if type(last) ~= "number" or last < 0 or last % 1 ~= 0 then
        error("bad argument #3 to 'update' (a revision expected)", 2)
    end
    return put(kv, key, value, { expected_last_subject_seq = last })
end


-- the latest stored message of the key, deleted or not
local function last_raw(kv, key)
    return kv._js:get_msg(kv._stream, { last_by_subj = kv._prefix .. key },
                          kv._get_opts)
end


-- create(key, value): only if the key has no live value
function KV.create(kv, key, value)
    local rev, err, code = put(kv, key, value,
                               { expected_last_subject_seq = 0 })
    if rev then
        return rev
    end
    if code ~= ERR_WRONG_LAST_SEQ then
        return nil, err, code
    end
    -- the key exists: fine if its latest revision is a delete marker
    local m = last_raw(kv, key)
    if m and operation(m.headers) ~= "PUT" then
        return put(kv, key, value, { expected_last_subject_seq = m.seq })
    end
    return nil, "key exists", code
end


-- get(key [, { revision = n }]): the entry, or nil, "key not found"
function KV.get(kv, key, opts)
    local ok, err = check_key(key)
    if not ok then
        return nil, err
    end
    local m, code
    if opts and opts.revision then
        m, err, code = kv._js:get_msg(kv._stream, { seq = opts.revision },
                                      kv._get_opts)
        if m and m.subject ~= kv._prefix .. key then
            return nil, "key not found"
        end
    else
        m, err, code = last_raw(kv, key)
    end
    if not m then
        if code == ERR_NO_MESSAGE then
            return nil, "key not found"
        end
        return nil, err, code
    end
    local op = operation(m.headers)
    if op ~= "PUT" then
        return nil, "key not found"
    end
    return entry(kv, key, m.payload, m.seq, m.time, op)
end


local function marker(kv, key, op)
    local ok, err = check_key(key)
    if not ok then
        return nil, err
    end
    local headers = { ["KV-Operation"] = op }
    if op == "PURGE" then
        headers["Nats-Rollup"] = "sub"
    end
    local ack, code
    ack, err, code = kv._js:publish(kv._prefix .. key, "",
                                    { headers = headers })
    if not ack then
        return nil, err, code
    end
    return true
end


-- delete(key): a delete marker (history kept)
function KV.delete(kv, key)
    return marker(kv, key, "DEL")
end


-- purge(key): a purge marker that removes the key's history
function KV.purge(kv, key)
    return marker(kv, key, "PURGE")
end


-- the messages of a filter (m, md pairs), through a feed that ends with
-- what is there now
local function read_all(kv, filter, policy, headers_only)
    local feed, err, code = feed_open(kv._js, kv._stream, {
        filter_subject = filter, deliver_policy = policy,
        headers_only = headers_only, count = true,
    })
    if not feed then
        return nil, err, code
    end
    local got = {}
    while true do
        local m, md = feed:next()
        if not m then
            feed:close()
            if md == "end" then
                return got
            end
            return nil, md
        end
        got[#got + 1] = m
        got[#got + 1] = md
    end
end


local function key_of(kv, subject)
    return str_sub(subject, #kv._prefix + 1)
end


-- keys([{ filter = pattern }]): the live keys ({} when none), of those
-- matching pattern when given
function KV.keys(kv, opts)
    local pattern = ">"
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #1 to 'keys' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        pattern = opts.filter or pattern
    end
    local ok, err = check_pattern(pattern)
    if not ok then
        return nil, err
    end
    local msgs, code
    msgs, err, code = read_all(kv, kv._prefix .. pattern, "last_per_subject",
                               true)
    if not msgs then
        return nil, err, code
    end
    local keys = {}
    for i = 1, #msgs, 2 do
        local m = msgs[i]
        if operation(m.headers) == "PUT" then
            keys[#keys + 1] = key_of(kv, m.subject)
        end
    end
    return keys
end


-- history(key): every revision kept, oldest first, markers included
function KV.history(kv, key)
    local ok, err = check_key(key)
    if not ok then
        return nil, err
    end
    local msgs, code
    msgs, err, code = read_all(kv, kv._prefix .. key, "all")
    if not msgs then
        return nil, err, code
    end
    local list = {}
    for i = 1, #msgs, 2 do
        local m, md = msgs[i], msgs[i + 1]
        list[#list + 1] = entry(kv, key, m.payload, md.stream_seq,
                                md.timestamp, operation(m.headers),
                                md.num_pending)
    end
    return list
end


-- watch(pattern, callback [, opts]): shared connections only. The current
-- value of each key matching pattern first, then every change (PUT, DEL,
-- PURGE) in order, as entries, to callback(entry) (in a timer, as the
-- callbacks of conn:subscribe). opts: updates_only (no current values),
-- include_history (every revision kept, oldest first, instead of the
-- current values), ignore_deletes (no DEL or PURGE entries), meta_only
-- (entries without their values). watcher:stop() ends it.
function KV.watch(kv, pattern, callback, opts)
    if not kv._js._conn._background then
        return nil, "watch needs a shared connection (nats.shared)"
    end
    local ok, err = check_pattern(pattern)
    if not ok then
        return nil, err
    end
    if type(callback) ~= "function" then
        error("bad argument #2 to 'watch' (function expected)", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #3 to 'watch' (table expected, got "
              .. type(opts) .. ")", 2)
    end
    opts = opts or {}
    if opts.updates_only and opts.include_history then
        error("bad argument #3 to 'watch' (updates_only and "
              .. "include_history exclude each other)", 2)
    end
    local ignore_deletes = opts.ignore_deletes
    return watch.new(kv._js, kv._stream, kv._prefix .. pattern,
                     "kv watch of bucket '" .. kv.bucket .. "'",
                     function(m, md)
        local op = operation(m.headers)
        if ignore_deletes and op ~= "PUT" then
            return
        end
        callback(entry(kv, key_of(kv, m.subject), m.payload, md.stream_seq,
                       md.timestamp, op, md.num_pending))
    end, {
        deliver_policy = opts.updates_only and "new"
                         or opts.include_history and "all" or nil,
        headers_only = opts.meta_only and true or nil,
    })
end


return _M
