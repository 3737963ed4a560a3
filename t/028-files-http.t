# vim:set ft= ts=4 sw=4 et:
# The file-server example (examples/lua/files.lua, as examples/nginx.conf
# uses it) on a JetStream object store, with a raw HTTP client: a PUT of a
# body larger than client_body_buffer_size streamed into the bucket, GET
# (Content-Length, ETag, Content-Type, the bytes), HEAD, If-None-Match ->
# 304, Range -> 206 (and 416), 404, 411, 413, DELETE, the list; a chunked
# PUT (read by nginx first), and its limits; conditional GETs and ranges
# (Last-Modified, If-Modified-Since, If-None-Match, If-Range).

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'files', conf => NatsServer::js_conf());
$ENV{TEST_NGINX_JS_PORT} = $js->port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

our $Path = "$RepoRoot/examples/lua/?.lua;$LuaPackagePath";

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<CONF);
    lua_package_path "$Path";
    init_by_lua_block {
        t028 = {}
        -- one request by hand (HTTP/1.0): status, headers (lower-case
        -- names), body
        function t028.http(method, path, headers, body)
            local status, h, rest = require("t_http").request(
                ngx.var.server_port, method, path, headers, body,
                { piece = 50000 })
            assert(status, h)
            return status, h, rest
        end
        -- the same, the body without its last newline
        function t028.text(...)
            local status, h, body = t028.http(...)
            return status, h, (body:gsub("\\n\$", ""))
        end
        function t028.bytes(n)
            local t = {}
            for i = 0, 255 do t[#t + 1] = string.char((i * 7) % 256) end
            return string.rep(table.concat(t), n)
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("demo", { port = \$TEST_NGINX_JS_PORT }))
    }
CONF
    my $config = $block->config // '';
    $block->set_value("config", <<'CONF' . $config);
    location ~ ^/files/(?<file_name>.*)$ {
        client_max_body_size 0;
        client_body_buffer_size 8k;
        content_by_lua_block {
            require("files").serve("demo", "t028", { max_size = 20000000 })
        }
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: PUT a body larger than client_body_buffer_size, GET, HEAD, If-None-Match, Range, list, DELETE, 404
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local st, h, body = t028.text("GET", "/files/")
            ngx.say("empty list: ", st, " ", body)
            local data = t028.bytes(1200)        -- 307200 bytes
            st, h, body = t028.http("PUT", "/files/docs%2Fa.bin",
                                          { ["Content-Type"] = "application/x-t028" }, data)
            local info = cjson.decode(body)
            ngx.say("PUT: ", st, " ", info.name, " ", info.size, " ", info.chunks)

            st, h, body = t028.http("GET", "/files/docs%2Fa.bin")
            ngx.say("GET: ", st, " ", h["content-length"], " ", h["content-type"], " ",
                    h["etag"] == '"' .. info.digest .. '"', " ", body == data)

            st, h, body = t028.http("HEAD", "/files/docs%2Fa.bin")
            ngx.say("HEAD: ", st, " ", h["content-length"], " [", body, "]")

            st, h, body = t028.http("GET", "/files/docs%2Fa.bin",
                                    { ["If-None-Match"] = h["etag"] })
            ngx.say("If-None-Match: ", st, " [", body, "]")

            st, h, body = t028.http("GET", "/files/docs%2Fa.bin",
                                    { Range = "bytes=131000-131099" })
            ngx.say("Range: ", st, " ", h["content-range"], " ", h["content-length"], " ",
                    body == data:sub(131001, 131100))
            st, h, body = t028.http("GET", "/files/docs%2Fa.bin", { Range = "bytes=-10" })
            ngx.say("suffix: ", st, " ", h["content-range"], " ", body == data:sub(-10))
            st, h, body = t028.http("GET", "/files/docs%2Fa.bin", { Range = "bytes=307200-" })
            ngx.say("past the end: ", st, " ", h["content-range"])

            st, h, body = t028.http("PUT", "/files/small.txt", nil, "hello")
            st, h, body = t028.http("GET", "/files/")
            local names = {}
            for _, i in ipairs(cjson.decode(body)) do names[#names + 1] = i.name end
            table.sort(names)
            ngx.say("list: ", st, " ", table.concat(names, " "))

            st = t028.http("DELETE", "/files/small.txt")
            ngx.say("DELETE: ", st)
            st, h, body = t028.text("GET", "/files/small.txt")
            ngx.say("GET deleted: ", st, " ", body)
            st = t028.http("DELETE", "/files/small.txt")
            ngx.say("DELETE again: ", st)
            st, h, body = t028.http("GET", "/files/nope")
            ngx.say("missing: ", st)
            st, h, body = t028.text("PUT", "/files/huge", { ["Content-Length"] = 20000001 })
            ngx.say("too large: ", st, " ", body)
            st, h, body = t028.http("PUT", "/files/empty", nil, "")
            st, h, body = t028.http("GET", "/files/empty")
            ngx.say("empty: ", st, " ", h["content-length"], " [", body, "]")
        }
    }
