-- wrk script for bench/load.py's store soak: each connection's requests alternate between a list of the
-- project's 100 secrets and a read of one of them (a different one each time), with one access token from the
-- environment: the read-heavy traffic of pipelines that logged in once. wrk runs LuaJIT (Lua 5.1).
local project = assert(os.getenv("BENCH_PROJECT"), "BENCH_PROJECT is not set")
local headers = {["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN is not set")}
local list_path = "/api/v3/secrets/raw?workspaceId=" .. project .. "&environment=dev&secretPath=/"
local one_query = "?workspaceId=" .. project .. "&environment=dev"

local n = 0
request = function()
    n = n + 1
    if n % 2 == 0 then
        return wrk.format("GET", list_path, headers, nil)
    end
    return wrk.format("GET", string.format("/api/v3/secrets/raw/KEY_%03d", (n % 100) + 1) .. one_query, headers, nil)
end

-- BENCH_DELAY_MS (whole milliseconds): each connection waits that long before each request, for a steady rate
-- below what the machine can serve.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
    delay = function()
        return pause
    end
end
