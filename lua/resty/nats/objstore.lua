-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.objstore: JetStream object stores (ADR-20), over either kind
-- of connection (js:create_object_store, js:object_store). A bucket is the
-- stream OBJ_<bucket>; an object is its chunks, on $O.<bucket>.C.<nuid>
-- (a fresh nuid a put), and its meta, a JSON message on
-- $O.<bucket>.M.<name as padded base64url> rolled up to its last one.
-- The layout is the official clients' own: they read our objects and we
-- read theirs. Objects go in and out piece by piece (a put from a
-- function, a read through open), never whole in memory; the SHA-256 of
-- the bytes is kept in the meta and checked on reading.

local jetstream = require "resty.nats.jetstream"
local api, new_inbox = jetstream.api, jetstream.new_inbox
local check_bucket, bucket_api = jetstream.check_bucket, jetstream.bucket_api
local decode = require("resty.nats.jetstream.json").decode
local parse_headers = require("resty.nats.jetstream.msg").parse_headers
local meta = require "resty.nats.objstore.meta"
local b64url, unb64url = meta.b64url, meta.unb64url
local check_name, info_of, meta_json = meta.check_name, meta.info_of,
                                       meta.meta_json
local headers_in, headers_out = meta.headers_in, meta.headers_out
local time = require "resty.nats.time"
local rfc3339, now_rfc3339 = time.rfc3339, time.now_rfc3339
local put = require "resty.nats.objstore.put"
local watch = require "resty.nats.jetstream.watch"
local feed_open = require("resty.nats.jetstream.feed").open
local read = require "resty.nats.objstore.read"
local direct_ok, direct_get = read.direct_ok, read.direct_get
local token = require("resty.nats.frame").token

local ngx = ngx
local decode_base64 = ngx.decode_base64
local ngx_log, ngx_WARN = ngx.log, ngx.WARN
local type, tostring = type, tostring
local setmetatable, error = setmetatable, error
local str_sub = string.sub
local tab_concat = table.concat


local _M = {}

local Obs = {}
local obs_mt = { __index = Obs }

