# Self-test of the test runner set-up (t/lib/TestNats.pm + the compat
# Test::Nginx in t/compat).  Needs nginx + the lua module only, no NATS.
# Must pass, with the same test count, under the real Test::Nginx and
# under the compat runner:
#
#   prove -I t/compat t/000-runner.t                       # compat runner
#   PERL5LIB=/path/to/test-nginx/lib prove t/000-runner.t  # real one

use lib 't/lib';
use TestNats;

repeat_each(2);
no_shuffle();

$ENV{TEST_NGINX_RUNNER_EXTRA} = 'runner-extra-value';
$ENV{RUNNER_TEST_ENV}         = 'runner-env-value';

# Hand-counted (see the "# tests:" comment of every block); the helper
# exported by TestNats must agree.
my $per_repeat = 4 + 7 + 3 + 5 + 6 + 7 + 4 + 5 + 4 + 4 + 3 + 1 + 3 + 9 + 3
               + 3 + 2 + 2 + 3 + 2 + 6 + 3;
my $once = 2;
my $expected = repeat_each() * $per_repeat + $once;
my $counted  = plan_tests();
die "plan_tests() says $counted tests, the blocks say $expected\n"
    unless $counted == $expected;

plan tests => $expected;

run_tests();

__DATA__

=== TEST 1: content_by_lua_block echo
# tests: status + body + 2 no_error_log = 4
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("hello, ", ngx.var.arg_name)
        }
    }
--- request
GET /t?name=world
--- response_body
hello, world
--- error_code: 200
--- no_error_log
[error]
[warn]



=== TEST 2: POST body, more_headers, response_headers
# tests: status + 4 headers + body + no_error_log = 7
--- config
    location = /echo {
        content_by_lua_block {
            ngx.req.read_body()
            ngx.header["X-Method"] = ngx.req.get_method()
            ngx.header["X-Foo"] = ngx.var.http_x_foo
            ngx.say("len=", ngx.var.http_content_length,
                    " body=[", ngx.req.get_body_data(), "]")
        }
    }
--- request
POST /echo
hello world
--- more_headers
# a comment line: ignored
X-Foo: bar
--- response_headers
X-Method: POST
X-Foo: bar
Content-Type: text/plain
!X-Absent
--- response_body
len=11 body=[hello world]
--- no_error_log
[error]



=== TEST 3: error_code 404 from the default root location
# tests: status + body_like + error_log = 3
--- config
    location = /unused {
        return 204;
    }
--- request
GET /no-such-file.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory



=== TEST 4: chunked body, response_body_unlike, headers_like, raw headers
# tests: status + raw_headers_like + headers_like + body_unlike + no_error_log = 5
--- config
    location = /t {
        content_by_lua_block {
            ngx.header["X-Num"] = "12345"
            ngx.print("abc")
            ngx.flush(true)
            ngx.print("def")
        }
    }
--- request
GET /t
--- response_headers_like
X-Num: \d+
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n.*Transfer-Encoding: chunked
--- response_body_unlike: ^abc$
--- no_error_log
[error]



=== TEST 5: error_log / no_error_log with eval (qr// and arrays); default log level info
# tests: status + body + 3 error_log + 1 no_error_log = 6
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.ERR, "runner-test: error ", 42)
            ngx.log(ngx.WARN, "runner-test: warn ", "x")
            ngx.log(ngx.INFO, "runner-test: info")
            ngx.log(ngx.DEBUG, "runner-test: debug")
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log eval
[qr/\[error\] .*runner-test: error 42/, "runner-test: warn x",
 qr/\[info\] .*runner-test: info/]
--- no_error_log eval
qr/runner-test: debug/



