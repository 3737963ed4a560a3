-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_mem: the worker's memory, from /proc/self/status. t_mem.reset_peak()
-- starts the peak (VmHWM) over at the current RSS (clear_refs "5"; false
-- where the kernel or the user does not allow it); t_mem.kib(field) reads
-- "VmHWM" or "VmRSS" in KiB.

local _M = {}


function _M.kib(field)
    for line in io.lines("/proc/self/status") do
        local v = line:match("^" .. field .. ":%s+(%d+)")
        if v then
            return tonumber(v)
        end
    end
end


function _M.reset_peak()
    collectgarbage()
    collectgarbage()
    local f = io.open("/proc/self/clear_refs", "w")
    if not f then
        return false
    end
    local ok = f:write("5")
    f:close()
    return ok and true or false
end


return _M