--- response_body
empty list: 200 []
PUT: 201 docs/a.bin 307200 3
GET: 200 307200 application/x-t028 true true
HEAD: 200 307200 []
If-None-Match: 304 []
Range: 206 bytes 131000-131099/307200 100 true
suffix: 206 bytes 307190-307199/307200 true
past the end: 416 bytes */307200
list: 200 docs/a.bin small.txt
DELETE: 204
GET deleted: 404 {"error":"object not found"}
DELETE again: 404
missing: 404
too large: 413 {"error":"larger than 20000000 bytes"}
empty: 200 0 []
--- no_error_log
[error]



=== TEST 2: memory: 16 concurrent downloads of a 16 MiB object grow the worker's peak RSS by less than 64 MiB; every byte arrives (the digest checked by the server)
--- config
    location = /t {
        content_by_lua_block {
            local mem = require "t_mem"
            local data = t028.bytes(65536)          -- 16 MiB
            local st = t028.http("PUT", "/files/big16", nil, data)
            ngx.say("PUT: ", st)
            data = nil
            mem.reset_peak()
            local rss0 = mem.kib("VmRSS")
            -- each client reads the body in pieces and keeps none
            local function download()
                local s = ngx.socket.tcp()
                s:settimeout(20000)
                assert(s:connect("127.0.0.1", ngx.var.server_port))
                assert(s:send("GET /files/big16 HTTP/1.0\r\nHost: x\r\n\r\n"))
                local status = assert(s:receive("*l")):match(" (%d+) ")
                repeat
                    local line = assert(s:receive("*l"))
                until line == ""
                local total = 0
                while true do
                    local piece, err, partial = s:receive(65536)
                    piece = piece or partial
                    if piece then
                        total = total + #piece
                    end
                    if err then break end
                end
                s:close()
                return status, total
            end
            local threads = {}
            for i = 1, 16 do threads[i] = ngx.thread.spawn(download) end
            local ok_all = true
            for i = 1, 16 do
                local ok, status, total = ngx.thread.wait(threads[i])
                if not ok or status ~= "200" or total ~= 16777216 then
                    ok_all = false
                    ngx.say("download ", i, ": ", tostring(status), " ", tostring(total))
                end
            end
            ngx.say("16 downloads complete: ", ok_all)
            local grown = mem.kib("VmHWM") - rss0
            ngx.log(ngx.NOTICE, "t028: peak RSS grew by ", grown, " KiB")
            ngx.say("peak RSS growth under 64 MiB: ", grown < 65536)
            t028.http("DELETE", "/files/big16")
        }
    }
--- response_body
PUT: 201
16 downloads complete: true
peak RSS growth under 64 MiB: true
--- no_error_log
[error]



=== TEST 3: a chunked PUT (no Content-Length, HTTP/1.1): read by nginx first (a temporary file past client_body_buffer_size, or memory), then stored; an empty one; over max_size: 413 from files.lua; over client_max_body_size: nginx's 413; neither a length nor chunked: 411
--- config
    location ~ ^/small/(?<file_name>.*)$ {
        client_max_body_size 0;
        content_by_lua_block {
            require("files").serve("demo", "t028", { max_size = 1000 })
        }
    }
    location ~ ^/limited/(?<file_name>.*)$ {
        client_max_body_size 1k;
        content_by_lua_block {
            require("files").serve("demo", "t028")
        }
    }
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local function put(path, body, piece)
                local st, h, b = require("t_http").request(
                    ngx.var.server_port, "PUT", path,
                    { ["Content-Type"] = "application/x-t028" }, body,
                    { chunked = true, piece = piece })
                assert(st, h)
                return st, (b:gsub("\n$", ""))
            end
            local data = t028.bytes(1200)        -- 307200 bytes
            local st, body = put("/files/chunked.bin", data, 10000)
            local info = cjson.decode(body)
            ngx.say("chunked PUT: ", st, " ", info.size, " ", info.chunks)
            local h
            st, h, body = t028.http("GET", "/files/chunked.bin")
            ngx.say("GET: ", st, " ", h["content-length"], " ",
                    h["content-type"], " ", body == data)
            st, body = put("/files/chunked.txt", "hello", 2)
            info = cjson.decode(body)
            st, h, body = t028.http("GET", "/files/chunked.txt")
            ngx.say("small: ", info.size, " ", st, " ", body)
            st, body = put("/files/chunked.empty", "")
            info = cjson.decode(body)
            ngx.say("empty: ", st, " ", info.size)
            st, body = put("/small/over", t028.bytes(8))   -- 2048 bytes
            ngx.say("over max_size: ", st, " ", body)
            st = put("/limited/over", t028.bytes(8), 100)
            ngx.say("over client_max_body_size: ", st)
            st, h, body = t028.text("GET", "/files/over")
            ngx.say("not stored: ", st, " ", body)
            st, h, body = t028.text("PUT", "/files/nolength")
            ngx.say("neither length nor chunked: ", st, " ", body)
            for _, name in ipairs({ "chunked.bin", "chunked.txt",
                                    "chunked.empty" }) do
                assert(t028.http("DELETE", "/files/" .. name) == 204)
            end
        }
    }
