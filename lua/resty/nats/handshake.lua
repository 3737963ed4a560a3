-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.handshake: from TCP connected to NATS connected: the
-- server's INFO, the TLS upgrade, CONNECT with the credentials (user and
-- password, token, nkey, creds: resty.nats.nkeys signs the nonce) and the
-- PING/PONG that confirms it, all within the read timeout as a whole.

local ffi = require "ffi"
local core = require "resty.nats.core"
local settings = require "resty.nats.settings"
local events = require "resty.nats.events"
local frame = require "resty.nats.frame"

local C = core.C
local EV_PING = core.EV_PING
local EV_PONG = core.EV_PONG
local EV_INFO = core.EV_INFO
local EV_ERR = core.EV_ERR
local EV_OK = core.EV_OK
local PING = frame.PING
local PONG = frame.PONG
local next_event = events.next_event
local apply_info = events.apply_info
local frame_call = frame.call
local read_timeout = settings.read_timeout
local now_ms = settings.now_ms

local ffi_new = ffi.new
local ffi_string = ffi.string
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local type = type
local tostring = tostring
local pcall = pcall
local require = require
local str_lower = string.lower
local io_open = io.open


local _M = {}


local function read_file(path)
    local f, err = io_open(path, "rb")
    if not f then
        return nil, err
    end
    local data = f:read("*a")
    f:close()
    return data
end


-- the TLS upgrade, right after INFO
local function tls_handshake(self, srv, tls)
    local sock = self._sock
    tls = type(tls) == "table" and tls or {}

    if tls.cert or tls.key then
        if not sock.setclientcert then
            return nil, "client certificates need lua-nginx-module "
                        .. "0.10.22 or later"
        end
        local ok, ssl = pcall(require, "ngx.ssl")
        if not ok then
            return nil, "client certificates need lua-resty-core (ngx.ssl)"
        end
        local cert_pem, key_pem = tls.cert, tls.key
        if tls.cert and not tls.cert:find("-----BEGIN", 1, true) then
            local err
            cert_pem, err = read_file(tls.cert)
            if not cert_pem then
                return nil, "cannot read the client certificate: " .. err
            end
        end
        if tls.key and not tls.key:find("-----BEGIN", 1, true) then
            local err
            key_pem, err = read_file(tls.key)
            if not key_pem then
                return nil, "cannot read the client key: " .. err
            end
        end
        local cert, err = ssl.parse_pem_cert(cert_pem or "")
        if not cert then
            return nil, "bad client certificate: " .. tostring(err)
        end
        local key
        key, err = ssl.parse_pem_priv_key(key_pem or "")
        if not key then
            return nil, "bad client key: " .. tostring(err)
        end
        local ok2
        ok2, err = sock:setclientcert(cert, key)
        if not ok2 then
            return nil, err
        end
    end

    local server_name = tls.server_name
    if server_name == nil and not srv.host:match("^[%d.]+$")
       and not srv.host:find(":", 1, true)
    then
        server_name = srv.host
    end

    local verify = tls.verify ~= false
    -- lua-resty-core 0.1.25 (Debian 12) raises an assertion instead of
    -- returning the error when verification fails after a handshake that
    -- completed at once (a host name mismatch): that is a failure too
    local ok, session, err = pcall(sock.sslhandshake, sock, nil, server_name,
                                   verify)
    if not ok then
        ngx_log(ngx_ERR, self._log_prefix, "tls handshake failed: ", session)
        return nil, "tls handshake failed: certificate verification failed"
    end
    if not session then
        return nil, "tls handshake failed: " .. tostring(err)
    end
    self._tls = true
    return true
end


