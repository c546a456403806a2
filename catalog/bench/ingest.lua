-- wrk script of catalog/bench/ingest.py: POST /api/v1/events, 100 events a request,
-- every event id unique: "<run>-<thread>-<request>-<n>". The bench replaces the
-- @...@ placeholders (run name, key, SKU file, shopper count) before it runs wrk.
local run = "@RUN@"
local key = "@KEY@"
local sku_file = "@SKUS@"
local shoppers = @SHOPPERS@
local per_request = 100
local types = {"view", "view", "view", "view", "view", "view", "click", "click", "add_to_cart", "purchase"}

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local skus = {}
sent = 0
ok = 0
other = 0

function init(args)
   for line in io.lines(sku_file) do
      table.insert(skus, line)
   end
   math.randomseed(id * 7919)
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Bearer " .. key
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   sent = sent + 1
   local ts = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - 60)
   local parts = {}
   for n = 1, per_request do
      local kind = types[math.random(#types)]
      local extra = ""
      if kind == "purchase" then
         extra = ',"quantity":1,"price":19.99'
      end
      parts[n] = string.format(
         '{"event_id":"%s-%d-%d-%d","type":"%s","shopper":"bench-shopper-%d","sku":"%s","ts":"%s","session":"bench-%d-%d"%s}',
         run, id, sent, n, kind, math.random(shoppers), skus[math.random(#skus)], ts, id, sent, extra)
   end
   return wrk.format(nil, "/api/v1/events", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
   if status == 200 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local total_ok, total_other, total_sent = 0, 0, 0
   for _, thread in ipairs(threads) do
      total_ok = total_ok + thread:get("ok")
      total_other = total_other + thread:get("other")
      total_sent = total_sent + thread:get("sent")
   end
   io.write(string.format("BENCH ok=%d other=%d sent=%d threads=%d\n", total_ok, total_other, total_sent, #threads))
end
