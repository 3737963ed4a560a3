-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_http.request(port, method, path [, headers [, body [, opts]]]): one
-- HTTP/1.0 request by hand over a cosocket to 127.0.0.1:port (nginx's own
-- port, a monitor port of nats-server): status (a number), headers (names
-- in lower case), body; nil, err when the connection fails. opts.timeout
-- (ms, default 10000); opts.piece: the body goes in pieces of that many
-- bytes, as a client on a slow link sends it.
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
    local req = { method, " ", path, " HTTP/1.0\r\nHost: x\r\n" }
    for k, v in pairs(headers or {}) do
        req[#req + 1] = k .. ": " .. v .. "\r\n"
    end
    if body then
        req[#req + 1] = "Content-Length: " .. #body .. "\r\n"
    end
    req[#req + 1] = "\r\n"
    local piece = opts and opts.piece
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
