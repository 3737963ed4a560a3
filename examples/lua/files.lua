-- An HTTP file server on a JetStream object store, through the worker's
-- shared NATS connection (see examples/nginx.conf):
--
--   PUT    /files/<name>   the request body, streamed into the bucket
--                          (201 and the object's info as JSON); a
--                          chunked body (no Content-Length) is read by
--                          nginx first (to a temporary file past
--                          client_body_buffer_size), then stored
--   GET    /files/<name>   streamed out chunk by chunk; Content-Length,
--                          ETag (the SHA-256 digest), Last-Modified (the
--                          object's mtime), Content-Type (the object's
--                          header, or what the PUT said), If-None-Match
--                          or If-Modified-Since -> 304, Range: bytes=a-b
--                          -> 206 (one range; If-Range honoured; other
--                          Range headers ignored: the whole object)
--   HEAD   /files/<name>   the same headers, no body
--   DELETE /files/<name>   204
--   GET    /files/         the list of objects, as JSON
--
-- No object is ever whole in memory: the body is read from
-- ngx.req.socket() a piece at a time while the chunks go out, and a GET
-- sends each chunk as it comes (ngx.flush(true): the next one is read
-- once the client took this one); a Range GET reads from the chunk
-- holding its first byte (reader:seek).
--
-- files.serve(conn_name, bucket [, { max_size = bytes }]), in a
-- content_by_lua* handler of a location that captures $file_name.

local cjson = require "cjson.safe"
local nats = require "resty.nats"
local time = require "resty.nats.time"

local ngx = ngx
local type, tostring, tonumber = type, tostring, tonumber
local str_format = string.format
local math_min, math_max, math_floor = math.min, math.max, math.floor

local _M = {}

local READ_PIECE = 64 * 1024        -- bytes read from the client at a time
local FLUSH_EVERY = 1024 * 1024     -- bytes sent between two waits
local DEFAULT_MAX_SIZE = 1024 * 1024 * 1024


local function reply(status, body)
    ngx.status = status
    if body then
        ngx.header["Content-Type"] = "application/json"
        ngx.say(cjson.encode(body))
    end
    return ngx.exit(status)
end


-- the worker's bucket handles, by connection name and bucket: bound (or
-- made) once, not at every request (a handle holds names only, and is
-- used on the worker's shared connection)
local stores = {}

local function store(conn_name, bucket)
    local key = conn_name .. "\0" .. bucket
    local obs = stores[key]
    if obs then
        return obs
    end
    local conn, err = nats.shared(conn_name)
    if not conn then
        return nil, err
    end
    local js
    js, err = conn:jetstream()
    if not js then
        return nil, err
    end
    obs = js:object_store(bucket)
    if not obs then
        obs, err = js:create_object_store({ bucket = bucket })
        if not obs then
            return nil, err
        end
    end
    stores[key] = obs
    return obs
end


local function too_large(max_size)
    return reply(413, { error = "larger than " .. max_size .. " bytes" })
end


-- a chunked body (no Content-Length): ngx.req.socket() cannot read one,
-- so nginx reads it first, to a temporary file past
-- client_body_buffer_size (client_max_body_size bounds it there); the
-- source reads that file READ_PIECE bytes at a time. The source and the
-- file to close, or nil (the reply sent)
local function buffered_body(max_size)
    ngx.req.read_body()
    local data = ngx.req.get_body_data()
    if data then
        if #data > max_size then
            return nil, too_large(max_size)
        end
        return data
    end
    local path = ngx.req.get_body_file()
    if not path then
        return ""
    end
    local f, err = io.open(path, "rb")
    if not f then
        return nil, reply(500, { error = "body: " .. tostring(err) })
    end
    if f:seek("end") > max_size then
        f:close()
        return nil, too_large(max_size)
    end
    f:seek("set")
    return function()
        return f:read(READ_PIECE)
    end, f
end


-- PUT: the body from the client's socket, READ_PIECE bytes at a time
local function put(obs, name, max_size)
    local len = tonumber(ngx.var.http_content_length)
    local source, file, err
    if len then
        if len > max_size then
            return too_large(max_size)
        end
        local sock
        sock, err = ngx.req.socket()
        if not sock and len > 0 then
            return reply(400, { error = "body: " .. tostring(err) })
        end
        local left = len
        source = function()
            if left == 0 then
                return nil
            end
            local piece, rerr = sock:receive(math_min(READ_PIECE, left))
            if not piece then
                return nil, "reading the body: " .. tostring(rerr)
            end
            left = left - #piece
            return piece
        end
    elseif ngx.var.http_transfer_encoding then
        source, file = buffered_body(max_size)
        if not source then
            return
        end
    else
        return reply(411, { error = "Content-Length required" })
    end
    local headers
    local ctype = ngx.var.http_content_type
    if ctype then
        headers = { ["Content-Type"] = ctype }
    end
    local info
    info, err = obs:put(name, source, { headers = headers })
    if file then
        file:close()
    end
    if not info then
        return reply(502, { error = err })
    end
    return reply(201, info)
end


-- "bytes=a-b", "bytes=a-", "bytes=-n": first and last byte; false when
-- no byte of it is in the object (416); nil for what is not one range of
-- this form (several ranges, b < a, another unit): the header is ignored
-- and the whole object sent, as RFC 9110 lets a server do
local function range(spec, size)
    local a, b = spec:match("^bytes=%s*(%d*)%-(%d*)%s*$")
    if not a or (a == "" and b == "") then
        return nil
    end
    if a == "" then
        local n = tonumber(b)
        if n == 0 then
            return false
        end
        return math_max(0, size - n), size - 1
    end
    a = tonumber(a)
    if b ~= "" and tonumber(b) < a then
        return nil
    end
    if a >= size then
        return false
    end
    return a, b == "" and size - 1 or math_min(tonumber(b), size - 1)
end


-- If-None-Match: "*", or a list of entity tags (weak ones compared
-- weakly, as RFC 9110 says for this header)
local function none_match(header, etag)
    if header == "*" then
        return true
    end
    for tag in header:gmatch('(W?/?"[^"]*")') do
        if tag == etag or tag:sub(3) == etag then
            return true
        end
    end
    return false
end


local function get(obs, name, head)
    local reader, info = obs:open(name)
    if not reader then
        if info == "object not found" then
            return reply(404, { error = info })
        end
        return reply(502, { error = info })
    end
    local etag = '"' .. (info.digest or "") .. '"'
    ngx.header["ETag"] = etag
    ngx.header["Accept-Ranges"] = "bytes"
    local ctype = info.headers and info.headers["Content-Type"]
    ngx.header["Content-Type"] = type(ctype) == "string" and ctype
                                 or "application/octet-stream"
    local ns = time.parse(info.mtime)
    local mtime = ns and math_floor(ns / 1e9)
    if mtime then
        ngx.header["Last-Modified"] = ngx.http_time(mtime)
    end
    local inm = ngx.var.http_if_none_match
    if inm then
        if none_match(inm, etag) then
            return ngx.exit(304)
        end
    else
        -- (If-Modified-Since counts only without If-None-Match)
        local ims = ngx.var.http_if_modified_since
        ims = ims and ngx.parse_http_time(ims)
        if ims and mtime and mtime <= ims then
            return ngx.exit(304)
        end
    end
    local size = info.size
    local first, last = 0, size - 1
    local spec = ngx.var.http_range
    local if_range = ngx.var.http_if_range
    if spec and size > 0 and (not if_range or if_range == etag) then
        local a, b = range(spec, size)
        if a == false then
            ngx.header["Content-Range"] = "bytes */" .. size
            return ngx.exit(416)
        end
        if a then
            first, last = a, b
            ngx.status = 206
            ngx.header["Content-Range"] = str_format("bytes %d-%d/%d",
                                                     first, last, size)
        end
    end
    ngx.header["Content-Length"] = last - first + 1
    if head or size == 0 then
        return ngx.exit(ngx.status == 206 and 206 or 200)
    end

    -- a range starts the read at its first byte (the consumer at the
    -- chunk holding it, nothing before it read); the read stops after its
    -- last byte (a whole GET checks the digest at the end)
    if first > 0 then
        reader:seek(first)
    end
    local pos = first               -- offset of the next piece
    local unflushed = 0             -- bytes printed since the last flush
    while pos <= last do
        local piece, err = reader()
        if not piece then
            -- the headers are out: all that is left is to cut the reply
            ngx.log(ngx.ERR, "files: reading '", name, "': ",
                    err or "ended early")
            return ngx.exit(444)
        end
        local n = #piece
        if pos + n > first then
            local from = math_max(first - pos, 0) + 1
            local to = math_min(last - pos + 1, n)
            local ok, ferr = ngx.print(from == 1 and to == n and piece
                                       or piece:sub(from, to))
            unflushed = unflushed + to - from + 1
            if ok and unflushed >= FLUSH_EVERY then
                -- waits for the client to take it: what a slow client
                -- has not taken stays bounded
                ok, ferr = ngx.flush(true)
                unflushed = 0
            end
            if not ok then
                ngx.log(ngx.INFO, "files: client went away: ", ferr)
                reader:close()
                return ngx.exit(444)
            end
        end
        pos = pos + n
    end
    if last < size - 1 then
        -- a range that ends before the object does
        reader:close()
    elseif first == 0 then
        -- read on to the end: nil, or the digest's verdict
        local more, err = reader()
        if more or err then
            ngx.log(ngx.ERR, "files: '", name, "': ", err or "longer than said")
            return ngx.exit(444)
        end
    end
    return ngx.exit(ngx.status)
end


function _M.serve(conn_name, bucket, opts)
    local obs, err = store(conn_name, bucket)
    if not obs then
        return reply(503, { error = err })
    end
    local name = ngx.var.file_name
    local method = ngx.req.get_method()
    if name == nil or name == "" then
        if method ~= "GET" then
            return reply(405, { error = "GET only" })
        end
        local list
        list, err = obs:list()
        if not list then
            return reply(502, { error = err })
        end
        if #list == 0 then
            -- (lua-cjson writes an empty table as {})
            ngx.header["Content-Type"] = "application/json"
            ngx.say("[]")
            return
        end
        return reply(200, list)
    end
    name = ngx.unescape_uri(name)
    if method == "PUT" then
        return put(obs, name, opts and opts.max_size or DEFAULT_MAX_SIZE)
    elseif method == "GET" or method == "HEAD" then
        return get(obs, name, method == "HEAD")
    elseif method == "DELETE" then
        local ok
        ok, err = obs:delete(name)
        if not ok then
            return reply(err == "object not found" and 404 or 502,
                         { error = err })
        end
        return ngx.exit(204)
    end
    return reply(405, { error = "PUT, GET, HEAD or DELETE" })
end


return _M
