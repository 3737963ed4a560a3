-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.sha256: SHA-256 of a stream of pieces, through
-- libcrypto's EVP interface (the OpenSSL nginx links; ffi.C finds it in
-- the nginx process), as the object store's digests need it: one context
-- a put or a read, fed piece by piece, never the whole object.

local ffi = require "ffi"
local C = ffi.C
local ffi_new, ffi_gc, ffi_string = ffi.new, ffi.gc, ffi.string

-- void * for OpenSSL's types: another library's cdef of them stays valid
ffi.cdef[[
void *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(void *ctx);
const void *EVP_sha256(void);
int EVP_DigestInit_ex(void *ctx, const void *type, void *impl);
int EVP_DigestUpdate(void *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(void *ctx, unsigned char *md, unsigned int *s);
]]

local type, setmetatable = type, setmetatable


local _M = {}

local Hash = {}
local hash_mt = { __index = Hash }

local DIGEST_LEN = 32
local out = ffi_new("unsigned char[?]", DIGEST_LEN)


-- a new hash, or nil, err
function _M.new()
    local ctx = C.EVP_MD_CTX_new()
    if ctx == nil then
        return nil, "sha256: out of memory"
    end
    ctx = ffi_gc(ctx, C.EVP_MD_CTX_free)
    if C.EVP_DigestInit_ex(ctx, C.EVP_sha256(), nil) ~= 1 then
        return nil, "sha256: init failed"
    end
    return setmetatable({ _ctx = ctx }, hash_mt)
end


-- adds data (a string, or a pointer and its length); true or nil, err
function Hash.update(h, data, len)
    if type(data) == "string" then
        len = #data
    end
    if len == 0 then
        return true
    end
    if C.EVP_DigestUpdate(h._ctx, data, len) ~= 1 then
        return nil, "sha256: update failed"
    end
    return true
end


-- the 32 bytes of the digest (the hash is spent), or nil, err
function Hash.final(h)
    if C.EVP_DigestFinal_ex(h._ctx, out, nil) ~= 1 then
        return nil, "sha256: final failed"
    end
    local ctx = h._ctx
    h._ctx = nil
    C.EVP_MD_CTX_free(ffi_gc(ctx, nil))
    return ffi_string(out, DIGEST_LEN)
end


return _M
