-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.servers: server URLs, the list of servers a connect tries,
-- and the per-worker facts about servers that shape it: cluster members
-- learnt from INFO connect_urls per seed list, and servers that failed
-- recently (tried last for a few seconds). Never request state.

local type = type
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local ipairs = ipairs
local str_lower = string.lower
local str_sub = string.sub
local tab_concat = table.concat
local random = require("resty.nats.frame").random
local math_floor = math.floor
local ngx_now = ngx.now


local _M = {}

local DEFAULT_PORT = 4222
local SERVER_DOWN_TIME = 2              -- s a failed server is tried last


-- per worker: seed list key -> { "host:port" = true }; server key -> time
local learned_urls = {}


local down_until = {}


-- "nats://user:pass@host:port", "tls://host", "host:port", "host"
local function parse_url(url)
    if type(url) ~= "string" then
        return nil, "server URL is not a string"
    end

    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    if not scheme then
        rest = url
        scheme = "nats"
    end
    scheme = str_lower(scheme)
    if scheme ~= "nats" and scheme ~= "tls" then
        return nil, "unsupported URL scheme: " .. scheme
    end

    rest = rest:gsub("/.*$", "")
    local user, pass
    local userinfo, hostport = rest:match("^(.*)@([^@]*)$")
    if userinfo then
        user, pass = userinfo:match("^([^:]*):(.*)$")
        if not user then
            user = userinfo
        end
        user = ngx.unescape_uri(user)
        pass = pass and ngx.unescape_uri(pass)
    else
        hostport = rest
    end

    local host, port = hostport:match("^%[(.+)%]:(%d+)$")
    if not host then
        host, port = hostport:match("^([^:]+):(%d+)$")
    end
    if not host then
        host = hostport:match("^%[(.+)%]$") or hostport
    end
    if host == "" or host:find("[%s/]") then
        return nil, "invalid server URL: " .. url
    end

    port = tonumber(port) or DEFAULT_PORT
    return { host = host, port = port, tls = scheme == "tls", user = user,
             pass = pass, url = url,
             key = (scheme == "tls" and "tls://" or "") .. host .. ":"
                   .. port }
end
_M.parse_url = parse_url


-- the servers to try, in order: the seed list (shuffled unless
-- no_randomize) with the members learnt from INFO, recently failed ones
-- last
local function add_server(list, seen, s)
    if not seen[s.key] then
        seen[s.key] = true
        list[#list + 1] = s
    end
end


-- the server of connect(host, port) or connect("unix:/path")
local function host_server(host, port)
    if str_sub(tostring(host), 1, 5) == "unix:" then
        return { host = host, key = host, unix = true }
    end
    local p = tonumber(port) or DEFAULT_PORT
    return { host = host, port = p, key = host .. ":" .. p }
end


local function server_list(opts, host, port)
    local servers = opts and opts.servers
    local first
    if not servers then
        if not host then
            return nil, "no server to connect to"
        end
        first = host_server(host, port)
        if not learned_urls[first.key] then
            -- one server and none learnt from it (the usual case): nothing
            -- to shuffle or to order by availability
            return { first }, first.key
        end
    end

    local list = {}
    local seen = {}
    local cluster_key

    if servers then
        if type(servers) ~= "table" or #servers == 0 then
            return nil, "opts.servers must be a non-empty list"
        end
        local keys = {}
        for _, url in ipairs(servers) do
            local s, err = parse_url(url)
            if not s then
                return nil, err
            end
            add_server(list, seen, s)
            keys[#keys + 1] = s.key
        end
        cluster_key = tab_concat(keys, ",")

    else
        add_server(list, seen, first)
        cluster_key = first.key
    end

    local known = learned_urls[cluster_key]
    if known then
        local tls = list[1].tls
        for u in pairs(known) do
            local s = parse_url((tls and "tls://" or "nats://") .. u)
            if s then
                add_server(list, seen, s)
            end
        end
    end

    if #list > 1 and not (opts and opts.no_randomize) then
        for i = #list, 2, -1 do
            local j = math_floor(random() * i) + 1
            list[i], list[j] = list[j], list[i]
        end
    end

    local now = ngx_now()
    local up, down = {}, {}
    for _, s in ipairs(list) do
        local d = down_until[s.key]
        if d and d > now then
            down[#down + 1] = s
        else
            up[#up + 1] = s
        end
    end
    for _, s in ipairs(down) do
        up[#up + 1] = s
    end

    return up, cluster_key
end
_M.server_list = server_list


-- the cluster members an INFO named (connect_urls), for the seed list key
function _M.learn(key, list)
    local known = learned_urls[key]
    if not known then
        known = {}
        learned_urls[key] = known
    end
    for _, u in ipairs(list) do
        known[u] = true
    end
end


-- a connect to the server failed: try it last for a while
function _M.mark_down(key)
    down_until[key] = ngx_now() + SERVER_DOWN_TIME
end


function _M.mark_up(key)
    down_until[key] = nil
end


return _M