local function set_str(o, anchors, field, value)
    if value ~= nil then
        value = tostring(value)
        anchors[#anchors + 1] = value
        o[field].data = value
        o[field].len = #value
    end
end


local function handshake(self, srv, opts)
    -- the read timeout bounds the whole exchange, not each read: a server
    -- dribbling its INFO a byte at a time cannot hold connect() longer
    local deadline = now_ms() + read_timeout(self)
    local ev, err = next_event(self, deadline)
    if not ev then
        return nil, err
    end

    while ev.type == EV_PING do
        local _, serr = self._sock:send(PONG)
        if serr then
            return nil, serr
        end
        ev, err = next_event(self, deadline)
        if not ev then
            return nil, err
        end
    end

    if ev.type ~= EV_INFO then
        return nil, "protocol error: expected INFO from the server"
    end

    local si
    si, err = apply_info(self, ev)
    if not si then
        return nil, err
    end

    local want_tls = srv.tls or (opts and opts.tls)
    if si.tls_required or want_tls then
        if not si.tls_required and not si.tls_available and want_tls then
            return nil, "the server does not support TLS"
        end
        local ok
        ok, err = tls_handshake(self, srv, opts and opts.tls)
        if not ok then
            return nil, err
        end
    end

    local o = ffi_new("resty_nats_connect_opts_t")
    local anchors = {}
    o.verbose = opts and opts.verbose and 1 or 0
    o.pedantic = opts and opts.pedantic and 1 or 0
    o.tls_required = self._tls and 1 or 0
    o.echo = -1
    o.protocol = 1
    o.headers = si.headers and 1 or 0
    o.no_responders = si.headers and 1 or 0
    set_str(o, anchors, "lang", "lua")
    set_str(o, anchors, "version", core.VERSION)

    if opts then
        set_str(o, anchors, "name", opts.name)
        if opts.echo ~= nil and si.proto >= 1 then
            o.echo = opts.echo and 1 or 0
        end
    end

    local user = srv.user or (opts and opts.user)
    local pass = srv.pass or (opts and opts.pass)
    if user and (srv.user or not (opts and opts.token)) then
        set_str(o, anchors, "user", user)
        set_str(o, anchors, "pass", pass)
    end
    if opts and opts.token then
        set_str(o, anchors, "auth_token", opts.token)
    end

    local seed
    if opts and opts.creds then
        local nkeys = require "resty.nats.nkeys"
        local text = opts.creds
        if not text:find("-----BEGIN", 1, true) then
            text, err = read_file(text)
            if not text then
                return nil, "cannot read the creds file: " .. err
            end
        end
        local jwt
        jwt, seed, err = nkeys.parse_creds(text)
        if not jwt then
            return nil, err
        end
        set_str(o, anchors, "jwt", jwt)

    elseif opts and opts.nkey then
        local nkeys = require "resty.nats.nkeys"
        seed = opts.nkey
        local pub
        pub, err = nkeys.public_key(seed)
        if not pub then
            return nil, err
        end
        set_str(o, anchors, "nkey", pub)
    end

    if seed then
        if si.nonce == "" then
            return nil, "the server sent no nonce to sign"
        end
        local nkeys = require "resty.nats.nkeys"
        local sig
        sig, err = nkeys.sign(seed, si.nonce)
        if not sig then
            return nil, err
        end
        set_str(o, anchors, "sig", sig)
    end

    local line
    line, err = frame_call(C.resty_nats_frame_connect, o, core.errbuf,
                           core.errlen)
    if not line then
        return nil, err
    end

    local _
    _, err = self._sock:send({ line, PING })
    if err then
        return nil, err
    end

    while true do
        ev, err = next_event(self, deadline)
        if not ev then
            return nil, err
        end

        local t = ev.type
        if t == EV_PONG then
            return true

        elseif t == EV_PING then
            _, err = self._sock:send(PONG)
            if err then
                return nil, err
            end

        elseif t == EV_ERR then
            local text = ffi_string(ev.payload.data, ev.payload.len)
            if str_lower(text) == "authorization violation" then
                return nil, "authorization violation"
            end
            return nil, text

        elseif t == EV_INFO then
            local ok
            ok, err = apply_info(self, ev)
            if not ok then
                return nil, err
            end

        elseif t ~= EV_OK then
            return nil, "protocol error: unexpected message during handshake"
        end
    end
end
_M.handshake = handshake


return _M
