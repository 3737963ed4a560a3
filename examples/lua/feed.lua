-- A live feed over Server-Sent Events on the worker's shared NATS
-- connection (see examples/nginx.conf and examples/html/index.html).
--
-- feed.stream(conn_name, prefix): GET /events?topic=<t> answers
-- text/event-stream with every message published to <prefix><t>, one
-- request-scoped subscription per browser (removed at the server when the
-- browser goes away: use lua_check_client_abort on), a comment every 15 s
-- to keep proxies from closing an idle stream. HTTP/1.0 clients need
-- lua_http10_buffering off (or they get nothing: ngx.flush says
-- "buffering").
-- feed.publish(conn_name, prefix): POST /feed?topic=<t> publishes the body.

local nats = require "resty.nats"

local ngx = ngx
local tostring = tostring
local tab_concat = table.concat

local _M = {}

local KEEPALIVE = 15000     -- ms between comments on an idle stream


local function topic()
    local t = ngx.var.arg_topic or "news"
    if not t:find("^[%w_-]+$") then
        return nil
    end
    return t
end


local function connection(name)
    local conn, err = nats.shared(name)
    if not conn then
        ngx.log(ngx.ERR, "feed: ", err)
        return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
    end
    return conn
end


-- one event: a "data:" line per line of the payload (SSE's framing)
local function event(id, payload)
    local lines = { "id: " .. id }
    for line in (payload .. "\n"):gmatch("([^\n]*)\n") do
        lines[#lines + 1] = "data: " .. line:gsub("\r", "")
    end
    return tab_concat(lines, "\n") .. "\n\n"
end


function _M.stream(conn_name, prefix)
    local t = topic()
    if not t then
        return ngx.exit(ngx.HTTP_BAD_REQUEST)
    end
    local conn = connection(conn_name)

    local sub, err = conn:subscribe(prefix .. t)
    if not sub then
        ngx.log(ngx.ERR, "feed: subscribe: ", err)
        return ngx.exit(ngx.HTTP_BAD_GATEWAY)
    end

    ngx.header.content_type = "text/event-stream"
    ngx.header.cache_control = "no-cache"
    ngx.header["X-Accel-Buffering"] = "no"
    ngx.print(": subscribed to ", t, "\n\n")
    if not ngx.flush(true) then
        return
    end

    local id = 0
    while true do
        local msg
        msg, err = sub:next(KEEPALIVE)
        if msg then
            id = id + 1
            ngx.print(event(id, msg.payload))
        elseif err == "timeout" then
            ngx.print(": keep-alive\n\n")
        else
            -- the connection was closed for good (worker exiting)
            ngx.print("event: end\ndata: ", tostring(err), "\n\n")
            ngx.flush(true)
            return
        end
        if not ngx.flush(true) then
            return      -- the browser went away
        end
    end
end


function _M.publish(conn_name, prefix)
    local t = topic()
    if not t or ngx.req.get_method() ~= "POST" then
        return ngx.exit(ngx.HTTP_BAD_REQUEST)
    end
    local conn = connection(conn_name)
    ngx.req.read_body()
    local ok, err = conn:publish(prefix .. t, ngx.req.get_body_data() or "")
    if not ok then
        ngx.status = ngx.HTTP_BAD_REQUEST
        ngx.say("publish: ", err)
        return
    end
    ngx.status = 202
    ngx.say("published to ", t)
end


return _M
