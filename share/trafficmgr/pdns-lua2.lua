-- trafficmgr inside PowerDNS Authoritative (4.7+, built with LuaJIT as
-- Debian's is), through the lua2 backend: no socket, no JSON, no second
-- process. Installed as /usr/share/trafficmgr/pdns-lua2.lua. pdns.conf:
--
--   launch+=lua2
--   lua2-filename=/etc/powerdns/trafficmgr.lua
--   edns-subnet-processing=yes
--   cache-ttl=0
--   query-cache-ttl=0
--   negquery-cache-ttl=0
--
-- and /etc/powerdns/trafficmgr.lua:
--
--   TRAFFICMGR = { config = "/etc/trafficmgr/trafficmgr.toml",
--                  zones = { "trafficmanager.example" } }
--   dofile("/usr/share/trafficmgr/pdns-lua2.lua")
--
-- Options in TRAFFICMGR: config (required); zones (the [[zone]] names:
-- PowerDNS's zone cache then finds our zones without asking, below; without
-- them set zone-cache-refresh-interval=0); lib (default
-- "libtrafficmgr.so.1", found by the dynamic linker; or a full path).
--
-- PowerDNS runs one Lua state per backend instance (one per receiver
-- thread, and a few more); each opens the same engine with
-- tm_engine_open_shared (by config path), so the process has one engine and
-- one set of health probes, and dns_deinit gives its hold back.
--
-- The decision uses the client subnet PowerDNS saw (ctx.real_source_address
-- is the ECS subnet with edns-subnet-processing=yes, else the client's
-- address as /32 or /128), and every record carries scopeMask = the ECS
-- scope the decision used, which PowerDNS echoes in its reply. PowerDNS's
-- caches are not per client subnet, so they must stay off (above), as for
-- the remote backend.

local TM_ABI = 1

local o = TRAFFICMGR
if type(o) ~= "table" or type(o.config) ~= "string" then
  error("trafficmgr: set TRAFFICMGR = { config = \"/etc/trafficmgr/trafficmgr.toml\" } before dofile(\".../pdns-lua2.lua\")")
end

local ffi = require("ffi")
-- Declared once per Lua state (a second cdef of the same struct errors).
ffi.cdef[[
typedef struct tm_engine tm_engine;
typedef struct { uint32_t family; uint8_t bytes[16]; } tm_address;
typedef struct {
  uint32_t struct_size; uint16_t qtype; uint8_t ecs_source_prefix;
  const char *qname; size_t qname_len; tm_address client; tm_address ecs;
} tm_query;
typedef struct {
  uint32_t section; uint16_t rtype; const char *type_name;
  const char *owner; size_t owner_len; uint32_t ttl;
  const char *rdata_text; size_t rdata_text_len;
  const uint8_t *rdata_wire; size_t rdata_wire_len;
} tm_record;
typedef int32_t (*tm_record_fn)(void *userdata, const tm_record *record);
typedef struct {
  uint32_t rcode; uint32_t flags; uint32_t scope_prefix;
  uint32_t answer_count; uint32_t authority_count;
} tm_lookup_info;
uint32_t tm_abi_version(void);
uint32_t tm_engine_open_shared(const char *path, size_t len, char *errbuf, size_t errlen, const tm_engine **out);
uint32_t tm_engine_release_shared(const tm_engine *engine);
uint32_t tm_engine_lookup(const tm_engine *e, const tm_query *q, tm_record_fn f, void *ud, tm_lookup_info *info);
int inet_pton(int af, const char *src, void *dst);
]]

local lib = o.lib or ("libtrafficmgr.so." .. TM_ABI)
local ok, tm = pcall(ffi.load, lib)
if not ok then
  error("trafficmgr: cannot load " .. lib .. ": " .. tostring(tm) ..
        " (set TRAFFICMGR.lib to the full path of libtrafficmgr.so.1, or install the package)")
end
if tm.tm_abi_version() ~= TM_ABI then
  error("trafficmgr: " .. lib .. " has ABI " .. tm.tm_abi_version() .. ", this script expects " .. TM_ABI)
end

local out = ffi.new("const tm_engine *[1]")
local err = ffi.new("char[1024]")
if tm.tm_engine_open_shared(o.config, #o.config, err, 1024, out) ~= 0 then
  error("trafficmgr: " .. ffi.string(err))
end
local engine = out[0]

local C = ffi.C
local AF_INET, AF_INET6 = 2, 10
local SECTION_ANSWER = 1
local RCODE_NXDOMAIN, RCODE_REFUSED = 3, 5
local TYPE_CNAME, TYPE_ANY = 5, 255
-- The types the engine holds; PowerDNS asks others too (MX, TXT, DS, …).
local HELD = { [1] = "A", [2] = "NS", [5] = "CNAME", [6] = "SOA", [28] = "AAAA", [255] = "ANY" }

local q = ffi.new("tm_query")
q.struct_size = ffi.sizeof("tm_query")
q.qtype = TYPE_ANY
local info = ffi.new("tm_lookup_info")

-- Filled by the callback during one lookup: type, TTL and text of each
-- answer record (arrays reused from query to query).
local rtype, rttl, rtext, n = {}, {}, {}, 0
local cb = ffi.cast("tm_record_fn", function(_, r)
  if r.section == SECTION_ANSWER then
    n = n + 1
    rtype[n] = r.rtype
    rttl[n] = r.ttl
    rtext[n] = ffi.string(r.rdata_text, r.rdata_text_len)
  end
  return 0
end)

-- An address string into a tm_address; false if it is not one.
local function address(s, a)
  if C.inet_pton(AF_INET, s, a.bytes) == 1 then
    a.family = 4
    return true
  end
  if C.inet_pton(AF_INET6, s, a.bytes) == 1 then
    a.family = 6
    return true
  end
  a.family = 0
  return false
end

-- The client strings of the query before, and what they gave: a resolver
-- sends many queries in a row, so most queries parse nothing.
local last_peer, last_real = nil, nil

function dns_lookup(qtype, qname, domain_id, ctx)
  local code = qtype:getCode()
  if HELD[code] == nil then return {} end
  local name = tostring(qname)
  q.qname = name
  q.qname_len = #name
  local peer = ctx and ctx.source_address
  local real = ctx and ctx.real_source_address
  if peer ~= last_peer or real ~= last_real then
    last_peer, last_real = peer, real
    if not (peer and address(peer, q.client)) then q.client.family = 0 end
    -- real_source_address is the ECS subnet, or peer/32 (/128) without one.
    q.ecs_source_prefix = 0
    if real then
      local a, len = string.match(real, "^([^/]+)/(%d+)$")
      len = tonumber(len)
      if a and len and len <= 128 then
        local full = string.find(a, ":", 1, true) and 128 or 32
        if (a ~= peer or len ~= full) and address(a, q.ecs) then
          q.ecs_source_prefix = len
        end
      end
    end
  end
  n = 0
  local r = tm.tm_engine_lookup(engine, q, cb, nil, info)
  if r ~= 0 or info.rcode == RCODE_NXDOMAIN or info.rcode == RCODE_REFUSED then
    return {}
  end
  local scope = info.scope_prefix
  local res, m = {}, 0
  for i = 1, n do
    local t = rtype[i]
    -- A CNAME goes only to ANY/A/AAAA/CNAME questions: PowerDNS asks SOA
    -- for zone discovery, and a CNAME there breaks it.
    if code == TYPE_ANY or t == code or (t == TYPE_CNAME and (code == 1 or code == 28)) then
      m = m + 1
      res[m] = { type = HELD[t] or t, name = qname, ttl = rttl[i], content = rtext[i],
                 auth = true, scopeMask = scope }
    end
  end
  return res
end

-- The lookup calls back into Lua (the record callback): LuaJIT must not
-- compile it into a trace (a callback from compiled code is an error, and
-- recording traces that abort costs more than it saves).
jit.off(dns_lookup, true)

-- With TRAFFICMGR.zones (the [[zone]] names), PowerDNS's zone cache knows
-- our zones (zone-cache-refresh-interval, default 300 s, left on): it then
-- finds the zone of a query without asking the script for the SOA of the
-- name and of each parent (three lookups a query become one). The zone
-- cache holds zone names only, never answers. A zone added to the config
-- later is served once it is in TRAFFICMGR.zones and PowerDNS reloaded.
if o.zones ~= nil then
  if type(o.zones) ~= "table" then error("trafficmgr: zones must be a list of zone names") end
  local domains = {}
  for i, z in ipairs(o.zones) do
    if string.sub(z, -1) ~= "." then z = z .. "." end
    domains[newDN(z)] = { id = i, serial = 1, kind = "native" }
  end
  function dns_get_all_domains()
    return domains
  end
end

function dns_deinit()
  if engine ~= nil then
    tm.tm_engine_release_shared(engine)
    engine = nil
  end
end