--- response_body
chunked PUT: 201 307200 3
GET: 200 307200 application/x-t028 true
small: 5 200 hello
empty: 201 0
over max_size: 413 {"error":"larger than 1000 bytes"}
over client_max_body_size: 413
not stored: 404 {"error":"object not found"}
neither length nor chunked: 411 {"error":"Content-Length required"}
--- error_log
client intended to send too large chunked body



=== TEST 4: conditional GETs and ranges as RFC 9110 has them: Last-Modified from the object's mtime, If-Modified-Since, If-None-Match with a list, a weak tag or *, If-Range (a match: the range; another tag: the whole object), a Range header that is not one range (several, b < a, another unit) ignored, bytes=-0 -> 416
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local data = t028.bytes(40)          -- 10240 bytes
            local st, h, body = t028.http("PUT", "/files/cond.bin", nil, data)
            local info = cjson.decode(body)
            local etag = '"' .. info.digest .. '"'
            local function get(headers)
                local s, hh, b = t028.http("GET", "/files/cond.bin", headers)
                return s, hh, b
            end
            st, h = get()
            local lm = h["last-modified"]
            local secs = ngx.parse_http_time(lm)
            local want = require("resty.nats.time").parse(info.mtime)
            ngx.say("Last-Modified: ", lm ~= nil,
                    " ", secs == math.floor(want / 1e9))
            st = get({ ["If-Modified-Since"] = lm })
            ngx.say("If-Modified-Since (same): ", st)
            st = get({ ["If-Modified-Since"] = ngx.http_time(secs - 60) })
            ngx.say("If-Modified-Since (a minute before): ", st)
            st = get({ ["If-None-Match"] = '"x", ' .. etag })
            ngx.say("If-None-Match list: ", st)
            st = get({ ["If-None-Match"] = "W/" .. etag })
            ngx.say("If-None-Match weak: ", st)
            st = get({ ["If-None-Match"] = "*" })
            ngx.say("If-None-Match *: ", st)
            st = get({ ["If-None-Match"] = '"x"', ["If-Modified-Since"] = lm })
            ngx.say("If-None-Match other, If-Modified-Since same: ", st)
            st, h, body = get({ Range = "bytes=10-19", ["If-Range"] = etag })
            ngx.say("If-Range match: ", st, " ", body == data:sub(11, 20))
            st, h, body = get({ Range = "bytes=10-19", ["If-Range"] = '"x"' })
            ngx.say("If-Range other: ", st, " ", #body)
            for _, r in ipairs({ "bytes=0-1,5-6", "bytes=9-2", "items=0-1" }) do
                st, h, body = get({ Range = r })
                ngx.say(r, ": ", st, " ", #body)
            end
            st, h = get({ Range = "bytes=-0" })
            ngx.say("bytes=-0: ", st, " ", h["content-range"])
            assert(t028.http("DELETE", "/files/cond.bin") == 204)
        }
    }
--- response_body
Last-Modified: true true
If-Modified-Since (same): 304
If-Modified-Since (a minute before): 200
If-None-Match list: 304
If-None-Match weak: 304
If-None-Match *: 304
If-None-Match other, If-Modified-Since same: 200
If-Range match: 206 true
If-Range other: 200 10240
bytes=0-1,5-6: 200 10240
bytes=9-2: 200 10240
items=0-1: 200 10240
bytes=-0: 416 bytes */10240
--- no_error_log
[error]