local NUID_LEN = 22
local DIGEST_PREFIX = "SHA-256="
local ERR_NO_MESSAGE = 10037
-- a header on the metas of the objects this library puts: every chunk
-- but the last has max_chunk_size bytes (ADR-20 does not say so, and
-- nats.go's put publishes what each Read of its source gave), so a read
-- can start at chunk offset / max_chunk_size (reader:seek). Other clients
-- keep it or drop it as they rewrite a meta; without it a seek reads
-- from the first chunk.
local FULL_CHUNKS = "Resty-Nats-Full-Chunks"
-- the infos whose meta had it (weak keys: a user's info table, JSON
-- encoded as it is, gets no field of ours)
local full_chunks = setmetatable({}, { __mode = "k" })


-- nil, err, and the server's error code where there is one
local function fail(err, code)
    if code then
        return nil, err, code
    end
    return nil, err
end


local function meta_subject(obs, name)
    return "$O." .. obs.bucket .. ".M." .. b64url(name)
end


local function chunk_subject(obs, nuid)
    return "$O." .. obs.bucket .. ".C." .. nuid
end


---------------------------------------------------------------------------
-- buckets

-- direct: the bucket's stream allows Direct Get (allow_direct)
local function new_obs(js, bucket, direct)
    return setmetatable({ bucket = bucket, _js = js,
                          _stream = "OBJ_" .. bucket,
                          _direct = direct or false, _direct_off = 0 },
                        obs_mt)
end


function _M.create(js, cfg)
    if type(cfg) ~= "table" then
        error("bad argument #1 to 'create_object_store' (table expected, "
              .. "got " .. type(cfg) .. ")", 3)
    end
    local ok, err = check_bucket(cfg.bucket)
    if not ok then
        return nil, err
    end
    if cfg.ttl ~= nil and (type(cfg.ttl) ~= "number" or cfg.ttl < 0) then
        return nil, "ttl must be a number of seconds >= 0"
    end
    if cfg.metadata ~= nil and type(cfg.metadata) ~= "table" then
        return nil, "metadata must be a table"
    end
    local bucket = cfg.bucket
    local stream = {
        name = "OBJ_" .. bucket,
        description = cfg.description,
        subjects = { "$O." .. bucket .. ".C.>", "$O." .. bucket .. ".M.>" },
        max_age = cfg.ttl and cfg.ttl * 1e9 or 0,
        max_bytes = cfg.max_bytes or -1,
        storage = cfg.storage or "file",
        num_replicas = cfg.replicas or 1,
        discard = "new",
        allow_rollup_hdrs = true,
        allow_direct = true,
        metadata = cfg.metadata,
    }
    local info, code
    info, err, code = api(js, "STREAM.CREATE." .. stream.name, stream)
    if not info then
        return fail(err, code)
    end
    return new_obs(js, bucket, true)
end


-- a bucket's stream, by what ("STREAM.INFO" or "STREAM.DELETE")
local function bucket_stream(js, what, bucket)
    local ok, err = check_bucket(bucket)
    if not ok then
        return nil, err
    end
    local resp, code
    resp, err, code = bucket_api(js, what, "OBJ_" .. bucket,
                                 "object store not found")
    if not resp then
        return fail(err, code)
    end
    return resp
end


function _M.open(js, bucket)
    local resp, err, code = bucket_stream(js, "STREAM.INFO", bucket)
    if not resp then
        return fail(err, code)
    end
    local cfg = resp.config
    return new_obs(js, bucket, type(cfg) == "table" and cfg.allow_direct)
end


function _M.delete(js, bucket)
    local resp, err, code = bucket_stream(js, "STREAM.DELETE", bucket)
    if not resp then
        return fail(err, code)
    end
    return resp.success == true
end


-- status(): what the bucket is and holds
function Obs.status(obs)
    local si, err, code = api(obs._js, "STREAM.INFO." .. obs._stream)
    if not si then
        return fail(err, code)
    end
    local cfg, state = si.config or {}, si.state or {}
    return {
        bucket = obs.bucket, description = cfg.description,
        ttl = (cfg.max_age or 0) / 1e9, storage = cfg.storage,
        replicas = cfg.num_replicas, max_bytes = cfg.max_bytes,
        size = state.bytes or 0, sealed = cfg.sealed == true,
        metadata = cfg.metadata, backing_store = "JetStream",
    }
end


-- seal(): no change to the bucket any more
function Obs.seal(obs)
    local si, err, code = api(obs._js, "STREAM.INFO." .. obs._stream)
    if not si then
        return fail(err, code)
    end
    local cfg = si.config
    cfg.sealed = true
    si, err, code = api(obs._js, "STREAM.UPDATE." .. obs._stream, cfg)
    if not si then
        return fail(err, code)
    end
    return true
end


---------------------------------------------------------------------------
-- metas

-- the meta of name, deleted or not: info, or nil, "object not found".
-- leader: asked to the stream's leader (the JSON API), for what a change
-- is decided on (a replica that Direct Get may ask can be behind: a put's
-- purge of the chunks it replaces, or its check that its meta is in,
-- must not see an older meta)
local function last_meta(obs, name, leader)
    local subject = meta_subject(obs, name)
    if not leader and direct_ok(obs) then
        local m, _, c = direct_get(obs, { last_by_subj = subject })
        if m then
            local md = decode(m.payload)
            if type(md) ~= "table" then
                return nil, "bad object meta"
            end
            local info = info_of(md, m.time)
            if m.headers and m.headers[FULL_CHUNKS] then
                full_chunks[info] = true
            end
            return info
        end
        if c == ERR_NO_MESSAGE then
            return nil, "object not found"
        end
    end
    local resp, err, code = api(obs._js, "STREAM.MSG.GET." .. obs._stream,
                                { last_by_subj = subject })
    if not resp then
        if code == ERR_NO_MESSAGE then
            return nil, "object not found"
        end
        return fail(err, code)
    end
    local m = resp.message
    local meta = type(m) == "table" and m.data
                 and decode(decode_base64(m.data) or "")
    if type(meta) ~= "table" then
        return nil, "bad object meta"
    end
    local info = info_of(meta, m.time)
    local h = type(m.hdrs) == "string"
              and parse_headers(decode_base64(m.hdrs) or "")
    if h and h[FULL_CHUNKS] then
        full_chunks[info] = true
    end
    return info
end


-- the info of a live object (last_meta's leader), or nil, "object not
-- found" when there is none or it was deleted
local function live_info(obs, name, leader)
    local ok, err = check_name(name)
    if not ok then
        return nil, err
    end
    local info, code
    info, err, code = last_meta(obs, name, leader)
    if not info then
        return fail(err, code)
    end
    if info.deleted then
        return nil, "object not found"
    end
    return info
end


-- info(name): the object's info; nil, "object not found" when there is
-- none or it was deleted
function Obs.info(obs, name)
    return live_info(obs, name, false)
end


-- publishes info as the meta of its name (it replaces the one before)
-- (full: its chunks were cut at max_chunk_size: FULL_CHUNKS)
local function put_meta(obs, info, full)
    local body, err = meta_json(info)
    if not body then
        return nil, err
    end
    return obs._js:publish(meta_subject(obs, info.name), body, {
        headers = { ["Nats-Rollup"] = "sub",
                    [FULL_CHUNKS] = full and "1" or nil },
    })
end


local function purge_chunks(obs, nuid)
    return obs._js:purge_stream(obs._stream,
                                { subject = chunk_subject(obs, nuid) })
end


---------------------------------------------------------------------------
-- put

-- put(name, source [, opts]): the object's info once its chunks and meta
-- are stored. A put that fails leaves nothing of it: its chunks are purged
-- and the object, if there was one, stays as it was.
function Obs.put(obs, name, source, opts)
    local ok, err = check_name(name)
    if not ok then
        return nil, err
    end
    local st = type(source)
    if st ~= "string" and st ~= "function" then
        error("bad argument #2 to 'put' (string or function expected, got "
              .. st .. ")", 2)
    end
    local chunk_size = put.check_opts(opts)
    opts = opts or {}
    local hdrs
    hdrs, err = headers_out(opts.headers)
    if err then
        return nil, err
    end

    -- the object this one replaces (its chunks go once this one is in)
    local old, code
    old, err, code = last_meta(obs, name, true)
    if not old and err ~= "object not found" then
        return fail(err, code)
    end

    local nuid = token(NUID_LEN)
    local inbox
    inbox, err = new_inbox()
    if not nuid or not inbox then
        return nil, err or "no randomness for the object's nuid"
    end
    local sub
    sub, err = obs._js._conn:_subscribe(inbox .. ".*")
    if not sub then
        return nil, err
    end
    local acks = { sub = sub, inbox = inbox, pending = 0 }
    local digest, size, nchunks = put.send_chunks(obs, chunk_subject(obs, nuid),
                                              source, chunk_size, acks)
    sub:unsubscribe()

    local info
    if digest then
        info = {
            bucket = obs.bucket, name = name, nuid = nuid, size = size,
            chunks = nchunks, digest = DIGEST_PREFIX .. b64url(digest),
            mtime = now_rfc3339(), description = opts.description,
            headers = headers_in(hdrs), metadata = opts.metadata,
            deleted = false, options = { max_chunk_size = chunk_size },
        }
        ok, err, code = put_meta(obs, info, true)
        if not ok and not code then
            -- no answer (a timeout, the connection lost): the meta may
            -- be in all the same. Which meta is there now says if the
            -- put happened; when that cannot be read either, the chunks
            -- stay (purged, they could leave a meta without its chunks)
            -- (asked on the same connection, after the meta: the server
            -- answers in order)
            local now, nerr = last_meta(obs, name, true)
            if now and now.nuid == nuid then
                ok = true
            elseif not now and nerr ~= "object not found" then
                ngx_log(ngx_WARN, "nats: object store '", obs.bucket,
                        "': put of '", name, "': ", err, "; its meta may ",
                        "still be stored, its chunks are kept (nuid ",
                        nuid, ")")
                return nil, err .. " (the meta was sent: the object may "
                            .. "still be stored)"
            end
        end
    else
        ok, err = nil, size
    end
    if not ok then
        local purged, perr = purge_chunks(obs, nuid)
        if not purged then
            ngx_log(ngx_WARN, "nats: object store '", obs.bucket,
                    "': the chunks of a failed put of '", name,
                    "' were not purged: ", perr)
        end
        return fail(err, code)
    end

    if old and not old.deleted and old.nuid and old.nuid ~= nuid
       and not old.options.link
    then
        local purged, perr = purge_chunks(obs, old.nuid)
        if not purged then
            ngx_log(ngx_WARN, "nats: object store '", obs.bucket,
                    "': the old chunks of '", name, "' were not purged: ",
                    perr)
        end
    end
    return info
end


---------------------------------------------------------------------------
-- reading (resty.nats.jetstream.feed: in order, at the reader's pace)

-- the object name stands for: the bucket it is in and its info, links
-- followed
local function resolve(obs, name)
    local info, err, code = Obs.info(obs, name)
    if not info then
        return fail(err, code)
    end
    local link = info.options.link
    if not link then
        return obs, info
    end
    if type(link.name) ~= "string" or link.name == "" then
        return nil, "object is a link to a bucket"
    end
    local target = obs
    if link.bucket ~= obs.bucket then
        target, err, code = _M.open(obs._js, link.bucket)
        if not target then
            return fail(err, code)
        end
    end
    info, err, code = Obs.info(target, link.name)
    if not info then
        return fail(err, code)
    end
    if info.options.link then
        return nil, "object is a link to a link"
    end
    return target, info
end


function Obs.open(obs, name)
    local ok, err = check_name(name)
    if not ok then
        return nil, err
    end
    local target, info, code = resolve(obs, name)
    if not target then
        return fail(info, code)
    end
    local size = info.size
    local want
    if size > 0 then
        local d = type(info.digest) == "string"
                  and str_sub(info.digest, 1, #DIGEST_PREFIX) == DIGEST_PREFIX
                  and unb64url(str_sub(info.digest, #DIGEST_PREFIX + 1))
        if not d or #d ~= 32 then
            return nil, "bad digest in the object's meta: "
                        .. tostring(info.digest)
        end
        want = d
    end
    return read.new(target, info, chunk_subject(target, info.nuid), want,
                    full_chunks[info]),
           info
end


-- get(name): the whole object and its info
function Obs.get(obs, name)
    local reader, info = Obs.open(obs, name)
    if not reader then
        return nil, info
    end
    local parts = {}
    while true do
        local piece, err = reader()
        if not piece then
            if err then
                return nil, err
            end
            break
        end
        parts[#parts + 1] = piece
    end
    return tab_concat(parts), info
end


-- delete(name): the meta marked deleted, the chunks purged
function Obs.delete(obs, name)
    local info, err, code = live_info(obs, name, true)
    if not info then
        return fail(err, code)
    end
    info.deleted = true
    info.size, info.chunks, info.digest = 0, 0, nil
    info.mtime = now_rfc3339()
    local ok
    ok, err, code = put_meta(obs, info)
    if not ok then
        return fail(err, code)
    end
    if not info.options.link then
        ok, err, code = purge_chunks(obs, info.nuid)
        if not ok then
            return fail(err, code)
        end
    end
    return true
end


-- list(): the infos of the live objects
function Obs.list(obs)
    local feed, err, code = feed_open(obs._js, obs._stream, {
        filter_subject = "$O." .. obs.bucket .. ".M.>",
        deliver_policy = "last_per_subject", count = true,
    })
    if not feed then
        return fail(err, code)
    end
    local list = {}
    while true do
        local m, md = feed:next()
        if not m then
            feed:close()
            if md == "end" then
                return list
            end
            return nil, md
        end
        local meta = decode(m.payload)
        if type(meta) == "table" and meta.deleted ~= true then
            list[#list + 1] = info_of(meta, rfc3339(md.timestamp))
        end
    end
end


-- add_link(name, target): name stands for target (a name in this bucket,
-- or an info of any bucket's object); get and open follow it
function Obs.add_link(obs, name, target)
    local ok, err = check_name(name)
    if not ok then
        return nil, err
    end
    local tinfo, code
    if type(target) == "string" then
        tinfo, err, code = Obs.info(obs, target)
        if not tinfo then
            return fail(err, code)
        end
    elseif type(target) == "table" and type(target.name) == "string"
           and type(target.bucket) == "string"
    then
        tinfo = target
    else
        error("bad argument #2 to 'add_link' (an object name or info "
              .. "expected)", 2)
    end
    if tinfo.deleted then
        return nil, "not allowed to link to a deleted object"
    end
    if tinfo.options and tinfo.options.link then
        return nil, "not allowed to link to another link"
    end
    local old
    old, err, code = last_meta(obs, name, true)
    if old then
        if not old.deleted and not old.options.link then
            return nil, "an object already exists with that name"
        end
    elseif err ~= "object not found" then
        return fail(err, code)
    end
    local nuid = token(NUID_LEN)
    if not nuid then
        return nil, "no randomness for the link's nuid"
    end
    local info = {
        bucket = obs.bucket, name = name, nuid = nuid, size = 0, chunks = 0,
        mtime = now_rfc3339(), deleted = false,
        options = { link = { bucket = tinfo.bucket, name = tinfo.name } },
    }
    ok, err, code = put_meta(obs, info)
    if not ok then
        return fail(err, code)
    end
    return info
end



-- watch(callback): shared connections only. callback(info) with the info
-- of each object of the bucket (deleted ones too: info.deleted) first,
-- then with every change, in order (in a timer, as the callbacks of
-- conn:subscribe); watcher:stop() ends it
function Obs.watch(obs, callback)
    if type(callback) ~= "function" then
        error("bad argument #1 to 'watch' (function expected)", 2)
    end
    return watch.new(obs._js, obs._stream, "$O." .. obs.bucket .. ".M.>",
                     "object store watch of bucket '" .. obs.bucket .. "'",
                     function(m, md)
        local meta = decode(m.payload)
        if type(meta) == "table" then
            callback(info_of(meta, md.timestamp and rfc3339(md.timestamp)))
        end
    end)
end


return _M