=== TEST 6: --- log_level, plain multi-line error_log, no_error_log array
# tests: status + body + 2 error_log + 3 no_error_log = 7
--- log_level: debug
--- config
    location = /t {
        content_by_lua_block {
            ngx.log(ngx.DEBUG, "runner-test: debug ", 7)
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- error_log
runner-test: debug 7
[debug]
--- no_error_log eval
["[crit]", "[alert]", qr/runner-test: nothing/]



=== TEST 7: grep_error_log (regex) + grep_error_log_out
# tests: status + body + grep = 3, plus no_error_log = 4
--- config
    location = /t {
        content_by_lua_block {
            for i = 1, 3 do
                ngx.log(ngx.WARN, "grep-me: item ", i)
            end
            ngx.say("done")
        }
    }
--- request
GET /t
--- response_body
done
--- grep_error_log eval: qr/grep-me: item \d/
--- grep_error_log_out
grep-me: item 1
grep-me: item 2
grep-me: item 3
--- no_error_log
[error]



=== TEST 8: tcp_listen / tcp_reply / tcp_query / tcp_query_len / tcp_reply_delay
# tests: status + body + no_error_log + tcp_query + tcp_query_len = 5
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            local ok, err = sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1)
            if not ok then
                ngx.say("connect failed: ", err)
                return
            end
            assert(sock:send("ping\n"))
            local t0 = ngx.now()
            local line, err = sock:receive()
            ngx.update_time()
            ngx.say("received: ", line, " ", err)
            ngx.say("delayed: ", ngx.now() - t0 >= 0.09)
            local rest, err = sock:receive("*a")
            ngx.say("rest: [", rest, "] ", err)
            sock:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_query eval
"ping\n"
--- tcp_query_len: 5
--- tcp_reply eval
"pong\nbye"
--- tcp_reply_delay: 100ms
--- request
GET /t
--- response_body
received: pong nil
delayed: true
rest: [bye] nil
--- no_error_log
[error]



=== TEST 9: tcp_reply from a Perl sub, tcp_no_close
# tests: status + body + error_log + tcp_query = 4
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_2))
            assert(sock:send("hello"))
            local data, err = sock:receive(9)
            ngx.say("reply: ", data, " ", err)
            sock:settimeout(300)
            local more, err = sock:receive(1)
            ngx.say("second read: ", more, " ", err)
            sock:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_2
--- tcp_reply eval
sub { my $q = shift; return ["got ", uc $q] }
--- tcp_no_close
--- tcp_query: hello
--- request
GET /t
--- response_body
reply: got HELLO nil
second read: nil timeout
--- error_log
lua tcp socket read timed out



