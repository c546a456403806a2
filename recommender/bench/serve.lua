-- wrk script of recommender/bench/serve.py: GET one path, or the path followed by a
-- shopper id drawn at random per request from a file (one id a line). The bench
-- replaces the @...@ placeholders before it runs wrk. done() prints the exact
-- percentiles of wrk's latency histogram (microseconds) and the error counts.
local key = "@KEY@"
local path = "@PATH@"
local shopper_file = "@SHOPPERS@"
local shoppers = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

function init(args)
   if shopper_file ~= "" then
      for line in io.lines(shopper_file) do
         table.insert(shoppers, line)
      end
   end
   math.randomseed(id * 7919)
   wrk.headers["Authorization"] = "Bearer " .. key
end

function request()
   if #shoppers > 0 then
      return wrk.format("GET", path .. shoppers[math.random(#shoppers)])
   end
   return wrk.format("GET", path)
end

function done(summary, latency, requests)
   local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d errors=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, summary.errors.status, errors))
end
