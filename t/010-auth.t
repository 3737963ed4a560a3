# vim:set ft= ts=4 sw=4 et:
# Authentication against nats-servers of the suite's own: user/password
# (also in the URL), token, nkey (signed nonce); failures are an error
# ("authorization violation"), never a hang; credentials are JSON-escaped.

use lib 't/lib';
use TestNats;
use NatsServer;
use NatsKeys;

my ($seed, $public) = NatsKeys::user_pair();
my ($other_seed) = NatsKeys::user_pair();

my $userpass = NatsServer->start(name => 'userpass', conf => <<'CONF');
listen: 127.0.0.1:$port
authorization {
    users: [
        { user: "alice", password: "s3cret" }
        { user: "bob", password: 'x","user":"alice' }
    ]
}
CONF

my $token = NatsServer->start(name => 'token', conf => <<'CONF');
listen: 127.0.0.1:$port
authorization { token: "t0ken-abc" }
CONF

my $nkey = NatsServer->start(name => 'nkey', conf => <<CONF);
listen: 127.0.0.1:\$port
authorization { users: [ { nkey: "$public" } ] }
CONF

my $perms = NatsServer->start(name => 'perms', conf => <<'CONF');
listen: 127.0.0.1:$port
authorization {
    users: [
        { user: "limited", password: "p",
          permissions: { publish: { deny: ["secret.>"] },
                         subscribe: { deny: ["secret.>"] } } }
    ]
}
CONF

my ($op_conf, $creds) = NatsKeys::operator_setup();
my $operator = NatsServer->start(name => 'operator',
                                 conf => "listen: 127.0.0.1:\$port\n$op_conf");
my $creds_file = $operator->dir . "/user.creds";
open my $cf, '>', $creds_file or die $!;
print $cf $creds;
close $cf;
(my $bad_creds = $creds) =~ s/(BEGIN USER NKEY SEED-+\n)\S+/$1 . (NatsKeys::user_pair())[0]/e;
open $cf, '>', "$creds_file.bad" or die $!;
print $cf $bad_creds;
close $cf;

$ENV{TEST_NGINX_OPERATOR_PORT} = $operator->port;
$ENV{TEST_NGINX_CREDS} = $creds_file;
$ENV{TEST_NGINX_PERMS_PORT} = $perms->port;
$ENV{TEST_NGINX_USERPASS_PORT} = $userpass->port;
$ENV{TEST_NGINX_TOKEN_PORT} = $token->port;
$ENV{TEST_NGINX_NKEY_PORT} = $nkey->port;
$ENV{TEST_NGINX_NKEY_SEED} = $seed;
$ENV{TEST_NGINX_OTHER_SEED} = $other_seed;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: user and password, in the options and in the URL; a wrong one fails fast
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local function try(...)
                local n = assert(nats:new())
                n:set_timeout(3000)
                ngx.update_time()
                local t0 = ngx.now()
                local ok, err = n:connect(...)
                ngx.update_time()
                local fast = ngx.now() - t0 < 1
                if ok then
                    ok = n:flush()
                    n:close()
                end
                return tostring(ok) .. " " .. tostring(err) .. " fast=" .. tostring(fast)
            end
            local port = $TEST_NGINX_USERPASS_PORT
            ngx.say("options: ", try("127.0.0.1", port, { user = "alice", pass = "s3cret" }))
            ngx.say("url: ", try({ servers = { "nats://alice:s3cret@127.0.0.1:" .. port } }))
            ngx.say("wrong: ", try("127.0.0.1", port, { user = "alice", pass = "nope" }))
            ngx.say("none: ", try("127.0.0.1", port))
        }
    }
--- request
GET /t
--- response_body
options: true nil fast=true
url: true nil fast=true
wrong: false authorization violation fast=true
none: false authorization violation fast=true
--- no_error_log
[error]



=== TEST 2: a password with quotes cannot inject fields into CONNECT
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local port = $TEST_NGINX_USERPASS_PORT
            -- bob's password is the JSON-injection attempt itself
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", port,
                                      { user = "bob", pass = 'x","user":"alice' })
            ngx.say("bob with his password: ", ok, " ", err)
            if ok then n:close() end
            -- as alice's password it must not log in as anybody
            n = assert(nats:new())
            ok, err = n:connect("127.0.0.1", port,
                                { user = "mallory", pass = 'x","user":"alice","pass":"s3cret' })
            ngx.say("injection attempt: ", ok, " ", err)
        }
    }
