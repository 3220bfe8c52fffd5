-- wrk script for bench/run.sh: adds the bearer token to every request. The token comes from the environment
-- (BENCH_TOKEN) so that it never appears on a command line. Setting wrk.headers at the top level lets wrk
-- build the request once per thread, so the script costs nothing per request.
local token = os.getenv("BENCH_TOKEN")
if token == nil or token == "" then
    error("BENCH_TOKEN is not set")
end
wrk.headers["Authorization"] = "Bearer " .. token
