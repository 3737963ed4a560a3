-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_http.request(port, method, path [, headers [, body [, opts]]]): one
-- HTTP/1.0 request by hand over a cosocket to 127.0.0.1:port (nginx's own
-- port, a monitor port of nats-server): status (a number), headers (names
-- in lower case), body; nil, err when the connection fails. opts.timeout
-- (ms, default 10000); opts.piece: the body goes in pieces of that many
-- bytes, as a client on a slow link sends it; opts.chunked: an HTTP/1.1
-- request (Connection: close) whose body goes chunked (Transfer-Encoding,
-- no Content-Length), in chunks of opts.piece bytes (default 4096).
--
-- t_http.json(port, path): GET path, the body decoded (cjson), or nil, err

local cjson = require "cjson.safe"

local _M = {}


function _M.request(port, method, path, headers, body, opts)
    local s = ngx.socket.tcp()
    s:settimeout(opts and opts.timeout or 10000)
    local ok, err = s:connect("127.0.0.1", port)
    if not ok then
        return nil, err
    end
    local chunked = opts and opts.chunked
    local req = { method, " ", path,
                  chunked and " HTTP/1.1\r\nConnection: close\r\n"
                          or " HTTP/1.0\r\n",
                  "Host: x\r\n" }
    for k, v in pairs(headers or {}) do
        req[#req + 1] = k .. ": " .. v .. "\r\n"
    end
    local piece = opts and opts.piece
    if chunked then
        req[#req + 1] = "Transfer-Encoding: chunked\r\n\r\n"
        local step = piece or 4096
        for i = 1, #(body or ""), step do
            local c = body:sub(i, i + step - 1)
            req[#req + 1] = string.format("%x\r\n", #c) .. c .. "\r\n"
        end
        req[#req + 1] = "0\r\n\r\n"
        body, piece = nil, nil
    elseif body then
        req[#req + 1] = "Content-Length: " .. #body .. "\r\n"
    end
    if not chunked then
        req[#req + 1] = "\r\n"
    end
    if body and not piece then
        req[#req + 1] = body
    end
    ok, err = s:send(req)
    if ok and body and piece then
        for i = 1, #body, piece do
            ok, err = s:send(body:sub(i, i + piece - 1))
            if not ok then
                break
            end
        end
    end
    local raw
    if ok then
        raw, err = s:receive("*a")
    end
    s:close()
    if not raw then
        return nil, err
    end
    local head, rest = raw:match("^(.-)\r\n\r\n(.*)$")
    if not head then
        return nil, "no HTTP response: " .. raw:sub(1, 200)
    end
    local h = {}
    for k, v in head:gmatch("\r\n([^:]+): ([^\r]*)") do
        h[k:lower()] = v
    end
    if h["transfer-encoding"] == "chunked" then
        -- an HTTP/1.1 reply without a length: its chunks, joined
        local out, pos = {}, 1
        while true do
            local size, data = rest:match("^(%x+)[^\r]*\r\n()", pos)
            if not size then
                return nil, "bad chunked body: " .. rest:sub(pos, pos + 50)
            end
            size = tonumber(size, 16)
            if size == 0 then
                break
            end
            out[#out + 1] = rest:sub(data, data + size - 1)
            pos = data + size + 2
        end
        rest = table.concat(out)
    end
    return tonumber(head:match("^HTTP/1%.%d (%d+)")), h, rest
end


function _M.json(port, path)
    local status, h, body = _M.request(port, "GET", path, nil, nil,
                                       { timeout = 5000 })
    if not status then
        return nil, h
    end
    return cjson.decode(body)
end


return _M