=== TEST 10: tcp_shutdown (write side): the client sees the close
# tests: status + body + no_error_log + tcp_query = 4
--- config
    location = /t {
        content_by_lua_block {
            local sock = ngx.socket.tcp()
            sock:settimeout(2000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(sock:send("hi"))
            local line, err = sock:receive()
            ngx.say("read: ", line, " ", err)
            sock:close()
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 1
--- tcp_query: hi
--- request
GET /t
--- response_body
read: nil closed
--- no_error_log
[error]



=== TEST 11: --- timeout (with unit) and --- wait
# tests: status + body + error_log = 3
--- config
    location = /t {
        content_by_lua_block {
            ngx.sleep(0.3)
            ngx.timer.at(0.2, function()
                ngx.log(ngx.WARN, "runner-test: timer fired")
            end)
            ngx.say("slept")
        }
    }
--- request
GET /t
--- timeout: 2s
--- wait: 0.5
--- response_body
slept
--- error_log
runner-test: timer fired



=== TEST 12: client timeout with --- abort and --- ignore_response
# tests: error_log = 1 (nginx sees the client go away before the 1s sleep ends)
--- config
    location = /t {
        lua_check_client_abort on;
        content_by_lua_block {
            ngx.on_abort(function()
                ngx.log(ngx.WARN, "runner-test: client went away")
                ngx.exit(499)
            end)
            ngx.sleep(1)
            ngx.say("too late")
        }
    }
--- request
GET /t
--- timeout: 200ms
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
runner-test: client went away



=== TEST 13: $TEST_NGINX_* and $ServerPort expansion, main_config, http_config
# tests: status + body + no_error_log = 3
--- main_config
env RUNNER_TEST_ENV;
--- http_config
    init_by_lua_block {
        runner_init_value = "from-init"
    }
--- config
    location = /t {
        set $port_from_conf $TEST_NGINX_SERVER_PORT;
        content_by_lua_block {
            ngx.say("port: ", ngx.var.port_from_conf)
            ngx.say("server_port: ", ngx.var.server_port)
            ngx.say("extra: $TEST_NGINX_RUNNER_EXTRA")
            ngx.say("env: ", os.getenv("RUNNER_TEST_ENV"))
            ngx.say("init: ", runner_init_value)
        }
    }
--- request
GET /t
--- response_body
port: $TEST_NGINX_SERVER_PORT
server_port: $ServerPort
extra: runner-extra-value
env: runner-env-value
init: from-init
--- no_error_log
[error]



=== TEST 14: request eval with several requests, eval'ed expected arrays
# tests: 3 x (status + body_like) + 3 x no_error_log = 9
--- config
    location = /t {
        content_by_lua_block {
            local args = ngx.req.get_uri_args()
            if args.code then
                return ngx.exit(tonumber(args.code))
            end
            ngx.print("n=", args.n, "\n")
        }
    }
--- request eval
["GET /t?n=1", "GET /t?n=2", "GET /t?code=403"]
--- error_code eval
[200, 200, 403]
--- response_body_like eval
["^n=1\n\$", "^n=2\n\$", "403 Forbidden"]
--- no_error_log
[error]



=== TEST 15: user_files, request eval string, response_body eval
# tests: status + header + body = 3
--- user_files
>>> hello.txt
hello from a user file
--- config
    location = /unused {
        return 204;
    }
--- request eval
"GET /hello.txt"
--- response_headers
Content-Length: 23
--- response_body eval
"hello from a user file\n"



=== TEST 16: TestNats adds lua_package_path (repo lua/ dir first)
# tests: status + body_like + no_error_log = 3
--- config
    location = /t {
        content_by_lua_block {
            ngx.say(package.path)
        }
    }
--- request
GET /t
--- response_body_like chomp
^/\S+/lua/\?\.lua;
--- no_error_log
[error]



=== TEST 17: TestNats keeps a block's own lua_package_path
# tests: status + body = 2
# (the suites' path after it: lua-resty-core must stay findable)
--- http_config
    lua_package_path "/nonexistent-runner-dir/?.lua;$TEST_NGINX_LUA_PACKAGE_PATH";
--- config
    location = /t {
        content_by_lua_block {
            ngx.say((package.path:match("^[^;]*;")))
        }
    }
--- request
GET /t
--- response_body
/nonexistent-runner-dir/?.lua;



=== TEST 18: a block without --- config reuses the running nginx
# tests: status + body = 2
# (under valgrind nginx is stopped after every block: nothing to reuse)
--- skip_eval: 2: $ENV{TEST_NGINX_USE_VALGRIND}
--- request
GET /t
--- response_body
/nonexistent-runner-dir/?.lua;



=== TEST 19: must_die
# tests: die as expected + 2 error_log = 3
--- config
    location = /t {
        no_such_directive_for_runner_test on;
    }
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown directive "no_such_directive_for_runner_test"



=== TEST 20: shutdown_error_log / no_shutdown_error_log (checked once, at stop)
# tests: status + body = 2 per repeat; + 2 once per block
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- shutdown_error_log eval
qr/\[notice\] .*signal 3 \(SIGQUIT\) received/
--- no_shutdown_error_log
[alert]



=== TEST 21: skipped block (would fail)
--- SKIP
--- config
    location = /t {
        return 500;
    }
--- request
GET /t
--- response_body
never



=== TEST 22: pipelined requests
# tests: 2 x (status + body) + 2 x no_error_log = 6
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("uri args: ", ngx.var.args)
        }
    }
--- pipelined_requests eval
["GET /t?a=1", "GET /t?b=2"]
--- response_body eval
["uri args: a=1\n", "uri args: b=2\n"]
--- no_error_log
[error]



=== TEST 23: plain-string grep_error_log, grep_error_log_out per repetition, LAST
# tests: status + body_like + grep = 3
--- http_config
    lua_shared_dict runner 1m;
--- config
    location = /t {
        content_by_lua_block {
            local n = ngx.shared.runner:incr("n", 1, 0)
            for i = 1, n do
                ngx.log(ngx.WARN, "runner-plain-grep")
            end
            ngx.say("n=", n)
        }
    }
--- request
GET /t
--- response_body_like: ^n=[12]$
--- grep_error_log: runner-plain-grep
--- grep_error_log_out eval
["runner-plain-grep\n", "runner-plain-grep\nrunner-plain-grep\n"]
--- LAST



=== TEST 24: after LAST: never run (would fail)
--- config
    location = /t {
        return 500;
    }
--- request
GET /t
--- response_body
never
