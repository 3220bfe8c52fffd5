-- wrk script for bench/run.sh: every request is a universal-auth login, POST /api/v1/auth/universal-auth/login
-- with {clientId, clientSecret} as JSON. Both come from the environment (BENCH_CLIENT_ID, BENCH_CLIENT_SECRET)
-- so that the client secret never appears on a command line. Setting wrk.method, wrk.body and wrk.headers at
-- the top level lets wrk build the request once per thread, so the script costs nothing per request.
local function need(name)
    local value = os.getenv(name)
    if value == nil or value == "" then
        error(name .. " is not set")
    end
    return value
end

-- A JSON string literal: quotes, backslashes and control characters escaped.
local function json_string(s)
    return '"' .. s:gsub('[%c"\\]', function(c)
        return string.format("\\u%04x", c:byte())
    end) .. '"'
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"clientId":' .. json_string(need("BENCH_CLIENT_ID")) ..
    ',"clientSecret":' .. json_string(need("BENCH_CLIENT_SECRET")) .. '}'
