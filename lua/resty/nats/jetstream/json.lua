-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.json: JSON of the JetStream API (and of the
-- buckets built on it), through a private lua-cjson instance whose
-- settings are ours alone (an empty table is an object, {}: lua-cjson's
-- default), with integers too large for lua-cjson's number format kept
-- exact.

local cjson = require "cjson.safe"

local type = type
local pairs, next = pairs, next
local setmetatable, getmetatable = setmetatable, getmetatable
local str_format, str_gsub = string.format, string.gsub
local math_floor = math.floor


local _M = {}

local json = cjson.new()

-- lua-cjson writes numbers with at most 14 significant digits: an integer
-- such as a duration in ns (a year is 3.15e16) would become 3.1536e+16,
-- which the server's decoder refuses. Large integers are written as a
-- marked string and the marks removed after encoding.
local BIG = 1e14
local MARK = "\1int:"

-- a table with this metatable is a JSON array, [] when empty (Debian's
-- lua-cjson 2.1.0 has no array_mt of its own: an empty table is {})
local array_mt = {}
_M.array_mt = array_mt
local EMPTY_ARRAY = "\1[]"

local function mark_ints(v)
    local t = type(v)
    if t == "number" then
        if (v >= BIG or v <= -BIG) and v == math_floor(v) and v < 2^63 then
            return MARK .. str_format("%.0f", v)
        end
        return v
    end
    if t ~= "table" then
        return v
    end
    if getmetatable(v) == array_mt and next(v) == nil then
        return EMPTY_ARRAY
    end
    local copy = {}
    for k, x in pairs(v) do
        copy[k] = mark_ints(x)
    end
    return setmetatable(copy, getmetatable(v))
end


-- the JSON text of v, or nil, err
function _M.encode(v)
    local text, err = json.encode(mark_ints(v))
    if not text then
        return nil, err
    end
    text = str_gsub(text, '"\\u0001int:(%-?%d+)"', "%1")
    return (str_gsub(text, '"\\u0001%[%]"', "[]"))
end


-- the value of a JSON text, or nil, err
_M.decode = json.decode


return _M
