-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_jit.nyi_aborts(fn): runs fn with jit.v on (resty.nats loaded
-- before), and returns what LuaJIT
-- could not compile (NYI) in the files of resty.nats and its modules, and
-- how many traces it recorded there (t/014-jit.t); t_jit.say(aborts)
-- prints them.

local _M = {}


-- jit.v names files without their directory: a line is about resty.nats
-- when it names a file of one of its modules (those loaded by now)
local function our_files()
    local files = {}
    for name in pairs(package.loaded) do
        if name == "resty.nats" or name:find("^resty%.nats%.") then
            files[name:match("([%w_]+)$") .. ".lua"] = true
        end
    end
    return files
end


local function ours(files, line)
    for f in line:gmatch("([%w_]+%.lua):%d") do
        if files[f] then
            return true
        end
    end
    return false
end


-- the lines "[TRACE --- ... NYI ...]" (an abort on something not
-- implemented) about resty.nats, in the order jit.v wrote them, and the
-- number of traces recorded there ("[TRACE   n ...]"). Other aborts
-- ("leaving loop in root trace") are transient recorder choices, retried
-- by LuaJIT: not returned.
function _M.nyi_aborts(fn)
    -- the module and what it loads at once are loaded before jit.v is
    -- on: loading runs each chunk once (FNEW is NYI there, and a trace
    -- that starts in resty.core's require hook may record into one), it
    -- is not a path these tests measure
    require "resty.nats"
    local v = require "jit.v"
    local log = os.tmpname()
    v.on(log)
    -- jit.v off and its file gone even when fn fails
    local ok, err = pcall(fn)
    v.off()
    local f = assert(io.open(log))
    local text = f:read("*a")
    f:close()
    os.remove(log)
    if not ok then
        error(err, 0)
    end
    local files = our_files()
    local aborts, traces = {}, 0
    for line in text:gmatch("[^\n]+") do
        if ours(files, line) then
            if line:match("^%[TRACE %-%-%-")
               and line:find("NYI", 1, true) then
                aborts[#aborts + 1] = line
            elseif line:match("^%[TRACE +%d") then
                traces = traces + 1
            end
        end
    end
    return aborts, traces
end


-- the count the test checks, then the aborts themselves: what to look at
-- when it is not 0
function _M.say(aborts)
    ngx.say("NYI aborts in resty.nats: ", #aborts)
    for _, a in ipairs(aborts) do
        ngx.say(a)
    end
end


return _M
