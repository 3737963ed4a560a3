-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.nkeys: NATS nkey seeds and .creds files, and the Ed25519
-- signature of a server nonce, with the libcrypto that nginx already has
-- loaded (OpenSSL 1.1.1 or 3).

local ffi = require "ffi"
local bit = require "bit"

local ffi_new = ffi.new
local ffi_string = ffi.string
local band, bor, bxor = bit.band, bit.bor, bit.bxor
local lshift, rshift = bit.lshift, bit.rshift
local byte, char = string.byte, string.char
local concat = table.concat
local encode_base64 = ngx.encode_base64


local _M = {}


-- each declaration on its own: another library (lua-resty-openssl, say)
-- may have declared some of them already
for decl in ([[
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
EVP_PKEY *EVP_PKEY_new_raw_private_key(int type, ENGINE *e, const unsigned char *priv, size_t len);
int EVP_PKEY_get_raw_public_key(const EVP_PKEY *pkey, unsigned char *pub, size_t *len);
void EVP_PKEY_free(EVP_PKEY *key);
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type, ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen, const unsigned char *tbs, size_t tbslen);
]]):gmatch("[^\n]+") do
    pcall(ffi.cdef, decl)
end


local NID_ED25519 = 1087

local PREFIX_SEED = 18 * 8       -- 'S'
local PREFIX_USER = 20 * 8       -- 'U'

local B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
local B32_REV = {}
for i = 1, 32 do
    B32_REV[byte(B32, i)] = i - 1
end


local crypto

local function libcrypto()
    if crypto then
        return crypto
    end

    if pcall(function() return ffi.C.EVP_PKEY_new_raw_private_key end) then
        crypto = ffi.C
        return crypto
    end

    for _, name in ipairs({ "libcrypto.so.3", "libcrypto.so.1.1", "crypto" }) do
        local ok, lib = pcall(ffi.load, name)
        if ok then
            crypto = lib
            return crypto
        end
    end

    return nil
end


local function crc16(s)
    -- CRC-16/XMODEM, as nkeys use it
    local crc = 0
    for i = 1, #s do
        crc = bxor(crc, lshift(byte(s, i), 8))
        for _ = 1, 8 do
            if band(crc, 0x8000) ~= 0 then
                crc = band(bxor(lshift(crc, 1), 0x1021), 0xffff)
            else
                crc = band(lshift(crc, 1), 0xffff)
            end
        end
    end
    return crc
end


local function b32_decode(s)
    local out, buf, bits = {}, 0, 0
    for i = 1, #s do
        local v = B32_REV[byte(s, i)]
        if not v then
            return nil
        end
        buf = bor(lshift(buf, 5), v)
        bits = bits + 5
        if bits >= 8 then
            bits = bits - 8
            out[#out + 1] = char(band(rshift(buf, bits), 0xff))
        end
        buf = band(buf, lshift(1, bits) - 1)
    end
    return concat(out)
end


local function b32_encode(s)
    local out, buf, bits = {}, 0, 0
    for i = 1, #s do
        buf = bor(lshift(buf, 8), byte(s, i))
        bits = bits + 8
        while bits >= 5 do
            bits = bits - 5
            local v = band(rshift(buf, bits), 31)
            out[#out + 1] = B32:sub(v + 1, v + 1)
        end
        buf = band(buf, lshift(1, bits) - 1)
    end
    if bits > 0 then
        local v = band(lshift(buf, 5 - bits), 31)
        out[#out + 1] = B32:sub(v + 1, v + 1)
    end
    return concat(out)
end


-- the 32 raw seed bytes of a user nkey seed ("SU..."), or nil, err
local function decode_seed(seed)
    if type(seed) ~= "string" then
        return nil, "nkey seed is not a string"
    end

    local raw = b32_decode(seed)
    if not raw or #raw ~= 36 then
        return nil, "invalid nkey seed"
    end

    local body, c1, c2 = raw:sub(1, 34), byte(raw, 35, 36)
    if crc16(body) ~= bor(c1, lshift(c2, 8)) then
        return nil, "invalid nkey seed: bad checksum"
    end

    local b0, b1 = byte(raw, 1, 2)
    if band(b0, 0xf8) ~= PREFIX_SEED then
        return nil, "invalid nkey seed: not a seed"
    end

    local kind = bor(lshift(band(b0, 7), 5), rshift(band(b1, 0xf8), 3))
    if kind ~= PREFIX_USER then
        return nil, "invalid nkey seed: not a user seed"
    end

    return raw:sub(3, 34)
end


local function with_key(raw_seed, f)
    local c = libcrypto()
    if not c then
        return nil, "no libcrypto for nkey signatures"
    end

    local pkey = c.EVP_PKEY_new_raw_private_key(NID_ED25519, nil, raw_seed,
                                                 32)
    if pkey == nil then
        return nil, "libcrypto has no Ed25519"
    end

    local ok, res, err = pcall(f, c, pkey)
    c.EVP_PKEY_free(pkey)
    if not ok then
        return nil, res
    end
    return res, err
end


-- the public user nkey ("U...") of a seed
function _M.public_key(seed)
    local raw, err = decode_seed(seed)
    if not raw then
        return nil, err
    end

    return with_key(raw, function(c, pkey)
        local pub = ffi_new("unsigned char[32]")
        local len = ffi_new("size_t[1]", 32)
        if c.EVP_PKEY_get_raw_public_key(pkey, pub, len) ~= 1 then
            return nil, "cannot derive the public key"
        end
        local body = char(PREFIX_USER) .. ffi_string(pub, 32)
        local crc = crc16(body)
        return b32_encode(body .. char(band(crc, 0xff), rshift(crc, 8)))
    end)
end


-- the base64url Ed25519 signature of nonce with the seed
function _M.sign(seed, nonce)
    local raw, err = decode_seed(seed)
    if not raw then
        return nil, err
    end

    return with_key(raw, function(c, pkey)
        local ctx = c.EVP_MD_CTX_new()
        if ctx == nil then
            return nil, "no memory"
        end
        local sig = ffi_new("unsigned char[64]")
        local len = ffi_new("size_t[1]", 64)
        local ok = c.EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1
                   and c.EVP_DigestSign(ctx, sig, len, nonce, #nonce) == 1
        c.EVP_MD_CTX_free(ctx)
        if not ok then
            return nil, "nonce signature failed"
        end
        local b64 = encode_base64(ffi_string(sig, len[0]))
        return (b64:gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
    end)
end


-- jwt, seed from the text of a .creds file
function _M.parse_creds(text)
    if type(text) ~= "string" then
        return nil, nil, "creds is not a string"
    end

    local jwt = text:match("%-%-%-%-%-BEGIN NATS USER JWT%-+%s*\n%s*([%w%-_%.=]+)")
    local seed = text:match("%-%-%-%-%-BEGIN USER NKEY SEED%-+%s*\n%s*(S[A-Z2-7]+)")
    if not jwt then
        return nil, nil, "no user JWT in the creds"
    end
    if not seed then
        return nil, nil, "no nkey seed in the creds"
    end
    return jwt, seed
end


_M._b32_encode = b32_encode
_M._b32_decode = b32_decode
_M._crc16 = crc16


return _M
