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
--
-- The same feed kept in a JetStream stream, which a browser resumes
-- without losing an event (its EventSource reconnects by itself and
-- sends the id of the last event it got as Last-Event-ID):
-- feed.stream_durable(conn_name, stream, prefix): GET /durable/events?
-- topic=<t> answers text/event-stream with the messages of <prefix><t>
-- from the stream, each event's id its stream sequence; with a
-- Last-Event-ID: N header (or ?last_event_id=N) it starts at N+1, without
-- one at the next message (?from=all: from the first one kept). Under it,
-- an ordered consumer that ends with the request.
-- feed.publish_durable(conn_name, stream, prefix): POST /durable/feed?
-- topic=<t> stores the body in the stream (made on first use) and
-- answers its sequence.

local nats = require "resty.nats"

local ngx = ngx
local tostring, tonumber = tostring, tonumber
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


-- the response: text/event-stream, first (a comment, a retry line), then
-- an event per message that next_msg(ms) gives (id, payload), a comment
-- after KEEPALIVE ms of nothing (next_msg: nil, "timeout"), until the
-- client goes away or next_msg fails for good (nil, err)
local function serve(first, next_msg)
    ngx.header.content_type = "text/event-stream"
    ngx.header.cache_control = "no-cache"
    ngx.header["X-Accel-Buffering"] = "no"
    ngx.print(first)
    if not ngx.flush(true) then
        return
    end
    while true do
        local id, payload = next_msg(KEEPALIVE)
        if id then
            ngx.print(event(id, payload))
        elseif payload == "timeout" then
            ngx.print(": keep-alive\n\n")
        else
            -- the connection was closed for good (worker exiting)
            ngx.print("event: end\ndata: ", tostring(payload), "\n\n")
            ngx.flush(true)
            return
        end
        if not ngx.flush(true) then
            return      -- the browser went away
        end
    end
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

    local id = 0
    return serve(": subscribed to " .. t .. "\n\n", function(ms)
        local msg, e = sub:next(ms)
        if not msg then
            return nil, e
        end
        id = id + 1
        return id, msg.payload
    end)
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



-- the stream of the durable feed, made when it is not there (stream: its
-- name; it keeps the last 10,000 events of <prefix>>, a day at most)
local function ensure_stream(js, stream, prefix)
    local info, err, code = js:stream_info(stream)
    if info then
        return true
    end
    if code ~= 10059 then           -- another error than "not found"
        return nil, err
    end
    info, err = js:add_stream({ name = stream, subjects = { prefix .. ">" },
                                max_msgs = 10000, max_age = 86400 * 1e9,
                                storage = "file" })
    if not info then
        return nil, err
    end
    return true
end


function _M.stream_durable(conn_name, stream, prefix)
    local t = topic()
    if not t then
        return ngx.exit(ngx.HTTP_BAD_REQUEST)
    end
    local last = ngx.var.http_last_event_id or ngx.var.arg_last_event_id
    local from
    if last then
        from = tonumber(last)
        if not from or from < 0 or from % 1 ~= 0 then
            return ngx.exit(ngx.HTTP_BAD_REQUEST)
        end
    end
    local js = connection(conn_name):jetstream()
    local ok, err = ensure_stream(js, stream, prefix)
    if not ok then
        ngx.log(ngx.ERR, "feed: stream ", stream, ": ", err)
        return ngx.exit(ngx.HTTP_BAD_GATEWAY)
    end
    local opts = { filter_subject = prefix .. t, deliver_policy = "new" }
    if from then
        opts.deliver_policy = "by_start_sequence"
        opts.opt_start_seq = from + 1
    elseif ngx.var.arg_from == "all" then
        opts.deliver_policy = "all"
    end
    local oc
    oc, err = js:ordered_consumer(stream, opts)
    if not oc then
        ngx.log(ngx.ERR, "feed: ordered consumer: ", err)
        return ngx.exit(ngx.HTTP_BAD_GATEWAY)
    end

    -- the browser comes back after 1 s when the stream breaks; each
    -- event's id is its stream sequence
    return serve("retry: 1000\n: subscribed to " .. t
                 .. (from and " after " .. from or "") .. "\n\n",
                 function(ms)
        local msg, e = oc:next(ms)
        if not msg then
            return nil, e
        end
        return msg.metadata.sequence.stream, msg.payload
    end)
end


function _M.publish_durable(conn_name, stream, prefix)
    local t = topic()
    if not t or ngx.req.get_method() ~= "POST" then
        return ngx.exit(ngx.HTTP_BAD_REQUEST)
    end
    local js = connection(conn_name):jetstream()
    ngx.req.read_body()
    local body = ngx.req.get_body_data() or ""
    local ack, err = js:publish(prefix .. t, body)
    if not ack and err == "no responders" then
        -- no stream yet: make it, once
        local ok
        ok, err = ensure_stream(js, stream, prefix)
        if ok then
            ack, err = js:publish(prefix .. t, body)
        end
    end
    if not ack then
        ngx.status = ngx.HTTP_BAD_GATEWAY
        ngx.say("publish: ", err)
        return
    end
    ngx.status = 201
    ngx.say("stored in ", t, " as ", ack.seq)
end


return _M
