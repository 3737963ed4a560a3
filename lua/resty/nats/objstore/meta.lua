-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.objstore.meta: what an object store's metas are made of, as
-- the official clients write them (ADR-20): names in padded base64url,
-- digests "SHA-256=<base64url>", times in RFC 3339, headers as lists of
-- values, and the info a caller sees of a meta.

local encode = require("resty.nats.jetstream.json").encode

local ngx = ngx
local encode_base64, decode_base64 = ngx.encode_base64, ngx.decode_base64
local type, tostring = type, tostring
local pairs, ipairs, next = pairs, ipairs, next
local str_find, str_gsub = string.find, string.gsub


local _M = {}


-- base64url with its padding: what the official clients use for the
-- names in meta subjects and for digests
local function b64url(s)
    return (str_gsub(encode_base64(s), "[+/]", { ["+"] = "-", ["/"] = "_" }))
end


local function unb64url(s)
    s = str_gsub(s, "[-_]", { ["-"] = "+", ["_"] = "/" })
    local pad = #s % 4
    if pad == 2 then
        s = s .. "=="
    elseif pad == 3 then
        s = s .. "="
    end
    return decode_base64(s)
end


local function check_name(name)
    if type(name) ~= "string" or name == "" then
        return nil, "object name must be a non-empty string"
    end
    return true
end




-- headers of a meta (Go's http.Header: every value a list) as message
-- headers are given to Lua: one value a string, several a list
local function headers_in(h)
    if type(h) ~= "table" or next(h) == nil then
        return nil
    end
    local out = {}
    for k, v in pairs(h) do
        if type(v) == "table" then
            if #v == 1 then
                out[k] = v[1]
            elseif #v > 1 then
                out[k] = v
            end
        else
            out[k] = tostring(v)
        end
    end
    return out
end


local function headers_out(h)
    if h == nil then
        return nil
    end
    local out = {}
    for k, v in pairs(h) do
        if type(k) ~= "string" or str_find(k, "[%s%c:]") or k == "" then
            return nil, "invalid header name: " .. tostring(k)
        end
        if type(v) == "table" then
            local list = {}
            for i, x in ipairs(v) do
                list[i] = tostring(x)
            end
            out[k] = list
        else
            out[k] = { tostring(v) }
        end
    end
    return out
end


-- the info a caller sees of a meta (the decoded JSON) and its time
local function info_of(meta, mtime)
    local opts = type(meta.options) == "table" and meta.options or nil
    local link
    if opts and type(opts.link) == "table" then
        link = { bucket = opts.link.bucket, name = opts.link.name }
    end
    return {
        bucket = meta.bucket, name = meta.name, size = meta.size or 0,
        chunks = meta.chunks or 0, digest = meta.digest, nuid = meta.nuid,
        mtime = mtime or meta.mtime, description = meta.description,
        headers = headers_in(meta.headers),
        metadata = type(meta.metadata) == "table" and meta.metadata or nil,
        deleted = meta.deleted == true,
        options = {
            link = link,
            max_chunk_size = opts and opts.max_chunk_size or nil,
        },
    }
end


-- the JSON of a meta, as the official clients write it
local function meta_json(info)
    local opts
    if info.options.link or info.options.max_chunk_size then
        opts = { link = info.options.link,
                 max_chunk_size = info.options.max_chunk_size }
    end
    local hdrs, err = headers_out(info.headers)
    if err then
        return nil, err
    end
    return encode({
        name = info.name, description = info.description, headers = hdrs,
        options = opts, metadata = info.metadata, bucket = info.bucket,
        nuid = info.nuid, size = info.size, chunks = info.chunks,
        digest = info.digest, deleted = info.deleted or nil,
        mtime = info.mtime,
    })
end


_M.b64url = b64url
_M.unb64url = unb64url
_M.check_name = check_name
_M.headers_in = headers_in
_M.headers_out = headers_out
_M.info_of = info_of
_M.meta_json = meta_json


return _M
