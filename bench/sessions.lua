-- wrk script for bench/private.sh: every request carries one of
-- BENCH_SESSIONS session cookies, in turn, each wrk thread starting at a
-- different point, so the gateway sees many sessions at once instead of
-- one hot cache entry.
local n = tonumber(os.getenv("BENCH_SESSIONS") or "1000")
local threads = 0
local reqs = {}
local i = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  -- Requests are built once; request() only picks one (keeps wrk's own
  -- CPU cost close to a plain run's).
  for k = 1, n do
    local h = {}
    for name, value in pairs(wrk.headers) do h[name] = value end
    h["Cookie"] = string.format("theme=dark; gw_session=bench-sid-%06d", k)
    reqs[k] = wrk.format(nil, nil, h)
  end
  i = (tid or 0) * 7919
end

function request()
  i = i + 1
  return reqs[(i % n) + 1]
end
