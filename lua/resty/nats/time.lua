-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.time: times as NATS writes them in JSON (RFC 3339, UTC, to
-- the nanosecond: "2026-12-07T06:10:12.599083692Z"), to and from ns since
-- the epoch (object store metas, stream messages, service stats).

local os_date = os.date
local str_format, str_match, str_sub = string.format, string.match,
                                       string.sub
local math_floor, math_max = math.floor, math.max
local tonumber = tonumber


local _M = {}


-- RFC 3339 (UTC, ns) of a time in ns since the epoch
local function rfc3339(ns)
    local s = math_floor(ns / 1e9)
    local frac = math_max(0, math_floor(ns - s * 1e9))
    return os_date("!%Y-%m-%dT%H:%M:%S", s) .. str_format(".%09dZ", frac)
end
_M.rfc3339 = rfc3339


-- RFC 3339 of now (nginx's clock, updated)
function _M.now_rfc3339()
    ngx.update_time()
    return rfc3339(ngx.now() * 1e9)
end


-- an RFC 3339 time in UTC ("Z") as ns since the epoch, or nil
function _M.parse(t)
    local y, mo, d, h, mi, sec, frac = str_match(t or "",
        "^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$")
    if not y then
        return nil
    end
    y, mo = tonumber(y), tonumber(mo)
    -- days from the civil date (proleptic Gregorian)
    if mo <= 2 then
        y = y - 1
    end
    local era = math_floor(y / 400)
    local yoe = y - era * 400
    local doy = math_floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5)
                + tonumber(d) - 1
    local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    local ns = tonumber(str_sub(frac .. "000000000", 1, 9))
    return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60e9
           + tonumber(sec) * 1e9 + ns
end


return _M
