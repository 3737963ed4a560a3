-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.subs: the subscriptions of one connection (sids from the
-- core's subscription table, SUB and UNSUB frames) and its request inbox,
-- one wildcard subscription "_INBOX.<22 random characters>.*" that
-- replies are routed through by token.

local ffi = require "ffi"
local core = require "resty.nats.core"
local wire = require "resty.nats.wire"

local C = core.C
local OK = core.OK
local reset_errlen = wire.reset_errlen
local last_error = wire.last_error
local frame_call = wire.frame_call
local token = wire.token

local ffi_new = ffi.new
local tostring = tostring
local tonumber = tonumber


local _M = {
    INBOX_TOKEN_LEN = 22,
    REPLY_TOKEN_LEN = 12,               -- [A-Za-z0-9]: 71 bits
}

local INBOX_TOKEN_LEN = _M.INBOX_TOKEN_LEN


-- registers a subscription; returns nsid, frames (SUB, and UNSUB max)
local function add_sub(self, subject, callback, queue, max)
    local qlen = queue and #queue or 0
    local sidbuf = ffi_new("uint64_t[1]")
    reset_errlen(self)
    local rc = C.resty_nats_subs_add(self._subtab, subject, #subject, queue,
                                     qlen, sidbuf, self._errbuf,
                                     self._errlen)
    if rc ~= OK then
        return nil, last_error(self)
    end

    local sid = sidbuf[0]
    local line, err = frame_call(self, C.resty_nats_frame_sub, subject,
                                 #subject, queue, qlen, sid, self._errbuf,
                                 self._errlen)
    if not line then
        C.resty_nats_subs_remove(self._subtab, sid)
        return nil, err
    end

    local nsid = tonumber(sid)
    local frames = { line }
    if max and max > 0 then
        C.resty_nats_subs_set_max(self._subtab, sid, max)
        local uline
        uline, err = frame_call(self, C.resty_nats_frame_unsub, sid, max,
                                self._errbuf, self._errlen)
        if not uline then
            C.resty_nats_subs_remove(self._subtab, sid)
            return nil, err
        end
        frames[2] = uline
    end

    self._subs[nsid] = { callback = callback, sid = tostring(nsid),
                         subject = subject, queue = queue }
    self._nsubs = self._nsubs + 1
    return nsid, frames
end
_M.add = add_sub


local function drop_sub(self, nsid)
    if self._subs[nsid] then
        self._subs[nsid] = nil
        self._nsubs = self._nsubs - 1
    end
    C.resty_nats_subs_remove(self._subtab, nsid)
end
_M.drop = drop_sub


local function inbox_frames(self)
    if self._inbox_sid then
        return nil
    end

    local t = token(INBOX_TOKEN_LEN)
    if not t then
        return nil, "no randomness for the inbox"
    end
    local prefix = "_INBOX." .. t .. "."

    local nsid, frames = add_sub(self, prefix .. "*", false)
    if not nsid then
        return nil, frames
    end
    self._inbox_sid = nsid
    self._inbox_prefix = prefix
    return frames
end
_M.inbox_frames = inbox_frames


return _M
