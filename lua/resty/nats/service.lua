-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.service: NATS services (the "micro" protocol, ADR-32) hosted
-- on a worker's shared connection: endpoints answered by handlers (queue
-- subscriptions, group "q" by default, so each worker is an instance and
-- one of them takes each request), and the discovery subjects $SRV.PING,
-- $SRV.INFO and $SRV.STATS (alone, .<name>, .<name>.<id>) answered with
-- io.nats.micro.v1.ping_response / info_response / stats_response.
-- Errors go back in the Nats-Service-Error and Nats-Service-Error-Code
-- headers. Subscriptions of a shared connection survive its reconnects,
-- so the service does too.

local ffi = require "ffi"
local jsjson = require "resty.nats.jetstream.json"
local encode = jsjson.encode
local token = require("resty.nats.frame").token
local rfc3339 = require("resty.nats.time").rfc3339

local ngx = ngx
local ngx_log, ngx_ERR = ngx.log, ngx.ERR
local type, tostring, tonumber = type, tostring, tonumber
local pairs, ipairs = pairs, ipairs
local error, pcall, setmetatable = error, pcall, setmetatable
local str_find, str_match = string.find, string.match
local math_floor = math.floor


local _M = {}

local Service = {}
local service_mt = { __index = Service }
local Group = {}
local group_mt = { __index = Group }
local Request = {}
local request_mt = { __index = Request }

local PREFIX = "$SRV"
local DEFAULT_QUEUE = "q"
local ID_LEN = 22

pcall(ffi.cdef, [[
typedef struct resty_nats_timespec_s { long tv_sec; long tv_nsec; }
    resty_nats_timespec_t;
int clock_gettime(int clk_id, resty_nats_timespec_t *tp);
]])
local ts = ffi.new("resty_nats_timespec_t")
local CLOCK_MONOTONIC = 1

-- a monotonic clock in ns, for the handlers' processing time
local function now_ns()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end


---------------------------------------------------------------------------
-- names

local function check_name(name, what)
    if type(name) ~= "string" or name == "" or str_find(name, "[^%w_%-]")
    then
        return nil, "invalid " .. what .. " name: " .. tostring(name)
    end
    return true
end


