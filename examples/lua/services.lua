-- NATS services hosted in nginx and an HTTP front for the services of a
-- cluster (see examples/nginx.conf):
--
-- services.start(conn_name): in init_worker, each worker becomes an
-- instance of the service "demo-calc" (ADR-32): the endpoint
-- demo.calc.sum adds the numbers of its payload ("2 3 4" -> "9"), and
-- answers a payload without numbers with the service error 400.
-- services.list(conn_name): GET /services: the instances that answer
-- $SRV.PING within 500 ms (any service of the cluster), as JSON.
-- services.call(conn_name, subject): POST /svc/<subject>: a request to a
-- service endpoint; a service error (Nats-Service-Error-Code) becomes the
-- HTTP status (400-599 as they are, others 502), its text the
-- X-Service-Error header.

local nats = require "resty.nats"
local cjson = require "cjson.safe"

local ngx = ngx
local tonumber, tostring, ipairs, type = tonumber, tostring, ipairs, type

local _M = {}


function _M.start(conn_name)
    local conn = assert(nats.shared(conn_name))
    local svc = assert(conn:add_service({
        name = "demo-calc", version = "1.0.0",
        description = "adds numbers", metadata = { example = "true" },
    }))
    assert(svc:add_group("demo.calc"):add_endpoint("sum", function(req)
        local sum, n = 0, 0
        for x in req.payload:gmatch("%-?%d+%.?%d*") do
            sum = sum + tonumber(x)
            n = n + 1
        end
        if n == 0 then
            return req:respond_error(400, "numbers expected")
        end
        req:respond(tostring(sum))
    end))
    return svc
end


function _M.list(conn_name)
    local conn = nats.shared(conn_name)
    local msgs, err = conn:request_many("$SRV.PING", "",
                                        { timeout = 500, stall = 100 })
    if not msgs and err ~= "no responders" then
        ngx.status = ngx.HTTP_BAD_GATEWAY
        ngx.say(cjson.encode({ error = err }))
        return
    end
    local list = {}
    for _, m in ipairs(msgs or {}) do
        local ping = cjson.decode(m.payload)
        if type(ping) == "table" then
            list[#list + 1] = { name = ping.name, id = ping.id,
                                version = ping.version }
        end
    end
    ngx.header.content_type = "application/json"
    ngx.say(#list == 0 and "[]" or cjson.encode(list))
end


function _M.call(conn_name, subject)
    local conn = nats.shared(conn_name)
    ngx.req.read_body()
    local m, err = conn:request(subject, ngx.req.get_body_data() or "",
                                { timeout = 2000 })
    if not m then
        return ngx.exit(err == "no responders" and 503 or 504)
    end
    local h = m.headers
    local code = h and tonumber(h["Nats-Service-Error-Code"])
    if code then
        ngx.status = (code >= 400 and code <= 599) and code or 502
        ngx.header["X-Service-Error"] = h["Nats-Service-Error"]
    end
    ngx.print(m.payload)
end


return _M