--- request
GET /t
--- response_body
bob with his password: true nil
injection attempt: false authorization violation
--- no_error_log
[error]



=== TEST 3: token
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local port = $TEST_NGINX_TOKEN_PORT
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", port, { token = "t0ken-abc" })
            ngx.say("right: ", ok, " ", err)
            if ok then ngx.say("flush: ", n:flush()) n:close() end
            n = assert(nats:new())
            ngx.say("wrong: ", n:connect("127.0.0.1", port, { token = "nope" }))
        }
    }
--- request
GET /t
--- response_body
right: true nil
flush: true
wrong: falseauthorization violation
--- no_error_log
[error]



=== TEST 4: nkey: the server's nonce signed with the seed (Ed25519 through nginx's libcrypto)
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local port = $TEST_NGINX_NKEY_PORT
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", port, { nkey = "$TEST_NGINX_NKEY_SEED" })
            ngx.say("right seed: ", ok, " ", err)
            if ok then
                local got
                assert(n:subscribe("nk.x", function(m) got = m.payload end))
                assert(n:publish("nk.x", "signed in"))
                assert(n:wait(1))
                ngx.say("works: ", got)
                n:close()
            end
            n = assert(nats:new())
            ngx.say("other seed: ", n:connect("127.0.0.1", port, { nkey = "$TEST_NGINX_OTHER_SEED" }))
            n = assert(nats:new())
            ngx.say("bad seed: ", n:connect("127.0.0.1", port, { nkey = "SUAXXXX" }))
        }
    }
--- request
GET /t
--- response_body
right seed: true nil
works: signed in
other seed: falseauthorization violation
bad seed: falseinvalid nkey seed
--- no_error_log
[error]



=== TEST 5: a permissions violation is reported to the caller and leaves the connection usable
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(2000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_PERMS_PORT, { user = "limited", pass = "p" }))
            ngx.say("publish: ", n:publish("secret.x", "no"))
            ngx.say("flush: ", n:flush())
            ngx.say("subscribe: ", n:subscribe("secret.>", function() end) ~= false)
            ngx.say("flush: ", n:flush())
            local got
            assert(n:subscribe("open.x", function(m) got = m.payload end))
            assert(n:publish("open.x", "fine"))
            ngx.say("still usable: ", n:wait(1), " ", got)
            n:close()
        }
    }
--- request
GET /t
--- response_body
publish: true
flush: falsePermissions Violation for Publish to "secret.x"
subscribe: true
flush: falsePermissions Violation for Subscription to "secret.>"
still usable: true fine
--- no_error_log
[error]



=== TEST 6: JWT/operator mode: a .creds file (user JWT + seed; as a path or as text); a seed that does not match the JWT fails
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local port = $TEST_NGINX_OPERATOR_PORT
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", port, { creds = "$TEST_NGINX_CREDS" })
            ngx.say("creds file: ", ok, " ", err)
            if ok then
                local got
                assert(n:subscribe("jwt.x", function(m) got = m.payload end))
                assert(n:publish("jwt.x", "as the JWT user"))
                assert(n:wait(1))
                ngx.say("works: ", got)
                n:close()
            end
            local f = assert(io.open("$TEST_NGINX_CREDS"))
            local text = f:read("*a")
            f:close()
            n = assert(nats:new())
            ngx.say("creds text: ", n:connect("127.0.0.1", port, { creds = text }))
            n:close()
            n = assert(nats:new())
            ngx.say("wrong seed: ", n:connect("127.0.0.1", port, { creds = "$TEST_NGINX_CREDS.bad" }))
            n = assert(nats:new())
            ngx.say("no creds: ", n:connect("127.0.0.1", port))
        }
    }
--- request
GET /t
--- response_body
creds file: true nil
works: as the JWT user
creds text: true
wrong seed: falseauthorization violation
no creds: falseauthorization violation
--- no_error_log
[error]