-- dot-separated identifiers of [0-9A-Za-z-]; numeric ones without
-- leading zeros when numeric must be (semver's pre-release)
local function identifiers(s, numeric_rule)
    if s == "" then
        return false
    end
    for id in (s .. "."):gmatch("([^.]*)%.") do
        if id == "" or str_find(id, "[^%w%-]") then
            return false
        end
        if numeric_rule and str_find(id, "^%d+$") and #id > 1
           and id:sub(1, 1) == "0"
        then
            return false
        end
    end
    return true
end


-- semver 2.0.0: MAJOR.MINOR.PATCH[-pre-release][+build]
local function check_version(v)
    if type(v) ~= "string" then
        return nil, "invalid version: " .. tostring(v)
    end
    local core, rest = str_match(v, "^(%d+%.%d+%.%d+)(.*)$")
    local ok = core ~= nil
    if ok then
        for n in core:gmatch("%d+") do
            if #n > 1 and n:sub(1, 1) == "0" then
                ok = false
            end
        end
    end
    if ok and rest ~= "" then
        local pre, build = str_match(rest, "^%-([^+]*)(.*)$")
        if pre then
            ok = identifiers(pre, true)
            rest = build
        end
        if ok and rest ~= "" then
            local b = str_match(rest, "^%+(.*)$")
            ok = b ~= nil and identifiers(b, false)
        end
    end
    if not ok then
        return nil, "invalid version (semver expected): " .. v
    end
    return true
end


local function check_subject(s, what)
    if type(s) ~= "string" or s == "" or str_find(s, "[%s%c]")
       or str_find(s, "^%.") or str_find(s, "%.$") or str_find(s, "%.%.")
    then
        return nil, "invalid " .. what .. ": " .. tostring(s)
    end
    return true
end


local function check_metadata(md, what)
    if md == nil then
        return {}
    end
    if type(md) ~= "table" then
        error("bad 'metadata' option to '" .. what .. "' (table of strings "
              .. "expected)", 4)
    end
    local copy = {}
    for k, v in pairs(md) do
        if type(k) ~= "string" or type(v) ~= "string" then
            error("bad 'metadata' option to '" .. what .. "' (table of "
                  .. "strings expected)", 4)
        end
        copy[k] = v
    end
    return copy
end


---------------------------------------------------------------------------
-- requests

-- req:respond(payload [, headers]): true, or nil, err
function Request.respond(req, payload, headers)
    local reply = req.reply_to
    if not reply then
        return nil, "no reply subject"
    end
    req._responded = true
    return req._svc._conn:publish(reply, payload or "",
                                  headers and { headers = headers } or nil)
end


-- req:respond_error(code, description [, payload [, headers]]): the error
-- in the Nats-Service-Error(-Code) headers; counted in the endpoint's
-- stats
function Request.respond_error(req, code, description, payload, headers)
    if type(code) ~= "number" or code % 1 ~= 0 then
        error("bad argument #1 to 'respond_error' (an integer code "
              .. "expected)", 2)
    end
    description = tostring(description or "")
    local h = {}
    if headers then
        for k, v in pairs(headers) do
            h[k] = v
        end
    end
    h["Nats-Service-Error"] = description
    h["Nats-Service-Error-Code"] = tostring(code)
    local ep = req._ep
    ep.num_errors = ep.num_errors + 1
    ep.last_error = code .. ":" .. description
    return Request.respond(req, payload, h)
end


---------------------------------------------------------------------------
-- endpoints

local function handle(svc, ep, m)
    local req = setmetatable({
        subject = m.subject, payload = m.payload, headers = m.headers,
        reply_to = m.reply_to, _svc = svc, _ep = ep,
    }, request_mt)
    local t0 = now_ns()
    local ok, err = pcall(ep.handler, req)
    ep.processing_time = ep.processing_time + (now_ns() - t0)
    ep.num_requests = ep.num_requests + 1
    if not ok then
        err = tostring(err)
        ngx_log(ngx_ERR, "nats: service ", svc.name, " endpoint ", ep.name,
                ": handler failed: ", err)
        if not req._responded and req.reply_to then
            req:respond_error(500, err)
        else
            ep.num_errors = ep.num_errors + 1
            ep.last_error = "500:" .. err
        end
    end
end


local function add_endpoint(svc, prefix, group_queue, name, handler, opts)
    if svc._stopped then
        return nil, "stopped"
    end
    local ok, err = check_name(name, "endpoint")
    if not ok then
        return nil, err
    end
    if type(handler) ~= "function" then
        error("bad argument #2 to 'add_endpoint' (function expected, got "
              .. type(handler) .. ")", 3)
    end
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #3 to 'add_endpoint' (table expected, got "
              .. type(opts) .. ")", 3)
    end
    opts = opts or {}
    local subject = opts.subject or name
    ok, err = check_subject(subject, "endpoint subject")
    if not ok then
        return nil, err
    end
    if prefix then
        subject = prefix .. "." .. subject
    end
    local queue = opts.queue_group
    if queue == nil then
        queue = group_queue
    end
    if queue ~= false then
        ok, err = check_subject(queue, "queue group")
        if not ok then
            return nil, err
        end
    end
    local ep = {
        name = name, subject = subject, queue_group = queue or nil,
        metadata = check_metadata(opts.metadata, "add_endpoint"),
        handler = handler, num_requests = 0, num_errors = 0,
        last_error = "", processing_time = 0,
    }
    local sub
    sub, err = svc._conn:subscribe(subject, function(m)
        handle(svc, ep, m)
    end, queue and { queue = queue } or nil)
    if not sub then
        return nil, err
    end
    svc._subs[#svc._subs + 1] = sub
    svc._endpoints[#svc._endpoints + 1] = ep
    return true
end


-- svc:add_endpoint(name, handler [, { subject = name, queue_group =
-- (false: no queue group), metadata = { ... } }]): true, or nil, err
function Service.add_endpoint(svc, name, handler, opts)
    return add_endpoint(svc, nil, svc.queue_group, name, handler, opts)
end


-- svc:add_group(name [, { queue_group = }]): a group (grp:add_endpoint,
-- grp:add_group), its name the prefix of its endpoints' subjects
function Service.add_group(svc, name, opts)
    local ok, err = check_subject(name, "group name")
    if ok and str_find(name, ">", 1, true) then
        ok, err = nil, "invalid group name: " .. name
    end
    if not ok then
        error(err, 2)
    end
    local queue = svc.queue_group
    if opts and opts.queue_group ~= nil then
        queue = opts.queue_group
    end
    return setmetatable({ _svc = svc, prefix = name, queue_group = queue },
                        group_mt)
end


function Group.add_endpoint(grp, name, handler, opts)
    return add_endpoint(grp._svc, grp.prefix, grp.queue_group, name, handler,
                        opts)
end


function Group.add_group(grp, name, opts)
    local g = Service.add_group(grp._svc, name, opts)
    g.prefix = grp.prefix .. "." .. name
    if not (opts and opts.queue_group ~= nil) then
        g.queue_group = grp.queue_group
    end
    return g
end


---------------------------------------------------------------------------
-- discovery and status

local function base(svc, kind)
    return {
        type = "io.nats.micro.v1." .. kind .. "_response",
        name = svc.name, id = svc.id, version = svc.version,
        metadata = svc.metadata,
    }
end


local function array(t)
    return setmetatable(t, jsjson.array_mt)
end


-- svc:info(): { type, name, id, version, metadata, description,
-- endpoints = { { name, subject, queue_group, metadata } } }
function Service.info(svc)
    local r = base(svc, "info")
    r.description = svc.description
    local eps = {}
    for i, ep in ipairs(svc._endpoints) do
        eps[i] = { name = ep.name, subject = ep.subject,
                   queue_group = ep.queue_group, metadata = ep.metadata }
    end
    r.endpoints = array(eps)
    return r
end


-- svc:stats(): { type, name, id, version, metadata, started, endpoints =
-- { { name, subject, queue_group, num_requests, num_errors, last_error,
-- processing_time, average_processing_time } } } (times in ns)
function Service.stats(svc)
    local r = base(svc, "stats")
    r.started = svc.started
    local eps = {}
    for i, ep in ipairs(svc._endpoints) do
        local n = ep.num_requests
        eps[i] = {
            name = ep.name, subject = ep.subject,
            queue_group = ep.queue_group,
            num_requests = n, num_errors = ep.num_errors,
            last_error = ep.last_error,
            processing_time = math_floor(ep.processing_time),
            average_processing_time = n > 0
                and math_floor(ep.processing_time / n) or 0,
        }
    end
    r.endpoints = array(eps)
    return r
end


-- svc:reset(): the endpoints' counters back to 0
function Service.reset(svc)
    for _, ep in ipairs(svc._endpoints) do
        ep.num_requests, ep.num_errors = 0, 0
        ep.last_error, ep.processing_time = "", 0
    end
end


local function discovery(svc)
    local conn = svc._conn
    for _, verb in ipairs({ "PING", "INFO", "STATS" }) do
        local answer
        if verb == "PING" then
            answer = function() return base(svc, "ping") end
        elseif verb == "INFO" then
            answer = function() return Service.info(svc) end
        else
            answer = function() return Service.stats(svc) end
        end
        for _, subject in ipairs({
            PREFIX .. "." .. verb,
            PREFIX .. "." .. verb .. "." .. svc.name,
            PREFIX .. "." .. verb .. "." .. svc.name .. "." .. svc.id,
        }) do
            local sub, err = conn:subscribe(subject, function(m)
                if m.reply_to then
                    conn:publish(m.reply_to, encode(answer()))
                end
            end)
            if not sub then
                return nil, err
            end
            svc._subs[#svc._subs + 1] = sub
        end
    end
    return true
end


-- svc:stop(): its subscriptions go (endpoints and discovery); true, or
-- nil, "stopped"
function Service.stop(svc)
    if svc._stopped then
        return nil, "stopped"
    end
    svc._stopped = true
    for _, sub in ipairs(svc._subs) do
        sub:unsubscribe()
    end
    svc._subs = {}
    return true
end


-- conn:add_service({ name =, version =, description =, metadata = { ... },
-- queue_group = "q" (false: none) }): the service, or nil, err
function _M.add_service(conn, cfg)
    if not conn._background then
        return nil, "services need a shared connection (nats.shared)"
    end
    if type(cfg) ~= "table" then
        error("bad argument #1 to 'add_service' (table expected, got "
              .. type(cfg) .. ")", 2)
    end
    local ok, err = check_name(cfg.name, "service")
    if ok then
        ok, err = check_version(cfg.version)
    end
    local queue = cfg.queue_group
    if queue == nil then
        queue = DEFAULT_QUEUE
    end
    if ok and queue ~= false then
        ok, err = check_subject(queue, "queue group")
    end
    if not ok then
        return nil, err
    end
    local id = token(ID_LEN)
    if not id then
        return nil, "no randomness for the service id"
    end
    local svc = setmetatable({
        _conn = conn, name = cfg.name, version = cfg.version, id = id,
        description = cfg.description or "",
        metadata = check_metadata(cfg.metadata, "add_service"),
        queue_group = queue, started = rfc3339(ngx.now() * 1e9),
        _endpoints = {}, _subs = {},
    }, service_mt)
    ok, err = discovery(svc)
    if not ok then
        svc:stop()
        return nil, err
    end
    return svc
end


_M.check_version = check_version
return _M
