-- trafficmgr glue for dnsdist (1.7+), installed as
-- /usr/share/trafficmgr/dnsdist.lua. A dnsdist.conf loads it and calls
-- trafficmgr{} once:
--
--   dofile("/usr/share/trafficmgr/dnsdist.lua")
--   trafficmgr{ config = "/etc/trafficmgr/trafficmgr.toml",
--               zones = {"trafficmanager.example."} }
--
-- Names under `zones` (the [[zone]] names of the config) are answered by the
-- library, per thread, with no global Lua lock: the library writes the whole
-- reply (AA, our TTLs, the ECS option echoed with the scope the decision
-- used). Other names go on to the next rules and your backends. Every
-- per-thread Lua state opens the same engine (tm_engine_open_shared, by
-- config path): one set of health probes per dnsdist process.
--
-- Options: config (required), zones (required), lib (default
-- "libtrafficmgr.so.1", found by the dynamic linker; or a full path).

-- TM_ABI_VERSION of the header this glue was written for; the glue refuses
-- a library with another ABI.
local TM_ABI = 1

-- Runs once in each per-thread Lua state: opens the one engine of the
-- process (shared by path) and returns the per-query function.
local TM_THREAD = [[
local ffi = require("ffi")
ffi.cdef[=[
typedef struct dnsdist_ffi_dnsquestion_t dnsdist_ffi_dnsquestion_t;
void *dnsdist_ffi_dnsquestion_get_header(const dnsdist_ffi_dnsquestion_t *dq);
uint16_t dnsdist_ffi_dnsquestion_get_len(const dnsdist_ffi_dnsquestion_t *dq);
bool dnsdist_ffi_dnsquestion_set_size(dnsdist_ffi_dnsquestion_t *dq, size_t size);
bool dnsdist_ffi_dnsquestion_get_tcp(const dnsdist_ffi_dnsquestion_t *dq);
void dnsdist_ffi_dnsquestion_get_remoteaddr(const dnsdist_ffi_dnsquestion_t *dq, const void **addr, size_t *size);
typedef struct tm_engine tm_engine;
uint32_t tm_abi_version(void);
uint32_t tm_engine_open_shared(const char *path, size_t len, char *errbuf, size_t errlen, const tm_engine **out);
uint32_t tm_engine_answer_in_place(const tm_engine *e, uint8_t *buf, size_t qlen, size_t cap,
                                   const uint8_t *client, size_t clen, uint32_t tcp, size_t *written);
]=]
local C = ffi.C
local tm = ffi.load(%q)
if tm.tm_abi_version() ~= %d then
  error("trafficmgr: libtrafficmgr.so has ABI " .. tm.tm_abi_version() .. "; update this glue and rebuild against its header")
end
local out = ffi.new("const tm_engine *[1]")
local err = ffi.new("char[1024]")
local path = %q
if tm.tm_engine_open_shared(path, #path, err, 1024, out) ~= 0 then
  error("trafficmgr: " .. ffi.string(err))
end
local engine = out[0]
local addr = ffi.new("const void *[1]")
local alen = ffi.new("size_t[1]")
local written = ffi.new("size_t[1]")
local CAP = 4096
local TCP_CAP = 65535
local NONE, MODIFY = DNSAction.None, DNSAction.HeaderModify
local DQ = ffi.typeof("dnsdist_ffi_dnsquestion_t *")
local U8 = ffi.typeof("uint8_t *")
local CU8 = ffi.typeof("const uint8_t *")
-- The work of one query, with `dq` already a cdata pointer: LuaJIT compiles
-- this to machine code (direct C calls, no boxed values).
local function answer(dq)
  local qlen = C.dnsdist_ffi_dnsquestion_get_len(dq)
  -- Room for the reply: 4096 octets, or a whole TCP message for a longer
  -- query (never smaller than the query: growing the buffer must not cut it).
  local cap = CAP
  if qlen > cap then cap = TCP_CAP end
  if not C.dnsdist_ffi_dnsquestion_set_size(dq, cap) then return NONE end
  local buf = ffi.cast(U8, C.dnsdist_ffi_dnsquestion_get_header(dq))
  C.dnsdist_ffi_dnsquestion_get_remoteaddr(dq, addr, alen)
  local tcp = C.dnsdist_ffi_dnsquestion_get_tcp(dq) and 1 or 0
  local r = tm.tm_engine_answer_in_place(engine, buf, qlen, cap, ffi.cast(CU8, addr[0]), alen[0], tcp, written)
  if r ~= 0 then
    C.dnsdist_ffi_dnsquestion_set_size(dq, qlen)
    return NONE
  end
  C.dnsdist_ffi_dnsquestion_set_size(dq, written[0])
  return MODIFY
end
-- dnsdist hands `dq` over as a light userdata, which this LuaJIT (2.1 of
-- Debian 12) cannot convert inside compiled code ("NYI: unsupported C type
-- conversion"): every trace through a function that passes it to C aborts,
-- and the whole action then runs in the interpreter. So the conversion is
-- done here, in a function kept out of the JIT, and `answer` gets a cdata.
local function entry(dq)
  return answer(ffi.cast(DQ, dq))
end
jit.off(entry)
return entry
]]

function trafficmgr(o)
  assert(type(o) == "table", "trafficmgr{config=..., zones={...}}")
  assert(type(o.config) == "string", "trafficmgr: config (the TOML file's path) is required")
  assert(type(o.zones) == "table" and #o.zones > 0, "trafficmgr: zones (the [[zone]] names) are required")
  local lib = o.lib or ("libtrafficmgr.so." .. TM_ABI)
  -- Checked now, at configuration time, so a missing library or one of
  -- another ABI stops dnsdist at start instead of failing every query.
  local ffi = require("ffi")
  pcall(ffi.cdef, "uint32_t tm_abi_version(void);")
  local ok, tm = pcall(ffi.load, lib)
  if not ok then
    error("trafficmgr: cannot load " .. lib .. ": " .. tostring(tm) ..
          " (give lib = \"/full/path/libtrafficmgr.so.1\", or install the package)")
  end
  if tm.tm_abi_version() ~= TM_ABI then
    error("trafficmgr: " .. lib .. " has ABI " .. tm.tm_abi_version() .. ", this glue expects " .. TM_ABI)
  end
  local zones = newSuffixMatchNode()
  for _, z in ipairs(o.zones) do zones:add(newDNSName(z)) end
  addAction(SuffixMatchNodeRule(zones),
            LuaFFIPerThreadAction(string.format(TM_THREAD, lib, TM_ABI, o.config)))
end
