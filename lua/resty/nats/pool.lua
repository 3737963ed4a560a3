-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.pool: per-request connections in the cosocket pool, and
-- what follows each of them there: its protocol state (parser,
-- subscription table with its request inbox, the server's INFO).

local ffi = require "ffi"

local ffi_new = ffi.new
local ffi_gc = ffi.gc
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tab_concat = table.concat


local _M = {}


-- Pool slots, per worker and per pool name. A pooled connection keeps its
-- request inbox subscription, so that the next checkout's request is one
-- PUB (no SUB, no UNSUB, no change to the server's subscription index).
-- What the next user needs to know of it (inbox, sids used, server info)
-- must then follow the connection into the pool; a cosocket carries
-- nothing of ours, so every connection is pooled under a pool name of its
-- own, "<name>#<k>", holding one connection at most, and slot k remembers
-- its state. A checkout takes a free slot (the most recently released
-- first) and, through the cosocket pool of that name, the connection
-- pooled there if it still lives; a fresh connection in the slot starts a
-- fresh state. Slots are returned at set_keepalive and close, and by a
-- finalizer if an object is dropped without either.
local slots_by_pool = {}
local slot_regs = {}    -- the same, by number (for the finalizers)


-- gives the pool slot back (see slots_by_pool)
local function slot_release(self)
    local reg = self._slot_reg
    if reg then
        self._slot_reg = nil
        local nfree = reg.nfree + 1
        reg.free[nfree] = self._slot
        reg.nfree = nfree
        self._slot_guard = ffi_gc(self._slot_guard, nil)
    end
end
_M.release = slot_release


local function slot_guard_gc(guard)
    local reg = slot_regs[guard[0]]
    local n = reg.nfree + 1
    reg.free[n] = guard[1]
    reg.nfree = n
end


local function slot_take(self, base)
    local reg = slots_by_pool[base]
    if not reg then
        local id = #slot_regs + 1
        reg = { free = {}, nfree = 0, n = 0, state = {}, id = id,
                names = {} }
        slots_by_pool[base] = reg
        slot_regs[id] = reg
    end
    local k
    local nfree = reg.nfree
    if nfree > 0 then
        k = reg.free[nfree]
        reg.free[nfree] = nil
        reg.nfree = nfree - 1
    else
        k = reg.n + 1
        reg.n = k
    end
    self._slot_reg = reg
    self._slot = k
    -- dropped without set_keepalive or close: the slot comes back anyway
    local guard = ffi_new("int32_t[2]")
    guard[0] = reg.id
    guard[1] = k
    self._slot_guard = ffi_gc(guard, slot_guard_gc)
    local name = reg.names[k]
    if not name then
        name = base .. "#" .. k
        reg.names[k] = name
    end
    return name, reg, k
end
_M.take = slot_take


local function pool_name(srv, opts)
    if opts and opts.pool then
        return opts.pool
    end
    if not opts and not srv.user then
        return srv.key
    end

    local parts = { srv.key }
    if opts then
        -- a different identity or TLS setting needs a different pool
        parts[#parts + 1] = tostring(opts.user or srv.user or "")
        parts[#parts + 1] = tostring(opts.token or "")
        parts[#parts + 1] = opts.nkey
                            and ("nkey:" .. ngx.crc32_long(opts.nkey)) or ""
        parts[#parts + 1] = tostring(opts.creds and "creds" or "")
        parts[#parts + 1] = opts.tls and "tls" or ""
        parts[#parts + 1] = tostring(opts.name or "")
    elseif srv.user then
        parts[#parts + 1] = srv.user
    end
    return tab_concat(parts, ":")
end
_M.name = pool_name


-- the fields of a connection's protocol state that follow it into the pool
-- (its parser is empty then, its request inbox the only subscription)
local KEPT = {
    "_parser", "_subtab", "_subs", "_nsubs", "_inbox_sid", "_inbox_prefix",
    "_inbox_plen", "_info", "_max_payload", "_tls",
}


-- a connection taken from the pool: the protocol state its slot kept;
-- true, or nil, err (the state is gone: the connection is unusable)
function _M.restore(self, reg, slot)
    local st = reg.state[slot]
    reg.state[slot] = nil
    if not st then
        return nil, "pooled connection without server info"
    end
    for _, k in ipairs(KEPT) do
        self[k] = st[k]
    end
    -- the subscriptions (the inbox) are of this object now
    for _, sub in pairs(self._subs) do
        sub._conn = self
    end
    return true
end


-- a connection that goes into the pool: its protocol state into its slot,
-- for the next checkout
function _M.save(self)
    local st = {}
    for _, k in ipairs(KEPT) do
        st[k] = self[k]
    end
    self._slot_reg.state[self._slot] = st
end


-- a fresh connection in the slot: what the slot kept is of a connection
-- that is gone
function _M.forget(reg, slot)
    reg.state[slot] = nil
end


return _M
