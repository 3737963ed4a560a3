# vim:set ft= ts=4 sw=4 et:
# TLS: a CA, server and client certificates made with openssl at test
# time (no key material in the repository); nats-servers that require TLS,
# one of them also a client certificate. Verification is on by default:
# the CA comes from lua_ssl_trusted_certificate.

use lib 't/lib';
use TestNats;
use NatsServer;

my $dir = NatsServer::new_dir();
sub run_openssl { system('openssl', @_) == 0 or die "openssl @_ failed\n" }
sub quiet { open my $o, '>&', \*STDERR; open STDERR, '>', '/dev/null';
            my @r = eval { $_[0]->() }; open STDERR, '>&', $o; die $@ if $@; @r }

quiet(sub {
    for my $who (qw(ca server client other)) {
        run_openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout',
                    '-out', "$dir/$who.key");
    }
    run_openssl('req', '-x509', '-new', '-key', "$dir/ca.key", '-days', '2',
                '-subj', '/CN=resty-nats test CA', '-out', "$dir/ca.pem");
    run_openssl('req', '-x509', '-new', '-key', "$dir/other.key", '-days', '2',
                '-subj', '/CN=untrusted CA', '-out', "$dir/other.pem");
    open my $ext, '>', "$dir/server.ext" or die;
    print $ext "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    close $ext;
    for my $who (qw(server client)) {
        run_openssl('req', '-new', '-key', "$dir/$who.key", '-subj',
                    "/CN=$who", '-out', "$dir/$who.csr");
        run_openssl('x509', '-req', '-in', "$dir/$who.csr", '-CA',
                    "$dir/ca.pem", '-CAkey', "$dir/ca.key", '-CAcreateserial',
                    '-days', '2', '-out', "$dir/$who.pem",
                    ($who eq 'server' ? ('-extfile', "$dir/server.ext") : ()));
    }
});

my $tls = NatsServer->start(name => 'tls', conf => <<CONF);
listen: 127.0.0.1:\$port
tls {
    cert_file: "$dir/server.pem"
    key_file: "$dir/server.key"
}
CONF

my $mtls = NatsServer->start(name => 'mtls', conf => <<CONF);
listen: 127.0.0.1:\$port
tls {
    cert_file: "$dir/server.pem"
    key_file: "$dir/server.key"
    ca_file: "$dir/ca.pem"
    verify: true
}
CONF

$ENV{TEST_NGINX_TLS_PORT} = $tls->port;
$ENV{TEST_NGINX_MTLS_PORT} = $mtls->port;
$ENV{TEST_NGINX_CERTS} = $dir;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: a server that requires TLS: the upgrade happens after INFO, the certificate is verified, traffic flows
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.pem;
    lua_ssl_verify_depth 3;
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3000)
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_TLS_PORT,
                                      { tls = { server_name = "localhost" } })
            ngx.say("connect: ", ok, " ", err)
            local got
            assert(n:subscribe("tls.x", function(m) got = m.payload end))
            assert(n:publish("tls.x", "over tls"))
            assert(n:wait(1))
            ngx.say("got: ", got)
            n:close()
            -- a tls:// URL, and the server's own requirement without opts.tls
            n = assert(nats:new())
            ngx.say("url: ", n:connect({ servers = { "tls://127.0.0.1:$TEST_NGINX_TLS_PORT" } }))
            n:close()
            n = assert(nats:new())
            ngx.say("required by INFO: ", n:connect("127.0.0.1", $TEST_NGINX_TLS_PORT))
            n:close()
        }
    }
--- request
GET /t
--- response_body
connect: true nil
got: over tls
url: true
required by INFO: true
--- no_error_log
[error]



=== TEST 2: a certificate from an unknown CA fails verification with an error; verify = false lets it through
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERTS/other.pem;
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_TLS_PORT)
            ngx.say("verified: ", ok, " ", err and (err:match("^tls handshake failed") or err))
            n = assert(nats:new())
            ok, err = n:connect("127.0.0.1", $TEST_NGINX_TLS_PORT, { tls = { verify = false } })
            ngx.say("unverified: ", ok, " ", err)
            n:close()
        }
    }
--- request
GET /t
--- response_body
verified: false tls handshake failed
unverified: true nil
--- error_log
certificate verify error



=== TEST 3: a name that does not match the certificate fails
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.pem;
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_TLS_PORT,
                                      { tls = { server_name = "wrong.example" } })
            ngx.say("wrong name: ", ok, " ", err and (err:match("^tls handshake failed") or err))
        }
    }
--- request
GET /t
--- response_body
wrong name: false tls handshake failed
--- error_log eval
qr/nats: tls handshake failed|does not match|host ?name mismatch/



=== TEST 4: a server that requires a client certificate: with one (files or PEM text) it works, without it fails
--- http_config
    lua_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.pem;
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local dir = "$TEST_NGINX_CERTS"
            local n = assert(nats:new())
            n:set_timeout(3000)
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_MTLS_PORT, { tls = {
                cert = dir .. "/client.pem", key = dir .. "/client.key" } })
            ngx.say("with files: ", ok, " ", err)
            if ok then ngx.say("flush: ", n:flush()) n:close() end

            local f = io.open(dir .. "/client.pem") local cert = f:read("*a") f:close()
            f = io.open(dir .. "/client.key") local key = f:read("*a") f:close()
            n = assert(nats:new())
            ngx.say("with PEM text: ", n:connect("127.0.0.1", $TEST_NGINX_MTLS_PORT,
                                                  { tls = { cert = cert, key = key } }))
            n:close()

            n = assert(nats:new())
            n:set_timeout(3000)
            ok, err = n:connect("127.0.0.1", $TEST_NGINX_MTLS_PORT)
            ngx.say("without: ", ok, " ", err ~= nil)
        }
    }
--- request
GET /t
--- response_body
with files: true nil
flush: true
with PEM text: true
without: false true
--- no_error_log
[alert]
