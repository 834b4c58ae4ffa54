-- kv.lua: wrk script for build-aux/bench
--
--   wrk ... -s bench/kv.lua URL -- MODE PREFIX N
--
-- MODE  get      GET /kv/PREFIX<number>, number random in [0, N)
--       put      PUT the same keys with a 100-byte value (overwrites)
--       put-new  PUT keys PREFIX<N>, PREFIX<N+1>, … (a fresh key each time;
--                each thread counts in its own range)
--       path     GET PREFIX as a path, e.g. "/keys?prefix=key:0001&limit=1000"
--
-- Keys are 16 bytes: PREFIX followed by a zero-padded number, as kv-load,
-- bare-soup and redis-benchmark's __rand_int__ name them.
--
-- done() prints one line of key=value pairs for the script to read:
--   requests=… seconds=… rps=… p50_us=… p99_us=… non2xx=… errors=…

local KEY_SIZE = 16
local VALUE = string.rep("0123456789", 10)

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local mode, prefix, n, fmt, host, next_key, request_path

function init(args)
   mode = args[1] or "get"
   prefix = args[2] or "key:"
   n = tonumber(args[3] or "1000")
   fmt = prefix .. "%0" .. (KEY_SIZE - #prefix) .. "d"
   host = wrk.host .. ":" .. wrk.port
   -- Threads of a put-new run take disjoint ranges of a billion keys each.
   next_key = n + (id or 0) * 1000000000
   math.randomseed(os.time() + (id or 0))
   if mode == "path" then
      request_path = "GET " .. prefix .. " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   end
end

local function key_of(number)
   return string.format(fmt, number)
end

function request()
   if mode == "get" then
      return "GET /kv/" .. key_of(math.random(0, n - 1)) ..
         " HTTP/1.1\r\nHost: " .. host .. "\r\n\r\n"
   elseif mode == "put" then
      return "PUT /kv/" .. key_of(math.random(0, n - 1)) ..
         " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Length: 100\r\n\r\n" .. VALUE
   elseif mode == "put-new" then
      local key = key_of(next_key)
      next_key = next_key + 1
      return "PUT /kv/" .. key ..
         " HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Length: 100\r\n\r\n" .. VALUE
   else
      return request_path
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "requests=%d seconds=%.3f rps=%.1f p50_us=%.1f p99_us=%.1f non2xx=%d errors=%d\n",
      summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50), latency:percentile(99),
      e.status, e.connect + e.read + e.write + e.timeout))
end
