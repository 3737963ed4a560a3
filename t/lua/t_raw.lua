-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_raw: the NATS protocol written by hand over a plain cosocket, to check
-- what resty.nats put on the wire (and to write what another client
-- would) without going through resty.nats.
--
-- t_raw.request(port, subject, payload [, headers]): the reply to one
-- request (PUB, or HPUB when headers, a table of name = value, are given)
-- as payload, headers block (or nil); nil, err on failure.
-- t_raw.api(port, what, body): a JetStream API request ($JS.API.<what>),
-- the reply decoded (lua-cjson).

local cjson = require "cjson.safe"

local _M = {}


local function read_msg(s)
    while true do
        local line, err = s:receive("*l")
        if not line then
            return nil, err
        end
        if line == "PING" then
            s:send("PONG\r\n")
        elseif line:find("^%-ERR") then
            return nil, line
        else
            -- (the server may write two blanks where a reply is absent)
            local hlen, tlen = line:match("^HMSG %S+ .-(%d+) (%d+)$")
            if not hlen then
                tlen = line:match("^MSG %S+ .-(%d+)$")
                hlen = 0
            end
            if tlen then
                local data = assert(s:receive(tonumber(tlen) + 2))
                hlen = tonumber(hlen)
                local hdrs = hlen > 0 and data:sub(1, hlen) or nil
                return data:sub(hlen + 1, #data - 2), hdrs
            end
            -- INFO, +OK, PONG: nothing to do
        end
    end
end


function _M.request(port, subject, payload, headers)
    local s = ngx.socket.tcp()
    s:settimeout(5000)
    local ok, err = s:connect("127.0.0.1", port)
    if not ok then
        return nil, err
    end
    local frame
    if headers then
        local h = { "NATS/1.0\r\n" }
        for k, v in pairs(headers) do
            h[#h + 1] = k .. ": " .. v .. "\r\n"
        end
        h[#h + 1] = "\r\n"
        h = table.concat(h)
        frame = "HPUB " .. subject .. " _RAW.reply " .. #h .. " "
                .. (#h + #payload) .. "\r\n" .. h .. payload .. "\r\n"
    else
        frame = "PUB " .. subject .. " _RAW.reply " .. #payload .. "\r\n"
                .. payload .. "\r\n"
    end
    assert(s:send('CONNECT {"verbose":false,"headers":true}\r\n'
                  .. "SUB _RAW.reply 1\r\n" .. frame))
    local data, hdrs = read_msg(s)
    s:close()
    return data, hdrs
end


function _M.api(port, what, body)
    local data, err = _M.request(port, "$JS.API." .. what,
                                 body and cjson.encode(body) or "")
    if not data then
        return nil, err
    end
    return cjson.decode(data)
end


return _M
